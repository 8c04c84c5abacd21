"""Sparsity schedules: optimizer step -> target sparsity, resolved for one run's length.

Gradual pruning follows Zhu & Gupta (2017), "To prune, or not to prune": masks are recomputed at
``t_k = t0 + k*dt`` for ``k = 0..n`` with target ``s_k = s_f + (s_i - s_f) * (1 - k/n) ** 3`` (``linear``:
exponent 1); ``oneshot`` prunes to ``s_f`` once, at ``t0``. Before ``t0`` nothing is pruned; after the last
update the target stays ``s_f``.

``t0`` and ``t0 + n*dt`` are fractions of the run's optimizer steps (``schedule.start`` / ``schedule.end``)
and ``n`` is a number of updates (``schedule.updates``), never raw steps: every language gets the same
``n + 1`` updates, at the same points of its training, and the same share ``1 - end`` of training to recover
after the last one, whatever the size of its training set. The targets depend only on ``k``, so rounding
update steps to whole steps never changes the sequence of targets.

Steps count completed optimizer steps: step 0 is before the first update (the trainer's
``on_train_begin``), so ``start=0`` prunes the pretrained weights before fine-tuning.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sparsenlp.config.schedule import EXPONENTS, ScheduleConfig
from sparsenlp.errors import SparseNLPError


@dataclass(frozen=True)
class Schedule:
    """The update steps of one run and the target sparsity in force after each."""

    name: str
    final_sparsity: float
    update_steps: tuple[int, ...]
    total_steps: int
    initial_sparsity: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in EXPONENTS:
            raise SparseNLPError(f"schedule={self.name} is unknown; use one of {', '.join(EXPONENTS)}")
        steps = self.update_steps
        if not steps or list(steps) != sorted(set(steps)) or steps[0] < 0 or steps[-1] > self.total_steps:
            raise SparseNLPError(f"schedule update steps {list(steps)} must be distinct, increasing and within "
                                 f"0..{self.total_steps}")
        if self.name == "oneshot" and len(steps) != 1:
            raise SparseNLPError("a oneshot schedule prunes at exactly one step")

    @classmethod
    def for_run(cls, cfg: ScheduleConfig, final_sparsity: float, total_steps: int) -> Schedule:
        """Place the schedule's fractions on a run of ``total_steps`` optimizer steps."""
        if cfg.name == "oneshot":
            return cls(cfg.name, final_sparsity, (round(cfg.start * total_steps),), total_steps,
                       cfg.initial_sparsity)
        assert cfg.end is not None  # ScheduleConfig checked it
        n = cfg.updates
        steps = tuple(round(total_steps * (cfg.start + k * (cfg.end - cfg.start) / n)) for k in range(n + 1))
        if len(set(steps)) != len(steps):
            needed = math.ceil(n / (cfg.end - cfg.start))
            raise SparseNLPError(
                f"training has {total_steps} optimizer steps, too few for schedule.updates={n} distinct mask "
                f"updates between schedule.start={cfg.start} and schedule.end={cfg.end} (needs at least {needed}); "
                "raise trainer.min_steps or lower schedule.updates"
            )
        return cls(cfg.name, final_sparsity, steps, total_steps, cfg.initial_sparsity)

    @property
    def start_step(self) -> int:
        return self.update_steps[0]

    @property
    def end_step(self) -> int:
        """The final sparsity is in force from this step on."""
        return self.update_steps[-1]

    def target_of_update(self, k: int) -> float:
        """Zhu & Gupta's ``s_k`` for the k-th update (k = 0..n)."""
        n = len(self.update_steps) - 1
        if n == 0:
            return self.final_sparsity
        remaining = 1.0 - k / n
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * remaining ** EXPONENTS[self.name]

    def is_update_step(self, step: int) -> bool:
        """Whether masks are recomputed after ``step`` completed optimizer steps."""
        return step in self.update_steps

    def target(self, step: int) -> float:
        """Target sparsity in force after ``step`` steps (the value at the latest update step)."""
        done = [k for k, t in enumerate(self.update_steps) if t <= step]
        return self.target_of_update(done[-1]) if done else 0.0

    def report(self) -> dict[str, Any]:
        """For the record: what every language of a sweep must share (updates, recovery share)."""
        recovery = self.total_steps - self.end_step
        return {"name": self.name, "initial_sparsity": self.initial_sparsity, "final_sparsity": self.final_sparsity,
                "total_steps": self.total_steps, "update_steps": list(self.update_steps),
                "updates": len(self.update_steps), "start_step": self.start_step, "end_step": self.end_step,
                "recovery_steps": recovery, "recovery_fraction": recovery / self.total_steps}
