"""The magnitude-pruning callback and ``build_pruner`` (config groups -> pruner).

The loop machinery (schedule -> masks -> zeros after every optimizer step, trace, report, state) is
``ScheduledPruner``'s; magnitude pruning only says how masks are chosen.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.scheduled import SELECTORS, ScheduledPruner
from sparsenlp.pruning.schedules import Schedule
from sparsenlp.pruning.structured import StructuredPruner, check_structured_supported

CONFIG_METHODS = {"global_magnitude": "global", "layerwise_magnitude": "layerwise"}
STRUCTURED = "structured_heads"
STRUCTURED_KEYS = {"method", "head_ratio", "ffn_ratio", "importance", "round_to", "at_step"}
PRUNING_KEYS = {"method", "sparsity", "params", "prune_embeddings", "monotone"}
SCHEDULE_KEYS = {"name", "initial_sparsity", "start_step", "end_step", "frequency"}


class MagnitudePruner(ScheduledPruner):
    """Unstructured magnitude pruning of selected parameters on a resolved schedule: the smallest |w|
    go (global: one threshold over all tensors; layerwise: one per tensor)."""

    criterion = "magnitude"

    def select(self, target: float, prior: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        return SELECTORS[self.method](self.masks.params, target, prior)


def build_pruner(
    cfg_pruning: Mapping[str, Any],
    cfg_schedule: Mapping[str, Any],
    model: torch.nn.Module,
    total_steps: int,
) -> MagnitudePruner | StructuredPruner | None:
    """A pruner from the ``pruning`` and ``schedule`` config groups; None when the run stays dense.

    Dense means ``method: dense`` or a final ``sparsity`` of 0. Every key is validated here so a bad
    config fails before any training.
    """
    pruning = _plain(cfg_pruning, "pruning")
    method = pruning.get("method")
    if method == "dense":
        return None
    if method == STRUCTURED:
        return _structured(pruning, model)
    if method not in CONFIG_METHODS:
        raise SparseNLPError(
            f"pruning.method={method!r} is unknown; use dense, {', '.join(CONFIG_METHODS)} or {STRUCTURED}"
        )
    _check_keys(pruning, PRUNING_KEYS, "pruning")
    sched = _plain(cfg_schedule, "schedule")
    _check_keys(sched, SCHEDULE_KEYS, "schedule")
    if "sparsity" not in pruning:
        raise SparseNLPError(f"pruning.sparsity is missing for {method}; set it, e.g. pruning.sparsity=0.9")
    schedule = Schedule(
        name=sched.get("name"),
        final_sparsity=pruning["sparsity"],
        initial_sparsity=sched.get("initial_sparsity", 0.0),
        start_step=sched.get("start_step", 0),
        end_step=sched.get("end_step"),
        frequency=sched.get("frequency", 1),
    ).resolve(total_steps)
    flags = {key: pruning.get(key, default) for key, default in (("prune_embeddings", False), ("monotone", True))}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise SparseNLPError(f"pruning.{key}={value!r} must be true or false")
    if schedule.final_sparsity == 0.0:
        return None
    return MagnitudePruner(
        model,
        CONFIG_METHODS[method],
        pruning.get("params"),
        schedule,
        monotone=flags["monotone"],
        prune_embeddings=flags["prune_embeddings"],
    )


def _structured(pruning: dict[str, Any], model: torch.nn.Module) -> StructuredPruner:
    """Heads/FFN neurons removed through torch-pruning before fine-tuning; model support checked now."""
    _check_keys(pruning, STRUCTURED_KEYS, "pruning")
    check_structured_supported(model)
    return StructuredPruner(float(pruning.get("head_ratio", 0.0)), float(pruning.get("ffn_ratio", 0.0)),
                            at_step=int(pruning.get("at_step", 0)), importance=str(pruning.get("importance", "l1")),
                            round_to=pruning.get("round_to"))


def _plain(cfg: Any, group: str) -> dict[str, Any]:
    """A plain dict from an OmegaConf node or any mapping (lists inside become lists)."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise SparseNLPError(f"the {group} config must be a mapping, got {type(cfg).__name__}")


def _check_keys(cfg: Mapping[str, Any], allowed: set[str], group: str) -> None:
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise SparseNLPError(f"unknown {group} keys {unknown}; allowed: {sorted(allowed)}")
