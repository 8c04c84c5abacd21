"""A run's arm (what is compared, see ``tracking/schema.py: Arm``), derived from its config and its method.

The arm is known before training, so W&B tags and run names can carry it from the first logged step; a
method may need the built model's config for its target (structured pruning: the share of weights the ratios
remove from this model).
"""
from __future__ import annotations

from typing import Any

from sparsenlp.config import RunConfig
from sparsenlp.tracking.schema import DENSE, Arm


def build_arm(settings: RunConfig, model_config: Any = None) -> Arm:
    """``model_config``: the HF config of the built model (for methods whose target depends on it)."""
    method, pruning = settings.method, settings.pruning
    train_langs = settings.train_langs
    common = {"model": settings.model.name, "regime": "per_language" if len(train_langs) == 1 else "joint",
              "train_langs": train_langs, "quantization": settings.quantization.name, "seed": settings.seed,
              "selection": settings.trainer.selection_rule, "length": settings.trainer.length}
    if method.is_dense(pruning):
        return Arm(**common, method=DENSE, criterion="none", scope="none", schedule="none", sparsity=0.0,
                   embedding_sparsity=0.0)
    return Arm(**common, method=method.name, criterion=method.criterion(pruning), scope=method.scope(pruning),
               structure=method.structure(pruning), schedule=settings.schedule.name,
               sparsity=method.sparsity(pruning, model_config), embedding_sparsity=method.embedding_sparsity(pruning),
               calibration=method.calibration(pruning), recovery_steps=method.recovery_steps(pruning))


__all__ = ["DENSE", "build_arm"]
