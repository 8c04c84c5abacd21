"""Sweep directory → tidy DataFrames (no plotting, no printing).

One row of :func:`runs_table` is one run × test language × test condition, so any comparison of the
study (languages, tiers, sparsities, methods, perturbations) is a ``groupby`` away. Seeds are averaged
before anything else, so a configuration run with more seeds does not weigh more in a language mean.

Columns (:data:`COLUMNS`): ``method`` is ``dense`` for every run that was not pruned (no pruning report
or target 0, e.g. ``pruning=global_magnitude pruning.sparsity=0``), else the configured method, which
``pruning_method`` always keeps; ``tier``/``script``/``family`` come from the record's
``config.languages``; ``perturbation``/``severity`` split the condition (``clean``: 0); ``gap`` and
``gap_ratio`` are NaN on the clean condition; F1 per entity type is NaN where a type has no support.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd

from sparsenlp.data.languages import info
from sparsenlp.errors import SparseNLPError
from sparsenlp.tracking import records

log = logging.getLogger("sparsenlp")

DENSE = "dense"
ENTITY_TYPES = ("PER", "ORG", "LOC")
# What must agree for two runs to be compared (dense baseline vs sparse run, or members of a PIE
# population): the same model, trained on the same languages, scored on the same test set and condition.
MATCH = ("model", "train_langs", "lang", "condition")
# What makes a sparse configuration: each (method, schedule, target) is one arm of the study.
ARM = ("method", "schedule", "target_sparsity")
COLUMNS = (
    "run_dir", "lang", "lang_name", "tier", "script", "family", "train_langs", "model", "method", "pruning_method",
    "schedule", "target_sparsity", "achieved_sparsity", "seed", "condition", "perturbation", "severity",
    "precision", "recall", "f1", *(f"f1_{t}" for t in ENTITY_TYPES), "gap", "gap_ratio", "dev_f1",
    "train_seconds", "steps", "train_sentences", "test_sentences",
)


def find_results(sweep_dir: str | Path) -> list[Path]:
    """Every ``results.json`` below ``sweep_dir`` (Hydra multirun: ``SWEEP_DIR/<job_num>/``), in path order."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise SparseNLPError(f"sweep directory {root} does not exist; pass the folder a sweep wrote, e.g. multirun/...")
    return sorted(root.rglob(records.RESULTS))


def _reason(error: jsonschema.ValidationError) -> str:
    """Where and why a record fails the schema, short: messages that repeat the whole value are dropped
    (inside ``oneOf`` those are the branches the record was never meant to match)."""
    where = "/".join(str(p) for p in error.absolute_path) or "top level"
    reasons = [e.message for e in (error.context or [error]) if len(e.message) <= 100]
    return f"{where}: {'; '.join(reasons) or f'fails the schema rule {error.validator!r}'}"


def load_records(sweep_dir: str | Path,
                 skipped: list[tuple[Path, str]] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """(run dir, record) of every complete record; unreadable or incomplete ones are skipped with a warning
    and, when ``skipped`` is given, appended to it as (path, reason) so a report can name them."""
    paths = find_results(sweep_dir)
    validator = jsonschema.Draft202012Validator(json.loads(records.SCHEMA_PATH.read_text(encoding="utf-8")))
    loaded = []
    for path in paths:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning("skipping %s: not readable JSON (%s)", path, exc)
            if skipped is not None:
                skipped.append((path, f"not readable JSON ({exc})"))
            continue
        error = jsonschema.exceptions.best_match(validator.iter_errors(record))
        if error is not None:
            log.warning("skipping %s: not a complete run record (%s)", path, _reason(error))
            if skipped is not None:
                skipped.append((path, f"not a complete run record ({_reason(error)})"))
            continue
        loaded.append((path.parent, record))
    if not loaded:
        raise SparseNLPError(
            f"no complete results.json under {sweep_dir} ({len(paths)} found, all skipped); "
            "point at a sweep whose runs have finished"
        )
    return loaded


def arm_of(record: dict[str, Any]) -> tuple[str, str, float, float]:
    """(method, schedule, target, achieved) of a run. No pruning report, or a target of 0, is a dense run
    whatever method was configured; its schedule is "none" since none was applied. A structured run's
    target and achieved sparsity are the share of the model's parameters it removed."""
    structured = record.get("structured")
    if structured:  # structured pruning: "sparsity" = share of the model's parameters removed
        removed = float(structured["param_reduction"])
        return str(record["config"]["pruning"]["method"]), "oneshot", removed, removed
    sparsity = record["sparsity"]
    if sparsity is None or float(sparsity["target"]) == 0.0:
        return DENSE, "none", 0.0, 0.0 if sparsity is None else float(sparsity["achieved"])
    method = str(record["config"]["pruning"]["method"])
    return method, str(record["config"]["schedule"]["name"]), float(sparsity["target"]), float(sparsity["achieved"])


def arm_label(method: str, schedule: str, target: float) -> str:
    """A short name for an arm in tables: ``dense`` or ``<method>·<schedule>@<target>``."""
    return DENSE if method == DENSE else f"{method}·{schedule}@{target:g}"


def _condition(condition: str) -> tuple[str, float]:
    if condition == "clean":
        return "clean", 0.0
    name, _, severity = condition.rpartition("@")
    return name, float(severity)


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def record_rows(run_dir: Path, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The tidy rows of one run: one per test language × condition."""
    cfg = record["config"]
    method, schedule, target, achieved = arm_of(record)
    run = {
        "run_dir": str(run_dir), "train_langs": "+".join(record["run"]["langs"]), "model": record["model"]["name"],
        "method": method, "pruning_method": str(cfg["pruning"]["method"]), "schedule": schedule,
        "target_sparsity": target, "achieved_sparsity": achieved, "seed": int(record["run"]["seed"]),
        "dev_f1": float(record["dev"]["f1"]), "train_seconds": float(record["training"]["train_seconds"]),
        "steps": int(record["training"]["steps"]), "train_sentences": int(record["data"]["train_sentences"]),
    }
    rows = []
    for lang, conditions in record["test"].items():
        meta = info(cfg["languages"], lang)
        lang_cols = {"lang": lang, "lang_name": meta.name, "tier": meta.tier, "script": meta.script,
                     "family": meta.family, "test_sentences": int(record["data"]["test_sentences"][lang])}
        for condition, metrics in conditions.items():
            perturbation, severity = _condition(condition)
            gap = record["robustness"].get(lang, {}).get(condition, {})
            per_type = metrics["per_type"]
            rows.append({
                **run, **lang_cols, "condition": condition, "perturbation": perturbation, "severity": severity,
                "precision": float(metrics["precision"]), "recall": float(metrics["recall"]),
                "f1": float(metrics["f1"]),
                **{f"f1_{t}": _nan(per_type.get(t, {}).get("f1")) for t in ENTITY_TYPES},
                "gap": _nan(gap.get("gap")), "gap_ratio": _nan(gap.get("gap_ratio")),
            })
    return rows


def table_from_records(loaded: Iterable[tuple[Path, dict[str, Any]]]) -> pd.DataFrame:
    """The tidy table of already loaded records (see :data:`COLUMNS`)."""
    rows = [row for run_dir, record in loaded for row in record_rows(run_dir, record)]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def runs_table(sweep_dir: str | Path, skipped: list[tuple[Path, str]] | None = None) -> pd.DataFrame:
    """The tidy table of a sweep: one row per run × test language × test condition (``skipped``: see
    :func:`load_records`)."""
    return table_from_records(load_records(sweep_dir, skipped))


def seed_means(table: pd.DataFrame, keys: Sequence[str], values: Sequence[str] = ("f1",)) -> pd.DataFrame:
    """``<value>_mean``, ``<value>_std`` over seeds and ``n_seeds`` per ``keys`` (repeats of a seed averaged first)."""
    per_seed = table.groupby([*keys, "seed"], dropna=False)[list(values)].mean()
    grouped = per_seed.groupby(level=list(keys), dropna=False)
    stats = grouped.agg(["mean", "std"])
    stats.columns = [f"{v}_{s}" for v, s in stats.columns]
    stats["n_seeds"] = grouped.size()
    return stats.reset_index()


def language_facts(table: pd.DataFrame) -> pd.DataFrame:
    """One row per language: its name, tier, script and family."""
    return table[["lang", "lang_name", "tier", "script", "family"]].drop_duplicates("lang").reset_index(drop=True)


def relative_to_dense(table: pd.DataFrame, value: str = "f1") -> pd.DataFrame:
    """Per sparse arm and :data:`MATCH` cell: seed-mean ``value`` of sparse runs minus that of the dense runs.

    Dense runs (any configured method at target 0) are one baseline shared by every method. Cells
    without a dense baseline get NaN differences.
    """
    sparse = table[table["method"] != DENSE]
    dense = table[table["method"] == DENSE]
    s = seed_means(sparse, [*MATCH, *ARM], [value]).rename(
        columns={f"{value}_mean": f"{value}_sparse", f"{value}_std": f"{value}_sparse_std", "n_seeds": "n_sparse"})
    d = seed_means(dense, list(MATCH), [value]).rename(
        columns={f"{value}_mean": f"{value}_dense", f"{value}_std": f"{value}_dense_std", "n_seeds": "n_dense"})
    out = s.merge(d, on=list(MATCH), how="left")
    out["n_dense"] = out["n_dense"].fillna(0).astype(int)
    out[f"delta_{value}"] = out[f"{value}_sparse"] - out[f"{value}_dense"]
    out[f"rel_delta_{value}"] = out[f"delta_{value}"] / out[f"{value}_dense"].where(out[f"{value}_dense"] > 0)
    out = out.merge(language_facts(table), on="lang", how="left")
    return out.sort_values([*ARM, "lang", "condition"]).reset_index(drop=True)


def f1_summary(table: pd.DataFrame, condition: str = "clean") -> pd.DataFrame:
    """Languages × arms: seed-mean F1 on one condition (a wide table for reading, not for computing).
    Model and training languages become index columns only when they vary for a test language."""
    sub = table[table["condition"] == condition]
    varying = sub.groupby("lang")[["model", "train_langs"]].nunique().max()
    index = ["tier", "lang", *(k for k in ("model", "train_langs") if varying[k] > 1)]
    stats = seed_means(sub, [*index, *ARM])
    stats["arm"] = [arm_label(*arm) for arm in zip(*(stats[k] for k in ARM))]
    wide = stats.pivot(index=index, columns="arm", values="f1_mean")
    wide = wide[sorted(wide.columns, key=lambda a: (a != DENSE, a))]
    wide.columns.name = None
    return wide.reset_index()


def tier_summary(relative: pd.DataFrame, value: str = "f1") -> pd.DataFrame:
    """Mean change relative to dense per tier, arm and condition (languages weigh equally)."""
    keys = ["condition", "method", "schedule", "target_sparsity", "tier"]
    out = relative.groupby(keys)[f"delta_{value}"].agg(["mean", "std", "count"]).reset_index()
    return out.rename(columns={"mean": f"delta_{value}_mean", "std": f"delta_{value}_std", "count": "n_langs"})


def gap_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean robustness gap (clean F1 − perturbed F1) per perturbed condition, arm and tier."""
    perturbed = table[table["condition"] != "clean"]
    keys = ["condition", "method", "schedule", "target_sparsity", "tier"]
    per_lang = seed_means(perturbed, [*keys, "lang"], ["gap"])
    out = per_lang.groupby(keys)["gap_mean"].mean()
    return out.rename("gap").reset_index()
