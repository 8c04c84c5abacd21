"""PIE rates with a noise floor and an interval that counts seed variation, from 3 dense and 2 sparse seeds.

A PIE (:mod:`sparsenlp.evaluation.pie`, Hooker et al. 2019) is a unit whose modal prediction differs between
a population of sparse runs and one of dense runs. Dense seeds already disagree among themselves, so a PIE
rate means something only next to a **noise floor**, and only with an interval that knows how much the
rate would move with other seeds. With the study's 3 seeds a side, a rate between two modes has a single
seed-level replicate (the pair of populations), so no interval for it can count seed variation. The
inferential rate is therefore taken **per seed**, where seeds are replicates:

- ``pie_rate``: for each sparse seed, the share of units (sentences, or tokens) on which its prediction
  differs from the modal prediction of D − 1 dense seeds (averaged over the D ways of leaving one dense seed
  out); the mean over sparse seeds.
- ``noise_floor``: for each dense seed, the share of units on which it differs from the modal prediction of
  the *other* D − 1 dense seeds; the mean over dense seeds. A sparse seed and the left-out dense seed face
  references of the same size drawn from the same dense runs, so if pruning changed nothing the two rates
  would have the same expectation, whatever the seed spread.
- ``excess`` = ``pie_rate`` − ``noise_floor``, with a t-interval and p-value for the crossed seeds × sentences
  design (:func:`sparsenlp.analysis.crossed.contrast`: the seed-to-seed spread of both rates, and the part of
  sentence sampling that does not cancel). ``bench/stats_calibration.py`` measures how often it flags
  languages whose sparse runs are drawn like dense ones (BENCHMARKS.md).
- ``pie_rate_all``: Hooker et al.'s rate itself, between the modes of all sparse and all dense seeds
  (:func:`~sparsenlp.evaluation.pie.find_pies`'s ``fraction``); descriptive, and the sentences quoted as
  examples are these PIEs.

``too_small``: fewer than 3 dense or 2 sparse seeds. With one dense seed there is no floor; with two, each
dense seed's reference is the other one, so both floor rows are the same and the floor's seed spread is 0 by
construction (the interval is then too narrow); with one sparse seed the interval is over sentences only.
Such rows are never counted in a summary. At ``level="token"`` the rates are tokens over tokens, and
sentences remain the unit of sampling (tokens of one sentence are not independent).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sparsenlp.analysis.crossed import contrast
from sparsenlp.analysis.encode import Encodings, Run, TestSet
from sparsenlp.analysis.stats import Cell, check_cell, language_groups
from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.pie import LEVELS, modal_codes

MIN_DENSE_SEEDS = 3  # with 2, each dense seed's reference is the other: both floor rows are one, no seed spread
MIN_SPARSE_SEEDS = 2  # for an interval that counts the sparse seeds' variation
COLUMNS = (
    "lang", "arm", "sparsity", "condition", "level", "pie_rate", "noise_floor", "excess", "excess_se", "excess_df",
    "excess_ci_low", "excess_ci_high", "excess_p", "pie_rate_all", "n_dense", "n_sparse", "reference_seeds",
    "n_units", "too_small",
)


def disagreement(dense: np.ndarray, sparse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per run and unit (codes that rank labels, runs × units): (sparse runs that differ from the mode of D − 1
    dense runs, averaged over the D leave-one-out references; dense runs that differ from the mode of the
    other D − 1 dense runs). Needs ≥ 2 dense runs."""
    k = dense.shape[0]
    if k < 2:
        raise ValueError("a leave-one-out reference needs at least 2 dense runs")
    references = [modal_codes(np.delete(dense, r, axis=0)) for r in range(k)]
    floor = np.stack([dense[r] != references[r] for r in range(k)]).astype(np.float64)
    rate = np.zeros(sparse.shape, dtype=np.float64)
    for reference in references:
        rate += sparse != reference
    return rate / k, floor


def _per_sentence(values: np.ndarray, test: TestSet) -> np.ndarray:
    """Token values (runs × tokens) summed per sentence (runs × sentences)."""
    out = np.zeros((values.shape[0], len(test)), dtype=np.float64)
    for r in range(values.shape[0]):
        out[r] = np.bincount(test.token_sentence, weights=values[r], minlength=len(test))
    return out


def pie_row(cell: Cell, level: str, test: TestSet, dense: np.ndarray, sparse: np.ndarray,
            confidence: float = 0.95) -> dict[str, Any]:
    """One row of :data:`COLUMNS` from the ranked codes (runs × units) of both populations."""
    n_dense, n_sparse = dense.shape[0], sparse.shape[0]
    row = {"lang": cell.lang, "arm": cell.arm, "sparsity": float(cell.sparsity), "condition": cell.condition,
           "level": level, "pie_rate_all": float(np.mean(modal_codes(sparse) != modal_codes(dense))),
           "n_dense": n_dense, "n_sparse": n_sparse, "reference_seeds": n_dense - 1, "n_units": int(dense.shape[1]),
           "too_small": n_dense < MIN_DENSE_SEEDS or n_sparse < MIN_SPARSE_SEEDS}
    if n_dense < 2:  # no dense seed to leave out: no floor
        return {**row, **{c: math.nan for c in ("pie_rate", "noise_floor", "excess", "excess_se", "excess_df",
                                                  "excess_ci_low", "excess_ci_high", "excess_p")}}
    rate, floor = disagreement(dense, sparse)
    if level == "token":  # sentences stay the unit of sampling: tokens of a sentence per sentence, over all tokens
        scale = len(test) / float(test.n_tokens.sum())
        rate, floor = _per_sentence(rate, test) * scale, _per_sentence(floor, test) * scale
    excess = contrast([rate, floor], (1.0, -1.0), confidence)
    return {**row, "pie_rate": float(rate.mean()), "noise_floor": float(floor.mean()), "excess": excess.estimate,
            "excess_se": excess.se, "excess_df": excess.df, "excess_ci_low": excess.ci_low,
            "excess_ci_high": excess.ci_high, "excess_p": excess.p_value}


def language_rows(lang: str, cells: Sequence[Cell], encodings: Encodings, levels: Sequence[str] = LEVELS,
                  confidence: float = 0.95) -> list[dict[str, Any]]:
    """The PIE rows of one language's cells (every level)."""
    unknown = set(levels) - set(LEVELS)
    if unknown:
        raise SparseNLPError(f"unknown PIE level(s) {sorted(unknown)}; use {LEVELS}")
    codes: dict[tuple[int, str], np.ndarray] = {}
    for cell in cells:  # encode everything first: code ranks are taken once the vocabulary is complete
        check_cell(cell)
        encodings.test_set(lang, cell.condition, cell.dense[0])
        for name, population in (("dense", cell.dense), ("sparse", cell.sparse)):
            for k, run in enumerate(population):
                codes[(id(run), cell.condition)] = encodings.encode(
                    lang, cell.condition, run, f"{name} run {k} of arm={cell.arm} sparsity={cell.sparsity}").codes
    rows = []
    for cell in cells:
        test = encodings.tests[(lang, cell.condition)]
        for level in levels:
            ranked = []
            for runs in (cell.dense, cell.sparse):
                stacked = np.vstack([codes[(id(run), cell.condition)] for run in runs])
                ranked.append(test.sentence_ranks(stacked) if level == "sentence" else test.token_ranks(stacked))
            rows.append(pie_row(cell, level, test, *ranked, confidence=confidence))
    return rows


EXAMPLE_COLUMNS = ("lang", "arm", "sparsity", "condition", "id", "tokens", "gold", "dense", "sparse")


def examples(lang: str, cells: Sequence[Cell], encodings: Encodings, n_examples: int) -> list[dict[str, Any]]:
    """The first ``n_examples`` sentence-level PIEs of each cell (ids order), between the modes of all dense
    and all sparse seeds (``pie_rate_all``'s PIEs), with tokens, gold and both modes, space-joined.
    Runs must already be encoded (the tables encode them)."""
    rows = []
    for cell in cells:
        test = encodings.tests[(lang, cell.condition)]

        def mode(runs: Sequence[Run]) -> np.ndarray:
            codes = np.vstack([encodings.encode(lang, cell.condition, run).codes for run in runs])
            return test.codes_of_ranks(modal_codes(test.sentence_ranks(codes)))

        dense, sparse = mode(cell.dense), mode(cell.sparse)
        shown = np.flatnonzero(dense != sparse)[:n_examples].tolist()
        for i, tokens in zip(shown, test.sentence_tokens(shown)):
            rows.append({"lang": lang, "arm": cell.arm, "sparsity": float(cell.sparsity), "condition": cell.condition,
                         "id": test.ids[i], "tokens": " ".join(tokens),
                         **{name: " ".join(test.sequence(int(codes[i])))
                            for name, codes in (("gold", test.gold_codes), ("dense", dense), ("sparse", sparse))}})
    return rows


def pie_floor_table(cells: Iterable[Cell], levels: Sequence[str] = LEVELS, confidence: float = 0.95,
                    encodings: Encodings | None = None) -> pd.DataFrame:
    """One row per cell × level (:data:`COLUMNS`): per-seed PIE rate of sparse vs dense, the dense-vs-dense
    noise floor, the excess with its t-interval and p-value, Hooker et al.'s rate between all seeds' modes,
    and ``too_small`` where a side has one seed."""
    encodings = Encodings() if encodings is None else encodings
    rows = []
    for lang, lang_cells in language_groups(cells):
        rows += language_rows(lang, lang_cells, encodings, levels, confidence)
    return pd.DataFrame(rows, columns=list(COLUMNS))
