"""First-order Taylor importance (Molchanov et al., CVPR 2019): a weight matters as much as the loss would
change without it, |dL/dw * w|, accumulated over the optimizer steps before each mask update."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from sparsenlp.errors import SparseNLPError
from sparsenlp.options import OneOf, option
from sparsenlp.pruning.methods import Context, MaskedConfig, MaskedMethod, PruningConfig, method_name
from sparsenlp.pruning.scheduled import SELECTORS, ScheduledPruner


@dataclass
class TaylorConfig(MaskedConfig):
    method: str = method_name("taylor")
    scope: str = option("global", "global: one ranking over all tensors; layerwise: per tensor",
                        OneOf(("global", "layerwise")))


class TaylorPruner(ScheduledPruner):
    """Scores |w * dL/dw| summed before each optimizer step; the lowest go at each update of the schedule."""

    criterion = "taylor"

    def setup(self) -> None:
        self.scores = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in self.masks.params.items()}

    def on_before_optimizer_step(self, trainer: Any, step: int) -> None:
        for name, p in self.masks.params.items():
            if p.grad is not None:
                self.scores[name].add_((p.detach() * p.grad).abs().float())

    def select(self, params: Any, target: float, prior: Any) -> dict[str, torch.Tensor]:
        return SELECTORS[self.scope](params, target, prior, scores={name: self.scores[name] for name in params})

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "scores": {n: s.cpu().clone() for n, s in self.scores.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.scores = {n: s.to(self.masks.params[n].device) for n, s in state["scores"].items()}


class Taylor(MaskedMethod):
    name: ClassVar[str] = "taylor"
    summary: ClassVar[str] = "first-order Taylor importance |w * dL/dw| (Molchanov et al. 2019)"
    config: ClassVar[type[PruningConfig]] = TaylorConfig
    schedules: ClassVar[tuple[str, ...]] = ("cubic", "linear", "oneshot")  # scores need training steps first
    implementation: ClassVar[Any] = TaylorPruner
    implied_criterion: ClassVar[str] = "taylor"

    def check(self, cfg: PruningConfig, schedule: Any) -> None:
        super().check(cfg, schedule)
        if schedule.start == 0.0:
            raise SparseNLPError("pruning=taylor needs gradients before it prunes; set schedule.start > 0")

    def pruner_options(self, cfg: PruningConfig, context: Context) -> dict[str, Any]:
        return {}


TAYLOR = Taylor()
