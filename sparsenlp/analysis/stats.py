"""Sparse vs dense, per language: ΔF1 with a CI over seeds and sentences, a p-value, corrected across languages.

One :class:`Cell` is one language × arm × sparsity × test condition: the dense runs and the sparse runs
of that language (one run per seed, each a list of prediction rows ``{"id", "tokens", "gold", "pred"}``),
scored on the same test sentences.

**Statistic.** ΔF1 = (mean over sparse seeds of span F1) − (mean over dense seeds of span F1), span F1
being seqeval's micro F1 (default, conlleval-compatible mode) on the whole test set of one run. Seeds
are replicates of a training configuration, so each population is summarised by its seed mean.

**Interval: two-level bootstrap** (``resample=("seeds", "sentences")``). A replicate draws the test
sentences with replacement (one draw shared by both populations: the comparison is paired over
sentences, since both populations tag the same sentences) and, independently, each population's seeds
with replacement; it recomputes every drawn run's F1 on the drawn sentences and the difference of seed
means. Seeds and sentences are crossed factors (every seed tags every sentence), for which resampling
both independently is Owen's (2007) pigeonhole bootstrap, mildly conservative for crossed designs. The
seed level, though, resamples only a few runs (typically 3), and a bootstrap of k values spreads with
(k − 1)/k of their variance: with 3 seeds, read the intervals as approximate and prefer more seeds to
finer statistics. The interval is the equal-tailed percentile interval. Per-sentence span counts
(correct, predicted, gold) are extracted once (:mod:`sparsenlp.analysis.encode`), so a replicate is a
few sums: F1 = 2·TP / (predicted + gold).

**Seeds are not paired** across populations, even when the same seed ids exist in both: a shared seed
fixes the initial classifier and the data order, but pruning changes the trajectory from its first
step on, populations often differ in size (more dense seeds), and treating them as independent samples
is the conservative choice when a pairing would have been positively correlated.

**p-value: paired bootstrap test** on the same replicates: twice the smaller share of replicates on
either side of 0 (:func:`~sparsenlp.analysis.resample.bootstrap_p_value`), i.e. the level at which the
percentile interval just excludes 0. It is paired over sentences and, unlike a randomisation test over
sentences of the seed-mean predictions (Yeh 2000), it counts seed-to-seed variation as noise: on a
10k-sentence test set two dense seeds differ "significantly" by a sentence-level test, so such a test
would call differences significant that a rerun with other seeds would not reproduce. Identical
populations give p = 1; a consistent improvement gives p near its floor 2 / (B + 1). Its rejection rate
under a realistic null and its power are measured by ``bench/stats_calibration.py`` (BENCHMARKS.md).

**Multiple comparisons.** Within each family (default: one arm × sparsity × test condition, i.e. the
question "at this setting, which languages change?") p-values are adjusted across languages with
``statsmodels.stats.multitest.multipletests``: Holm (family-wise error, valid under any dependence
between languages) by default, Benjamini–Hochberg (false discovery rate) on request. The verdict uses
the adjusted p-value; the intervals are per comparison (unadjusted).
"""
from __future__ import annotations

import gc
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import numpy as np
import pandas as pd

from sparsenlp.analysis.encode import Encodings, Run
from sparsenlp.analysis.resample import (ResampleCounts, SentenceSums, bootstrap_p_value, keyed_rng,
                                         percentile_interval)
from sparsenlp.errors import SparseNLPError

RESAMPLE = ("seeds", "sentences")
FAMILY = ("arm", "sparsity", "condition")
# accepted names → statsmodels multipletests method names
CORRECTIONS = {"holm": "holm", "bh": "fdr_bh", "fdr_bh": "fdr_bh", "by": "fdr_by", "fdr_by": "fdr_by",
               "bonferroni": "bonferroni", "holm-sidak": "holm-sidak", "hommel": "hommel"}
VERDICTS = ("better", "worse", "indistinguishable")
COLUMNS = (
    "lang", "arm", "sparsity", "condition", "n_seeds", "n_dense_seeds", "n_sparse_seeds", "n_sentences",
    "f1_dense", "f1_sparse", "delta_f1", "ci_low", "ci_high", "rel_delta_f1", "rel_ci_low", "rel_ci_high",
    "p_value", "p_adjusted", "correction", "family_size", "verdict",
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


def seed_picks(rng: np.random.Generator, k: int, n_boot: int, resample_seeds: bool) -> np.ndarray:
    """(n_boot × k) run indices of each replicate's population: drawn with replacement, or all k runs."""
    if resample_seeds:
        return rng.integers(0, k, size=(n_boot, k))
    return np.broadcast_to(np.arange(k), (n_boot, k))


def population_f1(run_f1: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Seed-mean F1 per replicate: ``run_f1`` (k runs × B replicates), ``picks`` (B × k) → (B,)."""
    return run_f1[picks.T, np.arange(run_f1.shape[1])].mean(axis=0)


@dataclass(frozen=True)
class Settings:
    """How the comparisons resample: replicates, seed, interval level and levels resampled."""

    n_boot: int = 2000
    seed: int = 0
    confidence: float = 0.95
    resample: tuple[str, ...] = RESAMPLE

    def __post_init__(self) -> None:
        unknown = set(self.resample) - set(RESAMPLE)
        if unknown:
            raise SparseNLPError(f"unknown resampling level(s) {sorted(unknown)}; use {RESAMPLE}")
        if self.n_boot < 1:
            raise SparseNLPError(f"n_boot must be ≥ 1, not {self.n_boot}")
        if not 0 < self.confidence < 1:
            raise SparseNLPError(f"confidence must lie in (0, 1), not {self.confidence}")

    def sums(self, counts: ResampleCounts | None = None) -> SentenceSums:
        """A collector of rows to resample; ``counts`` shares resamples between languages of one call."""
        return SentenceSums(self.seed, self.n_boot, "sentences" in self.resample, counts)

    def counts(self) -> ResampleCounts:
        return ResampleCounts(self.seed, self.n_boot)


def _check(cell: Cell) -> None:
    for name, runs in (("dense", cell.dense), ("sparse", cell.sparse)):
        if len(runs) == 0:
            raise SparseNLPError(f"no {name} run for lang={cell.lang} arm={cell.arm} sparsity={cell.sparsity} "
                                 f"condition={cell.condition}; every cell needs runs of both populations")


def plan_language(lang: str, cells: Sequence[Cell], encodings: Encodings, sums: SentenceSums,
                  settings: Settings) -> Callable[[], list[dict[str, Any]]]:
    """Queue the span counts of every distinct run of one language's cells (and each test set's gold
    spans, once) in ``sums``; the returned function, called after ``sums.compute()``, scores the runs
    and compares the cells (unadjusted rows)."""
    queued: dict[tuple[int, str], tuple[int, np.ndarray]] = {}  # (run, condition) → (handle, totals)
    gold: dict[str, tuple[int, float]] = {}  # condition → (handle, gold spans)
    for cell in cells:
        _check(cell)
        test = encodings.test_set(lang, cell.condition, cell.dense[0])
        if cell.condition not in gold:
            gold[cell.condition] = (sums.add(lang, test.ids, test.gold), float(test.gold.sum()))
        for name, population in (("dense", cell.dense), ("sparse", cell.sparse)):
            for k, run in enumerate(population):
                key = (id(run), cell.condition)
                if key not in queued:
                    counts = encodings.encode(lang, cell.condition, run,
                                              f"{name} run {k} of arm={cell.arm} sparsity={cell.sparsity}")
                    rows = np.vstack([counts.tp, counts.pred])
                    queued[key] = (sums.add(lang, test.ids, rows), rows.sum(axis=1))

    def finish() -> list[dict[str, Any]]:
        scored = {}
        gold_sums = {c: (sums.sums(h)[:, 0], total) for c, (h, total) in gold.items()}
        for key, (handle, totals) in queued.items():
            s, (g, g_total) = sums.sums(handle), gold_sums[key[1]]
            scored[key] = (float(span_f1(totals[0], totals[1], g_total)), span_f1(s[:, 0], s[:, 1], g))
        return [_compare_cell(cell, scored, len(encodings.tests[(lang, cell.condition)]), settings) for cell in cells]

    return finish


def _compare_cell(cell: Cell, scored: Mapping[tuple[int, str], tuple[float, np.ndarray]], n_sentences: int,
                  settings: Settings) -> dict[str, Any]:
    def population(runs: Sequence[Run], name: str) -> tuple[float, np.ndarray]:
        points, reps = zip(*(scored[(id(run), cell.condition)] for run in runs))
        rng = keyed_rng(settings.seed, "seeds", name, cell.lang, cell.condition, cell.arm, float(cell.sparsity))
        picks = seed_picks(rng, len(runs), settings.n_boot, "seeds" in settings.resample)
        return math.fsum(points) / len(points), population_f1(np.vstack(reps), picks)

    f1_dense, dense_reps = population(cell.dense, "dense")
    f1_sparse, sparse_reps = population(cell.sparse, "sparse")
    delta = sparse_reps - dense_reps
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(dense_reps > 0, delta / np.where(dense_reps > 0, dense_reps, 1.0), np.nan)
    ci_low, ci_high = percentile_interval(delta, settings.confidence)
    rel_low, rel_high = percentile_interval(rel, settings.confidence)
    return {
        "lang": cell.lang, "arm": cell.arm, "sparsity": float(cell.sparsity), "condition": cell.condition,
        "n_seeds": len(cell.sparse), "n_dense_seeds": len(cell.dense), "n_sparse_seeds": len(cell.sparse),
        "n_sentences": n_sentences, "f1_dense": f1_dense, "f1_sparse": f1_sparse, "delta_f1": f1_sparse - f1_dense,
        "ci_low": ci_low, "ci_high": ci_high,
        "rel_delta_f1": (f1_sparse - f1_dense) / f1_dense if f1_dense > 0 else math.nan,
        "rel_ci_low": rel_low, "rel_ci_high": rel_high, "p_value": bootstrap_p_value(delta),
        "p_adjusted": math.nan, "correction": "none", "family_size": 0, "verdict": "",
    }


def language_groups(cells: Iterable[Cell]) -> Iterator[tuple[str, list[Cell]]]:
    """Runs of consecutive cells of one language. Results never depend on how a language's cells are
    grouped (every random stream is keyed by names), so a caller can stream a sweep one language at a
    time; a language whose cells are not consecutive only costs a second draw of its resamples."""
    for lang, group in groupby(cells, key=lambda cell: cell.lang):
        yield lang, list(group)


def compare(cells: Iterable[Cell], n_boot: int = 2000, seed: int = 0, confidence: float = 0.95,
            resample: Sequence[str] = RESAMPLE, encodings: Encodings | None = None) -> pd.DataFrame:
    """One row per cell (:data:`COLUMNS`), p-values not yet adjusted (see :func:`adjust`).

    Columns: the cell's ``lang, arm, sparsity, condition``; ``n_dense_seeds``, ``n_sparse_seeds`` (runs per
    population) and ``n_seeds`` (= ``n_sparse_seeds``, the arm's replicates); ``n_sentences``;
    ``f1_dense``, ``f1_sparse`` (seed means); ``delta_f1`` and its interval ``ci_low, ci_high``;
    ``rel_delta_f1`` = ΔF1 / dense F1 and its interval ``rel_ci_low, rel_ci_high``; ``p_value``; and,
    filled by :func:`adjust`, ``p_adjusted, correction, family_size, verdict``.

    ``resample`` chooses the bootstrap's levels: both (the default), or only ``"sentences"`` / ``"seeds"``
    (to study each source of variation on its own). Results depend only on ``seed`` and each cell's own
    data and names, never on the other cells passed or their order. ``encodings``: a cache shared with
    other analyses of the same runs.
    """
    settings = Settings(n_boot, seed, confidence, tuple(resample))
    encodings = Encodings() if encodings is None else encodings
    counts = settings.counts()
    rows = []
    for lang, lang_cells in language_groups(cells):
        sums = settings.sums(counts)
        finish = plan_language(lang, lang_cells, encodings, sums, settings)
        sums.compute()
        rows += finish()
    return pd.DataFrame(rows, columns=list(COLUMNS))


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


def adjust(table: pd.DataFrame, method: str = "holm", alpha: float = 0.05,
           family: Sequence[str] = FAMILY) -> pd.DataFrame:
    """Adjust ``p_value`` within each family (rows sharing the ``family`` columns: by default one arm ×
    sparsity × condition, across languages) and set ``p_adjusted``, ``correction``, ``family_size`` and
    ``verdict`` (better / worse when the adjusted p-value is below ``alpha``, else indistinguishable)."""
    name = correction_name(method)
    out = table.copy()
    out["p_adjusted"] = np.nan
    out["family_size"] = 0
    for _, index in out.groupby(list(family), dropna=False, sort=False).groups.items():
        p = out.loc[index, "p_value"]
        ok = p.notna()
        if ok.any():
            out.loc[p.index[ok], "p_adjusted"] = _multipletests(p[ok].to_numpy(float), alpha, name)
        out.loc[index, "family_size"] = int(ok.sum())
    out["correction"] = name
    significant = out["p_adjusted"] < alpha
    out["verdict"] = np.select([significant & (out["delta_f1"] > 0), significant & (out["delta_f1"] < 0)],
                               ["better", "worse"], "indistinguishable")
    return out


def significance_table(cells: Iterable[Cell], n_boot: int = 2000, seed: int = 0, confidence: float = 0.95,
                       correction: str = "holm", alpha: float = 0.05, family: Sequence[str] = FAMILY,
                       resample: Sequence[str] = RESAMPLE, encodings: Encodings | None = None) -> pd.DataFrame:
    """:func:`compare` then :func:`adjust`: one row per cell with ΔF1, its CI, p-value, adjusted p-value
    and verdict. Warns when ``n_boot`` is too small for any adjusted p-value of a family to reach ``alpha``."""
    table = adjust(compare(cells, n_boot, seed, confidence, resample, encodings), correction, alpha, family)
    warn_resolution(table, n_boot, correction, alpha)
    return table


def warn_resolution(table: pd.DataFrame, n_boot: int, correction: str, alpha: float) -> None:
    """Warn when the bootstrap p-value's floor, 2 / (n_boot + 1), is too coarse for a family-wise
    correction over the largest family to ever reach ``alpha``."""
    largest = int(table["family_size"].max()) if len(table) else 0
    floor = 2.0 / (n_boot + 1)
    if correction_name(correction) in ("holm", "bonferroni", "holm-sidak") and largest * floor >= alpha:
        warnings.warn(f"with n_boot={n_boot} the smallest p-value is {floor:.2g}, so a {correction} correction over "
                      f"{largest} languages cannot reach alpha={alpha}; use n_boot > {math.ceil(2 * largest / alpha)}",
                      stacklevel=3)


def verdict_summary(table: pd.DataFrame, tiers: Mapping[str, str] | None = None,
                    by: Sequence[str] = FAMILY) -> pd.DataFrame:
    """Per ``by`` group (default arm × sparsity × condition) and tier (``all`` first, then each tier): how
    many languages are significantly better, worse or indistinguishable from dense, and the mean, median
    and standard deviation of ΔF1 across languages (the spread matters as much as the mean).

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
            rows.append({**dict(zip([*by, "tier"], keys)), "n_langs": int(g["lang"].nunique()),
                         **{v: int(counts.get(v, 0)) for v in VERDICTS},
                         "delta_f1_mean": g["delta_f1"].mean(), "delta_f1_median": g["delta_f1"].median(),
                         "delta_f1_std": g["delta_f1"].std(), "rel_delta_f1_mean": g["rel_delta_f1"].mean()})
    out = pd.DataFrame(rows)
    order = {t: k for k, t in enumerate(["all", *sorted(set(df["tier"]))])}
    return out.sort_values([*by, "tier"], key=lambda s: s.map(order) if s.name == "tier" else s,
                           kind="stable").reset_index(drop=True)
