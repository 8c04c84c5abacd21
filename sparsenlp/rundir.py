"""A run or sweep folder that cannot be written is a one-line error, before Hydra touches it.

Hydra creates the job's folder and opens its log file there before any task code runs, so a read-only
folder used to end in a long traceback ("ValueError: Unable to configure handler 'file'", or an
``OSError`` from ``mkdir``) that never named the setting to change. :class:`WritableOutput` is a Hydra
callback that probes the folder first: ``on_run_start`` for ``hydra.run.dir``, ``on_multirun_start`` for
``hydra.sweep.dir`` (job folders are created inside it). ``sparsenlp-train`` registers it through
:func:`callback_override`, so it applies whatever config is composed.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sparsenlp.errors import SparseNLPError

CALLBACK_KEY = "sparsenlp_writable_output"


# Hydra's flags that print something instead of running a job; the override is not needed there, and
# after a bare ``--info`` argparse would read it as that flag's value
_NO_RUN_FLAGS = ("-h", "--help", "--hydra-help", "--version", "-c", "--cfg", "-i", "--info", "-sc",
                 "--shell-completion")


def callback_override(argv: list[str]) -> list[str]:
    """The command-line override, to append to ``argv``, that registers :class:`WritableOutput`."""
    if any(arg.split("=", 1)[0] in _NO_RUN_FLAGS for arg in argv):
        return []
    return [f"++hydra.callbacks.{CALLBACK_KEY}._target_={__name__}.{WritableOutput.__name__}"]


def unwritable(folder: Path) -> str | None:
    """Why files cannot be created in ``folder`` (or in its nearest existing parent, where ``mkdir -p``
    would start), or None. A real probe file, not ``os.access``: it also sees read-only mounts, ACLs and
    full disks, and it is right for root."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    where = "" if existing == folder else f" in {existing}"
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=".sparsenlp-write-probe-", dir=existing)
    except OSError as exc:
        return f"{exc.strerror or exc}{where}"
    os.close(fd)
    os.unlink(probe)
    return None


def check_writable(folder: Path, key: str) -> None:
    problem = unwritable(folder)
    if problem is not None:
        raise SparseNLPError(
            f"cannot write to the output folder {folder} ({problem}); make it writable or choose another "
            f"with {key}=/path/to/writable/folder"
        )


class WritableOutput(Callback):
    """Stops the run before Hydra creates an unwritable folder.

    Hydra turns exceptions raised in callbacks into warnings and carries on, so the error leaves as
    ``SystemExit``: its one-line message goes to stderr and the exit status is 1, as for every other
    input error.
    """

    @staticmethod
    def _check(folder: Any, key: str) -> None:
        try:
            check_writable(Path(str(folder)).absolute(), key)
        except SparseNLPError as exc:
            sys.exit(str(exc))

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.sweep.dir, "hydra.sweep.dir")
