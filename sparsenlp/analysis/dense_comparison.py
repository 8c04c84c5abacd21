"""Every sparse arm against dense, per language: the significance table and the PIE noise floor in one pass.

:func:`compare_to_dense` runs :mod:`sparsenlp.analysis.stats` and :mod:`sparsenlp.analysis.pie_floor`
over the same cells with one encoding of each run and one draw of sentence resamples per test-set size,
so both tables use the same resamples (and the cost of drawing them is paid once). Cells are consumed
one language at a time, so a caller can stream a sweep language by language in bounded memory.

:func:`compare_languages` spreads languages over processes: each worker loads one language's runs
itself (prediction rows are far costlier to send between processes than to read), compares them, and
the parent adjusts the p-values of the whole sweep. Every random stream is keyed by names, so the
tables equal those of one process.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import pandas as pd

from sparsenlp.analysis import pie_floor, stats
from sparsenlp.analysis.encode import Encodings
from sparsenlp.analysis.resample import ResampleCounts
from sparsenlp.analysis.stats import FAMILY, RESAMPLE, Cell, Settings
from sparsenlp.evaluation.pie import LEVELS


@dataclass(frozen=True)
class Comparison:
    """``significance``: one row per cell (:data:`sparsenlp.analysis.stats.COLUMNS`), p-values adjusted
    unless ``correction=None``. ``pie``: one row per cell × PIE level (:data:`sparsenlp.analysis.pie_floor.COLUMNS`).
    ``examples``: a few PIE sentences per cell (:data:`sparsenlp.analysis.pie_floor.EXAMPLE_COLUMNS`)."""

    significance: pd.DataFrame
    pie: pd.DataFrame
    examples: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(pie_floor.EXAMPLE_COLUMNS)))


def compare_to_dense(cells: Iterable[Cell], n_boot: int = 2000, seed: int = 0, confidence: float = 0.95,
                     correction: str | None = "holm", alpha: float = 0.05, family: Sequence[str] = FAMILY,
                     resample: Sequence[str] = RESAMPLE, pie_levels: Sequence[str] = LEVELS,
                     max_splits: int = pie_floor.MAX_SPLITS, counts: ResampleCounts | None = None,
                     n_examples: int = 0) -> Comparison:
    """Both tables for ``cells``; identical to :func:`stats.significance_table` and
    :func:`pie_floor.pie_floor_table` called with the same arguments. ``correction=None`` leaves
    ``p_adjusted`` empty, for a caller that streams parts of a sweep and adjusts the concatenation
    (:func:`stats.adjust`); ``pie_levels=()`` skips PIEs; ``counts`` shares drawn resamples with other
    calls of the same ``seed`` and ``n_boot`` (results do not change, only the cost of drawing them);
    ``n_examples``: PIE sentences quoted per cell (:func:`pie_floor.examples`)."""
    settings = Settings(n_boot, seed, confidence, tuple(resample))
    # the PIE interval is over test sentences whatever the F1 interval resamples (as pie_floor_table's)
    pie_settings = dataclasses.replace(settings, resample=("sentences",))
    counts = settings.counts() if counts is None else counts  # test sets of the same size share resamples
    significance, pies, examples = [], [], []
    for lang, lang_cells in stats.language_groups(cells):
        encodings = Encodings()  # one language's runs at a time
        sums = settings.sums(counts)
        pie_sums = sums if "sentences" in settings.resample else pie_settings.sums(counts)
        finish_f1 = stats.plan_language(lang, lang_cells, encodings, sums, settings)
        finish_pie = (pie_floor.plan_language(lang, lang_cells, encodings, pie_sums, pie_settings, pie_levels,
                                              max_splits) if pie_levels else list)
        sums.compute()
        if pie_sums is not sums:
            pie_sums.compute()
        significance += finish_f1()
        pies += finish_pie()
        if n_examples > 0:
            examples += pie_floor.examples(lang, lang_cells, encodings, n_examples)
    table = pd.DataFrame(significance, columns=list(stats.COLUMNS))
    if correction is not None:
        table = stats.adjust(table, correction, alpha, family)
        stats.warn_resolution(table, n_boot, correction, alpha)
    return Comparison(table, pd.DataFrame(pies, columns=list(pie_floor.COLUMNS)),
                      pd.DataFrame(examples, columns=list(pie_floor.EXAMPLE_COLUMNS)))


_PROCESS_COUNTS: dict[tuple[int, int], ResampleCounts] = {}  # in a worker: resamples shared by its languages


def _one_language(lang: str, load: Callable[[str], list[Cell]], counts: ResampleCounts | None = None,
                  **kwargs) -> Comparison:
    if counts is None:
        key = (kwargs["seed"], kwargs["n_boot"])
        counts = _PROCESS_COUNTS.setdefault(key, ResampleCounts(*key))
    return compare_to_dense(load(lang), correction=None, counts=counts, **kwargs)


def compare_languages(load: Callable[[str], list[Cell]], langs: Sequence[str], jobs: int = 1, n_boot: int = 2000,
                      seed: int = 0, confidence: float = 0.95, correction: str = "holm", alpha: float = 0.05,
                      family: Sequence[str] = FAMILY, resample: Sequence[str] = RESAMPLE,
                      pie_levels: Sequence[str] = LEVELS, max_splits: int = pie_floor.MAX_SPLITS,
                      n_examples: int = 0) -> Comparison:
    """:func:`compare_to_dense` over ``load(lang)`` for every language, in ``jobs`` processes.

    ``load`` must be picklable (a module-level function or a ``functools.partial`` of one) and return
    the cells of one language. Languages go to workers one at a time, largest test sets best first as
    the caller orders them; rows come back in ``langs`` order and are adjusted together."""
    work = partial(_one_language, load=load, n_boot=n_boot, seed=seed, confidence=confidence, resample=resample,
                   pie_levels=pie_levels, max_splits=max_splits, n_examples=n_examples)
    if jobs <= 1:  # in this process: one set of resamples for the call, released with it
        counts = ResampleCounts(seed, n_boot)
        parts = [work(lang, counts=counts) for lang in langs]
    else:  # each worker keeps one set of resamples for the languages it is given
        # spawn, not fork: the caller may hold threads (torch, a notebook kernel) that fork would copy half-way
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(work, langs))
    table = (pd.concat([p.significance for p in parts], ignore_index=True) if parts
             else pd.DataFrame(columns=list(stats.COLUMNS)))
    table = stats.adjust(table, correction, alpha, family)
    stats.warn_resolution(table, n_boot, correction, alpha)
    pies = (pd.concat([p.pie for p in parts], ignore_index=True) if parts
            else pd.DataFrame(columns=list(pie_floor.COLUMNS)))
    examples = (pd.concat([p.examples for p in parts], ignore_index=True) if parts
                else pd.DataFrame(columns=list(pie_floor.EXAMPLE_COLUMNS)))
    return Comparison(table, pies, examples)
