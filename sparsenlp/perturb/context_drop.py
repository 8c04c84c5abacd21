"""Context removal: how much does the tagger lean on the words around an entity?"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from sparsenlp.perturb.base import Perturbed


def context_drop(
    tokens: Sequence[str], tags: Sequence[str], rng: np.random.Generator, severity: float
) -> Perturbed:
    """Drop each gold-``O`` token with probability ``severity``; entity tokens always stay.

    One uniform draw per token whatever the severity, so the tokens dropped at a lower severity are
    also dropped at any higher one. If every token would go (an all-``O`` sentence), the one with the
    largest draw (the last to go as severity rises) stays, so no sentence is ever empty.
    ``kept`` holds the original index of each remaining token.
    """
    draws = rng.random(len(tokens))
    keep = [tag != "O" or u >= severity for tag, u in zip(tags, draws)]
    if tokens and not any(keep):
        keep[int(np.argmax(draws))] = True
    kept = tuple(i for i, k in enumerate(keep) if k)
    return Perturbed(
        tokens=tuple(tokens[i] for i in kept),
        tags=tuple(tags[i] for i in kept),
        kept=kept,
    )
