"""Device and numeric precision choice: CUDA when present (bf16 autocast), CPU otherwise (fp32)."""
from __future__ import annotations

import random

import numpy as np
import torch

from sparsenlp.errors import SparseNLPError


def resolve_device(spec: str) -> torch.device:
    """``auto``: CUDA when present, else CPU (names checked by TrainerConfig)."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise SparseNLPError(f"trainer.device={spec} but no CUDA device is available; use trainer.device=auto or cpu")
    return torch.device(spec)


def resolve_amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """``auto``: bf16 autocast on CUDA (if the GPU supports it), plain fp32 on CPU."""
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
