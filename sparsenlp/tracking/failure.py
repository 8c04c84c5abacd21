"""Why a sweep job failed, kept in its folder (``failure.json``) so that ``sparsenlp-report status`` can list
failed jobs with their error line long after the launching process (or the SLURM job) has gone. A job removes
it when it starts again; it is never a result: records are ``results.json`` alone."""
from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from sparsenlp.errors import SparseNLPError
from sparsenlp.io import write_json
from sparsenlp.tracking.joblist import now

FAILURE = "failure.json"


def error_line(exc: BaseException) -> str:
    """The first line of an error, with its type unless it is one of sparsenlp's own one-line errors."""
    if isinstance(exc, SparseNLPError):
        return exc.message
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def write(out_dir: Path, exc: BaseException) -> None:
    write_json(out_dir / FAILURE, {"error": error_line(exc), "type": type(exc).__name__, "at": now(),
                                   "host": socket.gethostname(), "pid": os.getpid()})


def clear(out_dir: Path) -> None:
    (out_dir / FAILURE).unlink(missing_ok=True)


def read(out_dir: Path) -> Optional[dict[str, Any]]:
    try:
        found = json.loads((out_dir / FAILURE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


@contextlib.contextmanager
def kept(out_dir: Path, enabled: bool) -> Iterator[None]:
    """Around a job's body, inside its lock: an earlier failure is forgotten as the job starts again, and a new
    one is written (``enabled``: in a sweep; a single run's error is on the user's screen)."""
    if enabled:
        clear(out_dir)
    try:
        yield
    except Exception as exc:
        if enabled:
            write(out_dir, exc)
        raise
