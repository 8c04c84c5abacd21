"""Random masks: the control method (``pruning=random``).

Each mask update draws one uniform score per selected weight from a generator seeded by (run seed, update
step, group: the selected weights or the embedding matrix), then prunes the lowest scores through the same exact
selection as every other criterion (global or per tensor; with monotone masks the previously pruned weights are
taken first). The masks are therefore a pure function of the seed and the schedule: reproducible, different
between seeds, and blind to the weights.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from sparsenlp.pruning.scheduled import SELECTED, SELECTORS, ScheduledPruner
from sparsenlp.pruning.schedules import Schedule

_STREAM = 0x5EED  # keeps these draws apart from any other use of the run's seed


class RandomPruner(ScheduledPruner):
    """Prunes uniformly random weights on a resolved schedule."""

    criterion = "random"

    def __init__(self, model: torch.nn.Module, scope: str,
                 params: Mapping[str, torch.nn.Parameter] | Sequence[str] | None, schedule: Schedule,
                 monotone: bool = True, embedding_schedule: Schedule | None = None, seed: int = 0) -> None:
        self.seed = seed
        self._step = 0
        super().__init__(model, scope, params, schedule, monotone=monotone, embedding_schedule=embedding_schedule)

    def update(self, step: int, trainer: object = None) -> None:
        self._step = step
        super().update(step, trainer)

    @torch.no_grad()
    def select(self, params: Mapping[str, torch.nn.Parameter], target: float,
               prior: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        group = [] if set(params) == set(self.groups[SELECTED][0]) else [1]  # the embedding matrix draws apart
        seed = int(np.random.SeedSequence([_STREAM, self.seed, self._step, *group]).generate_state(1)[0])
        generator = torch.Generator().manual_seed(seed)
        scores = {name: torch.rand(p.shape, generator=generator).to(p.device) for name, p in params.items()}
        return SELECTORS[self.scope](params, target, prior, scores=scores)
