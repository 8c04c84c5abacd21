"""N:M semi-structured sparsity (NVIDIA's 2:4, Mishra et al. 2021): in every group of M consecutive input weights
of a selected Linear keep the N largest |w|. Gradual schedules ramp the share of groups converted (cheapest
first); one-shot converts them all (``sparsenlp/pruning/semi_structured.py``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from pydantic import BaseModel, ConfigDict, Field

from sparsenlp.errors import SparseNLPError
from sparsenlp.options import OneOf, Range, option
from sparsenlp.pruning.methods.base import (
    FRACTION_BELOW_ONE,
    SCOPES,
    Context,
    MaskedConfig,
    MaskedMethod,
    PruningConfig,
    method_name,
)

GROUP_SIZE = Range(low=1, integer=True)


@dataclass
class SemiStructuredConfig(MaskedConfig):
    method: str = method_name("semi_structured")
    n: int = option(2, "weights kept in every group of M consecutive input weights", GROUP_SIZE)
    m: int = option(4, "size of a group (a divisor of every selected tensor's input width)", Range(low=2, integer=True))
    sparsity: Optional[float] = option(None, "null: every group converted, (M - N) / M (0.5 for 2:4); a smaller "
                                       "value converts only that share of the weights", FRACTION_BELOW_ONE)
    scope: str = option("global", "which groups convert first: ranked over all tensors (global) or within each "
                        "(layerwise)", OneOf(SCOPES))

    def check(self, path: str) -> None:
        super().check(path)
        if not self.n < self.m:
            raise SparseNLPError(f"{path}n={self.n} and {path}m={self.m} must satisfy n < m, e.g. 2 and 4")
        full = (self.m - self.n) / self.m
        if self.sparsity is not None and self.sparsity > full:
            raise SparseNLPError(f"{path}sparsity={self.sparsity} must be at most {full:g} for {self.n}:{self.m} "
                                 "sparsity ((M - N) / M when every group is converted); or null for exactly that")
        if self.embedding_sparsity is not None and self.embedding_sparsity > full:
            raise SparseNLPError(f"{path}embedding_sparsity={self.embedding_sparsity} must be at most {full:g} for "
                                 f"{self.n}:{self.m} sparsity; or null for the target of the other weights")


class TensorGroups(BaseModel):
    model_config = ConfigDict(extra="forbid")
    groups: int = Field(description="groups of M weights in the tensor")
    converted_groups: int = Field(description="groups pruned to N of M")


class NMReport(BaseModel):
    """N:M pruning's own section of the record: how many groups of M consecutive input weights keep only N."""

    model_config = ConfigDict(extra="forbid")
    n: int
    m: int
    groups: int
    converted_groups: int
    converted_fraction: float = Field(ge=0.0, le=1.0)
    converted_group_sparsity: Optional[float] = Field(description="(M - N) / M whenever any group converted")
    per_tensor: dict[str, TensorGroups]


class SemiStructured(MaskedMethod):
    name: ClassVar[str] = "semi_structured"
    summary: ClassVar[str] = "N:M sparsity (2:4 by default): N largest |w| kept in every group of M input weights"
    config: ClassVar[type[PruningConfig]] = SemiStructuredConfig
    implementation: ClassVar[Any] = "sparsenlp.pruning.semi_structured:SemiStructuredPruner"
    report: ClassVar[type[BaseModel]] = NMReport
    implied_criterion: ClassVar[str] = "magnitude"

    def structure(self, cfg: PruningConfig) -> Optional[str]:
        return f"{cfg.n}:{cfg.m}"

    def sparsity(self, cfg: PruningConfig, model_config: Any) -> float:
        return cfg.sparsity if cfg.sparsity is not None else (cfg.m - cfg.n) / cfg.m

    def pruner_options(self, cfg: PruningConfig, context: Context) -> dict[str, Any]:
        return {"n": cfg.n, "m": cfg.m}  # masks are always monotone: a converted group stays converted


SEMI_STRUCTURED = SemiStructured()
