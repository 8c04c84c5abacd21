"""Resumable training checkpoints: everything needed to continue a killed job bit-for-bit, under its own config.

Model, optimizer, LR scheduler, every callback's state (pruning masks and schedule trace), RNG states,
the position in the data order, the best-so-far dev checkpoint and the training loss summed since the
last log entry (so the first entry after a resume averages the same batches as an uninterrupted run).
Written atomically, so a job killed while saving still has its previous checkpoint.

Each checkpoint carries the identity of the job that wrote it (:func:`sparsenlp.identity.config_hash`); a
job resumes only its own (another identity is refused on one line naming both). A damaged file (truncated,
bit-flipped: found by the CRC-32 the zip format keeps of every member, or by failing to load) is
:class:`DamagedCheckpoint`, which the trainer reports and replaces by training from the start.
"""
from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparsenlp.errors import SparseNLPError
from sparsenlp.io import atomic_path
from sparsenlp.training.callbacks import Callback

if TYPE_CHECKING:  # torch is imported where it is used: readers of job folders (the report) only need the path
    import torch

CHECKPOINT = Path("checkpoints") / "last.pt"


def checkpoint_path(out: Path) -> Path:
    """Where the job whose output folder is ``out`` keeps its resumable checkpoint."""
    return Path(out) / CHECKPOINT


class DamagedCheckpoint(Exception):
    """The checkpoint file cannot be trusted; ``reason`` says why."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


def save_checkpoint(path: Path, *, identity: str | None, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, callbacks: Sequence[Callback], **state: Any) -> None:
    import torch

    payload = {
        "identity": identity, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "callbacks": [cb.state_dict() for cb in callbacks], **state,
    }
    # through an unbuffered Python file, so that a full disk surfaces as the OSError (ENOSPC) it is: torch reports
    # a failed write as a RuntimeError ("unexpected pos") whose context is the file's OSError
    with atomic_path(path) as tmp, tmp.open("wb", buffering=0) as handle:
        try:
            torch.save(payload, handle)
        except RuntimeError as exc:
            if isinstance(exc.__context__, OSError):
                raise exc.__context__ from None
            raise


def read_checkpoint(path: Path, identity: str | None) -> dict[str, Any]:
    """The payload of a checkpoint written under ``identity`` (None: any); DamagedCheckpoint if the file is
    damaged, SparseNLPError if another config wrote it."""
    import torch

    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        if bad is not None:
            raise DamagedCheckpoint(path, f"member {bad} fails its CRC-32 check")
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except DamagedCheckpoint:
        raise
    # truncation and bit flips surface as BadZipFile, EOFError, RuntimeError, UnpicklingError, ...: all mean damage
    except Exception as exc:  # noqa: BLE001
        raise DamagedCheckpoint(path, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}")
    if not isinstance(payload, dict) or "model" not in payload:
        raise DamagedCheckpoint(path, "not a sparsenlp training checkpoint")
    found = payload.get("identity")
    if identity is not None and found != identity:
        written = f"config hash {found}" if found else "a config it does not name (an older sparsenlp)"
        raise SparseNLPError(
            f"checkpoint {path} was written by {written}, this job is config hash {identity}; relaunch that "
            f"config to resume it, or delete {path} (or choose another output folder) to train this one from the start"
        )
    return payload


def load_checkpoint(path: Path, identity: str | None, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, callbacks: Sequence[Callback]) -> dict[str, Any]:
    """Restore model/optimizer/scheduler/callbacks in place; return the remaining loop state."""
    payload = read_checkpoint(path, identity)
    payload.pop("identity", None)
    model.load_state_dict(payload.pop("model"))
    optimizer.load_state_dict(payload.pop("optimizer"))
    scheduler.load_state_dict(payload.pop("scheduler"))
    states = payload.pop("callbacks")
    if len(states) != len(callbacks):
        raise RuntimeError(f"checkpoint {path} has {len(states)} callback states, the run has {len(callbacks)}")
    for cb, cb_state in zip(callbacks, states):
        cb.load_state_dict(cb_state)
    return payload
