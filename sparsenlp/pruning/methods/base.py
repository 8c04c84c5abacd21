"""What a pruning method is: one object that says everything the framework needs to know about it.

A method declares, in one place:
- ``config``: its keys, as a dataclass extending :class:`PruningConfig` (``pruning.<key>``, with help and checks);
- ``schedules``: the schedules it runs under, the first being the one ``pruning=<name>`` selects;
- ``check``: how its keys must agree with the schedule (and anything else only it knows);
- what its arm says: ``criterion``, ``scope``, ``structure`` and the target ``sparsity`` (see ``Arm``);
- ``build``: the pruner a run trains with (``implementation``, loaded only when a run builds it, so that composing
  a config or printing ``--help`` never imports torch);
- ``report``: the pydantic model of its own section of the record (``pruning.details``).

Config validation, the arm, the sweeper's collapse of a grid, the record and the W&B fields derive from these
objects (``sparsenlp.pruning.methods.registry``); no other file names a method.
"""
from __future__ import annotations

import importlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, List, Optional

from pydantic import BaseModel

from sparsenlp.errors import SparseNLPError
from sparsenlp.options import FRACTION, Each, Free, Group, OneOf, Range, option

if TYPE_CHECKING:  # pragma: no cover
    import torch

NO_SCHEDULE = "none"
SCHEDULED = ("oneshot", "cubic", "linear")
SCOPES = ("global", "layerwise")
PARAMS = Each(Free("a regular expression, checked against the model's parameter names when it is built"),
              non_empty=True)


def method_name(name: str) -> Any:
    """The ``method`` field of a method's config: its name, set by choosing ``pruning=<name>``."""
    return option(name, "set by choosing pruning=<name>: the method's name in records and reports",
                  Free("checked against the method table"))


@dataclass
class PruningConfig(Group):
    """The `pruning` group: the keys every method has; each method's config adds its own."""

    KEY: ClassVar[str] = "pruning"

    method: str = method_name("dense")


@dataclass
class MaskedConfig(PruningConfig):
    """Keys of the methods that keep one mask per selected weight (unstructured or N:M)."""

    sparsity: Optional[float] = option(0.5, "final target: the share of the selected weights set to exactly 0",
                                       Range(0.0, 1.0, open_high=True))
    params: Optional[List[str]] = option(None, "regexes (re.search) over parameter names; null: the encoder's "
                                         "attention and FFN Linear weights (sparsenlp/pruning/params.py)", PARAMS)
    prune_embeddings: bool = option(False, "also prune the word-embedding matrix, ranked within itself to "
                                    "pruning.embedding_sparsity: the selected weights reach pruning.sparsity whether "
                                    "it is pruned or not", Free("a boolean; its type is checked by Hydra"))
    embedding_sparsity: Optional[float] = option(None, "prune_embeddings: the embedding matrix's own target, on the "
                                                 "same schedule (null: pruning.sparsity)",
                                                 Range(0.0, 1.0, open_high=True))

    def check(self, path: str) -> None:
        if self.embedding_sparsity is not None and not self.prune_embeddings:
            raise SparseNLPError(f"{path}embedding_sparsity={self.embedding_sparsity} has no effect without "
                                 f"{path}prune_embeddings=true; set it or drop {path}embedding_sparsity")


MONOTONE_HELP = "once pruned, a weight stays pruned (false: masks recomputed from scratch at each update)"
BOOLEAN = Free("a boolean; its type is checked by Hydra")
SCOPE_HELP = "global: one ranking over all selected tensors; layerwise: each tensor reaches the target"


@dataclass
class RankedConfig(MaskedConfig):
    """Keys of masked methods whose ranking may be global or per tensor, with monotone or recomputed masks."""

    scope: str = option("global", SCOPE_HELP, OneOf(SCOPES))
    monotone: bool = option(True, MONOTONE_HELP, BOOLEAN)


@dataclass
class Context:
    """What building a pruner may use: the model, the run's length and schedule, and its seed."""

    model: "torch.nn.Module"
    schedule: Any  # ScheduleConfig
    total_steps: int
    seed: int


class Method:
    """One pruning method (see the module docstring). Subclass it and register the instance."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""  # one line: what it does and the paper it follows
    config: ClassVar[type[PruningConfig]] = PruningConfig
    schedules: ClassVar[tuple[str, ...]] = (NO_SCHEDULE,)
    implementation: ClassVar[Any] = None  # the pruner class, or "module:attribute" loaded when a run builds it
    report: ClassVar[Optional[type[BaseModel]]] = None
    # what the method's name already says, left out of arm labels: "magnitude" for global_magnitude
    implied_criterion: ClassVar[Optional[str]] = None
    implied_scope: ClassVar[Optional[str]] = None
    # pruned after fine-tuning, from the dense run's model (one-shot from calibration data), not during it
    post_training: ClassVar[bool] = False

    # ------------------------------------------------------------------ the arm
    def is_dense(self, cfg: PruningConfig) -> bool:
        """Whether runs of this config train the dense model (the dense arm)."""
        return False

    def criterion(self, cfg: PruningConfig) -> str:
        """What ranks the weights (magnitude, movement, random, ...)."""
        return self.implied_criterion or "none"

    def scope(self, cfg: PruningConfig) -> str:
        """Where weights compete: global, layerwise (per tensor), none."""
        return self.implied_scope or str(getattr(cfg, "scope", None) or "none")

    def structure(self, cfg: PruningConfig) -> Optional[str]:
        """The shape constraint of the sparsity (``2:4``); None for unstructured."""
        return None

    def sparsity(self, cfg: PruningConfig, model_config: Any) -> float:
        """The arm's target sparsity (a share of the selected weights)."""
        return float(getattr(cfg, "sparsity", 0.0) or 0.0)

    def embedding_sparsity(self, cfg: PruningConfig) -> float:
        """The word-embedding matrix's own target (0: not pruned): ``pruning.embedding_sparsity``, or the arm's
        target when that is null."""
        if not getattr(cfg, "prune_embeddings", False):
            return 0.0
        own = getattr(cfg, "embedding_sparsity", None)
        return float(own) if own is not None else self.sparsity(cfg, None)

    def calibration(self, cfg: PruningConfig) -> Optional[str]:
        """Whose data calibrated the pruning (``self``, a code, ``mix``, ``none``); None: no calibration data."""
        return None

    def recovery_steps(self, cfg: PruningConfig) -> int:
        """Fine-tuning steps after a post-training pruning; 0 for methods that prune during fine-tuning."""
        return 0

    # ------------------------------------------------------------------ checks
    def check(self, cfg: PruningConfig, schedule: Any) -> None:
        """Checks across groups (the schedule). The keys of ``cfg`` were checked when it was built."""
        if schedule.name not in self.schedules:
            fix = (f"drop schedule={schedule.name}, or add schedule={NO_SCHEDULE} where an experiment selects it"
                   if self.schedules == (NO_SCHEDULE,)
                   else f"use schedule={' or schedule='.join(self.schedules)}")
            raise SparseNLPError(f"pruning={self.name} does not run under schedule={schedule.name}; {fix}")

    def check_languages(self, cfg: PruningConfig, train_langs: Sequence[str], eval_langs: Sequence[str],
                        known: Collection[str]) -> None:
        """Checks of the languages the method itself reads (calibration data), before any data is read; by
        default it reads none."""

    # ------------------------------------------------------------------ building
    def build(self, cfg: PruningConfig, context: Context) -> Any:
        """The pruner (a trainer callback with ``pruning_report()``), or None for the dense arm."""
        raise NotImplementedError(f"pruning={self.name} does not say how to build its pruner")

    def pruner_class(self) -> Any:
        """``implementation``, imported now if it was given as ``"module:attribute"``."""
        if isinstance(self.implementation, str):
            module, _, attribute = self.implementation.partition(":")
            return getattr(importlib.import_module(module), attribute)
        return self.implementation


class MaskedMethod(Method):
    """A method that keeps one mask per selected weight on an ordinary schedule (magnitude, movement, random,
    N:M): sparsity 0 is the dense arm, and the pruner is built from the placed schedule."""

    config: ClassVar[type[PruningConfig]] = MaskedConfig
    schedules: ClassVar[tuple[str, ...]] = SCHEDULED

    def is_dense(self, cfg: PruningConfig) -> bool:
        return getattr(cfg, "sparsity", None) == 0.0

    def check(self, cfg: PruningConfig, schedule: Any) -> None:
        super().check(cfg, schedule)
        sparsity = getattr(cfg, "sparsity", None)
        if sparsity is not None and schedule.initial_sparsity > sparsity:
            raise SparseNLPError(f"schedule.initial_sparsity={schedule.initial_sparsity} exceeds pruning.sparsity="
                                 f"{sparsity}; lower it")
        embedding = self.embedding_sparsity(cfg)
        if embedding and schedule.initial_sparsity > embedding:
            raise SparseNLPError(f"schedule.initial_sparsity={schedule.initial_sparsity} exceeds the embedding "
                                 f"matrix's target {embedding}; lower it or raise pruning.embedding_sparsity")

    def pruner_options(self, cfg: PruningConfig, context: Context) -> dict[str, Any]:
        """Constructor arguments of the pruner beyond model, scope, params and schedule (``monotone`` when the
        method's config has it)."""
        return {"monotone": cfg.monotone} if hasattr(cfg, "monotone") else {}

    def build(self, cfg: PruningConfig, context: Context) -> Any:
        return self.pruner_class().for_run(self, cfg, context)


FRACTION_BELOW_ONE = Range(0.0, 1.0, open_high=True)
__all__ = ["BOOLEAN", "Context", "FRACTION", "FRACTION_BELOW_ONE", "MONOTONE_HELP", "MaskedConfig", "MaskedMethod",
           "Method", "NO_SCHEDULE", "PruningConfig", "RankedConfig", "SCHEDULED", "SCOPES", "SCOPE_HELP", "method_name"]
