"""Casing changes: a cased encoder sees "BERLIN" or "berlin" as different subwords than "Berlin".

Only letters of the bicameral scripts in :data:`SCRIPTS` change, and only one-to-one: a letter is mapped
when its mapped form is a single character that maps back to it (so ``ß`` -> ``SS``, Turkish ``İ`` ->
``i̇`` and the final sigma ``ς`` -> ``Σ`` -> ``σ`` are left alone) and, given ``known``, when the tokenizer
knows the mapped form (so case never creates an [UNK]). Georgian is not among the scripts: its
capitals (Mtavruli, Unicode 11) do not mark names in Georgian text, and mBERT's vocabulary has none of
them, so "upper-casing" Georgian would only turn words into [UNK].
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from sparsenlp.errors import SparseNLPError
from sparsenlp.perturb.base import Perturbed
from sparsenlp.perturb.scripts import script

MODES = ("lower", "upper")
SCRIPTS = frozenset({"Latn", "Grek", "Cyrl", "Armn"})


@lru_cache(maxsize=65536)
def mapped(char: str, mode: str) -> str:
    """``char`` in ``mode``'s case when that is a one-to-one change within :data:`SCRIPTS`, else ``char``."""
    there, back = (str.lower, str.upper) if mode == "lower" else (str.upper, str.lower)
    new = there(char)
    if new == char or len(new) != 1 or back(new) != char or script(char) not in SCRIPTS:
        return char
    return new


def convert(token: str, mode: str, known: Callable[[str], bool] | None = None) -> str:
    """``token`` with every mappable letter in ``mode``'s case (those whose form ``known`` accepts)."""
    out = []
    for char in token:
        new = mapped(char, mode)
        out.append(new if new == char or known is None or known(new) else char)
    return "".join(out)


def case(
    tokens: Sequence[str], tags: Sequence[str], rng: np.random.Generator, severity: float, mode: str = "lower",
    known: Callable[[str], bool] | None = None,
) -> Perturbed:
    """Lower- or upper-case each token with probability ``severity`` (1 = every token).

    ``known(char)``: whether the tokenizer knows a mapped character (the robustness suite passes one built
    from the run's tokenizer); None maps every mappable letter. One uniform draw per token, taken whatever
    the severity, so the tokens changed at a lower severity are also changed, the same way, at any higher one.
    """
    if mode not in MODES:
        raise SparseNLPError(f"case perturbation got mode={mode!r}; use one of {', '.join(MODES)}")
    chosen = rng.random(len(tokens)) < severity
    return Perturbed(
        tokens=tuple(convert(t, mode, known) if c else t for t, c in zip(tokens, chosen)),
        tags=tuple(tags),
    )
