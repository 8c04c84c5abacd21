"""Casing changes: a cased encoder sees "BERLIN" or "berlin" as different subwords than "Berlin"."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from sparsenlp.errors import SparseNLPError
from sparsenlp.perturb.base import Perturbed

MODES = ("lower", "upper")


def case(
    tokens: Sequence[str], tags: Sequence[str], rng: np.random.Generator, severity: float, mode: str = "lower"
) -> Perturbed:
    """Lower- or upper-case each token with probability ``severity`` (1 = every token).

    One uniform draw per token, taken whatever the severity, so the tokens changed at a lower
    severity are also changed at any higher one (for the same seed).
    """
    if mode not in MODES:
        raise SparseNLPError(f"case perturbation got mode={mode!r}; use one of {', '.join(MODES)}")
    chosen = rng.random(len(tokens)) < severity
    convert = str.lower if mode == "lower" else str.upper
    return Perturbed(
        tokens=tuple(convert(t) if c else t for t, c in zip(tokens, chosen)),
        tags=tuple(tags),
    )
