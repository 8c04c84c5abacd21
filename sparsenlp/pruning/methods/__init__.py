"""Pruning methods: one object each (``base.Method``), in one table (``registry``) that outside packages extend
through the ``sparsenlp.methods`` entry point. See README, "Add a pruning method"."""
from sparsenlp.pruning.methods.base import (
    NO_SCHEDULE,
    SCHEDULED,
    Context,
    MaskedConfig,
    MaskedMethod,
    Method,
    PruningConfig,
    RankedConfig,
    method_name,
)
from sparsenlp.pruning.methods.registry import ENTRY_POINTS, get, methods, register

__all__ = ["ENTRY_POINTS", "NO_SCHEDULE", "SCHEDULED", "Context", "MaskedConfig", "MaskedMethod", "Method",
           "PruningConfig", "RankedConfig", "get", "method_name", "methods", "register"]
