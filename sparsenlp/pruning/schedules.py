"""Sparsity schedules: optimizer step -> target sparsity.

Gradual pruning follows Zhu & Gupta (2017), "To prune, or not to prune":
``s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3`` for ``t0 <= t <= t0 + n * dt``, with
masks recomputed every ``dt`` (``frequency``) steps; ``linear`` uses exponent 1, ``oneshot`` jumps
to ``s_f`` at ``t0``. Before ``t0`` the target is 0 and nothing is pruned; after the end it is ``s_f``.

Steps count completed optimizer steps: step 0 is before the first update (the trainer's
``on_train_begin``), so ``start_step=0`` prunes the pretrained weights before fine-tuning. Steps may
be ints or fractions of the run's total steps (a float in [0, 1]), so one config fits datasets of
any size; ``resolve(total_steps)`` turns them into ints. The last update is always at ``end_step``
even when ``end_step - start_step`` is not a multiple of ``frequency``.
"""
from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, replace
from typing import Any

from sparsenlp.errors import SparseNLPError

EXPONENTS = {"oneshot": 0, "cubic": 3, "linear": 1}
Step = int | float


@dataclass(frozen=True)
class Schedule:
    """A validated schedule; steps may still be fractions until ``resolve``."""

    name: str
    final_sparsity: float
    initial_sparsity: float = 0.0
    start_step: Step = 0
    end_step: Step | None = None  # oneshot: unused (= start_step); cubic/linear: required
    frequency: Step = 1

    def __post_init__(self) -> None:
        if self.name not in EXPONENTS:
            raise SparseNLPError(f"schedule.name={self.name!r} is unknown; use one of {sorted(EXPONENTS)}")
        for field in ("initial_sparsity", "final_sparsity"):
            value = getattr(self, field)
            if not _is_real(value) or not 0.0 <= value < 1.0:
                raise SparseNLPError(f"{field}={value!r} must be a number in [0, 1), e.g. 0.9")
        if self.initial_sparsity > self.final_sparsity:
            raise SparseNLPError(
                f"initial_sparsity={self.initial_sparsity} exceeds the final sparsity "
                f"{self.final_sparsity}; set initial_sparsity <= sparsity"
            )
        if self.name == "oneshot":
            object.__setattr__(self, "end_step", self.start_step)
        elif self.end_step is None:
            raise SparseNLPError(f"schedule {self.name} needs end_step (an int step or a fraction of training)")
        _check_step("start_step", self.start_step)
        _check_step("end_step", self.end_step)
        if isinstance(self.frequency, bool) or not (
            (isinstance(self.frequency, numbers.Integral) and self.frequency >= 1)
            or (isinstance(self.frequency, float) and 0.0 < self.frequency <= 1.0)
        ):
            raise SparseNLPError(
                f"schedule.frequency={self.frequency!r} must be an int >= 1 or a fraction of training in (0, 1]"
            )
        if self.resolved and self.start_step > self.end_step:
            raise SparseNLPError(
                f"schedule.start_step={self.start_step} is after end_step={self.end_step}; swap or fix them"
            )

    @property
    def resolved(self) -> bool:
        return all(isinstance(s, numbers.Integral) for s in (self.start_step, self.end_step, self.frequency))

    def resolve(self, total_steps: int | None) -> "Schedule":
        """Ints for every step; fractions are of ``total_steps``, which also bounds ``end_step``."""
        if total_steps is None:
            if not self.resolved:
                raise SparseNLPError("schedule steps are fractions of training but total steps are unknown")
            return self
        if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral) or total_steps < 1:
            raise SparseNLPError(f"total_steps={total_steps!r} must be a positive int")
        start = _to_int(self.start_step, total_steps)
        end = _to_int(self.end_step, total_steps)
        frequency = self.frequency if isinstance(self.frequency, numbers.Integral) else max(
            1, round(self.frequency * total_steps)
        )
        if end > total_steps:
            raise SparseNLPError(
                f"schedule ends at step {end} but training has only {total_steps} steps; "
                "lower end_step/start_step or give them as fractions of training (e.g. 0.7)"
            )
        return replace(self, start_step=start, end_step=end, frequency=frequency)

    def is_update_step(self, step: int) -> bool:
        """Whether masks are recomputed after ``step`` completed optimizer steps."""
        start, end, frequency = self._ints()
        return start <= step <= end and ((step - start) % frequency == 0 or step == end)

    def target(self, step: int) -> float:
        """Target sparsity in force after ``step`` steps (the value at the latest update step)."""
        start, end, frequency = self._ints()
        if step < start:
            return 0.0
        if step >= end:
            return self.final_sparsity
        last_update = start + (step - start) // frequency * frequency
        remaining = 1.0 - (last_update - start) / (end - start)
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * remaining ** EXPONENTS[self.name]

    def update_steps(self) -> list[int]:
        start, end, frequency = self._ints()
        return sorted(set(range(start, end + 1, frequency)) | {end})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _ints(self) -> tuple[int, int, int]:
        if not self.resolved:
            raise SparseNLPError("schedule steps are fractions of training; call resolve(total_steps) first")
        return int(self.start_step), int(self.end_step), int(self.frequency)  # type: ignore[arg-type]


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_step(field: str, value: Any) -> None:
    ok = (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0) or (
        isinstance(value, float) and 0.0 <= value <= 1.0
    )
    if not ok:
        raise SparseNLPError(
            f"schedule.{field}={value!r} must be an int step >= 0 or a fraction of training in [0, 1]"
        )


def _to_int(step: Step, total_steps: int) -> int:
    return int(step) if isinstance(step, numbers.Integral) else round(step * total_steps)
