"""Sparse vs dense, per language: ΔF1 with a t-interval over seeds and sentences, a p-value, corrected across
languages.

One :class:`Cell` is one language × arm × sparsity × test condition: the dense runs and the sparse runs
of that language (one run per seed, each a list of prediction rows ``{"id", "tokens", "gold", "pred"}`` or
:class:`~sparsenlp.tracking.compact.CompactPredictions`), scored on the same test sentences.

**Statistic.** ΔF1 = (mean over sparse seeds of span F1) − (mean over dense seeds of span F1), span F1
being seqeval's micro F1 (default, conlleval-compatible mode) on the whole test set of one run, computed
from per-sentence span counts (:mod:`sparsenlp.analysis.encode`). Seeds are replicates of a training
configuration, so each population is summarised by its seed mean. A test set without gold entities has no
F1: its rows are ``undefined``, never 0.

**Interval and p-value: a t-test for the crossed seeds × sentences design**
(:func:`sparsenlp.analysis.crossed.contrast`). Each run's F1 is linearised into per-sentence values whose
mean is the run's F1; the variance of ΔF1 is the seed part (the spread of run F1 around each population's
seed mean, per-run noise included) plus the part of sentence sampling that does not cancel between the
populations (they tag the same sentences). The seed part has few degrees of freedom: Welch's k − 1 per
side (valid when pruning changes how much seeds spread, where the pooled t is liberal), combined with the
sentence part by Satterthwaite's rule. The interval is ΔF1 ± t·se and
the p-value two-sided from the same t, so a verdict and its interval never disagree. The relative change
ΔF1 / dense F1 gets a delta-method interval from the same parts.

Why not a bootstrap: resampling seeds and sentences counts the runs' noise twice when seeds matter little
(intervals 1.5× too wide), and a bootstrap over 3 seeds keeps (k − 1)/k of their variance when they matter
a lot (12% false positives at p < 0.05). ``bench/stats_calibration.py`` measures this test's false-positive
rate, coverage and power on sweeps with a known truth (BENCHMARKS.md).

**Seeds are not paired** across populations, even when the same seed ids exist in both: a shared seed
fixes the initial classifier and the data order, but pruning changes the trajectory from its first
step on, and populations may differ in size.

**One seed on either side** cannot measure seed spread: the row is ``replicated=False``, its interval is
over test sentences only (it ignores seed variation, so it is far too narrow when seeds differ), and
:func:`adjust` leaves it out of every family and verdict (``verdict="unreplicated"``) unless
``allow_unreplicated``.

**Multiple comparisons.** Within each family (default: one arm × sparsity × test condition, i.e. the
question "at this setting, which languages change?") p-values are adjusted across languages with
``statsmodels.stats.multitest.multipletests``: Holm (family-wise error, valid under any dependence
between languages) by default, Benjamini–Hochberg (false discovery rate) on request. The verdict uses
the adjusted p-value; the intervals are per comparison (unadjusted).
"""
from __future__ import annotations

import gc
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import numpy as np
import pandas as pd

from sparsenlp.analysis.crossed import (
    NAN,
    Contrast,
    contrast,
    linearized_f1,
    ratio_weights,
)
from sparsenlp.analysis.encode import Encodings, Run, TestSet
from sparsenlp.errors import SparseNLPError

FAMILY = ("arm", "sparsity", "condition")
# accepted names → statsmodels multipletests method names
CORRECTIONS = {"holm": "holm", "bh": "fdr_bh", "fdr_bh": "fdr_bh", "by": "fdr_by", "fdr_by": "fdr_by",
               "bonferroni": "bonferroni", "holm-sidak": "holm-sidak", "hommel": "hommel"}
VERDICTS = ("better", "worse", "indistinguishable")
UNREPLICATED, UNDEFINED = "unreplicated", "undefined"  # verdicts of rows no test speaks for
COLUMNS = (
    "lang", "arm", "sparsity", "condition", "n_seeds", "n_dense_seeds", "n_sparse_seeds", "replicated",
    "n_sentences", "n_gold_spans", "single_entity_share", "f1_dense", "f1_sparse", "delta_f1", "se", "df",
    "ci_low", "ci_high", "rel_delta_f1", "rel_ci_low", "rel_ci_high", "p_value", "p_adjusted", "correction",
    "family_size", "verdict",
)


@dataclass(frozen=True)
class Cell:
    """One comparison: a language's sparse runs of one arm and sparsity vs its dense runs, on one test
    condition. Each run is one seed's prediction rows for this language and condition."""

    lang: str
    arm: str
    sparsity: float
    condition: str
    dense: Sequence[Run]
    sparse: Sequence[Run]


def span_f1(tp: np.ndarray, pred: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Micro span F1 from summed counts, 2·TP / (predicted + gold); 0 when there is no span at all
    (seqeval with ``zero_division=0``)."""
    tp, denom = np.asarray(tp, dtype=np.float64), np.asarray(pred, dtype=np.float64) + np.asarray(gold)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2.0 * tp / np.where(denom > 0, denom, 1.0), 0.0)


def check_cell(cell: Cell) -> None:
    for name, runs in (("dense", cell.dense), ("sparse", cell.sparse)):
        if len(runs) == 0:
            raise SparseNLPError(f"no {name} run for lang={cell.lang} arm={cell.arm} sparsity={cell.sparsity} "
                                 f"condition={cell.condition}; every cell needs runs of both populations")


def encoded(cell: Cell, encodings: Encodings) -> tuple[TestSet, list[np.ndarray]]:
    """The cell's test set and, per population (dense, sparse), its runs' per-sentence (tp, pred) counts as
    two runs × sentences arrays stacked: shape (2, runs, sentences)."""
    check_cell(cell)
    test = encodings.test_set(cell.lang, cell.condition, cell.dense[0])
    counts = []
    for name, population in (("dense", cell.dense), ("sparse", cell.sparse)):
        arrays = [encodings.encode(cell.lang, cell.condition, run,
                                   f"{name} run {k} of arm={cell.arm} sparsity={cell.sparsity}")
                  for k, run in enumerate(population)]
        counts.append(np.stack([np.vstack([a.tp for a in arrays]), np.vstack([a.pred for a in arrays])]))
    return test, counts


def f1_contrast(dense: np.ndarray, sparse: np.ndarray, gold: np.ndarray, confidence: float = 0.95) -> Contrast:
    """Inference on ΔF1 = mean sparse F1 − mean dense F1 from per-sentence counts: ``dense``, ``sparse`` are
    (tp, pred) pairs of runs × sentences arrays, ``gold`` the gold spans per sentence (at least one)."""
    return contrast([linearized_f1(sparse[0], sparse[1], gold), linearized_f1(dense[0], dense[1], gold)],
                    (1.0, -1.0), confidence)


def compare_cell(cell: Cell, encodings: Encodings, confidence: float = 0.95) -> dict[str, Any]:
    """One row of :data:`COLUMNS` (p-value not yet adjusted)."""
    test, (dense, sparse) = encoded(cell, encodings)
    gold = test.gold
    row = {"lang": cell.lang, "arm": cell.arm, "sparsity": float(cell.sparsity), "condition": cell.condition,
           "n_seeds": len(cell.sparse), "n_dense_seeds": len(cell.dense), "n_sparse_seeds": len(cell.sparse),
           "replicated": min(len(cell.dense), len(cell.sparse)) >= 2, "n_sentences": len(test),
           "n_gold_spans": int(gold.sum()), "single_entity_share": test.single_entity_share,
           "p_adjusted": math.nan, "correction": "none", "family_size": 0, "verdict": ""}
    if gold.sum() == 0:  # no entity to find: F1 is undefined, not 0
        return {**row, "f1_dense": math.nan, "f1_sparse": math.nan, "delta_f1": math.nan, "se": math.nan,
                "df": math.nan, "ci_low": math.nan, "ci_high": math.nan, "rel_delta_f1": math.nan,
                "rel_ci_low": math.nan, "rel_ci_high": math.nan, "p_value": math.nan}
    tables = [linearized_f1(sparse[0], sparse[1], gold), linearized_f1(dense[0], dense[1], gold)]
    f1_sparse = math.fsum(span_f1(sparse[0].sum(1), sparse[1].sum(1), gold.sum())) / len(cell.sparse)
    f1_dense = math.fsum(span_f1(dense[0].sum(1), dense[1].sum(1), gold.sum())) / len(cell.dense)
    delta = f1_contrast(dense, sparse, gold, confidence)
    # the relative change's linearisation is centred on 0 (its weights cancel at the observed means): its
    # interval is the estimate ± the half-widths of that contrast
    rel = contrast(tables, ratio_weights(f1_dense, f1_sparse), confidence) if f1_dense > 0 else NAN
    rel_delta = (f1_sparse - f1_dense) / f1_dense if f1_dense > 0 else math.nan
    return {**row, "f1_dense": f1_dense, "f1_sparse": f1_sparse, "delta_f1": f1_sparse - f1_dense,
            "se": delta.se, "df": delta.df, "ci_low": delta.ci_low, "ci_high": delta.ci_high,
            "rel_delta_f1": rel_delta, "rel_ci_low": rel_delta + rel.ci_low - rel.estimate,
            "rel_ci_high": rel_delta + rel.ci_high - rel.estimate, "p_value": delta.p_value}


def language_groups(cells: Iterable[Cell]) -> Iterator[tuple[str, list[Cell]]]:
    """Runs of consecutive cells of one language, so that a caller can stream a sweep one language at a
    time; results never depend on how cells are grouped or ordered."""
    for lang, group in groupby(cells, key=lambda cell: cell.lang):
        yield lang, list(group)


def compare(cells: Iterable[Cell], confidence: float = 0.95, encodings: Encodings | None = None) -> pd.DataFrame:
    """One row per cell (:data:`COLUMNS`), p-values not yet adjusted (see :func:`adjust`).

    Columns: the cell's ``lang, arm, sparsity, condition``; ``n_dense_seeds``, ``n_sparse_seeds`` (runs per
    population), ``n_seeds`` (= ``n_sparse_seeds``, the arm's replicates) and ``replicated`` (≥ 2 seeds on
    both sides); ``n_sentences``, ``n_gold_spans`` and ``single_entity_share`` of the test set; ``f1_dense``,
    ``f1_sparse`` (seed means); ``delta_f1`` with its standard error ``se``, degrees of freedom ``df`` and
    interval ``ci_low, ci_high``; ``rel_delta_f1`` = ΔF1 / dense F1 and its interval; ``p_value``; and,
    filled by :func:`adjust`, ``p_adjusted, correction, family_size, verdict``. ``encodings``: a cache shared
    with other analyses of the same runs."""
    encodings = Encodings() if encodings is None else encodings
    return pd.DataFrame([compare_cell(cell, encodings, confidence) for cell in cells], columns=list(COLUMNS))


def correction_name(method: str) -> str:
    """The statsmodels ``multipletests`` name of a correction: ``holm`` (default), ``bh`` / ``fdr_bh``, ..."""
    try:
        return CORRECTIONS[method]
    except KeyError:
        raise SparseNLPError(f"unknown multiple-comparison correction {method!r}; use one of "
                             f"{', '.join(CORRECTIONS)}") from None


def _multipletests(p: np.ndarray, alpha: float, method: str) -> np.ndarray:
    """Adjusted p-values from statsmodels. Its Holm branch calls ``gc.collect()``, whose cost grows with
    every live object (millions while prediction rows are loaded); objects that exist before the call
    are frozen out of that collection, which changes nothing else. Imported here: statsmodels (and the
    scipy.stats it loads) costs a second to import, which the workers that never adjust need not pay."""
    from statsmodels.stats.multitest import multipletests

    gc.freeze()
    try:
        return multipletests(p, alpha=alpha, method=method)[1]
    finally:
        gc.unfreeze()


def adjust(table: pd.DataFrame, method: str = "holm", alpha: float = 0.05, family: Sequence[str] = FAMILY,
           allow_unreplicated: bool = False) -> pd.DataFrame:
    """Adjust ``p_value`` within each family (rows sharing the ``family`` columns: by default one arm ×
    sparsity × condition, across languages) and set ``p_adjusted``, ``correction``, ``family_size`` and
    ``verdict`` (better / worse when the adjusted p-value is below ``alpha``, else indistinguishable).

    Rows with one seed on a side (``replicated=False``) take no part in any family and get the verdict
    ``unreplicated`` unless ``allow_unreplicated``; rows without a p-value (no gold entity) are ``undefined``."""
    name = correction_name(method)
    out = table.copy()
    out["p_adjusted"] = np.nan
    out["family_size"] = 0
    replicated = out["replicated"].astype(bool) if "replicated" in out else pd.Series(True, index=out.index)
    tested = out["p_value"].notna() & (replicated | allow_unreplicated)
    for _, index in out.groupby(list(family), dropna=False, sort=False).groups.items():
        members = tested.loc[index]
        if members.any():
            rows = members.index[members]
            out.loc[rows, "p_adjusted"] = _multipletests(out.loc[rows, "p_value"].to_numpy(float), alpha, name)
        out.loc[index, "family_size"] = int(members.sum())
    out["correction"] = name
    significant = out["p_adjusted"] < alpha
    out["verdict"] = np.select(
        [significant & (out["delta_f1"] > 0), significant & (out["delta_f1"] < 0), tested,
         out["p_value"].isna()], ["better", "worse", "indistinguishable", UNDEFINED], UNREPLICATED)
    return out


def significance_table(cells: Iterable[Cell], confidence: float = 0.95, correction: str = "holm",
                       alpha: float = 0.05, family: Sequence[str] = FAMILY, encodings: Encodings | None = None,
                       allow_unreplicated: bool = False) -> pd.DataFrame:
    """:func:`compare` then :func:`adjust`: one row per cell with ΔF1, its CI, p-value, adjusted p-value
    and verdict."""
    return adjust(compare(cells, confidence, encodings), correction, alpha, family, allow_unreplicated)


def verdict_summary(table: pd.DataFrame, tiers: Mapping[str, str] | None = None,
                    by: Sequence[str] = FAMILY) -> pd.DataFrame:
    """Per ``by`` group (default arm × sparsity × condition) and tier (``all`` first, then each tier): how
    many languages are significantly better, worse or indistinguishable from dense, how many were not
    tested (``unreplicated``: one seed on a side; ``undefined``: no F1), and over the tested languages
    whose relative change is defined too (``n_means`` of them) the mean of ΔF1 and of ΔF1 / dense F1, and
    the median and standard deviation of ΔF1 (the spread matters as much as the mean).

    Tiers come from ``tiers`` (language → tier) or else a ``tier`` column of ``table``."""
    df = table.copy()
    if tiers is not None:
        df["tier"] = df["lang"].map(tiers)
    if "tier" not in df:
        raise SparseNLPError("verdict_summary needs tiers: pass tiers={lang: tier} or a table with a 'tier' column")
    df["tier"] = df["tier"].fillna("unknown")
    parts = [df.assign(tier="all"), df]
    rows = []
    for part in parts:
        for keys, g in part.groupby([*by, "tier"], dropna=False, sort=True):
            counts = g["verdict"].value_counts()
            means = g[g["verdict"].isin(VERDICTS) & g["delta_f1"].notna() & g["rel_delta_f1"].notna()]
            rows.append({**dict(zip([*by, "tier"], keys)), "n_langs": int(g["lang"].nunique()),
                         **{v: int(counts.get(v, 0)) for v in (*VERDICTS, UNREPLICATED, UNDEFINED)},
                         "n_means": int(means["lang"].nunique()), "delta_f1_mean": means["delta_f1"].mean(),
                         "delta_f1_median": means["delta_f1"].median(), "delta_f1_std": means["delta_f1"].std(),
                         "rel_delta_f1_mean": means["rel_delta_f1"].mean()})
    out = pd.DataFrame(rows)
    order = {t: k for k, t in enumerate(["all", *sorted(set(df["tier"]))])}
    return out.sort_values([*by, "tier"], key=lambda s: s.map(order) if s.name == "tier" else s,
                           kind="stable").reset_index(drop=True)
