"""Pruning Identified Exemplars of a whole sweep (Hooker et al. 2019), as DataFrames.

A cell is one language × test condition × sparse arm: the dense runs of the same model, regime,
training languages, quantization, test language and condition (one run per seed) form one population,
the sparse arm's runs (one per seed) the other. A cell whose populations have fewer
than two seeds, or whose runs do not share a test set, is skipped with a note rather than failing
the whole report: a sweep is often analysed while some of its jobs are still missing.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

import pandas as pd

from sparsenlp.analysis.collect import DENSE, MATCH, SPARSE, language_facts
from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.pie import LEVELS, PieResult, find_pies, load_predictions
from sparsenlp.tracking import records

MIN_SEEDS = 2


@dataclass
class PieReport:
    """``table``: one row per cell × level (PIE fraction, F1 of both populations on PIE / non-PIE sentences).
    ``examples``: a few PIE sentences per cell (sentence level). ``skipped``: one note per skipped cell."""

    table: pd.DataFrame
    examples: pd.DataFrame
    skipped: list[str] = field(default_factory=list)


def _one_per_seed(runs: pd.DataFrame) -> list[str]:
    """The run dirs of a population, one per seed (a seed trained twice, e.g. dense under two method
    labels, would otherwise count twice in the modal prediction)."""
    return runs.sort_values("run_dir").drop_duplicates("seed").sort_values("seed")["run_dir"].tolist()


def _describe(keys: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in keys.items())


def _row(keys: dict[str, Any], result: PieResult, dense: Sequence[str], sparse: Sequence[str],
         seeds: tuple[list[int], list[int]]) -> dict[str, Any]:
    summary = {k: v for k, v in result.summary().items() if k != "lang"}
    return {**keys, **summary, "dense_seeds": ",".join(map(str, seeds[0])),
            "sparse_seeds": ",".join(map(str, seeds[1])), "dense_runs": ",".join(dense),
            "sparse_runs": ",".join(sparse)}


def _examples(keys: dict[str, Any], result: PieResult) -> list[dict[str, Any]]:
    return [{**keys, "id": ex.id, "tokens": " ".join(ex.tokens), "gold": " ".join(ex.gold),
             "dense": " ".join(ex.dense), "sparse": " ".join(ex.sparse)} for ex in result.examples]


def _match_cell(cell: pd.DataFrame, levels: Sequence[str], n_examples: int) -> tuple[list, list, list[str]]:
    """PIE rows, examples and skip notes of one :data:`MATCH` cell (one language and condition), all arms.

    The dense runs' predictions are read once per cell and reused by every sparse arm."""
    where = {k: cell[k].iloc[0] for k in MATCH}

    @cache
    def predictions(run_dir: str) -> tuple[dict[str, Any], ...]:
        rows = load_predictions(records.predictions_path(Path(run_dir), where["condition"], where["quantization"]))
        return tuple(r for r in rows if r.get("lang", where["lang"]) == where["lang"])

    rows: list[dict[str, Any]] = []
    examples: list[dict[str, Any]] = []
    skipped: list[str] = []
    dense = cell[cell["method"] == DENSE]
    dense_dirs = _one_per_seed(dense)
    for arm, runs in cell[cell["method"] != DENSE].groupby([*SPARSE, "arm", "setting"], sort=True, dropna=False):
        keys = {**where, **dict(zip([*SPARSE, "arm", "setting"], arm))}
        sparse_dirs = _one_per_seed(runs)
        if len(dense_dirs) < MIN_SEEDS or len(sparse_dirs) < MIN_SEEDS:
            skipped.append(f"PIE skipped for {_describe(keys)}: needs ≥{MIN_SEEDS} seeds per population, "
                           f"found {len(dense_dirs)} dense and {len(sparse_dirs)} sparse")
            continue
        try:
            d_runs = [list(predictions(d)) for d in dense_dirs]
            s_runs = [list(predictions(s)) for s in sparse_dirs]
            results = {level: find_pies(d_runs, s_runs, level, n_examples) for level in levels}
        except SparseNLPError as exc:
            skipped.append(f"PIE skipped for {_describe(keys)}: {exc}")
            continue
        seeds = (sorted(set(dense["seed"])), sorted(set(runs["seed"])))
        rows += [_row(keys, result, dense_dirs, sparse_dirs, seeds) for result in results.values()]
        examples += _examples(keys, results.get("sentence", next(iter(results.values()))))
    return rows, examples, skipped


def pie_report(table: pd.DataFrame, conditions: Sequence[str] | None = None, levels: Sequence[str] = LEVELS,
               n_examples: int = 5, jobs: int = 1) -> PieReport:
    """PIEs of every cell of a sweep's tidy table (:func:`sparsenlp.analysis.collect.runs_table`).

    ``conditions``: restrict to these test conditions (None: all). ``jobs`` > 1 spreads the cells over
    that many processes: seqeval dominates the cost (seconds per cell for a 10k-sentence test set).
    """
    if conditions is not None:
        unknown = sorted(set(conditions) - set(table["condition"]))
        if unknown:
            raise SparseNLPError(f"test condition(s) {unknown} not in the sweep; it has "
                                 f"{', '.join(sorted(set(table['condition'])))}")
        table = table[table["condition"].isin(list(conditions))]
    cells = [cell for _, cell in table.groupby(list(MATCH), sort=True)]
    work = partial(_match_cell, levels=tuple(levels), n_examples=n_examples)
    if jobs > 1:
        # spawn, not fork: the caller may hold threads (torch, a notebook kernel) that fork would copy half-way
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(work, cells))
    else:
        parts = [work(cell) for cell in cells]
    rows = [r for part in parts for r in part[0]]
    examples = [e for part in parts for e in part[1]]
    skipped = [n for part in parts for n in part[2]]
    if not rows and not skipped:
        skipped.append("PIE needs sparse runs next to dense ones at the same language and condition; none found")
    pies = pd.DataFrame(rows)
    if not pies.empty:
        pies = pies.merge(language_facts(table), on="lang", how="left")
    return PieReport(pies, pd.DataFrame(examples), skipped)
