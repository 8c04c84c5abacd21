"""Diacritic stripping: text typed without accents ("Sao Paulo"), common in user-written input."""
from __future__ import annotations

import unicodedata
from typing import Sequence

import numpy as np

from sparsenlp.perturb.base import Perturbed


def strip_token(token: str) -> str:
    """``token`` with its nonspacing marks removed: NFKD, drop category Mn, then NFC.

    Category Mn is what BERT's ``strip_accents`` drops; in abugidas (Devanagari, Bengali, ...) it
    includes some dependent vowel signs and the virama. The final NFC re-composes what NFKD split
    but is no diacritic (Hangul syllables), so only marks change. A token with no mark, or made only
    of marks, comes back unchanged, so no token is ever emptied or altered for nothing.
    """
    decomposed = unicodedata.normalize("NFKD", token)
    kept = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    if not kept or len(kept) == len(decomposed):
        return token
    return unicodedata.normalize("NFC", kept)


def strip_diacritics(
    tokens: Sequence[str], tags: Sequence[str], rng: np.random.Generator, severity: float
) -> Perturbed:
    """Strip diacritics from each token with probability ``severity`` (1 = every token).

    One uniform draw per token whatever the severity, so selections are nested across severities.
    """
    chosen = rng.random(len(tokens)) < severity
    return Perturbed(
        tokens=tuple(strip_token(t) if c else t for t, c in zip(tokens, chosen)),
        tags=tuple(tags),
    )
