"""Typo-like character noise: one insert, delete, substitute or adjacent swap per affected word."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from sparsenlp.perturb.base import Perturbed

OPS = ("insert", "delete", "substitute", "swap")


def _edit(token: str, alphabet: Sequence[str], u_op: float, u_pos: float, u_char: float) -> str:
    """Apply one edit chosen by three uniform draws; an edit that cannot change ``token``
    (delete on one char, swap with no two different neighbours, substitute with no other letter)
    becomes an insert, so the result always differs from ``token`` by exactly one edit and is never empty."""
    op = OPS[int(u_op * len(OPS))]
    if op == "delete" and len(token) > 1:
        i = int(u_pos * len(token))
        return token[:i] + token[i + 1 :]
    if op == "swap":
        spots = [i for i in range(len(token) - 1) if token[i] != token[i + 1]]
        if spots:
            i = spots[int(u_pos * len(spots))]
            return token[:i] + token[i + 1] + token[i] + token[i + 2 :]
    if op == "substitute":
        i = int(u_pos * len(token))
        others = [c for c in alphabet if c != token[i]]
        if others:
            return token[:i] + others[int(u_char * len(others))] + token[i + 1 :]
    i = int(u_pos * (len(token) + 1))
    return token[:i] + alphabet[int(u_char * len(alphabet))] + token[i:]


def char_noise(
    tokens: Sequence[str], tags: Sequence[str], rng: np.random.Generator, severity: float
) -> Perturbed:
    """Give each token that contains a letter one typo with probability ``severity`` (per token).

    Inserted and substituted characters come from the letters of the same sentence (sorted, so the
    choice is reproducible), which keeps the noise in the sentence's own script. Tokens with no
    letter (numbers, punctuation) are left alone. All draws are taken whatever the severity, so a
    token hit at a lower severity gets the same typo at any higher one (for the same seed).
    """
    alphabet = sorted({c for t in tokens for c in t if c.isalpha()})
    draws = rng.random((len(tokens), 4))
    out = tuple(
        _edit(t, alphabet, *d[1:]) if d[0] < severity and any(c.isalpha() for c in t) else t
        for t, d in zip(tokens, draws)
    )
    return Perturbed(tokens=out, tags=tuple(tags))
