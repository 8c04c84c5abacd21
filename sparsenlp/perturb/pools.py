"""Entity pools for ``entity_swap``: which replacement names exist, by entity type.

A pool is built by its caller (``sparsenlp/evaluation/robustness.py`` says which sentences feed each
source) from plain sentences; ``exclude`` removes surface forms the pool must not hold (the run's
training and dev entities). A swap never puts one of the sentence's own entities back into it.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from sparsenlp.errors import SparseNLPError
from sparsenlp.perturb.base import NotApplicable, SentenceLike

SOURCES = ("seen", "unseen", "script", "family")
SPLITS = ("train", "test")


def spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Gold entity spans as ``(type, start, end_inclusive)``, parsed by seqeval like the F1 metric does."""
    # imported here: seqeval.metrics imports scikit-learn, which composing a config (and --help) need not pay for
    from seqeval.metrics.sequence_labeling import get_entities

    return get_entities(list(tags))


def entity_forms(sentences: Iterable[SentenceLike]) -> set[tuple[str, ...]]:
    """Every entity surface form (a tuple of tokens) in ``sentences``, whatever its type."""
    return {tuple(s.tokens[start : end + 1]) for s in sentences for _, start, end in spans(s.tags)}


def entity_types(sentences: Iterable[SentenceLike]) -> set[str]:
    """The entity types that occur in ``sentences`` (e.g. a test set a pool must cover)."""
    return {etype for s in sentences for etype, _, _ in spans(s.tags)}


class EntityPool:
    """Distinct entity surface forms per type, in first-seen order (so draws are reproducible).

    ``split``: the split of ``languages`` the forms come from; ``excluded``: distinct forms left out
    because ``exclude`` held them."""

    def __init__(
        self, lang: str, source: str, languages: Sequence[str], entities: Mapping[str, Sequence[tuple[str, ...]]],
        split: str = "train", excluded: int = 0,
    ):
        if source not in SOURCES:
            raise SparseNLPError(f"unknown entity pool source {source!r}; use one of {', '.join(SOURCES)}")
        if split not in SPLITS:
            raise SparseNLPError(f"entity pool split {split!r} is unknown; use one of {', '.join(SPLITS)}")
        self.lang, self.source, self.split, self.excluded = lang, source, split, excluded
        self.languages = tuple(languages)
        self.entities = {etype: tuple(forms) for etype, forms in entities.items()}
        self._index = {etype: {f: i for i, f in enumerate(forms)} for etype, forms in self.entities.items()}

    @classmethod
    def from_sentences(
        cls, sentences: Iterable[SentenceLike], *, lang: str, source: str, languages: Sequence[str],
        split: str = "train", exclude: Iterable[tuple[str, ...]] = (),
    ) -> EntityPool:
        """Collect the entities of ``sentences`` (of ``languages``' ``split``, for test language ``lang``),
        leaving out the surface forms in ``exclude``."""
        excluded = set(exclude)
        entities: dict[str, dict[tuple[str, ...], None]] = {}
        dropped: set[tuple[str, ...]] = set()
        for s in sentences:
            for etype, start, end in spans(s.tags):
                form = tuple(s.tokens[start : end + 1])
                if form in excluded:
                    dropped.add(form)
                else:
                    entities.setdefault(etype, {})[form] = None
        return cls(lang, source, languages, {etype: list(forms) for etype, forms in entities.items()}, split,
                   len(dropped))

    def sizes(self) -> dict[str, int]:
        """Distinct forms per entity type."""
        return {etype: len(forms) for etype, forms in sorted(self.entities.items())}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{t}={n}" for t, n in self.sizes().items())
        return (f"EntityPool(lang={self.lang}, source={self.source}, {self.split} of {list(self.languages)}, "
                f"{sizes})")

    def validate(self, needed: Iterable[str]) -> None:
        """Fail early (before training) if an entity type the test set has is missing from the pool."""
        missing = sorted(set(needed) - {t for t, forms in self.entities.items() if forms})
        if missing:
            raise NotApplicable(
                f"entity pool for lang={self.lang} (source={self.source}, {self.split} of {list(self.languages)}) "
                f"has no {', '.join(missing)} entities"
            )

    def draw(self, etype: str, own: Iterable[tuple[str, ...]], u: float) -> tuple[str, ...] | None:
        """The entity that the uniform draw ``u`` picks among the pool's ``etype`` forms other than the
        sentence's ``own`` entities; None when the pool has no other form."""
        self.validate([etype])
        forms = self.entities[etype]
        index = self._index[etype]
        skips = sorted({index[f] for f in own if f in index})
        n = len(forms) - len(skips)
        if n == 0:
            return None
        k = int(u * n)
        for skip in skips:  # the k-th form that is not skipped
            if skip > k:
                break
            k += 1
        return forms[k]
