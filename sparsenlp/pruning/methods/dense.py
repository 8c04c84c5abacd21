"""No pruning: the dense baseline every sparse arm is compared with."""
from __future__ import annotations

from typing import Any, ClassVar

from sparsenlp.pruning.methods.base import Context, Method, PruningConfig


class Dense(Method):
    name: ClassVar[str] = "dense"
    summary: ClassVar[str] = "no pruning: the dense baseline every sparse arm is compared with"

    def is_dense(self, cfg: PruningConfig) -> bool:
        return True

    def build(self, cfg: PruningConfig, context: Context) -> Any:
        return None


DENSE = Dense()
