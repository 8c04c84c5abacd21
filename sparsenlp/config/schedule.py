"""The `schedule` group (conf/schedule/): when the unstructured pruner updates its masks.

Every position is a fraction of training, never a raw step, so a 100-sentence language and a
20,000-sentence language get the same number of mask updates and the same share of training to recover
after the last one (``trainer.min_steps`` keeps the smallest languages from being pruned one-shot).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sparsenlp.errors import SparseNLPError

EXPONENTS = {"oneshot": 0, "cubic": 3, "linear": 1}


@dataclass
class ScheduleConfig:
    name: str = "oneshot"  # oneshot | cubic (Zhu & Gupta 2017) | linear
    initial_sparsity: float = 0.0  # s_i: the target at the first update
    start: float = 0.0  # t0 as a fraction of training (oneshot: when it prunes; 0 = the pretrained weights)
    end: Optional[float] = None  # gradual: t0 + n*dt, where the final sparsity is reached (fraction)
    updates: int = 1  # gradual: n, the number of mask updates after t0 (oneshot: 1)

    def __post_init__(self) -> None:
        if self.name not in EXPONENTS:
            raise SparseNLPError(f"schedule={self.name} is unknown; use one of {', '.join(EXPONENTS)}")
        if not 0.0 <= self.start <= 1.0:
            raise SparseNLPError(f"schedule.start={self.start} must be a fraction of training in [0, 1]")
        if not 0.0 <= self.initial_sparsity < 1.0:
            raise SparseNLPError(f"schedule.initial_sparsity={self.initial_sparsity} must be in [0, 1)")
        if self.name == "oneshot":
            if self.end is not None or self.updates != 1:
                raise SparseNLPError("schedule=oneshot prunes once at schedule.start; drop schedule.end and "
                                     "schedule.updates or use schedule=cubic")
            return
        if self.end is None or not self.start < self.end <= 1.0:
            raise SparseNLPError(
                f"schedule.end={self.end} must be a fraction of training after schedule.start={self.start} "
                "and at most 1, e.g. schedule.end=0.7"
            )
        if self.updates < 1:
            raise SparseNLPError(f"schedule.updates={self.updates} must be at least 1")
