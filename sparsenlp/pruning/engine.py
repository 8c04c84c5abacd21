"""The magnitude-pruning callback.

The loop machinery (schedule -> masks -> zeros after every optimizer step, trace, report, state) is
``ScheduledPruner``'s; magnitude pruning only says how masks are chosen.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from sparsenlp.pruning.scheduled import SELECTORS, ScheduledPruner


class MagnitudePruner(ScheduledPruner):
    """Unstructured magnitude pruning of selected parameters on a resolved schedule: the smallest |w|
    go (global: one threshold over all tensors; layerwise: one per tensor)."""

    criterion = "magnitude"

    def select(self, params: Mapping[str, torch.nn.Parameter], target: float,
               prior: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        return SELECTORS[self.scope](params, target, prior)
