"""The `quantization` group (conf/quantization/): post-training compression of the selected model."""
from __future__ import annotations

from dataclasses import dataclass

from sparsenlp.errors import SparseNLPError

METHODS = ("none", "dynamic_int8")


@dataclass
class QuantizationConfig:
    # none; dynamic_int8: torch.ao.quantization.quantize_dynamic on every Linear (int8 weights, activations
    # quantized on the fly, CPU), scored on the same clean and perturbed test sets as the fp32 model
    name: str = "none"

    def __post_init__(self) -> None:
        if self.name not in METHODS:
            raise SparseNLPError(f"quantization={self.name} is unknown; use one of {', '.join(METHODS)}")
