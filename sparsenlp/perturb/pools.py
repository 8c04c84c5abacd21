"""Entity pools for ``entity_swap``: which replacement names exist, by entity type.

The source says where the replacements come from:
- ``seen``: the test language's own training set, i.e. names the model was fine-tuned on;
- ``unseen``: the test language's held-out dev set, minus every name that occurs as an entity in the
  run's training data, i.e. in-language names the model never saw labelled;
- ``script`` / ``family``: the training sets of the other languages written in the same script / of the
  same family (names of other languages).
No pool ever draws from the test set, so no test entity leaks into a swap.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Protocol, Sequence

from sparsenlp.errors import SparseNLPError
from sparsenlp.perturb.base import SentenceLike

SOURCES = ("seen", "unseen", "script", "family")
OWN_LANGUAGE = ("seen", "unseen")


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


class Languages(Protocol):
    """What pools need to know about languages (``sparsenlp.config.LanguagesConfig`` is one)."""

    def sharing(self, code: str, attribute: str) -> list[str]: ...

    def facts(self, code: str) -> object: ...


def pool_languages(lang: str, source: str, languages: Languages) -> list[str]:
    """The languages whose sentences feed the pool for ``lang``: itself for ``seen`` / ``unseen``, else every
    *other* language sharing its script or family (names the model did not see as entities of ``lang``)."""
    if source not in SOURCES:
        raise SparseNLPError(f"unknown entity pool source {source!r}; use one of {', '.join(SOURCES)}")
    if source in OWN_LANGUAGE:
        return [lang]
    others = languages.sharing(lang, source)
    if not others:
        value = getattr(languages.facts(lang), source)
        raise SparseNLPError(
            f"no other language shares {source}={value!r} with lang={lang}; use entity pool source 'seen' for it"
        )
    return others


class EntityPool:
    """Distinct entity surface forms per type, in first-seen order (so draws are reproducible)."""

    def __init__(
        self, lang: str, source: str, languages: Sequence[str], entities: Mapping[str, Sequence[tuple[str, ...]]]
    ):
        if source not in SOURCES:
            raise SparseNLPError(f"unknown entity pool source {source!r}; use one of {', '.join(SOURCES)}")
        self.lang = lang
        self.source = source
        self.languages = tuple(languages)
        self.entities = {etype: tuple(forms) for etype, forms in entities.items()}
        self._index = {etype: {f: i for i, f in enumerate(forms)} for etype, forms in self.entities.items()}

    @classmethod
    def from_sentences(
        cls, sentences: Iterable[SentenceLike], *, lang: str, source: str, languages: Sequence[str],
        exclude: Iterable[tuple[str, ...]] = (),
    ) -> EntityPool:
        """Collect the entities of ``sentences`` (of ``languages``, for test language ``lang``), leaving out the
        surface forms in ``exclude`` (for ``unseen``: every entity of the training data)."""
        excluded = set(exclude)
        entities: dict[str, dict[tuple[str, ...], None]] = {}
        for s in sentences:
            for etype, start, end in spans(s.tags):
                form = tuple(s.tokens[start : end + 1])
                if form not in excluded:
                    entities.setdefault(etype, {})[form] = None
        return cls(lang, source, languages, {etype: list(forms) for etype, forms in entities.items()})

    def __repr__(self) -> str:
        sizes = ", ".join(f"{t}={len(f)}" for t, f in sorted(self.entities.items()))
        return f"EntityPool(lang={self.lang}, source={self.source}, languages={list(self.languages)}, {sizes})"

    def validate(self, needed: Iterable[str]) -> None:
        """Fail early (before training) if an entity type the test set has is missing from the pool."""
        missing = sorted(set(needed) - {t for t, forms in self.entities.items() if forms})
        if missing:
            raise SparseNLPError(
                f"entity pool for lang={self.lang} (source={self.source}, from {list(self.languages)}) has no "
                f"{', '.join(missing)} entities; pick another pool source or drop entity_swap for this language"
            )

    def draw(self, etype: str, original: tuple[str, ...], u: float) -> tuple[str, ...]:
        """The entity that the uniform draw ``u`` picks among the pool's ``etype`` forms other than ``original``;
        ``original`` itself when the pool has no other form."""
        self.validate([etype])
        forms = self.entities[etype]
        skip = self._index[etype].get(original)
        n = len(forms) - (skip is not None)
        if n == 0:
            return original
        k = int(u * n)
        return forms[k + 1 if skip is not None and k >= skip else k]
