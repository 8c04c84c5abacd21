"""Structured pruning through torch-pruning: whole attention heads and FFN neurons are removed before
fine-tuning, giving a genuinely smaller, faster model (hidden size and classifier unchanged); every layer loses
the same number of heads / neurons (``sparsenlp/pruning/structured.py``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from pydantic import BaseModel, ConfigDict, Field

from sparsenlp.options import OneOf, Range, option
from sparsenlp.pruning.methods.base import (
    FRACTION_BELOW_ONE,
    Context,
    Method,
    PruningConfig,
    method_name,
)

IMPORTANCES = ("l1", "l2", "random")


@dataclass
class StructuredHeadsConfig(PruningConfig):
    method: str = method_name("structured_heads")
    head_ratio: float = option(0.25, "share of attention heads removed per layer (rounded up)", FRACTION_BELOW_ONE)
    ffn_ratio: float = option(0.25, "share of FFN intermediate neurons removed per layer", FRACTION_BELOW_ONE)
    importance: str = option("l1", "l1 | l2: magnitude of a head's / neuron's weights; random: a control",
                             OneOf(IMPORTANCES))
    round_to: Optional[int] = option(None, "round the kept FFN width down to a multiple of this (e.g. 8)",
                                     Range(low=1, integer=True))


class StructuredReport(BaseModel):
    """What structured pruning removed; head and FFN counts are per layer (uniform). ``linear_*`` count the
    encoder's attention and FFN Linear weights, the set unstructured methods prune."""

    model_config = ConfigDict(extra="forbid")
    head_ratio: float
    ffn_ratio: float
    importance: str
    num_layers: int
    params_before: int
    params_after: int
    heads_before: int
    heads_after: int
    intermediate_before: int
    intermediate_after: int
    linear_before: int
    linear_after: int
    param_reduction: float = Field(ge=0.0, le=1.0, description="share of all the model's parameters removed")

    @property
    def linear_sparsity(self) -> float:
        """Share of the encoder Linear weights removed: comparable with an unstructured sparsity."""
        return 1.0 - self.linear_after / self.linear_before


class StructuredHeads(Method):
    name: ClassVar[str] = "structured_heads"
    summary: ClassVar[str] = ("removes whole attention heads and FFN neurons (torch-pruning) before fine-tuning: "
                              "a smaller, faster model")
    config: ClassVar[type[PruningConfig]] = StructuredHeadsConfig
    implementation: ClassVar[Any] = "sparsenlp.pruning.structured:StructuredPruner"
    report: ClassVar[type[BaseModel]] = StructuredReport

    def is_dense(self, cfg: PruningConfig) -> bool:
        return cfg.head_ratio == 0.0 and cfg.ffn_ratio == 0.0

    def criterion(self, cfg: PruningConfig) -> str:
        return cfg.importance

    def scope(self, cfg: PruningConfig) -> str:
        return "layerwise"

    def structure(self, cfg: PruningConfig) -> Optional[str]:
        return f"heads={cfg.head_ratio:g},ffn={cfg.ffn_ratio:g}"

    def sparsity(self, cfg: PruningConfig, model_config: Any) -> float:
        """The share of encoder Linear weights the ratios remove from this model (known before pruning)."""
        if model_config is None:
            return 0.0
        return self.pruner_class().planned_sparsity(model_config, cfg.head_ratio, cfg.ffn_ratio, cfg.round_to)

    def build(self, cfg: PruningConfig, context: Context) -> Any:
        return self.pruner_class().for_model(context.model, cfg.head_ratio, cfg.ffn_ratio, cfg.importance,
                                             cfg.round_to)


STRUCTURED_HEADS = StructuredHeads()
