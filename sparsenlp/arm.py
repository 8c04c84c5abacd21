"""A run's arm (what is compared, see ``tracking/schema.py: Arm``), derived from its config.

The arm is known before training, so W&B tags and run names can carry it from the first logged step;
for structured pruning the share of weights removed follows from the ratios and the model's shape.
"""
from __future__ import annotations

from typing import Any

from sparsenlp.config import RunConfig
from sparsenlp.config.pruning import MOVEMENT, STRUCTURED
from sparsenlp.tracking.schema import DENSE, Arm


def build_arm(settings: RunConfig, model_config: Any = None) -> Arm:
    """``model_config``: the HF config of the built model (needed for structured pruning only)."""
    pruning = settings.pruning
    train_langs = settings.train_langs
    common = {"model": settings.model.name, "regime": "per_language" if len(train_langs) == 1 else "joint",
              "train_langs": train_langs, "method": pruning.method, "quantization": settings.quantization.name,
              "seed": settings.seed}
    if pruning.is_dense:
        return Arm(**common, criterion="none", scope="none", schedule="none", embeddings=False, sparsity=0.0)
    if pruning.method == STRUCTURED:
        from sparsenlp.pruning.structured import planned_sparsity

        assert pruning.head_ratio is not None and pruning.ffn_ratio is not None and pruning.importance
        sparsity = planned_sparsity(model_config, pruning.head_ratio, pruning.ffn_ratio, pruning.round_to)
        return Arm(**common, criterion=pruning.importance, scope="layerwise", schedule="none", embeddings=False,
                   sparsity=sparsity, structure=pruning.structure)
    assert pruning.sparsity is not None
    return Arm(**common, criterion="movement" if pruning.method == MOVEMENT else "magnitude",
               scope=pruning.selection_scope, structure=pruning.structure, schedule=settings.schedule.name,
               embeddings=pruning.prune_embeddings, sparsity=pruning.sparsity)


__all__ = ["DENSE", "build_arm"]
