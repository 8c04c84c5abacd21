"""The `schedule` group (conf/schedule/): when a masked pruning method updates its masks.

Every position is a fraction of training, never a raw step, so a 100-sentence language and a 20,000-sentence
language get the same number of mask updates and the same share of training to recover after the last one.
Each pruning method selects the schedule it runs under (``pruning=<name>`` picks its default); ``none`` is the
schedule of methods that have none (dense, structured pruning).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from sparsenlp.errors import SparseNLPError
from sparsenlp.options import FRACTION, Group, OneOf, Range, at_least, option

EXPONENTS = {"oneshot": 0, "cubic": 3, "linear": 1}
NAMES = (*EXPONENTS, "none")


def step_at(fraction: float, total_steps: int) -> int:
    """The optimizer step at ``fraction`` of a run of ``total_steps``: the one rounding that mask updates and model
    selection share, so that a selection rule stated as a fraction and a schedule's end agree on every step."""
    return round(fraction * total_steps)


@dataclass
class ScheduleConfig(Group):
    KEY: ClassVar[str] = "schedule"

    name: str = option("none", "oneshot | cubic (Zhu & Gupta 2017) | linear; none: no masks to update",
                       OneOf(NAMES))
    initial_sparsity: float = option(0.0, "s_i: the target at schedule.start (0: dense until the first update)",
                                     Range(0.0, 1.0, open_high=True))
    start: float = option(0.0, "t0 as a fraction of training (oneshot: when it prunes; 0 = the pretrained weights)",
                          FRACTION)
    end: Optional[float] = option(None, "gradual: where the final sparsity is reached, as a fraction of training",
                                  Range(0.0, 1.0, open_low=True))
    updates: int = option(1, "gradual: n, the number of mask updates between start and end (oneshot: 1)",
                          at_least(1))

    @property
    def final_fraction(self) -> float:
        """Where in training the final sparsity is in force: ``end`` (gradual), ``start`` (oneshot), 0 (none)."""
        if self.name == "none":
            return 0.0
        return self.start if self.end is None else self.end

    def check(self, path: str) -> None:
        if self.name in ("oneshot", "none"):
            if self.end is not None or self.updates != 1:
                raise SparseNLPError(f"schedule={self.name} has no {path}end or {path}updates; drop them or use "
                                     "schedule=cubic")
            if self.name == "none" and (self.start != 0.0 or self.initial_sparsity != 0.0):
                raise SparseNLPError(f"schedule=none prunes nothing, so {path}start and {path}initial_sparsity have "
                                     "no effect; drop them")
            return
        if self.end is None or not self.start < self.end:
            raise SparseNLPError(f"{path}end={self.end} must be a fraction of training after {path}start={self.start} "
                                 f"and at most 1, e.g. {path}end=0.7")
