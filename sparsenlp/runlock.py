"""One live process per job folder.

A relaunched sweep must not start a job whose folder another process is still writing: both would train
into the same checkpoint and record. While a job runs it holds an exclusive ``flock`` on
``<output_dir>/.job.lock``, a file that also names the holder (host, pid, start time). The kernel drops
the lock when the holder exits, however it exits (SIGKILL, OOM kill, node reboot on a cluster file system
with working locks), so a lock left by a dead process is simply taken over, with a warning; a live holder
makes the new process refuse the job with a one-line error that names it. This works for every launcher
because it is taken in the job's own process, wherever the launcher runs it, and before Hydra writes anything
into the folder (:mod:`sparsenlp.jobstart` calls :func:`acquire`; :func:`job_lock` holds it for the job).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sparsenlp.errors import SparseNLPError

log = logging.getLogger(__name__)
LOCK_NAME = ".job.lock"


def _holder(fd: int) -> dict[str, Any]:
    """What the holder wrote into the lock file ({} if nothing readable yet)."""
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8")
        found = json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def holder(path: Path) -> dict[str, Any]:
    """Who holds (or last held) the lock file at ``path``: host, pid, start time; {} if unknown."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return {}
    try:
        return _holder(fd)
    finally:
        os.close(fd)


def describe(info: dict[str, Any]) -> str:
    if not info:
        return "another process"
    return f"pid {info.get('pid')} on host {info.get('host')} (started {info.get('started')})"


class FolderInUse(SparseNLPError):
    """A live process holds the job folder's lock: the job is that process's to run."""


class LocksUnsupported(OSError):
    """The file system of the job folder has no working flock (e.g. Lustre mounted without flock)."""


def _open_locked(path: Path) -> int | None:
    """An fd holding the lock on ``path``, or None when a live process holds it.

    A previous holder unlinks the file just before it unlocks, so the lock we get may be on a file that
    no longer has a name: then we try again on the new file, and two processes can never both hold it.
    """
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the folder was removed in between (see release)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as exc:
            os.close(fd)
            raise LocksUnsupported(exc.errno, exc.strerror) from exc
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@dataclass
class _Held:
    fd: int | None  # None: the file system has no working flock, the job runs unlocked
    previous: dict[str, Any]  # the dead holder whose lock was taken over ({} if none)


_held: dict[Path, _Held] = {}  # job folders whose lock this process holds


def acquire(out_dir: Path) -> None:
    """Take ``out_dir``'s job lock for this process (nothing if it already holds it); SparseNLPError if a live
    process holds it. Taken before Hydra writes anything into the folder (:mod:`sparsenlp.jobstart`), so a
    refused job touches none of the running job's files; :func:`job_lock` then holds it for the job."""
    key = out_dir.absolute()
    if key in _held:
        return
    path = out_dir / LOCK_NAME
    try:
        fd = _open_locked(path)
    except LocksUnsupported as exc:
        # refusing would stop every job of the study; running unlocked is what happened before locks existed
        log.warning("cannot lock %s (%s): this job runs without protection against a second process on its "
                    "folder", path, exc.strerror)
        path.unlink(missing_ok=True)
        _held[key] = _Held(None, {})
        return
    if fd is None:
        live = holder(path)
        kill = f" (kill {live['pid']} on {live['host']})" if live.get("pid") else ""
        raise FolderInUse(
            f"job folder {out_dir} is in use by {describe(live)}; wait for that job to finish, or stop it{kill} "
            f"and relaunch (with trainer.checkpoint_every set, it resumes from its last checkpoint)"
        )
    previous = _holder(fd)
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode("utf-8"), 0)
    except OSError:  # a full disk: give the lock up as release() does, and let the caller report it
        path.unlink(missing_ok=True)
        os.close(fd)
        raise
    _held[key] = _Held(fd, previous)


def held() -> list[Path]:
    """The job folders whose lock this process holds."""
    return list(_held)


def holds(out_dir: Path) -> bool:
    return out_dir.absolute() in _held


def release(out_dir: Path) -> None:
    """Drop ``out_dir``'s job lock if this process holds it, and the folder if the lock was all it held."""
    held = _held.pop(out_dir.absolute(), None)
    if held is None or held.fd is None:
        return
    # unlink while still holding the lock (see _open_locked), then drop a folder that held only the lock
    (out_dir / LOCK_NAME).unlink(missing_ok=True)
    os.close(held.fd)
    with contextlib.suppress(OSError):
        out_dir.rmdir()


@contextlib.contextmanager
def job_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir``'s job lock for the block (taken here unless :func:`acquire` already took it);
    SparseNLPError if a live process holds it."""
    acquire(out_dir)
    previous = _held[out_dir.absolute()].previous
    if previous:  # said here, where the job's log is set up (acquire may run before)
        log.warning("taking over the job lock of %s, which is no longer running", describe(previous))
    try:
        yield
    finally:
        release(out_dir)
