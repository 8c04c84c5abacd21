"""PIE rates with a noise floor: sparse vs dense next to dense vs dense, at the same population sizes.

A PIE (:mod:`sparsenlp.evaluation.pie`) is a unit whose modal prediction differs between two
populations of runs. Two populations of *dense* runs with different seeds already disagree on some
units, so a PIE rate means something only next to that **noise floor**, and only if both compare
populations of the same sizes (the modal prediction of a smaller population is noisier):

- **halves** (k ≥ 4 dense seeds): split the dense seeds into disjoint halves A (⌊k/2⌋ seeds) and B
  (⌈k/2⌉), over every balanced split (at most ``max_splits``, drawn at random beyond that). With
  m = min(|B|, sparse seeds), the floor is the rate at which the mode of A differs from the mode of m
  seeds of B, and ``pie_rate`` the rate at which it differs from the mode of m sparse seeds (both
  averaged over the subsets of size m). If sparse runs behaved like dense ones, the two would have the
  same expectation, so ``excess`` = ``pie_rate`` − ``noise_floor`` is centred on 0 under that null.
- **resampled** (fewer dense seeds: no two disjoint halves of ≥ 2 seeds): ``pie_rate`` is the rate
  between all sparse and all dense seeds, the floor the expected rate between two populations of the
  sparse population's size, each drawn with replacement from the dense seeds, computed exactly (every
  multiset of draws, weighted by its multinomial probability). Its bias has no known sign (the two
  draws share seeds, which makes them agree more; each repeats seeds, which makes its mode noisier),
  so such rows carry ``too_small=True`` (as do rows with fewer than 2 sparse seeds): with so few seeds
  a PIE rate cannot be told apart from seed noise. More dense seeds are the cheap fix (dense is one
  configuration among many sparse ones).

``pie_rate_all`` is the rate between all sparse and all dense seeds (:func:`~sparsenlp.evaluation.pie.find_pies`'s
``fraction``), for comparison with the PIE report. ``excess`` has a percentile interval from a bootstrap
over test sentences (the significance table's resamples when run together, see
:func:`sparsenlp.analysis.dense_comparison.compare_to_dense`). It holds the runs fixed: it says how
precisely the test set measures the excess of *these* seeds, not how a rerun with other seeds would vary.
At ``level="token"`` rates are PIE tokens over tokens, and sentences remain the resampled unit (tokens
of one sentence are not independent).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations, combinations_with_replacement
from typing import Any

import numpy as np
import pandas as pd

from sparsenlp.analysis.encode import Encodings, Run, TestSet
from sparsenlp.analysis.resample import SentenceSums, keyed_rng, percentile_interval
from sparsenlp.analysis.stats import Cell, Settings, language_groups
from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.pie import LEVELS, modal_codes

MIN_HALF = 2  # seeds per half for a split floor
MAX_SPLITS = 20
COLUMNS = (
    "lang", "arm", "sparsity", "condition", "level", "pie_rate", "noise_floor", "excess", "excess_ci_low",
    "excess_ci_high", "floor_method", "pie_rate_all", "n_dense", "n_sparse", "n_units", "too_small",
)


def balanced_splits(k: int, rng: np.random.Generator | None = None,
                    max_splits: int = MAX_SPLITS) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every split of runs 0..k−1 into halves of ⌊k/2⌋ and ⌈k/2⌉ (each unordered split once), or
    ``max_splits`` of them drawn without replacement by ``rng`` when there are more."""
    runs = range(k)
    first = [a for a in combinations(runs, k // 2) if k % 2 or 0 in a]  # even k: {A, B} = {B, A}
    splits = [(a, tuple(r for r in runs if r not in a)) for a in first]
    if len(splits) > max_splits:
        if rng is None:
            raise ValueError(f"{len(splits)} splits exceed max_splits={max_splits}; pass an rng to draw them")
        keep = np.sort(rng.choice(len(splits), size=max_splits, replace=False))
        splits = [splits[i] for i in keep]
    return splits


def subsets(runs: Sequence[int], size: int, rng: np.random.Generator | None = None,
            max_subsets: int = MAX_SPLITS) -> list[tuple[int, ...]]:
    """Every subset of ``size`` of ``runs``, or ``max_subsets`` of them drawn by ``rng`` when there are more."""
    every = list(combinations(runs, size))
    if len(every) > max_subsets:
        if rng is None:
            raise ValueError(f"{len(every)} subsets exceed max_subsets={max_subsets}; pass an rng to draw them")
        every = [every[i] for i in np.sort(rng.choice(len(every), size=max_subsets, replace=False))]
    return every


@dataclass(frozen=True)
class DenseSplits:
    """The dense side of a halves floor: each split's reference mode (half A), and the floor itself."""

    size: int  # m: seeds in each compared population
    reference_modes: tuple[np.ndarray, ...]
    floor: np.ndarray


def dense_splits(dense: np.ndarray, n_sparse: int, rng: np.random.Generator,
                 max_splits: int = MAX_SPLITS) -> DenseSplits:
    """Halves floor per unit: over balanced splits (A, B) of the dense runs, the share of size-m subsets
    of B whose mode differs from A's, m = min(|B|, ``n_sparse``)."""
    splits = balanced_splits(dense.shape[0], rng, max_splits)
    size = min(len(splits[0][1]), n_sparse)
    floor = np.zeros(dense.shape[1], dtype=np.float64)
    references = []
    for a, b in splits:
        reference = modal_codes(dense[list(a)])
        chosen = subsets(b, size, rng, max_splits)
        floor += sum(modal_codes(dense[list(c)]) != reference for c in chosen) / len(chosen)
        references.append(reference)
    return DenseSplits(size, tuple(references), floor / len(splits))


def matched_rate(sparse: np.ndarray, splits: DenseSplits, rng: np.random.Generator,
                 max_splits: int = MAX_SPLITS) -> np.ndarray:
    """Per unit: the share of (split, size-m subset of the sparse runs) whose mode differs from the split's
    reference mode: the sparse counterpart of :func:`dense_splits`'s floor."""
    modes = [modal_codes(sparse[list(c)]) for c in subsets(range(sparse.shape[0]), splits.size, rng, max_splits)]
    rate = np.zeros(sparse.shape[1], dtype=np.float64)
    for reference in splits.reference_modes:
        rate += sum(mode != reference for mode in modes) / len(modes)
    return rate / len(splits.reference_modes)


def resampled_floor(codes: np.ndarray, size: int) -> np.ndarray:
    """Per unit: the probability that two populations of ``size`` runs, each drawn with replacement from
    the rows of ``codes``, have different modal codes; exact, over every multiset of draws."""
    k, units = codes.shape
    share = np.zeros(codes.shape, dtype=np.float64)  # share[j, u]: P(mode = label of run j), j the first such run
    for draw in combinations_with_replacement(range(k), size):
        counts = np.bincount(draw, minlength=k)
        prob = math.factorial(size) / math.prod(math.factorial(c) for c in counts) / k**size
        mode = modal_codes(codes[list(draw)])
        share[np.argmax(codes == mode, axis=0), np.arange(units)] += prob
    return 1.0 - (share**2).sum(axis=0)


def pie_rates(dense: np.ndarray, sparse: np.ndarray, seed: int = 0, dense_names: Sequence[object] = (),
              sparse_names: Sequence[object] = (), max_splits: int = MAX_SPLITS, cache: dict | None = None,
              cache_key: object = None) -> tuple[np.ndarray, np.ndarray, str]:
    """(PIE rate per unit, noise floor per unit, method) for dense and sparse codes (runs × units).

    ``dense_names`` / ``sparse_names`` key the random streams that choose splits and subsets when there
    are more than ``max_splits``; ``cache`` (with ``cache_key`` naming the dense runs) keeps the dense
    side for other sparse populations compared with the same dense runs."""
    cache = {} if cache is None else cache
    if dense.shape[0] >= 2 * MIN_HALF:
        size = min(sparse.shape[0], -(-dense.shape[0] // 2))
        key = ("halves", cache_key, size)
        if key not in cache:
            rng = keyed_rng(seed, "splits", *dense_names, dense.shape[0], size)
            cache[key] = dense_splits(dense, sparse.shape[0], rng, max_splits)
        splits = cache[key]
        rate = matched_rate(sparse, splits, keyed_rng(seed, "subsets", *sparse_names), max_splits)
        return rate, splits.floor, "halves"
    key = ("resampled", cache_key, sparse.shape[0])
    if key not in cache:
        cache[key] = (modal_codes(dense), resampled_floor(dense, sparse.shape[0]))
    dense_mode, floor = cache[key]
    return (modal_codes(sparse) != dense_mode).astype(np.float64), floor, "resampled"


def _per_sentence(values: np.ndarray, test: TestSet) -> np.ndarray:
    """Token values summed per sentence."""
    return np.bincount(test.token_sentence, weights=values, minlength=len(test))


def plan_language(lang: str, cells: Sequence[Cell], encodings: Encodings, sums: SentenceSums, settings: Settings,
                  levels: Sequence[str] = LEVELS, max_splits: int = MAX_SPLITS) -> Callable[[], list[dict[str, Any]]]:
    """Compute one language's PIE flags and floors and queue the per-sentence excess for resampling; the
    returned function, called after ``sums.compute()``, gives the rows."""
    unknown = set(levels) - set(LEVELS)
    if unknown:
        raise SparseNLPError(f"unknown PIE level(s) {sorted(unknown)}; use {LEVELS}")
    encoded: dict[tuple[int, str], np.ndarray] = {}
    for cell in cells:  # encode everything first: code ranks are taken once the vocabulary is complete
        if not cell.dense or not cell.sparse:
            raise SparseNLPError(f"no dense or sparse run for lang={lang} arm={cell.arm} sparsity={cell.sparsity} "
                                 f"condition={cell.condition}; every cell needs runs of both populations")
        encodings.test_set(lang, cell.condition, cell.dense[0])
        for name, population in (("dense", cell.dense), ("sparse", cell.sparse)):
            for k, run in enumerate(population):
                encoded[(id(run), cell.condition)] = encodings.encode(
                    lang, cell.condition, run, f"{name} run {k} of arm={cell.arm} sparsity={cell.sparsity}").codes

    cache: dict = {}

    def ranks(runs: Sequence[Run], condition: str, level: str, keep: bool = False) -> np.ndarray:
        key = ("ranks", condition, level, tuple(map(id, runs)))
        if key in cache:
            return cache[key]
        test = encodings.tests[(lang, condition)]
        codes = np.vstack([encoded[(id(run), condition)] for run in runs])
        out = test.sentence_ranks(codes) if level == "sentence" else test.token_ranks(codes)
        if keep:  # the dense runs of a language serve every arm
            cache[key] = out
        return out

    queued = []
    token_rows: dict[str, int] = {}
    for cell in cells:
        test = encodings.tests[(lang, cell.condition)]
        for level in levels:
            dense = ranks(cell.dense, cell.condition, level, keep=True)
            sparse = ranks(cell.sparse, cell.condition, level)
            names = (lang, cell.condition, level)
            dense_key = (cell.condition, level, tuple(map(id, cell.dense)))
            rate, floor, method = pie_rates(dense, sparse, settings.seed, names,
                                            (*names, cell.arm, float(cell.sparsity)), max_splits, cache, dense_key)
            if ("all seeds", dense_key) not in cache:
                cache[("all seeds", dense_key)] = modal_codes(dense)
            full = cache[("all seeds", dense_key)]
            rate_all = float(np.mean(modal_codes(sparse) != full))
            if level == "sentence":
                excess_rows = rate - floor
            else:
                excess_rows = _per_sentence(rate - floor, test)
                if cell.condition not in token_rows:
                    token_rows[cell.condition] = sums.add(lang, test.ids, test.n_tokens)
            row = {
                "lang": lang, "arm": cell.arm, "sparsity": float(cell.sparsity), "condition": cell.condition,
                "level": level, "pie_rate": float(rate.mean()), "noise_floor": float(floor.mean()),
                "excess": float(rate.mean() - floor.mean()), "floor_method": method, "pie_rate_all": rate_all,
                "n_dense": len(cell.dense), "n_sparse": len(cell.sparse), "n_units": int(rate.size),
                "too_small": len(cell.dense) < 2 * MIN_HALF or len(cell.sparse) < MIN_HALF,
            }
            queued.append((row, sums.add(lang, test.ids, excess_rows), token_rows.get(cell.condition), len(test)))

    def finish() -> list[dict[str, Any]]:
        rows = []
        for row, handle, token_handle, n in queued:
            numerator = sums.sums(handle)[:, 0]
            denominator = sums.sums(token_handle)[:, 0] if row["level"] == "token" else n
            low, high = percentile_interval(numerator / denominator, settings.confidence)
            rows.append({**row, "excess_ci_low": low, "excess_ci_high": high})
        return rows

    return finish


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


def pie_floor_table(cells: Iterable[Cell], levels: Sequence[str] = LEVELS, n_boot: int = 2000, seed: int = 0,
                    confidence: float = 0.95, max_splits: int = MAX_SPLITS,
                    encodings: Encodings | None = None) -> pd.DataFrame:
    """One row per cell × level (:data:`COLUMNS`): PIE rate of sparse vs dense, the dense-vs-dense noise
    floor, the excess with a sentence-bootstrap interval, and ``too_small`` where seeds are too few."""
    settings = Settings(n_boot, seed, confidence, ("sentences",))
    encodings = Encodings() if encodings is None else encodings
    counts = settings.counts()
    rows = []
    for lang, lang_cells in language_groups(cells):
        sums = settings.sums(counts)
        finish = plan_language(lang, lang_cells, encodings, sums, settings, levels, max_splits)
        sums.compute()
        rows += finish()
    return pd.DataFrame(rows, columns=list(COLUMNS))
