"""A job asked to stop (SIGTERM, SIGUSR1, SIGUSR2, Ctrl-C) stops cleanly, and during training loses no step.

SLURM sends SIGTERM when it requeues (``scontrol requeue``), preempts or cancels a job, and SIGKILL
``KillWait`` seconds later; ``--signal=<SIG>@<seconds>`` asks it for a signal that long before the time limit
(submitit asks for SIGUSR2, ``signal_delay_s``; a plain ``sbatch --signal=B:USR1@120`` script, for SIGUSR1).
While :func:`deferred` is active (the trainer's loop), such a signal is only recorded; the trainer finishes the
optimizer step it is in, writes a checkpoint and calls :func:`stop`, so the requeued job resumes at the very
step where this one stopped. Outside the loop (building data, evaluating) there is nothing to checkpoint and
the job stops at once. Either way it ends with :class:`JobStopped`, a ``SystemExit`` with status
128 + signal number (130 for Ctrl-C), which Hydra's job runner does not swallow as a failed job and after which
submitit writes no result, so its launcher keeps waiting for the requeued job. A second signal while the
checkpoint is written stops at once (the previous checkpoint stays: writes are atomic).

A handler installed before ours for SIGUSR1/SIGUSR2 (submitit's requeue-on-timeout) runs after the checkpoint,
when the job has said what it kept (:meth:`JobStopped.pass_on`); SIGTERM is not passed on (submitit only logs it
and waits for SIGKILL).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)
PASSED_ON = (signal.SIGUSR1, signal.SIGUSR2)


class JobStopped(SystemExit):
    """The job stopped on a signal; ``detail`` says where (`` at step 40 of 300``) and, once the caller has added
    it, what was kept."""

    def __init__(self, signum: int, detail: str = "", previous: Any = None) -> None:
        super().__init__(128 + signum)
        self.signum, self.detail, self.previous = signum, detail, previous

    def pass_on(self) -> None:
        """Give SIGUSR1/SIGUSR2 to the handler that was installed before ours (submitit's requeue: it exits)."""
        if self.signum in PASSED_ON and callable(self.previous):
            self.previous(self.signum, None)

    @property
    def name(self) -> str:
        return "Ctrl-C (SIGINT)" if self.signum == signal.SIGINT else signal.Signals(self.signum).name


class _Handlers:
    def __init__(self) -> None:
        self.installed = 0
        self.deferring = False
        self.requested: int | None = None
        self.previous: dict[int, Any] = {}

    def install(self) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False  # only the main thread may handle signals; elsewhere they act as before
        if self.installed == 0:
            self.previous = {sig: signal.signal(sig, self.handle) for sig in SIGNALS}
            self.requested = None
        self.installed += 1
        return True

    def uninstall(self) -> None:
        if self.installed == 0:  # already restored by stop()
            return
        self.installed -= 1
        if self.installed == 0:
            self.restore()

    def restore(self) -> None:
        for sig, previous in self.previous.items():
            signal.signal(sig, previous)
        self.previous, self.installed = {}, 0

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.deferring and self.requested is None:
            self.requested = signum  # the trainer stops after the current step, with a checkpoint
            return
        stop(signum, "" if self.requested is None else ", before its checkpoint was written", frame)


_handlers = _Handlers()


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """For a whole job: a signal stops it at once, as :class:`JobStopped` (the caller says what was kept)."""
    installed = _handlers.install()
    try:
        yield
    finally:
        if installed:
            _handlers.uninstall()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """For the training loop: a signal is recorded (:func:`requested`) and the loop stops at a step boundary."""
    installed = _handlers.install()
    before = _handlers.deferring
    _handlers.deferring = installed
    try:
        yield
    finally:
        _handlers.deferring = before
        if installed:
            _handlers.uninstall()


def requested() -> int | None:
    """The signal that asked the job to stop, if one did."""
    return _handlers.requested


def stop(signum: int, detail: str = "", frame: FrameType | None = None) -> None:
    """Stop the job: restore the handlers that were there before and raise :class:`JobStopped`."""
    del frame
    previous = _handlers.previous.get(signum)
    if _handlers.installed:
        _handlers.restore()
    raise JobStopped(signum, detail, previous)
