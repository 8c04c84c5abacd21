"""Random masks at the same sparsity and on the same schedule: the control that separates "pruning by this
criterion helps (or hurts)" from "removing any weights does". Each update draws fresh uniform scores from the
run's seed and the update's step, so the masks are reproducible and differ between seeds."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sparsenlp.options import option
from sparsenlp.pruning.methods.base import SCOPE, Context, MaskedConfig, MaskedMethod, PruningConfig, method_name
from sparsenlp.pruning.methods.magnitude import BOOLEAN, MONOTONE_HELP
from sparsenlp.pruning.methods.movement import SCOPE_HELP


@dataclass
class RandomConfig(MaskedConfig):
    method: str = method_name("random")
    scope: str = option("global", SCOPE_HELP, SCOPE)
    monotone: bool = option(True, MONOTONE_HELP, BOOLEAN)


class Random(MaskedMethod):
    name: ClassVar[str] = "random"
    summary: ClassVar[str] = "random masks at the same sparsity and schedule: a control for any weight removal"
    config: ClassVar[type[PruningConfig]] = RandomConfig
    implementation: ClassVar[Any] = "sparsenlp.pruning.random_masks:RandomPruner"
    implied_criterion: ClassVar[str] = "random"

    def pruner_options(self, cfg: PruningConfig, context: Context) -> dict[str, Any]:
        return {"monotone": cfg.monotone, "seed": context.seed}


RANDOM = Random()
