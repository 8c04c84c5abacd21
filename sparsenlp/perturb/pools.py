"""Entity pools for ``entity_swap``: which replacement names exist, by entity type.

The source says how far the replacements come from: ``same`` (the test language's own training set),
``script`` (other languages written in the same script) or ``family`` (other languages of the same
family). Pools are built from training sentences only, so no test entity leaks into a swap.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from seqeval.metrics.sequence_labeling import get_entities

from sparsenlp.errors import SparseNLPError
from sparsenlp.perturb.base import SentenceLike

SOURCES = ("same", "script", "family")


def spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Gold entity spans as ``(type, start, end_inclusive)``, parsed by seqeval like the F1 metric does."""
    return get_entities(list(tags))


def entity_types(sentences: Iterable[SentenceLike]) -> set[str]:
    """The entity types that occur in ``sentences`` (e.g. a test set a pool must cover)."""
    return {etype for s in sentences for etype, _, _ in spans(s.tags)}


def pool_languages(lang: str, source: str, meta: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The languages whose training sets feed the pool for ``lang``, sorted.

    ``meta`` maps language code -> ``{"script": ..., "family": ...}`` (conf/languages). ``script`` and
    ``family`` take every *other* language sharing that attribute, so the swapped names are ones the
    model did not see as entities of ``lang`` during fine-tuning.
    """
    if source not in SOURCES:
        raise SparseNLPError(f"unknown entity pool source {source!r}; use one of {', '.join(SOURCES)}")
    if source == "same":
        return [lang]
    if lang not in meta:
        raise SparseNLPError(f"language {lang!r} has no metadata in conf/languages; add its script and family")
    missing = sorted(code for code, m in meta.items() if source not in m)
    if missing:
        raise SparseNLPError(f"languages {missing} lack a {source!r} entry in conf/languages; add it")
    value = meta[lang][source]
    others = sorted(code for code, m in meta.items() if code != lang and m[source] == value)
    if not others:
        raise SparseNLPError(
            f"no other language shares {source}={value!r} with lang={lang}; use entity pool source 'same' for it"
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
        cls, sentences: Iterable[SentenceLike], *, lang: str, source: str, languages: Sequence[str]
    ) -> EntityPool:
        """Collect the entities of ``sentences`` (training sets of ``languages``, for test language ``lang``)."""
        entities: dict[str, dict[tuple[str, ...], None]] = {}
        for s in sentences:
            for etype, start, end in spans(s.tags):
                entities.setdefault(etype, {})[tuple(s.tokens[start : end + 1])] = None
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
