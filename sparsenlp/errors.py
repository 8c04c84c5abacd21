"""One exception type for every user-facing mistake.

Subclassing Hydra's ``CompactHydraException`` makes Hydra print just the message (no traceback)
and exit non-zero, which is what a researcher needs from a typo in an override.
"""
from __future__ import annotations

from hydra.errors import CompactHydraException


class SparseNLPError(CompactHydraException):
    """Bad input: the message names the problem and the fix, on one line."""

    def __init__(self, message: str) -> None:
        super().__init__(f"sparsenlp error: {message}")
