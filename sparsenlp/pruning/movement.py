"""Movement pruning: keep the weights that fine-tuning moves away from zero.

Sanh, Wolf & Rush (2020), "Movement Pruning: Adaptive Sparsity by Fine-Tuning", NeurIPS. Magnitude
pruning keeps what was large in pre-training; during transfer learning what matters is where
fine-tuning pushes the weights. The importance score of a weight is the accumulated first-order
movement

    S = −Σ_t W(t) ⊙ ∂L/∂W(t)          (t: optimizer steps)

positive when the weight grows in magnitude, negative when it shrinks towards zero. The "hard
movement" variant keeps the top scores (globally or per tensor) at the schedule's target sparsity,
through the same exact selection, schedules and ``MaskSet`` as magnitude pruning.

How this relates to the paper: there S is learned through a straight-through estimator with the mask
in the forward pass; its update for a kept weight is exactly the term above (learning rate 1). Here
masks zero the weights in place after every step (no reparametrisation), so a pruned weight's score
stops moving (W = 0); with monotone masks (the default) it is pruned for good anyway. ``∂L/∂W`` is the
gradient the optimizer applies: after gradient accumulation and clipping, before weight decay.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.methods.movement import MovementReport
from sparsenlp.pruning.scheduled import SELECTORS, ScheduledPruner


class MovementScores:
    """S = −Σ_t W ⊙ ∂L/∂W per parameter: fp32, on the parameter's device, one multi-tensor op a step."""

    def __init__(self, params: Mapping[str, torch.nn.Parameter]) -> None:
        if not params:
            raise SparseNLPError("no parameters to score; check pruning.params")
        self.params: dict[str, torch.nn.Parameter] = dict(params)
        self.scores: dict[str, torch.Tensor] = {
            name: torch.zeros(p.shape, dtype=torch.float32, device=p.device) for name, p in self.params.items()
        }
        self.steps = 0  # optimizer steps accumulated

    @torch.no_grad()
    def accumulate_(self) -> int:
        """Add −W ⊙ grad for every parameter that has a gradient; returns how many had one.

        Call it when the gradients are final and the weights not yet updated (between backward /
        clipping and ``optimizer.step()``). Scores follow the parameters if the model moved devices.
        """
        scores, weights, grads = [], [], []
        for name, p in self.params.items():
            if p.grad is None:
                continue
            score = self.scores[name]
            if score.device != p.device:
                score = self.scores[name] = score.to(p.device)
            scores.append(score)
            weights.append(p)
            grads.append(p.grad)
        if scores:
            torch._foreach_addcmul_(scores, weights, grads, value=-1.0)
        self.steps += 1
        return len(scores)

    def state_dict(self) -> dict[str, Any]:
        return {"scores": {name: s.detach().cpu().clone() for name, s in self.scores.items()}, "steps": self.steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        scores = state["scores"]
        if set(scores) != set(self.scores):
            raise SparseNLPError(
                "checkpoint movement scores do not match the prunable parameters; resume with the same "
                "pruning.params as the run that made them"
            )
        for name, score in scores.items():
            if score.shape != self.scores[name].shape:
                raise SparseNLPError(
                    f"checkpoint movement scores for {name} have shape {tuple(score.shape)}, the parameter "
                    f"{tuple(self.scores[name].shape)}; resume with the same model config"
                )
            self.scores[name] = score.to(device=self.params[name].device, dtype=torch.float32).clone()
        self.steps = int(state["steps"])


class MovementPruner(ScheduledPruner):
    """Hard movement pruning on a resolved schedule: at each update the lowest movement scores go.

    Scores accumulate in ``on_before_optimizer_step`` (the trainer calls it after clipping, before
    ``optimizer.step()``) until the last update step; masks are recomputed at update steps and
    re-applied after every step, as for magnitude pruning.
    """

    criterion = "movement"

    def setup(self) -> None:
        if self.schedule.start_step == 0 and self.schedule.target(0) > 0:
            raise SparseNLPError(
                "movement pruning ranks weights by how training moved them, so it cannot prune at step 0; "
                "start the schedule later (schedule.start > 0, e.g. schedule.start=0.1)"
            )
        self.scores = MovementScores(self.masks.params)

    def on_before_optimizer_step(self, trainer: Any, step: int) -> None:
        if step < self.final_step:  # the step about to complete is step + 1; none counts after the last update
            self.scores.accumulate_()

    def select(self, params: Mapping[str, torch.nn.Parameter], target: float,
               prior: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        scores = {name: self.scores.scores[name] for name in params}
        return SELECTORS[self.scope](params, target, prior, scores=scores)

    def details(self) -> MovementReport:
        return MovementReport(score_steps=self.scores.steps)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "scores": self.scores.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.scores.load_state_dict(state["scores"])
