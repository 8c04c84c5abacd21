"""The magnitude-pruning callback and ``build_pruner`` (config groups -> pruner).

The loop machinery (schedule -> masks -> zeros after every optimizer step, trace, report, state) is
``ScheduledPruner``'s; magnitude pruning only says how masks are chosen.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from sparsenlp.config.pruning import MOVEMENT, SEMI_STRUCTURED, STRUCTURED, PruningConfig
from sparsenlp.config.schedule import ScheduleConfig
from sparsenlp.pruning.scheduled import SELECTORS, ScheduledPruner
from sparsenlp.pruning.schedules import Schedule
from sparsenlp.pruning.structured import StructuredPruner, check_structured_supported



class MagnitudePruner(ScheduledPruner):
    """Unstructured magnitude pruning of selected parameters on a resolved schedule: the smallest |w|
    go (global: one threshold over all tensors; layerwise: one per tensor)."""

    criterion = "magnitude"

    def select(self, target: float, prior: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        return SELECTORS[self.method](self.masks.params, target, prior)


def build_pruner(pruning: PruningConfig, schedule: ScheduleConfig, model: torch.nn.Module,
                 total_steps: int) -> ScheduledPruner | StructuredPruner | None:
    """The pruner of the ``pruning`` and ``schedule`` groups (already validated); None for a dense run."""
    if pruning.is_dense:
        return None
    if pruning.method == STRUCTURED:
        check_structured_supported(model)
        assert pruning.head_ratio is not None and pruning.ffn_ratio is not None and pruning.importance
        return StructuredPruner(pruning.head_ratio, pruning.ffn_ratio, importance=pruning.importance,
                                round_to=pruning.round_to)
    assert pruning.sparsity is not None
    placed = Schedule.for_run(schedule, pruning.sparsity, total_steps)
    scope = pruning.selection_scope
    if pruning.method == SEMI_STRUCTURED:
        from sparsenlp.pruning.semi_structured import SemiStructuredPruner

        assert pruning.n is not None and pruning.m is not None
        return SemiStructuredPruner(model, scope, pruning.params, placed, n=pruning.n, m=pruning.m,
                                    prune_embeddings=pruning.prune_embeddings)
    if pruning.method == MOVEMENT:
        from sparsenlp.pruning.movement import MovementPruner

        return MovementPruner(model, scope, pruning.params, placed, monotone=pruning.monotone,
                              prune_embeddings=pruning.prune_embeddings)
    return MagnitudePruner(model, scope, pruning.params, placed, monotone=pruning.monotone,
                           prune_embeddings=pruning.prune_embeddings)
