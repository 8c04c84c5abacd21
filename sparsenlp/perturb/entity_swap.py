"""Entity replacement: does the tagger recognise names it has not memorised?"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from sparsenlp.errors import SparseNLPError
from sparsenlp.perturb.base import Perturbed
from sparsenlp.perturb.pools import EntityPool, spans


def entity_swap(
    tokens: Sequence[str],
    tags: Sequence[str],
    rng: np.random.Generator,
    severity: float,
    pool: EntityPool | None = None,
) -> Perturbed:
    """Replace each gold entity span with probability ``severity`` by another entity of the same type.

    The new span is tagged ``B-X I-X ...`` for its own length, so the sentence may grow or shrink.
    Two draws per span are taken whatever the severity, so a span swapped at a lower severity gets
    the same replacement at any higher one (for the same seed).
    """
    if not isinstance(pool, EntityPool):
        raise SparseNLPError("entity_swap needs pool=EntityPool(...); build one with EntityPool.from_sentences")
    out_tokens: list[str] = []
    out_tags: list[str] = []
    pos = 0
    found = spans(tags)
    for (etype, start, end), (u_swap, u_pick) in zip(found, rng.random((len(found), 2))):
        out_tokens += tokens[pos:start]
        out_tags += tags[pos:start]
        original = tuple(tokens[start : end + 1])
        new = pool.draw(etype, original, u_pick) if u_swap < severity else original
        if new == original:
            out_tags += tags[start : end + 1]
        else:
            out_tags += [f"B-{etype}"] + [f"I-{etype}"] * (len(new) - 1)
        out_tokens += new
        pos = end + 1
    out_tokens += tokens[pos:]
    out_tags += tags[pos:]
    return Perturbed(tokens=tuple(out_tokens), tags=tuple(out_tags))
