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

    The replacement is never one of the sentence's own entities (any type), so a sentence never gets
    its own names back. The new span is tagged ``B-X I-X ...`` for its own length, so the sentence may
    grow or shrink. Two draws per span are taken whatever the severity, so a span swapped at a lower
    severity gets the same replacement at any higher one (for the same seed).
    """
    if not isinstance(pool, EntityPool):
        raise SparseNLPError("entity_swap needs pool=EntityPool(...); build one with EntityPool.from_sentences")
    out_tokens: list[str] = []
    out_tags: list[str] = []
    pos = 0
    found = spans(tags)
    own = {tuple(tokens[start : end + 1]) for _, start, end in found}
    for (etype, start, end), (u_swap, u_pick) in zip(found, rng.random((len(found), 2))):
        out_tokens += tokens[pos:start]
        out_tags += tags[pos:start]
        new = pool.draw(etype, own, u_pick) if u_swap < severity else None
        if new is None:
            out_tokens += tokens[start : end + 1]
            out_tags += tags[start : end + 1]
        else:
            out_tokens += new
            out_tags += [f"B-{etype}"] + [f"I-{etype}"] * (len(new) - 1)
        pos = end + 1
    out_tokens += tokens[pos:]
    out_tags += tags[pos:]
    return Perturbed(tokens=tuple(out_tokens), tags=tuple(out_tags))
