"""What every unstructured pruner shares: schedule -> masks at update steps -> zeros after every step.

Magnitude, movement and N:M pruning differ only in how a mask is chosen for a target sparsity
(``select``); when masks are recomputed, how they are kept (``MaskSet.apply_`` after each optimizer
step), which dev checkpoints may be selected, the trace, the report and the resumable state are the
same, so they live here once.

The weights form one or two groups, each selected on its own to its own target on the same update steps:
the selected weights (``pruning.params``; global or layer-wise) and, with ``pruning.prune_embeddings``,
the word-embedding matrix. Pruning the embedding matrix therefore never changes the sparsity the
selected weights reach, and an arm with embeddings differs from one without only by the embeddings.

A pruner needs nothing from the trainer but an optional ``log_metrics(dict, step)``: the model is
bound at construction, so any loop that calls ``on_train_begin`` once and ``on_step_end(trainer, step)``
after each ``optimizer.step()`` gets pruned weights that are exactly 0 for every forward pass.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from pydantic import BaseModel

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.magnitude import global_masks, layerwise_masks
from sparsenlp.pruning.masks import MaskSet
from sparsenlp.pruning.methods import Context, Method, PruningConfig
from sparsenlp.pruning.params import embedding_matrix, select_prunable
from sparsenlp.pruning.schedules import Schedule
from sparsenlp.tracking.schema import PruningInfo, TensorSparsity, TraceEntry
from sparsenlp.training.callbacks import Callback

log = logging.getLogger(__name__)
# scope -> top-score selection (|w| unless scores are passed)
SELECTORS = {"global": global_masks, "layerwise": layerwise_masks}
SCOPES = tuple(SELECTORS)
SELECTED, EMBEDDINGS = "selected", "embeddings"  # the two groups of weights (module docstring)


class ScheduledPruner(Callback):
    """Base class: subclasses set ``criterion`` and implement ``select``.

    ``scope`` is where weights compete: ``global`` (one ranking over all selected tensors) or ``layerwise``
    (each tensor reaches the target on its own).
    """

    criterion = "none"

    def __init__(
        self,
        model: torch.nn.Module,
        scope: str,
        params: Mapping[str, torch.nn.Parameter] | Sequence[str] | None,
        schedule: Schedule,
        monotone: bool = True,
        embedding_schedule: Schedule | None = None,
    ) -> None:
        """``params``: a name -> Parameter dict, or regexes for ``select_prunable`` (None = defaults);
        ``embedding_schedule``: the word-embedding matrix's own target on the same update steps (None: not
        pruned)."""
        if scope not in SCOPES:
            raise SparseNLPError(f"pruning scope {scope!r} is unknown; use one of {list(SCOPES)}")
        if params is None or not isinstance(params, Mapping):
            params = select_prunable(model, params)
        self.schedule = schedule
        self.scope = scope
        self.monotone = monotone
        self.groups: dict[str, tuple[list[str], Schedule]] = {SELECTED: (list(params), schedule)}
        embeddings: Mapping[str, torch.nn.Parameter] = {}
        if embedding_schedule is not None:
            if embedding_schedule.update_steps != schedule.update_steps:
                raise SparseNLPError("the embedding matrix must be pruned on the same update steps as the other "
                                     "weights; build both schedules from the run's schedule config")
            embeddings = embedding_matrix(model, list(params))
            self.groups[EMBEDDINGS] = (list(embeddings), embedding_schedule)
        self.masks = MaskSet({**params, **embeddings})
        self.total_params = sum(p.numel() for p in model.parameters())
        self.trace: list[dict[str, float]] = []
        self.final_step = schedule.end_step  # the final sparsity is in force from here on
        self.setup()

    @classmethod
    def for_run(cls, method: Method, cfg: PruningConfig, context: Context) -> "ScheduledPruner":
        """The pruner of a run: ``method``'s target placed on the run's optimizer steps by its schedule."""
        schedule = Schedule.for_run(context.schedule, method.sparsity(cfg, None), context.total_steps)
        embedding = method.embedding_sparsity(cfg)
        embedding_schedule = Schedule.for_run(context.schedule, embedding, context.total_steps) if embedding else None
        return cls(context.model, method.scope(cfg), cfg.params, schedule, embedding_schedule=embedding_schedule,
                   **method.pruner_options(cfg, context))

    # ------------------------------------------------------------------ what subclasses provide
    def setup(self) -> None:
        """Criterion-specific checks and state, once the masks exist (e.g. movement scores)."""

    def select(self, params: Mapping[str, torch.nn.Parameter], target: float,
               prior: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        """Keep-masks of one group of weights (``params``) for ``target`` (``prior``: the group's current masks
        when monotone, else None)."""
        raise NotImplementedError

    def details(self) -> BaseModel | None:
        """The method's own section of the record (its ``report`` model), if it has one."""
        return None

    # ------------------------------------------------------------------ the loop
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
        """Recompute every group's masks for its schedule's target at ``step`` from the current state."""
        new: dict[str, torch.Tensor] = {}
        entry: dict[str, float] = {"step": step}
        for group, (names, schedule) in self.groups.items():
            target = schedule.target(step)
            prior = {name: self.masks.masks[name] for name in names} if self.monotone else None
            new.update(self.select({name: self.masks.params[name] for name in names}, target, prior))
            entry[_key(group, "target")] = target
        self.masks.update_(new, self.monotone)
        for group in self.groups:
            entry[_key(group, "achieved")] = self.achieved(group)
        self.trace.append(entry)
        log.info("step %d: %s sparsity %s", step, self.criterion,
                 ", ".join(f"{key} {value:.4f}" for key, value in entry.items() if key != "step"))
        log_metrics = getattr(trainer, "log_metrics", None)
        if callable(log_metrics):
            log_metrics({f"sparsity/{key}": value for key, value in entry.items() if key != "step"}, step)

    def achieved(self, group: str = SELECTED) -> float:
        """The share of a group's weights that are zero by mask."""
        names = self.groups[group][0]
        counts = self.masks.pruned_counts()
        return sum(counts[name] for name in names) / sum(self.masks.masks[name].numel() for name in names)

    # ------------------------------------------------------------------ results
    def pruning_report(self) -> PruningInfo:
        """For the record; the per-tensor target is null for a tensor ranked together with others (global)."""
        last = self.trace[-1] if self.trace else {}
        targets = {group: last.get(_key(group, "target"), 0.0) for group in self.groups}
        counts = self.masks.pruned_counts()
        pruned = sum(counts.values())
        details = self.details()
        embedded = EMBEDDINGS in self.groups
        own_target = {name: targets[group] for group, (names, _) in self.groups.items() for name in names
                      if group == EMBEDDINGS or self.scope == "layerwise"}
        return PruningInfo(
            schedule=self.schedule.report(),
            target=targets[SELECTED],
            achieved=self.achieved(SELECTED),
            embedding_target=targets[EMBEDDINGS] if embedded else None,
            embedding_achieved=self.achieved(EMBEDDINGS) if embedded else None,
            model_sparsity=pruned / self.total_params,
            prunable_parameters=self.masks.num_prunable,
            total_parameters=self.total_params,
            pruned_parameters=pruned,
            per_tensor={
                name: TensorSparsity(numel=mask.numel(), pruned=counts[name], achieved=counts[name] / mask.numel(),
                                     target=own_target.get(name))
                for name, mask in self.masks.masks.items()
            },
            trace=[TraceEntry(**entry) for entry in self.trace],
            details=None if details is None else details.model_dump(),
        )

    def allows_checkpoint(self, step: int) -> bool:
        """Only models at the final sparsity may be selected on dev (see Callback.allows_checkpoint)."""
        return step >= self.final_step

    # ------------------------------------------------------------------ resumable state
    def state_dict(self) -> dict[str, Any]:
        return {"masks": self.masks.state_dict()["masks"], "trace": [dict(e) for e in self.trace]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.masks.load_state_dict({"masks": state["masks"]})
        self.trace = [dict(e) for e in state["trace"]]
        self.masks.apply_()


def _key(group: str, what: str) -> str:
    """A trace entry's key: ``target`` / ``achieved`` for the selected weights, ``embedding_target`` /
    ``embedding_achieved`` for the embedding matrix."""
    return what if group == SELECTED else f"embedding_{what}"
