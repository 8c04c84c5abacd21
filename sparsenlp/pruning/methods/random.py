"""Random masks at the same sparsity and on the same schedule: the control that separates "pruning by this
criterion helps (or hurts)" from "removing any weights does". Each update draws fresh uniform scores from the
run's seed and the update's step, so the masks are reproducible and differ between seeds."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sparsenlp.pruning.methods.base import (
    Context,
    MaskedMethod,
    PruningConfig,
    RankedConfig,
    method_name,
)


@dataclass
class RandomConfig(RankedConfig):
    method: str = method_name("random")


class Random(MaskedMethod):
    name: ClassVar[str] = "random"
    summary: ClassVar[str] = "random masks at the same sparsity and schedule: a control for any weight removal"
    config: ClassVar[type[PruningConfig]] = RandomConfig
    implementation: ClassVar[Any] = "sparsenlp.pruning.random_masks:RandomPruner"
    implied_criterion: ClassVar[str] = "random"

    def pruner_options(self, cfg: PruningConfig, context: Context) -> dict[str, Any]:
        return {**super().pruner_options(cfg, context), "seed": context.seed}


RANDOM = Random()
