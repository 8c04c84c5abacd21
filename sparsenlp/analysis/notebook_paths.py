"""A sweep folder named in a notebook, found where the user meant it.

``SPARSENLP_SWEEP_DIR=multirun/paper jupyter lab notebooks/analysis.ipynb`` names the folder relative to where
Jupyter was started, but the kernel runs in the notebook's folder. Jupyter's server and kernels inherit the
shell's ``PWD`` (the folder it was started in; ``os.chdir`` does not change it), so a relative folder is looked
up there first, then in the kernel's working folder, then in the repository (the notebook folder's parent).
"""
from __future__ import annotations

import os
from pathlib import Path

from sparsenlp.errors import SparseNLPError

ENV = "SPARSENLP_SWEEP_DIR"


def candidates(value: str, cwd: Path | None = None) -> list[Path]:
    """Where a relative ``value`` may be meant, most likely first, without repeats."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return [path]
    cwd = Path.cwd() if cwd is None else cwd
    bases = [Path(os.environ["PWD"])] if os.environ.get("PWD") else []
    bases += [cwd, cwd.parent]
    return list(dict.fromkeys((base / path).resolve() for base in bases))


def sweep_dir(value: str, cwd: Path | None = None) -> Path:
    """The sweep folder ``value`` names; SparseNLPError listing where it was looked for when none exists."""
    found = candidates(value, cwd)
    for path in found:
        if path.is_dir():
            return path
    where = ", ".join(str(p) for p in found)
    raise SparseNLPError(f"sweep folder {value!r} not found (looked in: {where}); set {ENV} to the folder "
                         "a sweep wrote (hydra.sweep.dir), relative to where you started Jupyter or absolute")
