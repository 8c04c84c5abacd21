"""What every unstructured pruner shares: schedule -> masks at update steps -> zeros after every step.

Magnitude, movement and N:M pruning differ only in how a mask is chosen for a target sparsity
(``select``); when masks are recomputed, how they are kept (``MaskSet.apply_`` after each optimizer
step), which dev checkpoints may be selected, the trace, the report and the resumable state are the
same, so they live here once.

A pruner needs nothing from the trainer but an optional ``log_metrics(dict, step)``: the model is
bound at construction, so any loop that calls ``on_train_begin`` once and ``on_step_end(trainer, step)``
after each ``optimizer.step()`` gets pruned weights that are exactly 0 for every forward pass.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from pydantic import BaseModel

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.magnitude import global_masks, layerwise_masks
from sparsenlp.pruning.masks import MaskSet
from sparsenlp.pruning.methods import Context, Method, PruningConfig
from sparsenlp.pruning.params import select_prunable
from sparsenlp.pruning.schedules import Schedule
from sparsenlp.tracking.schema import PruningInfo, TensorSparsity, TraceEntry
from sparsenlp.training.callbacks import Callback

log = logging.getLogger(__name__)
# scope -> top-score selection (|w| unless scores are passed)
SELECTORS = {"global": global_masks, "layerwise": layerwise_masks}
SCOPES = tuple(SELECTORS)


class ScheduledPruner(Callback):
    """Base class: subclasses set ``criterion`` and implement ``select``.

    ``scope`` is where weights compete: ``global`` (one ranking over all selected tensors) or ``layerwise``
    (each tensor reaches the target on its own).
    """

    criterion = "none"

    def __init__(
        self,
        model: torch.nn.Module,
        scope: str,
        params: Mapping[str, torch.nn.Parameter] | Sequence[str] | None,
        schedule: Schedule,
        monotone: bool = True,
        prune_embeddings: bool = False,
    ) -> None:
        """``params``: a name -> Parameter dict, or regexes for ``select_prunable`` (None = defaults)."""
        if scope not in SCOPES:
            raise SparseNLPError(f"pruning scope {scope!r} is unknown; use one of {list(SCOPES)}")
        if params is None or not isinstance(params, Mapping):
            params = select_prunable(model, params, prune_embeddings)
        self.schedule = schedule
        self.scope = scope
        self.monotone = monotone
        self.masks = MaskSet(params)
        self.total_params = sum(p.numel() for p in model.parameters())
        self.trace: list[dict[str, float]] = []
        self.final_step = schedule.end_step  # the final sparsity is in force from here on
        self.setup()

    @classmethod
    def for_run(cls, method: Method, cfg: PruningConfig, context: Context) -> "ScheduledPruner":
        """The pruner of a run: ``method``'s target placed on the run's optimizer steps by its schedule."""
        schedule = Schedule.for_run(context.schedule, method.sparsity(cfg, None), context.total_steps)
        return cls(context.model, method.scope(cfg), cfg.params, schedule, prune_embeddings=cfg.prune_embeddings,
                   **method.pruner_options(cfg, context))

    # ------------------------------------------------------------------ what subclasses provide
    def setup(self) -> None:
        """Criterion-specific checks and state, once the masks exist (e.g. movement scores)."""

    def select(self, target: float, prior: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        """Keep-masks for ``target`` (``prior``: the current masks when monotone, else None)."""
        raise NotImplementedError

    def details(self) -> BaseModel | None:
        """The method's own section of the record (its ``report`` model), if it has one."""
        return None

    # ------------------------------------------------------------------ the loop
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
        """Recompute the masks for the schedule's target at ``step`` from the current state."""
        target = self.schedule.target(step)
        prior = self.masks.masks if self.monotone else None
        self.masks.update_(self.select(target, prior), self.monotone)
        achieved = self.masks.sparsity()
        self.trace.append({"step": step, "target": target, "achieved": achieved})
        log.info("step %d: %s sparsity target %.4f, achieved %.4f", step, self.criterion, target, achieved)
        log_metrics = getattr(trainer, "log_metrics", None)
        if callable(log_metrics):
            log_metrics({"sparsity/target": target, "sparsity/achieved": achieved}, step)

    # ------------------------------------------------------------------ results
    def pruning_report(self) -> PruningInfo:
        """For the record; the per-tensor target is null for global selection."""
        target = self.trace[-1]["target"] if self.trace else 0.0
        counts = self.masks.pruned_counts()
        pruned = sum(counts.values())
        details = self.details()
        return PruningInfo(
            schedule=self.schedule.report(),
            target=target,
            achieved=pruned / self.masks.num_prunable,
            model_sparsity=pruned / self.total_params,
            prunable_parameters=self.masks.num_prunable,
            total_parameters=self.total_params,
            pruned_parameters=pruned,
            per_tensor={
                name: TensorSparsity(numel=mask.numel(), pruned=counts[name], achieved=counts[name] / mask.numel(),
                                     target=target if self.scope == "layerwise" else None)
                for name, mask in self.masks.masks.items()
            },
            trace=[TraceEntry(**entry) for entry in self.trace],
            details=None if details is None else details.model_dump(),
        )

    def allows_checkpoint(self, step: int) -> bool:
        """Only models at the final sparsity may be selected on dev (see Callback.allows_checkpoint)."""
        return step >= self.final_step

    # ------------------------------------------------------------------ resumable state
    def state_dict(self) -> dict[str, Any]:
        return {"masks": self.masks.state_dict()["masks"], "trace": [dict(e) for e in self.trace]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.masks.load_state_dict({"masks": state["masks"]})
        self.trace = [dict(e) for e in state["trace"]]
        self.masks.apply_()
