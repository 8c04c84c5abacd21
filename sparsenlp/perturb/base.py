"""What every perturbation takes and returns.

Perturbations are pure functions ``fn(tokens, tags, rng, severity, **params) -> Perturbed``; the
registry owns seeding and severity checks so each function only says how it changes one sentence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from sparsenlp.errors import SparseNLPError


class SentenceLike(Protocol):
    """Anything with parallel ``tokens`` and ``tags`` (the data module's frozen ``Sentence`` fits)."""

    @property
    def tokens(self) -> Sequence[str]: ...

    @property
    def tags(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Perturbed:
    """A perturbed sentence.

    ``kept`` is set only by perturbations that drop tokens: ``kept[j]`` is the index in the original
    sentence of perturbed token ``j``, so predictions can be mapped back to the original positions.
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    kept: tuple[int, ...] | None = None


class NotApplicable(SparseNLPError):
    """A condition that cannot change a language's test text (case on a caseless script, an entity pool with
    no source): recorded with its ``reason`` instead of a gap, or an error where the member is required."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
