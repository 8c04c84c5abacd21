"""A job's lock and identity are settled before Hydra writes a byte into its folder.

Hydra's ``run_job`` (every launcher runs each job through it, in whatever process runs the job) creates the
job folder, opens the job's log file there and saves ``.hydra/config.yaml``, ``hydra.yaml`` and
``overrides.yaml``, all before any callback (``on_job_start``) or task code runs. A second job launched into
the folder of a running one used to rewrite those files before its task refused it, leaving the running job's
record and config copy in disagreement. :func:`install` wraps the two functions ``run_job`` calls for those
writes (``configure_log`` and ``_save_config``, looked up in ``hydra.core.utils`` at call time) so that, when
``run_job`` calls them, the job first takes the folder's lock (:func:`sparsenlp.runlock.acquire`) and claims
the folder for its config (:func:`sparsenlp.jobdir.claim`). A refused job leaves the folder as it found it.
A write of Hydra's that fails for lack of space or permission is one line naming the file, and the folder is
left as it was.

In a sweep, a job whose folder a live process holds (another launch of the same sweep running it) is left to
that process rather than stopping the sweep: Hydra's writes for it are skipped (its log goes to the console
only), the task raises :class:`sparsenlp.runlock.FolderInUse` at once (:func:`left_to_another`), Hydra records
it as the job's result, and the study sweeper counts it among the jobs "left to the process still running
them". The sweep's other jobs run. A job whose folder already holds its complete record (``skip_completed``)
likewise leaves Hydra's copies of the config that made the record as they are, and its log untouched.

:mod:`sparsenlp.train` installs this when it is imported, which happens in every process that runs a job:
the task function is unpickled from it there (joblib/loky workers, submitit, Ray).
"""
from __future__ import annotations

import contextlib
import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra.core.utils as hydra_utils
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict, read_write

from sparsenlp import jobdir, runlock
from sparsenlp.errors import SparseNLPError
from sparsenlp.io import DISK_ERRNOS
from sparsenlp.tracking import records

_run_job_code = hydra_utils.run_job.__code__
_installed = False
_left: dict[Path, runlock.FolderInUse] = {}  # sweep jobs whose folder another live process holds
_complete: set[Path] = set()  # jobs whose folder already holds their complete record: nothing to write


def _called_by_run_job() -> bool:
    """Whether the wrapped function's caller is Hydra's ``run_job`` (launchers also configure Hydra's own
    logging with ``configure_log``, outside any job)."""
    return sys._getframe(2).f_code is _run_job_code


def _task_config(config: Any) -> dict[str, Any] | None:
    """The job's resolved config as its task sees it (without ``hydra``); None if it does not resolve (the
    task then reports the mistake on one line)."""
    task = copy.deepcopy(config)
    with read_write(task), open_dict(task):
        del task["hydra"]
    try:
        resolved = OmegaConf.to_container(task, resolve=True)
    except Exception:  # noqa: BLE001 - any resolution error is the task's to report, with its own message
        return None
    return resolved if isinstance(resolved, dict) else None


def _claim(out: Path) -> None:
    """Take the lock of the job ``run_job`` is starting and claim its folder; SparseNLPError if refused (the
    lock is then released again). Once per job: ``run_job`` writes four times."""
    if runlock.holds(out):
        return
    hc = HydraConfig.get()
    runlock.acquire(out)
    config = _task_config(hc._get_parent())
    if config is None:
        return
    try:
        jobdir.claim(out, config, "hydra.sweep.dir" if str(hc.mode) == "RunMode.MULTIRUN" else "hydra.run.dir")
    except BaseException:
        runlock.release(out)
        raise
    if config.get("skip_completed") and records.is_complete(out, config):
        _complete.add(out.absolute())  # the task only says so: the record's provenance files stay as they are


def _console_only(configure_log: Callable[..., Any]) -> Callable[..., Any]:
    """``configure_log`` without the handlers that write files: a job left to another process logs to the
    console only, never into that process's log."""
    def configure(log_config: Any, *args: Any, **kwargs: Any) -> Any:
        if log_config is None:
            return configure_log(log_config, *args, **kwargs)
        conf = OmegaConf.to_container(log_config, resolve=True)
        files = {name for name, handler in (conf.get("handlers") or {}).items() if "filename" in handler}
        conf["handlers"] = {k: v for k, v in (conf.get("handlers") or {}).items() if k not in files}
        for logger in [conf.get("root") or {}, *(conf.get("loggers") or {}).values()]:
            if "handlers" in logger:
                logger["handlers"] = [h for h in logger["handlers"] if h not in files]
        return configure_log(OmegaConf.create(conf), *args, **kwargs)
    return configure


def _skip(*args: Any, **kwargs: Any) -> None:
    return None


def left_to_another(out: Path) -> runlock.FolderInUse | None:
    """The refusal of a sweep job whose folder another live process holds, or None; called once as the task
    starts, it also forgets the job's state here (Hydra's writes for it are over)."""
    _complete.discard(out.absolute())
    return _left.pop(out.absolute(), None)


def _before_job_writes(write: Callable[..., Any], instead: Callable[..., Any]) -> Callable[..., Any]:
    """``write`` once the job holds its folder; ``instead`` for a sweep job left to another process, or one whose
    complete record is there already."""
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not _called_by_run_job():
            return write(*args, **kwargs)
        hc = HydraConfig.get()
        out = Path(str(hc.runtime.output_dir))
        if out.absolute() in _left or out.absolute() in _complete:
            return instead(*args, **kwargs)
        try:
            _claim(out)
            if out.absolute() in _complete:
                return instead(*args, **kwargs)
            return write(*args, **kwargs)
        except runlock.FolderInUse as exc:
            if str(hc.mode) != "RunMode.MULTIRUN":
                raise
            _left[out.absolute()] = exc
            return instead(*args, **kwargs)
        except OSError as exc:
            if exc.errno not in DISK_ERRNOS:
                raise
            if runlock.holds(out):  # only this job's own folder is cleaned up
                jobdir.discard_partial(out)
                runlock.release(out)
            else:  # the lock could not be taken: at most the empty folder Hydra has just created goes
                with contextlib.suppress(OSError):
                    out.rmdir()
            raise SparseNLPError(f"{exc.strerror}: {exc.filename or out}; free space or fix the permissions there, "
                                 "or choose another output folder (hydra.run.dir / hydra.sweep.dir)") from None

    wrapped.__wrapped__ = write  # type: ignore[attr-defined]
    return wrapped


def abandon_started_jobs() -> list[str]:
    """After Ctrl-C outside a job's own handling: every job folder this process still holds (its job started but did
    not finish) is left as :func:`sparsenlp.jobdir.discard_partial` leaves it, and released; returns what each kept."""
    kept = []
    for out in runlock.held():
        kept.append(jobdir.discard_partial(out))
        runlock.release(out)
    return kept


def install() -> None:
    """Wrap Hydra's job-folder writes (idempotent)."""
    global _installed
    if _installed:
        return
    hydra_utils.configure_log = _before_job_writes(hydra_utils.configure_log, _console_only(hydra_utils.configure_log))
    hydra_utils._save_config = _before_job_writes(hydra_utils._save_config, _skip)
    _installed = True
