"""Movement pruning (Sanh, Wolf & Rush, NeurIPS 2020), "hard" variant: the lowest accumulated movement scores
S = -sum_t W * dL/dW go at each update, so weights that fine-tuning pushes towards zero are pruned whatever
their size (``sparsenlp/pruning/movement.py``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.methods.base import (
    MaskedMethod,
    PruningConfig,
    RankedConfig,
    method_name,
)


@dataclass
class MovementConfig(RankedConfig):
    method: str = method_name("movement")


class MovementReport(BaseModel):
    """Movement's own section of the record."""

    model_config = ConfigDict(extra="forbid")
    score_steps: int = Field(description="optimizer steps whose gradients are in the scores")


class Movement(MaskedMethod):
    name: ClassVar[str] = "movement"
    summary: ClassVar[str] = ("movement pruning (Sanh et al. 2020): the lowest accumulated -W*dL/dW go; needs a "
                              "schedule that starts after fine-tuning began")
    config: ClassVar[type[PruningConfig]] = MovementConfig
    schedules: ClassVar[tuple[str, ...]] = ("cubic", "linear", "oneshot")
    implementation: ClassVar[Any] = "sparsenlp.pruning.movement:MovementPruner"
    report: ClassVar[type[BaseModel]] = MovementReport
    implied_criterion: ClassVar[str] = "movement"

    def check(self, cfg: PruningConfig, schedule: Any) -> None:
        super().check(cfg, schedule)
        if schedule.start == 0.0:
            raise SparseNLPError("pruning=movement ranks weights by how fine-tuning moves them, so it cannot prune "
                                 "before training; start the schedule later, e.g. schedule.start=0.1")


MOVEMENT = Movement()
