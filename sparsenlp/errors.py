"""One exception type for every user-facing mistake.

Subclassing Hydra's ``CompactHydraException`` makes Hydra print just the message (no traceback)
and exit non-zero, which is what a researcher needs from a typo in an override.
"""
from __future__ import annotations

from hydra.errors import CompactHydraException

PREFIX = "sparsenlp error: "


class SparseNLPError(CompactHydraException):
    """Bad input: the message names the problem and the fix, on one line."""

    def __init__(self, message: str) -> None:
        self.message = message.removeprefix(PREFIX)  # re-raised with context: the prefix is printed once
        super().__init__(PREFIX + self.message)
