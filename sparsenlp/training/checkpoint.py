"""Resumable training checkpoints: everything needed to continue a killed job bit-for-bit.

Model, optimizer, LR scheduler, every callback's state (pruning masks and schedule trace), RNG states,
the position in the data order, the best-so-far dev checkpoint and the training loss summed since the
last log entry (so the first entry after a resume averages the same batches as an uninterrupted run).
Written atomically, so a job killed while saving still has its previous checkpoint.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from sparsenlp.io import atomic_path
from sparsenlp.training.callbacks import Callback


def save_checkpoint(path: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, callbacks: Sequence[Callback], **state: Any) -> None:
    payload = {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "callbacks": [cb.state_dict() for cb in callbacks], **state,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    callbacks: Sequence[Callback]) -> dict[str, Any]:
    """Restore model/optimizer/scheduler/callbacks in place; return the remaining loop state."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(payload.pop("model"))
    optimizer.load_state_dict(payload.pop("optimizer"))
    scheduler.load_state_dict(payload.pop("scheduler"))
    states = payload.pop("callbacks")
    if len(states) != len(callbacks):
        raise RuntimeError(f"checkpoint {path} has {len(states)} callback states, the run has {len(callbacks)}")
    for cb, cb_state in zip(callbacks, states):
        cb.load_state_dict(cb_state)
    return payload
