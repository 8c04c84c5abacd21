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
            ("trainer", "save_model"), ("trainer", "model_store"), ("data", "cache_dir"), ("data", "hub_cache_dir")}
# Keys that only say how a trained model is evaluated: a fine-tuned model is the same whatever they are.
EVALUATION = {("eval_lang",), ("perturbation",), ("quantization",), ("data", "test_limit")}
HASH_LENGTH = 12


def experiment(config: dict[str, Any], prefix: tuple[str, ...] = (), leave_out: frozenset = frozenset()) -> dict[str, Any]:
    """``config`` (a resolved run config) without its volatile keys (and the keys in ``leave_out``)."""
    return {k: (experiment(v, prefix + (k,), leave_out) if isinstance(v, dict) else v)
            for k, v in config.items() if prefix + (k,) not in VOLATILE and prefix + (k,) not in leave_out}


def _hash(config: dict[str, Any]) -> str:
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def config_hash(config: dict[str, Any]) -> str:
    """A short, stable hash of what ``config`` computes (canonical JSON of :func:`experiment`)."""
    return _hash(experiment(config))


def training_hash(config: dict[str, Any]) -> str:
    """What trained a model: the hash of ``config`` without the keys that only say how it is evaluated, so
    every job that fine-tunes the same dense model (the dense arm, one-shot methods pruning it) names it alike."""
    return _hash(experiment(config, leave_out=frozenset(EVALUATION)))


def same_experiment(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return experiment(a) == experiment(b)
