"""Whose a job folder is, and what a job that stops early leaves in it.

A job folder belongs to one config: the first job that writes into it leaves ``.job.json``, its identity
(:func:`sparsenlp.identity.config_hash`) and the config it computes, before anything else. A job with another
identity is refused on one line naming both hashes and the keys that differ, before it writes a byte
(:mod:`sparsenlp.jobstart` claims the folder right after taking its lock, before Hydra saves its config copy and
opens its log), so a checkpoint is never resumed under another config and a record never overwritten by
another config's. Folders written before the marker existed are known by their ``results.json``; their
checkpoints carry the identity themselves (:mod:`sparsenlp.training.checkpoint`).

A job that stops without its record (bad input, a fault, an interrupt) leaves either its last checkpoint and
what explains it (the marker, Hydra's config copy, the log), so that a relaunch resumes, or nothing:
:func:`discard_partial`.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from sparsenlp.errors import SparseNLPError
from sparsenlp.identity import config_hash, experiment
from sparsenlp.io import write_json
from sparsenlp.tracking import records
from sparsenlp.training.checkpoint import checkpoint_path

MARKER = ".job.json"
SHOWN_DIFFERENCES = 3


class ForeignFolder(SparseNLPError):
    """The job folder belongs to another config: nothing in it may be touched."""


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key=old->new`` for every key whose value differs between two experiment configs."""
    a, b = _flat(experiment(old)), _flat(experiment(new))
    missing = "(absent)"
    return [f"{key}={a.get(key, missing)}->{b.get(key, missing)}" for key in sorted(a.keys() | b.keys())
            if a.get(key, missing) != b.get(key, missing)]


def owner(out: Path) -> tuple[str, dict[str, Any]] | None:
    """(config hash, config) of the job that owns ``out``: its marker, else its record; None if neither."""
    marker = out / MARKER
    try:
        found = json.loads(marker.read_text(encoding="utf-8"))
        return str(found["config_hash"]), dict(found["config"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SparseNLPError(f"{marker} is damaged ({exc}); restore it, or delete the job folder {out} to run the "
                             "job again from the start") from None
    record = records.load(out)
    if record is None:
        return None
    return config_hash(record.config), record.config


def claim(out: Path, config: dict[str, Any], key: str = "hydra.run.dir") -> str:
    """Make ``out`` the folder of the job computing ``config`` (the resolved run config) and return its hash;
    SparseNLPError naming both hashes if it belongs to another config. ``key``: the setting that chooses
    another folder. Call it holding the folder's job lock."""
    mine = config_hash(config)
    found = owner(out)
    if found is None:
        write_json(out / MARKER, {"config_hash": mine, "config": experiment(config)})
        return mine
    theirs, their_config = found
    if theirs != mine:
        shown = differences(their_config, config)
        more = f" and {len(shown) - SHOWN_DIFFERENCES} more" if len(shown) > SHOWN_DIFFERENCES else ""
        raise ForeignFolder(
            f"job folder {out} belongs to another config (config hash {theirs}; this job is {mine}: "
            f"{', '.join(shown[:SHOWN_DIFFERENCES]) or 'differs'}{more}); relaunch that config to resume or skip it, "
            f"or give this one its own folder ({key}=...), or delete {out}"
        )
    if not (out / MARKER).exists():  # a folder from before markers, known by its record
        write_json(out / MARKER, {"config_hash": mine, "config": experiment(config)})
    return mine


def discard_partial(out: Path) -> str:
    """After a job stopped without its record: remove its partial outputs (predictions, a half-saved model),
    and, unless a checkpoint lets a relaunch resume, everything else it wrote (marker, Hydra's config copy, log,
    offline W&B run), so no partial folder is left. Returns what was kept, for the message that reports it."""
    if (out / records.RESULTS).exists():
        return f"its record {out / records.RESULTS} is complete"
    if not out.is_dir():
        return "nothing"
    for partial in (records.PREDICTIONS, "model"):
        shutil.rmtree(out / partial, ignore_errors=True)
    checkpoint = checkpoint_path(out)
    if checkpoint.is_file():
        return f"its checkpoint {checkpoint} (relaunch the same command to resume from it)"
    for folder in (".hydra", "wandb", checkpoint.parent.name):
        shutil.rmtree(out / folder, ignore_errors=True)
    for leftover in (out / MARKER, *out.glob("*.log")):
        leftover.unlink(missing_ok=True)
    try:
        out.rmdir()
    except OSError:  # the job lock (dropped with the folder when released) or files of the user's
        pass
    return "nothing"
