"""Unstructured magnitude pruning: the smallest |w| go, with one threshold over all selected tensors (global)
or one per tensor (layer-wise). Masks are exact k-th value selections (``sparsenlp/pruning/magnitude.py``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sparsenlp.options import option
from sparsenlp.pruning.methods.base import (
    BOOLEAN,
    MONOTONE_HELP,
    MaskedConfig,
    MaskedMethod,
    PruningConfig,
    method_name,
)


@dataclass
class MagnitudeConfig(MaskedConfig):
    method: str = method_name("global_magnitude")
    monotone: bool = option(True, MONOTONE_HELP, BOOLEAN)


@dataclass
class LayerwiseMagnitudeConfig(MagnitudeConfig):
    method: str = method_name("layerwise_magnitude")


class Magnitude(MaskedMethod):
    implementation: ClassVar[Any] = "sparsenlp.pruning.engine:MagnitudePruner"
    implied_criterion: ClassVar[str] = "magnitude"


class GlobalMagnitude(Magnitude):
    name: ClassVar[str] = "global_magnitude"
    summary: ClassVar[str] = "unstructured magnitude pruning, one threshold over |w| of all selected tensors"
    config: ClassVar[type[PruningConfig]] = MagnitudeConfig
    implied_scope: ClassVar[str] = "global"


class LayerwiseMagnitude(Magnitude):
    name: ClassVar[str] = "layerwise_magnitude"
    summary: ClassVar[str] = "unstructured magnitude pruning, one threshold per tensor: each reaches the target"
    config: ClassVar[type[PruningConfig]] = LayerwiseMagnitudeConfig
    implied_scope: ClassVar[str] = "layerwise"


GLOBAL_MAGNITUDE = GlobalMagnitude()
LAYERWISE_MAGNITUDE = LayerwiseMagnitude()
