"""The trainer's extension points.

The pruning engine, the W&B tracker and anything else that must act *inside* the training loop
plug in here instead of editing the loop. The most important hook is ``on_step_end``: it runs right
after ``optimizer.step()`` (and the LR scheduler step), before the next forward pass, which is
exactly where masks must be re-applied so pruned weights are zero for every forward.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from sparsenlp.training.trainer import Trainer


class Callback:
    """No-op base class; override what you need.

    ``step`` is always the number of optimizer steps completed so far (1 after the first step).
    ``state_dict``/``load_state_dict`` let a callback's state travel with resumable checkpoints.
    """

    def on_train_begin(self, trainer: "Trainer") -> None:
        """Before the first forward pass (step 0); e.g. one-shot pruning of pretrained weights."""

    def on_before_optimizer_step(self, trainer: "Trainer", step: int) -> None:
        """After backward and gradient clipping, right before ``optimizer.step()``: the gradients the
        optimizer will use are in ``param.grad`` (they are zeroed before ``on_step_end``), e.g. for
        movement-pruning scores. ``step`` counts the steps completed so far (0 before the first)."""

    def on_step_end(self, trainer: "Trainer", step: int) -> None:
        """Right after each optimizer step."""

    def on_log(self, trainer: "Trainer", step: int, metrics: dict[str, float]) -> None:
        """Whenever the trainer logs training metrics (loss, lr, throughput)."""

    def on_evaluate(self, trainer: "Trainer", step: int, metrics: dict[str, Any]) -> None:
        """After each dev evaluation."""

    def on_train_end(self, trainer: "Trainer") -> None:
        """After the last optimizer step, before the best checkpoint is restored."""

    def allows_checkpoint(self, step: int) -> bool:
        """May the model at ``step`` be selected as the best dev checkpoint?

        The pruner says no until the final sparsity is reached: otherwise model selection would
        prefer an early, denser model and the run would not measure the sparsity it claims. The
        selection rule (``trainer.select_after``) decides what is eligible, the same for every arm; a
        veto of a step the rule makes eligible fails the run before training (``Trainer.fit``).
        """
        del step
        return True

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state
