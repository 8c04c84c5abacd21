"""The magnitude-pruning callback: schedule -> masks -> zeros after every optimizer step.

It needs nothing from the trainer but an optional ``log_metrics(dict, step)``: the model is bound
at construction, so any loop that calls ``on_train_begin`` once and ``on_step_end(trainer, step)``
after each ``optimizer.step()`` gets pruned weights that are exactly 0 for every forward pass.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.magnitude import global_masks, layerwise_masks
from sparsenlp.pruning.masks import MaskSet
from sparsenlp.pruning.params import select_prunable
from sparsenlp.pruning.schedules import Schedule
from sparsenlp.pruning.structured import StructuredPruner, check_structured_supported
from sparsenlp.training.callbacks import Callback

log = logging.getLogger(__name__)
SELECTORS: dict[str, Callable[..., dict[str, torch.Tensor]]] = {
    "global": global_masks,
    "layerwise": layerwise_masks,
}
CONFIG_METHODS = {"global_magnitude": "global", "layerwise_magnitude": "layerwise"}
STRUCTURED = "structured_heads"
STRUCTURED_KEYS = {"method", "head_ratio", "ffn_ratio", "importance", "round_to", "at_step"}
PRUNING_KEYS = {"method", "sparsity", "params", "prune_embeddings", "monotone"}
SCHEDULE_KEYS = {"name", "initial_sparsity", "start_step", "end_step", "frequency"}


class MagnitudePruner(Callback):
    """Unstructured magnitude pruning of selected parameters on a resolved schedule."""

    def __init__(
        self,
        model: torch.nn.Module,
        method: str,
        params: Mapping[str, torch.nn.Parameter] | Sequence[str] | None,
        schedule: Schedule,
        monotone: bool = True,
        prune_embeddings: bool = False,
    ) -> None:
        """``params``: a name -> Parameter dict, or regexes for ``select_prunable`` (None = defaults)."""
        if method not in SELECTORS:
            raise SparseNLPError(f"pruning method {method!r} is unknown; use one of {sorted(SELECTORS)}")
        if not schedule.resolved:
            raise SparseNLPError("schedule steps are fractions of training; pass schedule.resolve(total_steps)")
        if params is None or not isinstance(params, Mapping):
            params = select_prunable(model, params, prune_embeddings)
        self.schedule = schedule
        self.method = method
        self.monotone = monotone
        self.masks = MaskSet(params)
        self.total_params = sum(p.numel() for p in model.parameters())
        self.trace: list[dict[str, float]] = []
        self.final_step = schedule.update_steps()[-1]  # the final sparsity is in force from here on

    def on_train_begin(self, trainer: Any) -> None:
        self._advance(trainer, 0)

    def on_step_end(self, trainer: Any, step: int) -> None:
        self._advance(trainer, step)

    def _advance(self, trainer: Any, step: int) -> None:
        already_done = bool(self.trace) and self.trace[-1]["step"] >= step  # e.g. step 0 after a resume
        if self.schedule.is_update_step(step) and not already_done:
            self.update(step, trainer)
        self.masks.apply_()

    def update(self, step: int, trainer: Any = None) -> None:
        """Recompute the masks for the schedule's target at ``step`` from the current weights."""
        target = self.schedule.target(step)
        prior = self.masks.masks if self.monotone else None
        self.masks.update_(SELECTORS[self.method](self.masks.params, target, prior), self.monotone)
        achieved = self.masks.sparsity()
        self.trace.append({"step": step, "target": target, "achieved": achieved})
        log.info("step %d: sparsity target %.4f, achieved %.4f", step, target, achieved)
        log_metrics = getattr(trainer, "log_metrics", None)
        if callable(log_metrics):
            log_metrics({"sparsity/target": target, "sparsity/achieved": achieved}, step)

    def report(self) -> dict[str, Any]:
        """JSON-ready summary for results.json (per-tensor target is null for global selection)."""
        target = self.trace[-1]["target"] if self.trace else 0.0
        counts = self.masks.pruned_counts()
        pruned = sum(counts.values())
        return {
            "method": self.method,
            "monotone": self.monotone,
            "schedule": self.schedule.as_dict(),
            "target": target,
            "achieved": pruned / self.masks.num_prunable,
            "model_sparsity": pruned / self.total_params,
            "prunable_parameters": self.masks.num_prunable,
            "total_parameters": self.total_params,
            "pruned_parameters": pruned,
            "per_tensor": {
                name: {
                    "numel": mask.numel(),
                    "pruned": counts[name],
                    "target": target if self.method == "layerwise" else None,
                    "achieved": counts[name] / mask.numel(),
                }
                for name, mask in self.masks.masks.items()
            },
            "trace": [dict(entry) for entry in self.trace],
        }

    def allows_checkpoint(self, step: int) -> bool:
        """Only models at the final sparsity may be selected on dev (see Callback.allows_checkpoint)."""
        return step >= self.final_step

    def results_section(self) -> dict[str, Any]:
        return {"sparsity": self.report()}

    def state_dict(self) -> dict[str, Any]:
        return {"masks": self.masks.state_dict()["masks"], "trace": [dict(e) for e in self.trace]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.masks.load_state_dict({"masks": state["masks"]})
        self.trace = [dict(e) for e in state["trace"]]
        self.masks.apply_()


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
