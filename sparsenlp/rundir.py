"""A run or sweep folder that cannot be written is a one-line error, before Hydra touches it.

Hydra creates the job's folder and opens its log file there before any task code runs, so a read-only
folder used to end in a long traceback ("ValueError: Unable to configure handler 'file'", or an
``OSError`` from ``mkdir``) that never named the setting to change. :class:`WritableOutput` is a Hydra
callback that probes the folder first: ``on_run_start`` for ``hydra.run.dir``, ``on_multirun_start`` for
``hydra.sweep.dir`` (job folders are created inside it) and for the job folders an earlier sweep left in it,
which a relaunch writes to again. ``sparsenlp-train`` registers it through :func:`callback_override`, so it
applies whatever config is composed.
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sparsenlp.errors import SparseNLPError
from sparsenlp.io import unwritable

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


def check_writable(folder: Path, key: str) -> None:
    problem = unwritable(folder)
    if problem is not None:
        raise SparseNLPError(
            f"cannot write to the output folder {folder} ({problem}); make it writable or choose another "
            f"with {key}=/path/to/writable/folder"
        )


def job_folders(root: Path, output_subdir: str, nested: bool) -> Iterator[Path]:
    """The job folders of earlier runs: ``root`` itself if it holds Hydra's ``output_subdir`` (``.hydra``),
    or, ``nested`` (a sweep folder), every folder under it that does, at any depth (``hydra.sweep.subdir``
    may nest them); a job folder is not searched further."""
    if not nested:
        if (root / output_subdir).is_dir():
            yield root
        return
    for folder, subfolders, _ in os.walk(root):
        if output_subdir in subfolders:
            subfolders.clear()
            yield Path(folder)


def unwritable_job_file(job: Path, output_subdir: str) -> Path | None:
    """The first of what Hydra rewrites in an existing job folder (the folder, its log files, its
    ``output_subdir`` and the config files there) that cannot be written, or None. ``os.access`` is enough
    here: the sweep folder itself has passed the probe, so what remains is permissions and read-only mounts."""
    hydra_dir = job / output_subdir

    def rewritten() -> Iterator[Path]:  # lazily: a folder is checked before its contents are listed
        yield job
        yield from job.glob("*.log")
        yield hydra_dir
        yield from hydra_dir.iterdir()

    for path in rewritten():
        if not os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0)):
            return path
    return None


def check_job_folders(root: Path, output_subdir: str | None, key: str, nested: bool) -> None:
    """A run or relaunched sweep over job folders that cannot be written stops before any job starts, naming
    them (Hydra would otherwise fail in each job's logging set-up, with a traceback). ``root`` is the run
    folder itself (``hydra.run.dir``) or, ``nested``, the sweep folder, whose job folders are searched."""
    if output_subdir is None or not root.is_dir():
        return
    found = (unwritable_job_file(job, output_subdir) for job in job_folders(root, output_subdir, nested))
    bad = [path for path in found if path is not None]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise SparseNLPError(
            f"cannot write to {bad[0]}{more}, left by an earlier run in {root}; make it writable "
            f"(chmod -R u+w {root}) or choose another folder with {key}=/path/to/writable/folder"
        )


class WritableOutput(Callback):
    """Stops the run before Hydra creates an unwritable folder.

    Hydra turns exceptions raised in callbacks into warnings and carries on, so the error leaves as
    ``SystemExit``: its one-line message goes to stderr and the exit status is 1, as for every other
    input error.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(str(config.hydra.run.dir)).absolute()
        with _exit_on_input_error():
            check_writable(run_dir, "hydra.run.dir")
            check_job_folders(run_dir, config.hydra.output_subdir, "hydra.run.dir", nested=False)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
        with _exit_on_input_error():
            check_writable(sweep_dir, "hydra.sweep.dir")
            check_job_folders(sweep_dir, config.hydra.output_subdir, "hydra.sweep.dir", nested=True)


@contextlib.contextmanager
def _exit_on_input_error() -> Iterator[None]:
    try:
        yield
    except SparseNLPError as exc:
        sys.exit(str(exc))
