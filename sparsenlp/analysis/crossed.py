"""Inference on a contrast of seed means in the crossed seeds × sentences design: an estimate, its standard
error, degrees of freedom, a t-interval and a p-value.

Every run (seed) of a population scores the same test sentences, and the populations compared (dense and
sparse) score the same sentences too. A per-run statistic that is a mean over sentences (a linearised span
F1, a PIE rate) is a table ``runs × sentences`` per population, and the quantity compared is a weighted sum
of population means, ``Σ_p w_p · mean(table_p)`` (ΔF1: +1 sparse, −1 dense).

**Model.** value(run r, sentence i) = μ_p + α_r (seed) + β_pi (sentence, per population) + γ_ri (noise). The
estimate's variance is ``Σ_p w_p² (σ²_α,p + σ²_γ,p / n) / k_p + Var(Σ_p w_p β̄_p)``: seed spread and per-run
noise, which replicate seeds measure together, plus the sentence-sampling part that does not cancel between
the populations. Per population the mean square between runs, ``MS_runs = n · var(run means)``, estimates
``n σ²_α + σ²_γ`` with k − 1 degrees of freedom, and the interaction mean square estimates ``σ²_γ`` with
(k − 1)(n − 1). The sentence part is the variance over sentences of the weighted difference of sentence
means, less the noise it contains (``Σ w² MS_int / k``), over n, kept when positive; it is 0 when the
populations are alike (the null) and small next to the seed part with hundreds of sentences.

**Degrees of freedom.** The seed part is known only from k seeds per side, and each side keeps its own
k − 1 (Welch), whatever the seed counts: pruning may well change how much seeds spread, and the pooled t's
S + D − 2 degrees of freedom then make the test liberal (at 3 + 3 seeds, 9–10% false positives when one side's
seeds spread and the other's do not). The price is a slightly conservative test when both sides spread alike.
The parts combine by Satterthwaite's rule. ``bench/stats_calibration.py`` measures the false-positive rate and
coverage this gives, with equal and unequal spreads (BENCHMARKS.md).

**One seed on a side** leaves seed spread unmeasurable: the contrast is *unreplicated*, and its variance is
the sentence-paired one, ``var_i(Σ_p w_p · value_pi) / n`` with n − 1 degrees of freedom, which counts
per-run noise and sentence sampling but not seed spread (with seeds that differ, its false-positive rate is
far above its level; the report keeps such rows out of its verdicts unless asked).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats


@dataclass(frozen=True)
class Contrast:
    """A contrast's estimate with its standard error, degrees of freedom, interval and two-sided p-value."""

    estimate: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float
    replicated: bool


NAN = Contrast(math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, False)


def linearized_f1(tp: np.ndarray, pred: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Per run and sentence, the span F1 linearised around the run's own totals: row r's mean over sentences is
    run r's F1 = 2·TP / (predicted + gold) exactly, and each entry is that F1 plus n times the sentence's
    influence ``(2 tp − F1 (pred + gold)) / (predicted + gold)``. ``tp``, ``pred``: runs × sentences; ``gold``:
    sentences. Needs at least one gold span (F1 is otherwise undefined)."""
    tp, pred = np.atleast_2d(np.asarray(tp, dtype=np.float64)), np.atleast_2d(np.asarray(pred, dtype=np.float64))
    gold = np.asarray(gold, dtype=np.float64)
    denom = pred.sum(axis=1, keepdims=True) + gold.sum()
    f1 = 2.0 * tp.sum(axis=1, keepdims=True) / denom
    return f1 + gold.size * (2.0 * tp - f1 * (pred + gold)) / denom


def mean_squares(table: np.ndarray) -> tuple[float, float]:
    """(between runs, run × sentence interaction) mean squares of a runs × sentences table (NaN for one run)."""
    k, n = table.shape
    if k < 2:
        return math.nan, math.nan
    run_means = table.mean(axis=1)
    between = n * float(run_means.var(ddof=1))
    residual = table - run_means[:, None] - table.mean(axis=0)[None, :] + table.mean()
    within = float(np.einsum("ij,ij->", residual, residual)) / ((k - 1) * max(n - 1, 1))
    return between, within


def _satterthwaite(terms: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(variance, df) of a sum of independent variance terms given as (value, df)."""
    variance = sum(v for v, _ in terms)
    denominator = sum(v * v / df for v, df in terms if v > 0)
    return variance, (variance * variance / denominator if denominator > 0 else math.inf)


def contrast(tables: Sequence[np.ndarray], weights: Sequence[float], confidence: float = 0.95) -> Contrast:
    """Inference on ``Σ_p weights[p] · mean(tables[p])``, each table runs × sentences over the same sentences
    (see the module docstring)."""
    n = tables[0].shape[1]
    if any(t.shape[1] != n for t in tables) or len(tables) != len(weights):
        raise ValueError("every table needs the same sentences and one weight")
    w = [float(x) for x in weights]
    difference = sum(wp * t.mean(axis=0) for wp, t in zip(w, tables))
    estimate = float(difference.mean())
    if n < 2:
        return Contrast(estimate, math.nan, math.nan, math.nan, math.nan, math.nan, False)
    sizes = [t.shape[0] for t in tables]
    replicated = min(sizes) >= 2
    sentence_var = float(difference.var(ddof=1)) / n
    if not replicated:
        terms = [(sentence_var, n - 1)]
    else:
        squares = [mean_squares(t) for t in tables]
        seeds = [(wp * wp * between / (n * k), k - 1) for wp, k, (between, _) in zip(w, sizes, squares)]
        noise = sum(wp * wp * within / k for wp, k, (_, within) in zip(w, sizes, squares)) / n
        terms = [*seeds, (max(0.0, sentence_var - noise), n - 1)]
    variance, df = _satterthwaite(terms)
    return _finish(estimate, math.sqrt(max(variance, 0.0)), df, confidence, replicated)


def _finish(estimate: float, se: float, df: float, confidence: float, replicated: bool) -> Contrast:
    if se == 0.0:  # populations that agree on every sentence: no spread to test against
        p = 1.0 if estimate == 0.0 else 0.0
        return Contrast(estimate, 0.0, df, estimate, estimate, p, replicated)
    q = float(scipy_stats.t.ppf(0.5 + confidence / 2.0, df))
    p = float(2.0 * scipy_stats.t.sf(abs(estimate) / se, df))
    return Contrast(estimate, se, df, estimate - q * se, estimate + q * se, p, replicated)


def ratio_weights(dense_mean: float, sparse_mean: float) -> tuple[float, float]:
    """(sparse, dense) weights of the relative change sparse / dense − 1, linearised at the observed means
    (the delta method): 1 / dense and − sparse / dense²."""
    return 1.0 / dense_mean, -sparse_mean / dense_mean**2
