"""The magnitude-pruning callback: schedule -> masks -> zeros after every optimizer step.

It needs nothing from the trainer but an optional ``log_metrics(dict, step)``: the model is bound
at construction, so any loop that calls ``on_train_begin`` once and ``on_step_end(trainer, step)``
after each ``optimizer.step()`` gets pruned weights that are exactly 0 for every forward pass.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from sparsenlp.config.pruning import STRUCTURED, UNSTRUCTURED, PruningConfig
from sparsenlp.config.schedule import ScheduleConfig
from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.magnitude import global_masks, layerwise_masks
from sparsenlp.pruning.masks import MaskSet
from sparsenlp.pruning.params import select_prunable
from sparsenlp.pruning.schedules import Schedule
from sparsenlp.pruning.structured import StructuredPruner, check_structured_supported
from sparsenlp.training.callbacks import Callback

log = logging.getLogger(__name__)
SELECTORS: dict[str, Callable[..., dict[str, torch.Tensor]]] = {
    "global": global_masks,
    "layerwise": layerwise_masks,
}


class MagnitudePruner(Callback):
    """Unstructured magnitude pruning of selected parameters on a resolved schedule."""

    def __init__(
        self,
        model: torch.nn.Module,
        method: str,
        params: Mapping[str, torch.nn.Parameter] | Sequence[str] | None,
        schedule: Schedule,
        monotone: bool = True,
        prune_embeddings: bool = False,
    ) -> None:
        """``params``: a name -> Parameter dict, or regexes for ``select_prunable`` (None = defaults)."""
        if method not in SELECTORS:
            raise SparseNLPError(f"pruning method {method!r} is unknown; use one of {sorted(SELECTORS)}")
        if params is None or not isinstance(params, Mapping):
            params = select_prunable(model, params, prune_embeddings)
        self.schedule = schedule
        self.method = method
        self.monotone = monotone
        self.masks = MaskSet(params)
        self.total_params = sum(p.numel() for p in model.parameters())
        self.trace: list[dict[str, float]] = []
        self.final_step = schedule.end_step  # the final sparsity is in force from here on

    def on_train_begin(self, trainer: Any) -> None:
        self._advance(trainer, 0)

    def on_step_end(self, trainer: Any, step: int) -> None:
        self._advance(trainer, step)

    def _advance(self, trainer: Any, step: int) -> None:
        already_done = bool(self.trace) and self.trace[-1]["step"] >= step  # e.g. step 0 after a resume
        if self.schedule.is_update_step(step) and not already_done:
            self.update(step, trainer)
        self.masks.apply_()

    def update(self, step: int, trainer: Any = None) -> None:
        """Recompute the masks for the schedule's target at ``step`` from the current weights."""
        target = self.schedule.target(step)
        prior = self.masks.masks if self.monotone else None
        self.masks.update_(SELECTORS[self.method](self.masks.params, target, prior), self.monotone)
        achieved = self.masks.sparsity()
        self.trace.append({"step": step, "target": target, "achieved": achieved})
        log.info("step %d: sparsity target %.4f, achieved %.4f", step, target, achieved)
        log_metrics = getattr(trainer, "log_metrics", None)
        if callable(log_metrics):
            log_metrics({"sparsity/target": target, "sparsity/achieved": achieved}, step)

    def pruning_report(self) -> dict[str, Any]:
        """For the record (``PruningInfo``); the per-tensor target is null for global selection."""
        target = self.trace[-1]["target"] if self.trace else 0.0
        counts = self.masks.pruned_counts()
        pruned = sum(counts.values())
        return {
            "method": f"{self.method}_magnitude",
            "criterion": "magnitude",
            "monotone": self.monotone,
            "schedule": self.schedule.report(),
            "target": target,
            "achieved": pruned / self.masks.num_prunable,
            "model_sparsity": pruned / self.total_params,
            "prunable_parameters": self.masks.num_prunable,
            "total_parameters": self.total_params,
            "pruned_parameters": pruned,
            "per_tensor": {
                name: {
                    "numel": mask.numel(),
                    "pruned": counts[name],
                    "target": target if self.method == "layerwise" else None,
                    "achieved": counts[name] / mask.numel(),
                }
                for name, mask in self.masks.masks.items()
            },
            "trace": [dict(entry) for entry in self.trace],
        }

    def allows_checkpoint(self, step: int) -> bool:
        """Only models at the final sparsity may be selected on dev (see Callback.allows_checkpoint)."""
        return step >= self.final_step

    def state_dict(self) -> dict[str, Any]:
        return {"masks": self.masks.state_dict()["masks"], "trace": [dict(e) for e in self.trace]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.masks.load_state_dict({"masks": state["masks"]})
        self.trace = [dict(e) for e in state["trace"]]
        self.masks.apply_()


def build_pruner(pruning: PruningConfig, schedule: ScheduleConfig, model: torch.nn.Module,
                 total_steps: int) -> MagnitudePruner | StructuredPruner | None:
    """The pruner of the ``pruning`` and ``schedule`` groups (already validated); None for a dense run."""
    if pruning.is_dense:
        return None
    if pruning.method == STRUCTURED:
        check_structured_supported(model)
        assert pruning.head_ratio is not None and pruning.ffn_ratio is not None and pruning.importance
        return StructuredPruner(pruning.head_ratio, pruning.ffn_ratio, importance=pruning.importance,
                                round_to=pruning.round_to)
    assert pruning.sparsity is not None
    return MagnitudePruner(model, UNSTRUCTURED[pruning.method], pruning.params,
                           Schedule.for_run(schedule, pruning.sparsity, total_steps), monotone=pruning.monotone,
                           prune_embeddings=pruning.prune_embeddings)
