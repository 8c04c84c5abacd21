"""Sweep workers stop when the sweep's main process dies.

Under ``hydra/launcher=joblib`` jobs run in loky worker processes, children of ``sparsenlp-train``.
Killing only that main process (``kill -TERM`` or ``-9``, the OOM killer, a hang-up when the terminal closes) used to
leave the workers training on into the job folders that a relaunch would use. ``sparsenlp-train``
writes ``host:pid`` into ``$SPARSENLP_LAUNCHER``, which its child processes inherit; a job whose parent
is that process checks once a second that it still is and, as soon as it has been re-parented, stops as a
job asked to stop does (:mod:`sparsenlp.training.stop`): it sends itself SIGTERM, so a job in its training
loop finishes the step it is in and writes a checkpoint there, losing nothing. A job that has not stopped
:data:`GRACE` seconds later (a hung write) exits with status 1. The job lock goes with the process
(:mod:`sparsenlp.runlock`), so a relaunch resumes the job from that checkpoint.

Jobs in the main process (basic launcher) and jobs whose parent is something else (SLURM's slurmstepd,
Ray's raylet, a process on another host that inherited the variable through ``sbatch --export``) are
left alone: their lifetime is their scheduler's business.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

from sparsenlp import runlock

log = logging.getLogger(__name__)
ENV = "SPARSENLP_LAUNCHER"
GRACE = 120.0  # seconds a job has to checkpoint and stop after its launcher is gone
_started = False


def mark_launcher() -> None:
    """Called by ``sparsenlp-train`` before Hydra launches anything."""
    os.environ[ENV] = f"{socket.gethostname()}:{os.getpid()}"


def launcher_pid() -> int | None:
    """The pid of the ``sparsenlp-train`` process that is this process's parent, if it is."""
    host, _, pid = os.environ.get(ENV, "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    pid_value = int(pid)
    return pid_value if pid_value == os.getppid() and pid_value != os.getpid() else None


def _watch(parent: int, interval: float) -> None:
    while True:
        time.sleep(interval)
        if os.getppid() != parent:
            if not runlock.held():  # between jobs: nothing to stop, and no job's log to write into
                os._exit(1)
            log.error("the sweep's main process (pid %d) is gone: stopping this job (pid %d) with a checkpoint at "
                      "its current step; relaunch the sweep to resume it", parent, os.getpid())
            os.kill(os.getpid(), signal.SIGTERM)  # the job's own stop: checkpoint at the step boundary, then exit
            deadline = time.monotonic() + GRACE
            while runlock.held() and time.monotonic() < deadline:  # the job releases its folder once stopped
                time.sleep(0.1)
            if runlock.held():
                log.error("this job (pid %d) did not stop within %.0f s of its launcher's end: exiting; a relaunch "
                          "resumes it from its last checkpoint", os.getpid(), GRACE)
            os._exit(1)  # the worker has no launcher to serve; log handlers flush every record


def exit_with_launcher(interval: float = 1.0) -> bool:
    """In a sweep worker, start (once per process) the thread that ends it with its launcher; returns
    whether this process is watched."""
    global _started
    parent = launcher_pid()
    if parent is None:
        return False
    if not _started:
        threading.Thread(target=_watch, args=(parent, interval), name="sparsenlp-parent-watch", daemon=True).start()
        _started = True
    return True
