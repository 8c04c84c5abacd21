"""A job's lines on the console: its start and end, tagged with its short name in a sweep, and its error.

In a sweep, jobs run side by side (joblib, Ray) and print into one terminal, so every console line of a job starts
with ``[<short name>]`` (its folder without the config hash). A job says when it starts and, when it fails, the
error line (with the traceback for an unexpected error); the study sweeper lists failed jobs again at the end.
A single run's error is one line on stderr, without Hydra's "Error executing job with overrides" (the user's own
command) or traceback.
"""
from __future__ import annotations

import contextlib
import logging
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from sparsenlp.config import one_line
from sparsenlp.tracking.failure import error_line

log = logging.getLogger("sparsenlp")
_HASH = re.compile(r"-[0-9a-f]{12}$")


def in_sweep() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def short_name(out: Path) -> str:
    """A sweep job's name on the console: its folder without the config hash."""
    return _HASH.sub("", out.name)


class Tagged(logging.Formatter):
    """Another formatter's lines, prefixed with the job's tag."""

    def __init__(self, inner: logging.Formatter, tag: str) -> None:
        super().__init__()
        self.inner, self.tag = inner, tag

    def format(self, record: logging.LogRecord) -> str:
        return f"[{self.tag}] {self.inner.format(record)}"


def tag_console(tag: str) -> None:
    """Tag the lines of the root logger's console handlers (Hydra configures them afresh for every job)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler) and \
                not isinstance(handler.formatter, Tagged):
            handler.setFormatter(Tagged(handler.formatter or logging.Formatter(), tag))


@contextlib.contextmanager
def console(out: Path) -> Iterator[None]:
    """The job's error (see the module docstring) around its body; its start line comes once its config and
    inputs are checked (``train.build_job``), so a mistake there is the only line printed."""
    sweep = in_sweep()
    if sweep:
        tag_console(short_name(out))
    started = time.monotonic()
    try:
        yield
    except Exception as exc:
        error = one_line(exc)
        if sweep:
            log.error("failed after %.0f s: %s", time.monotonic() - started, error_line(exc), exc_info=error is None)
            raise
        if error is None:
            raise
        sys.stderr.write(f"{error}\n")
        raise SystemExit(1) from None
