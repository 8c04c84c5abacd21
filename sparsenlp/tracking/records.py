"""Writing and reading run records on disk (the record itself is defined in ``schema.py``).

``results.json`` is written last and atomically, so its presence means the run is complete; the
prediction files it refers to are already on disk by then. A relaunched sweep compares the stored
config with the new one to decide whether a job can be skipped.
"""
from __future__ import annotations

import importlib.metadata
import math
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sparsenlp.errors import SparseNLPError
from sparsenlp.identity import config_hash, same_experiment
from sparsenlp.io import write_json, write_jsonl
from sparsenlp.tracking import compact
from sparsenlp.tracking.schema import RunRecord

RESULTS = "results.json"
PREDICTIONS = "predictions"
QUANTIZED_PREDICTIONS = "int8"  # predictions/int8/test*.jsonl: the quantized model's


def predictions_path(run_dir: Path, condition: str, quantization: str = "none") -> Path:
    """Where a run keeps its predictions for a test condition (all test languages in one file)."""
    name = "test" if condition == "clean" else f"test.{condition}"
    folder = Path(run_dir) / PREDICTIONS
    return (folder if quantization == "none" else folder / QUANTIZED_PREDICTIONS) / f"{name}.jsonl"
_PACKAGES = ("torch", "transformers", "tokenizers", "datasets", "hydra-core", "omegaconf", "seqeval", "wandb",
             "torch-pruning", "numpy", "sparsenlp")


def read(path: Path) -> RunRecord:
    """A record from its file (raises OSError, ValueError or pydantic's ValidationError)."""
    return RunRecord.model_validate_json(path.read_bytes())


def load(out_dir: Path) -> RunRecord | None:
    """The complete record in ``out_dir``, or None when there is none or it is not a valid record."""
    path = out_dir / RESULTS
    if not path.is_file():
        return None
    try:
        return read(path)
    except (OSError, ValueError, ValidationError):
        return None


def is_complete(out_dir: Path, config: dict[str, Any]) -> bool:
    """True when ``out_dir`` holds a complete record of a run with the same experiment config."""
    record = load(out_dir)
    return record is not None and same_experiment(record.config, config)


def refuse_other(out_dir: Path, config: dict[str, Any]) -> None:
    """A record is never overwritten by another config's: SparseNLPError when ``out_dir`` holds one."""
    record = load(out_dir)
    if record is not None and not same_experiment(record.config, config):
        raise SparseNLPError(
            f"{out_dir} holds the record of another config ({config_hash(record.config)}, this run is "
            f"{config_hash(config)}), which is kept; run in another folder (hydra.run.dir=...; a sweep names each "
            "job's folder by its config)")


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: a diverged loss is recorded as null rather than making the record unwritable."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write(out_dir: Path, record: RunRecord, predictions: dict[str, list[dict[str, Any]]]) -> None:
    """Predictions first (each JSONL with its compact ``.npz`` companion, see ``compact.py``), results.json
    last: a reader never sees a record whose predictions are missing."""
    for name, rows in predictions.items():
        path = out_dir / PREDICTIONS / f"{name}.jsonl"
        write_jsonl(path, rows)
        compact.write(compact.companion_path(path), rows)
    write_json(out_dir / RESULTS, _finite(record.model_dump(mode="json")))


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_revision() -> str | None:
    """The commit of the sparsenlp checkout this code runs from (with '-dirty' if modified), if any."""
    repo = Path(__file__).resolve().parents[2]
    if not (repo / ".git").exists() or shutil.which("git") is None:
        return None
    try:
        rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return None
    return f"{rev}-dirty" if dirty else rev
