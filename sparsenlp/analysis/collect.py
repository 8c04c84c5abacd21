"""Sweep directory → tidy DataFrames (no plotting, no printing).

One row of :func:`runs_table` is one run × test language × test condition, so any comparison of the
study (languages, tiers, sparsities, arms, perturbations) is a ``groupby`` away. Records are read through
the typed definition (``sparsenlp.tracking.schema.RunRecord``); every row carries its run's **arm**, and
no aggregate here mixes arms: seeds are the only axis averaged over.

Columns (:data:`COLUMNS`): the arm (:data:`ARM`: model, regime, method, criterion, scope, structure,
schedule, target_sparsity, embedding_sparsity, quantization, and the protocol: selection rule and training
length), its label ``arm`` (``global_magnitude·cubic@0.9+emb``) and
``setting`` (the label without the sparsity level: one line of a figure), the seed, the training
languages, the test language's facts (tier, script, family, ``split_train_size``: its WikiANN training
split) and whether it is zero-shot ``transfer``; what the run's data was for that language
(:data:`DATA_FACTS`: ``train_size``, the sentences of it actually trained on, 0 for zero-shot; tokenizer
fertility; entity overlap with the training data); ``perturbation``/``severity`` split the condition
(``clean``: 0); ``gap`` and ``gap_ratio`` are NaN on the clean condition; F1 per entity type is NaN where a
type has no support. The perturbation's measured strength (:data:`STRENGTH`: shares of sentences, characters
and subwords changed, [UNK] rate before and after) stands next to the gap, NaN on the clean condition. A
condition that does not apply to a language has no row (the record says why, in
``robustness_not_applicable``). A value a record does not give (an F1 without entities, a fact an older record
lacks) is NaN, never 0.
"""
from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from sparsenlp import jobdir, runlock
from sparsenlp.errors import SparseNLPError
from sparsenlp.tracking import records
from sparsenlp.tracking.schema import ARM_FIELDS, CLEAN, RunRecord
from sparsenlp.training.checkpoint import checkpoint_path

log = logging.getLogger("sparsenlp")

ENTITY_TYPES = ("PER", "ORG", "LOC")
# The arm of a run (the record's arm fields; its sparsity is the column `target_sparsity`, beside the achieved one):
# aggregates never mix two values of any of these.
ARM_COLUMN = {"sparsity": "target_sparsity"}
ARM = tuple(ARM_COLUMN.get(f, f) for f in ARM_FIELDS if f not in ("train_langs", "seed"))
# What a sparse arm is compared with: the dense runs of the same model, regime, training languages,
# quantization and protocol (model-selection rule, training length), scored on the same test language and
# condition.
MATCH = ("model", "regime", "train_langs", "quantization", "selection", "length", "lang", "condition")
# What distinguishes sparse arms within a MATCH cell.
SPARSE = tuple(k for k in ARM if k not in MATCH)
# An arm field a method leaves empty (`structure` when unstructured, `calibration` of a method without calibration
# data): pandas drops None keys in groupby. Not "none", which is a value of `calibration` (the data-free control).
EMPTY = "-"
# Per test language, what the run's data was, from ``record.data.facts[lang]`` (column → its field there);
# records without it give the sentences trained on from ``data.train_sentences_per_lang`` and NaN otherwise.
# The single-entity share of a test set is computed from the test set itself (stats.COLUMNS).
DATA_FACTS = {"train_size": "train_sentences", "subwords_per_word": "subwords_per_word",
              "seen_entity_share": "seen_entity_share"}
STRENGTH = ("sentences_changed", "characters_changed", "subwords_changed", "unk_before", "unk_after")
COLUMNS = (
    "run_dir", "arm", "setting", *ARM, "seed", "train_langs", "lang", "lang_name", "tier", "script",
    "family", "split_train_size", *DATA_FACTS, "transfer", "achieved_sparsity", "condition", "perturbation", "severity",
    "precision", "recall", "f1", *(f"f1_{t}" for t in ENTITY_TYPES), "gap", "gap_ratio", *STRENGTH, "dev_f1",
    "train_seconds", "steps", "train_sentences", "test_sentences",
)


def find_results(sweep_dir: str | Path) -> list[Path]:
    """Every ``results.json`` below ``sweep_dir`` (Hydra multirun: ``SWEEP_DIR/<job_num>/``), in path order."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise SparseNLPError(f"sweep directory {root} does not exist; pass the folder a sweep wrote, e.g. multirun/...")
    return sorted(root.rglob(records.RESULTS))


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = "/".join(str(p) for p in first["loc"]) or "top level"
    return f"{where}: {first['msg']}"


HYDRA_OUTPUT = ".hydra"  # Hydra's config copy (hydra.output_subdir): every job folder Hydra ran has one


def unfinished_jobs(sweep_dir: str | Path) -> list[str]:
    """One note per job folder below ``sweep_dir`` without a ``results.json``: a folder where a job started (Hydra's
    ``.hydra``, sparsenlp's ``.job.json``) but did not finish, because it still runs, was stopped or failed."""
    notes = []
    for folder, subfolders, files in os.walk(sweep_dir):
        if HYDRA_OUTPUT not in subfolders and jobdir.MARKER not in files:
            continue
        subfolders.clear()  # a job folder is not searched further
        if records.RESULTS in files:
            continue
        here = Path(folder)
        holder = runlock.holder(here / runlock.LOCK_NAME)
        state = f"held by {runlock.describe(holder)}, " if holder else ""
        checkpoint = "; it holds a checkpoint to resume from" if checkpoint_path(here).is_file() else ""
        notes.append(f"{here}: no results.json ({state}the job still runs, was stopped or failed: see its log"
                     f"{checkpoint})")
    return notes


def missing_metrics(loaded: Iterable[tuple[Path, RunRecord]]) -> list[str]:
    """One note per test language × condition whose F1 some records leave missing (no gold entity), with the
    reason and the number of runs: missing, never counted as 0."""
    found: Counter[tuple[str, str, str]] = Counter()
    for _, record in loaded:
        for lang, conditions in record.test.items():
            for condition, metrics in conditions.items():
                if metrics.f1 is None:
                    found[(lang, condition, metrics.missing or "not computed")] += 1
    return [f"F1 of {lang} on {condition} is missing in {n} run(s): {reason}; those rows have no F1 (never 0) and "
            "no comparison" for (lang, condition, reason), n in sorted(found.items())]


def load_records(sweep_dir: str | Path) -> tuple[list[tuple[Path, RunRecord]], list[str]]:
    """(run dir, record) of every complete record, and one note per record skipped (unreadable, incomplete,
    or from another schema version) naming its file and why, and per job folder without a record."""
    paths = find_results(sweep_dir)
    loaded, skipped = [], []
    for path in paths:
        try:
            loaded.append((path.parent, records.read(path)))
        except ValidationError as exc:
            what = "not readable JSON" if exc.errors()[0]["type"] == "json_invalid" else "not a complete run record"
            skipped.append(f"{path}: {what} ({_reason(exc)})")
        except (OSError, ValueError) as exc:
            skipped.append(f"{path}: not readable JSON ({str(exc).splitlines()[0][:120]})")
    skipped += unfinished_jobs(sweep_dir)
    for note in skipped:
        log.warning("skipping %s", note)
    if not loaded:
        raise SparseNLPError(
            f"no complete results.json under {sweep_dir} ({len(paths)} found, all skipped); "
            "point at a sweep whose runs have finished"
        )
    return loaded, skipped


def _condition(condition: str) -> tuple[str, float]:
    if condition == CLEAN:
        return CLEAN, 0.0
    name, _, severity = condition.rpartition("@")
    return name, float(severity)


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def data_facts(record: RunRecord, lang: str) -> dict[str, float]:
    """:data:`DATA_FACTS` of one test language of a run (see there)."""
    facts = getattr(record.data, "facts", None) or {}
    entry = facts.get(lang)
    if entry is not None:
        get = entry.get if isinstance(entry, dict) else lambda name: getattr(entry, name, None)
        return {column: _nan(get(field)) for column, field in DATA_FACTS.items()}
    return {**{column: math.nan for column in DATA_FACTS},
            "train_size": float(record.data.train_sentences_per_lang.get(lang, 0))}


def record_rows(run_dir: Path, record: RunRecord) -> list[dict[str, Any]]:
    """The tidy rows of one run: one per test language × condition, and again for the quantized model when
    the run quantized it (its arm then says ``quantization``; the fp32 rows say ``none``)."""
    sections = [("none", record.test, record.robustness)]
    if record.quantization is not None:
        sections.append((record.arm.quantization, record.quantization.test, record.quantization.robustness))
    return [row for quantization, test, robustness in sections
            for row in _section_rows(run_dir, record, quantization, test, robustness)]


def _section_rows(run_dir: Path, record: RunRecord, quantization: str, test: dict[str, Any],
                  robustness: dict[str, Any]) -> list[dict[str, Any]]:
    arm = record.arm.model_copy(update={"quantization": quantization})
    label = arm.label()
    run = {
        "run_dir": str(run_dir), "arm": label, "setting": arm.setting(),
        **{ARM_COLUMN.get(f, f): EMPTY if value is None else value for f, value in arm.model_dump().items()},
        "train_langs": "+".join(arm.train_langs),
        "achieved_sparsity": 0.0 if record.pruning is None else record.pruning.achieved,
        "dev_f1": record.dev.f1, "train_seconds": record.training.train_seconds, "steps": record.training.steps,
        "train_sentences": record.data.train_sentences,
    }
    rows = []
    for lang, conditions in test.items():
        facts = record.languages[lang]
        lang_cols = {"lang": lang, "lang_name": facts.name, "tier": facts.tier, "script": facts.script,
                     "family": facts.family, "split_train_size": facts.train_size, "transfer": facts.transfer,
                     "test_sentences": record.data.test_sentences[lang], **data_facts(record, lang)}
        for condition, metrics in conditions.items():
            perturbation, severity = _condition(condition)
            gap = robustness.get(lang, {}).get(condition)
            rows.append({
                **run, **lang_cols, "condition": condition, "perturbation": perturbation, "severity": severity,
                "precision": _nan(metrics.precision), "recall": _nan(metrics.recall), "f1": _nan(metrics.f1),
                **{f"f1_{t}": _nan(metrics.per_type[t].f1 if t in metrics.per_type else None) for t in ENTITY_TYPES},
                "gap": _nan(gap and gap.gap), "gap_ratio": _nan(gap and gap.gap_ratio),
                **{m: _nan(gap and getattr(gap.strength, m)) for m in STRENGTH},
            })
    return rows


def table_from_records(loaded: Iterable[tuple[Path, RunRecord]]) -> pd.DataFrame:
    """The tidy table of already loaded records (see :data:`COLUMNS`)."""
    rows = [row for run_dir, record in loaded for row in record_rows(run_dir, record)]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def runs_table(sweep_dir: str | Path) -> pd.DataFrame:
    """The tidy table of a sweep: one row per run × test language × test condition."""
    return table_from_records(load_records(sweep_dir)[0])


LANGUAGE_FACTS = ("lang", "lang_name", "tier", "script", "family", "split_train_size")


def language_facts(table: pd.DataFrame) -> pd.DataFrame:
    """One row per language: its name, tier, script, family and WikiANN training split size (facts of the
    language, the same in every run; what a run trained on is per run, :data:`DATA_FACTS`)."""
    return table[list(LANGUAGE_FACTS)].drop_duplicates("lang").reset_index(drop=True)
