"""The `quantization` group (conf/quantization/): post-training compression of the selected model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sparsenlp.options import Group, OneOf, option

METHODS = ("none", "dynamic_int8")


@dataclass
class QuantizationConfig(Group):
    KEY: ClassVar[str] = "quantization"

    name: str = option("none", "none; dynamic_int8: torch.ao.quantization.quantize_dynamic on every Linear (int8 "
                       "weights, activations quantized on the fly, CPU), scored on the same clean and perturbed "
                       "test sets as the fp32 model", OneOf(METHODS))
