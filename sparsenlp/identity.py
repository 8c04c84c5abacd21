"""What a job is: its resolved config minus the keys that only say how it is run or observed, and a short hash.

Two jobs with the same identity compute the same thing (same config and seed ⇒ bit-identical results), so a
relaunch may skip a job whose record has its identity, and nothing written under one identity (a record, a
checkpoint) may be read as another's.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

# Config keys that change how a run is observed or executed, not what it computes.
VOLATILE = {("logger",), ("output_dir",), ("skip_completed",), ("trainer", "progress"), ("trainer", "resume"),
            ("trainer", "keep_checkpoint"), ("trainer", "checkpoint_every"), ("trainer", "cpu_threads"),
            ("data", "cache_dir"), ("data", "hub_cache_dir")}
HASH_LENGTH = 12


def experiment(config: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """``config`` (a resolved run config) without its volatile keys."""
    return {k: (experiment(v, prefix + (k,)) if isinstance(v, dict) else v)
            for k, v in config.items() if prefix + (k,) not in VOLATILE}


def config_hash(config: dict[str, Any]) -> str:
    """A short, stable hash of what ``config`` computes (canonical JSON of :func:`experiment`)."""
    text = json.dumps(experiment(config), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def same_experiment(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return experiment(a) == experiment(b)
