"""What a job is: its resolved config minus the keys that only say how it is run or observed, and a short hash.

Two jobs with the same identity compute the same thing (same config and seed ⇒ bit-identical results), so a
relaunch may skip a job whose record has its identity, and nothing written under one identity (a record, a
checkpoint) may be read as another's. A sweep's job folder is named by its identity (:func:`folder_name`), and
so is its W&B run (:func:`run_id`), never by the job's position in the sweep.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Config keys that change how a run is observed or executed, not what it computes.
VOLATILE = {("logger",), ("output_dir",), ("skip_completed",), ("trainer", "progress"), ("trainer", "resume"),
            ("trainer", "keep_checkpoint"), ("trainer", "checkpoint_every"), ("trainer", "cpu_threads"),
            ("trainer", "save_model"), ("trainer", "model_store"), ("data", "cache_dir"), ("data", "hub_cache_dir")}
# Keys that only say how a trained model is evaluated: a fine-tuned model is the same whatever they are.
EVALUATION = {("eval_lang",), ("perturbation",), ("quantization",), ("data", "test_limit")}
HASH_LENGTH = 12
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def experiment(config: dict[str, Any], prefix: tuple[str, ...] = (), leave_out: frozenset = frozenset()) -> dict[str, Any]:
    """``config`` (a resolved run config) without its volatile keys (and the keys in ``leave_out``)."""
    return {k: (experiment(v, prefix + (k,), leave_out) if isinstance(v, dict) else v)
            for k, v in config.items() if prefix + (k,) not in VOLATILE and prefix + (k,) not in leave_out}


def _hash(config: dict[str, Any]) -> str:
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_text(key: str, value: Any) -> str | None:
    """The canonical JSON text of one top-level entry of a resolved config (``"key":value``, volatile keys left
    out; None when the entry is volatile as a whole). A sweep computes it once per distinct entry."""
    if (key,) in VOLATILE:
        return None
    return f"{_dumps(key)}:{_dumps(experiment(value, (key,)) if isinstance(value, dict) else value)}"


def hash_entries(entries: Iterable[tuple[str, str | None]]) -> str:
    """The hash of a config from its ``(key, entry_text)`` pairs: the canonical JSON of :func:`experiment` is
    its entries sorted by key, so this equals :func:`config_hash` of the whole config."""
    text = "{" + ",".join(t for _, t in sorted(entries, key=lambda e: e[0]) if t is not None) + "}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def config_hash(config: dict[str, Any]) -> str:
    """A short, stable hash of what ``config`` computes (canonical JSON of :func:`experiment`)."""
    return hash_entries((k, entry_text(k, v)) for k, v in config.items())


def training_hash(config: dict[str, Any]) -> str:
    """What trained a model: the hash of ``config`` without the keys that only say how it is evaluated, so
    every job that fine-tunes the same dense model (the dense arm, one-shot methods pruning it) names it alike."""
    return _hash(experiment(config, leave_out=frozenset(EVALUATION)))


def same_experiment(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return experiment(a) == experiment(b)


def folder_name(name: str, digest: str) -> str:
    """A job's folder in a sweep: its readable short name (the arm's run name) and its config hash,
    ``de-global-s0.5-seed1-3fa2b1c9d0e1``; characters a shell or Hydra override would need quoted become '_'."""
    return f"{_UNSAFE.sub('_', name).strip('_')}-{digest}"


def run_id(digest: str, output_dir: str | Path) -> str:
    """A job's W&B run id: its config hash and where its record lives, so a relaunch of the job resumes its W&B
    run while the same config in another sweep (or another single run folder) is a run of its own."""
    where = hashlib.sha256(str(Path(output_dir).absolute()).encode("utf-8")).hexdigest()[:8]
    return f"{digest}-{where}"
