"""Sparsity schedules: optimizer step -> target sparsity, resolved for one run's length.

Gradual pruning follows Zhu & Gupta (2017), "To prune, or not to prune": ``schedule.updates = n`` mask updates at
``t_k = t0 + k*dt`` for ``k = 1..n`` with target ``s_k = s_f + (s_i - s_f) * (1 - k/n) ** 3`` (``linear``: exponent
1), so the n-th reaches ``s_f`` at ``t0 + n*dt``; ``s_i`` (``schedule.initial_sparsity``) is the sparsity in force
from ``t0``: when it is above 0, one more update at ``t0`` prunes to it (Zhu & Gupta's ``k = 0``), and the record
counts it. ``oneshot`` prunes to ``s_f`` once, at ``t0``. Before ``t0`` nothing is pruned; after the last update the
target stays ``s_f``.

``t0`` and ``t0 + n*dt`` are fractions of the run's optimizer steps (``schedule.start`` / ``schedule.end``)
and ``n`` is a number of updates (``schedule.updates``), never raw steps: every language gets the same
updates, at the same points of its training, and the same share ``1 - end`` of training to recover
after the last one, whatever the size of its training set. The targets depend only on ``k``, so rounding
update steps to whole steps never changes the sequence of targets.

Steps count completed optimizer steps: step 0 is before the first update (the trainer's
``on_train_begin``), so ``start=0`` prunes the pretrained weights before fine-tuning.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from sparsenlp.config.schedule import EXPONENTS, ScheduleConfig, step_at
from sparsenlp.errors import SparseNLPError
from sparsenlp.tracking.schema import ScheduleInfo


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
            return cls(cfg.name, final_sparsity, (step_at(cfg.start, total_steps),), total_steps,
                       cfg.initial_sparsity)
        if cfg.name not in EXPONENTS or cfg.end is None:
            raise SparseNLPError(f"schedule={cfg.name} places no mask updates; choose schedule=oneshot, cubic or "
                                 "linear for a masked pruning method")
        n = cfg.updates
        first = 0 if cfg.initial_sparsity > 0 else 1  # k = 0 prunes to s_i at t0, only when there is something to prune
        # the last update sits exactly at `end` (not start + n * (end - start) / n, which may differ in the last
        # bit), so that model selection from `end` on (trainer.select_after) rounds to the same step
        steps = tuple(step_at(cfg.end if k == n else cfg.start + k * (cfg.end - cfg.start) / n, total_steps)
                      for k in range(first, n + 1))
        if len(set(steps)) != len(steps):
            needed = math.ceil(n / (cfg.end - cfg.start))
            raise SparseNLPError(
                f"training has {total_steps} optimizer steps, too few for schedule.updates={n} distinct mask "
                f"updates between schedule.start={cfg.start} and schedule.end={cfg.end} (needs at least {needed}); "
                "train longer (trainer.epochs or trainer.max_steps) or lower schedule.updates"
            )
        return cls(cfg.name, final_sparsity, steps, total_steps, cfg.initial_sparsity)

    @property
    def start_step(self) -> int:
        return self.update_steps[0]

    @property
    def end_step(self) -> int:
        """The final sparsity is in force from this step on."""
        return self.update_steps[-1]

    @property
    def first_update(self) -> int:
        """k of the first update step: 0 when s_i > 0 (the weights are pruned to it at t0), else 1."""
        return 0 if self.initial_sparsity > 0 and self.name != "oneshot" else 1

    @property
    def updates(self) -> int:
        """n: the gradual updates after t0 (Zhu & Gupta's k = 1..n), as ``schedule.updates`` asked for."""
        return len(self.update_steps) - (1 - self.first_update)

    def target_of_update(self, k: int) -> float:
        """Zhu & Gupta's ``s_k`` for the k-th update (k = 0..n)."""
        n = self.updates
        if self.name == "oneshot":
            return self.final_sparsity
        remaining = 1.0 - k / n
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * remaining ** EXPONENTS[self.name]

    def is_update_step(self, step: int) -> bool:
        """Whether masks are recomputed after ``step`` completed optimizer steps."""
        return step in self.update_steps

    def target(self, step: int) -> float:
        """Target sparsity in force after ``step`` steps (the value at the latest update step)."""
        done = [k for k, t in enumerate(self.update_steps, start=self.first_update) if t <= step]
        return self.target_of_update(done[-1]) if done else 0.0

    def report(self) -> ScheduleInfo:
        """For the record: what every language of a sweep must share (updates, recovery share)."""
        recovery = self.total_steps - self.end_step
        return ScheduleInfo(name=self.name, initial_sparsity=self.initial_sparsity, final_sparsity=self.final_sparsity,
                            total_steps=self.total_steps, update_steps=list(self.update_steps), updates=self.updates,
                            start_step=self.start_step, end_step=self.end_step, recovery_steps=recovery,
                            recovery_fraction=recovery / self.total_steps)
