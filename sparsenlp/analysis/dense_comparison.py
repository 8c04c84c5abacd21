"""Every sparse arm against dense, per language: the significance table and the PIE noise floor in one pass.

:func:`compare_to_dense` runs :mod:`sparsenlp.analysis.stats` and :mod:`sparsenlp.analysis.pie_floor`
over the same cells with one encoding of each run. Cells are consumed one language at a time, so a caller
can stream a sweep language by language in bounded memory.

:func:`compare_languages` spreads languages over processes: each worker loads one language's runs
itself (prediction rows are far costlier to send between processes than to read), compares them, and
the parent adjusts the p-values of the whole sweep. Nothing is random, so the tables equal those of one
process.
"""
from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import pandas as pd

from sparsenlp.analysis import pie_floor, stats
from sparsenlp.analysis.encode import Encodings
from sparsenlp.analysis.stats import FAMILY, Cell
from sparsenlp.evaluation.pie import LEVELS


@dataclass(frozen=True)
class Comparison:
    """``significance``: one row per cell (:data:`sparsenlp.analysis.stats.COLUMNS`), p-values adjusted
    unless ``correction=None``. ``pie``: one row per cell × PIE level (:data:`sparsenlp.analysis.pie_floor.COLUMNS`).
    ``examples``: a few PIE sentences per cell (:data:`sparsenlp.analysis.pie_floor.EXAMPLE_COLUMNS`)."""

    significance: pd.DataFrame
    pie: pd.DataFrame
    examples: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(pie_floor.EXAMPLE_COLUMNS)))


def _frame(parts: list[pd.DataFrame] | list[dict], columns: Sequence[str]) -> pd.DataFrame:
    if parts and isinstance(parts[0], pd.DataFrame):
        return pd.concat(parts, ignore_index=True)
    return pd.DataFrame(parts, columns=list(columns))


def compare_to_dense(cells: Iterable[Cell], confidence: float = 0.95, correction: str | None = "holm",
                     alpha: float = 0.05, family: Sequence[str] = FAMILY, pie_levels: Sequence[str] = LEVELS,
                     n_examples: int = 0, allow_unreplicated: bool = False) -> Comparison:
    """Both tables for ``cells``; identical to :func:`stats.significance_table` and
    :func:`pie_floor.pie_floor_table` called with the same arguments. ``correction=None`` leaves
    ``p_adjusted`` empty, for a caller that streams parts of a sweep and adjusts the concatenation
    (:func:`stats.adjust`); ``pie_levels=()`` skips PIEs; ``n_examples``: PIE sentences quoted per cell
    (:func:`pie_floor.examples`)."""
    significance, pies, examples = [], [], []
    for lang, lang_cells in stats.language_groups(cells):
        encodings = Encodings()  # one language's runs at a time
        significance += [stats.compare_cell(cell, encodings, confidence) for cell in lang_cells]
        if pie_levels:
            pies += pie_floor.language_rows(lang, lang_cells, encodings, pie_levels, confidence)
        if n_examples > 0:
            examples += pie_floor.examples(lang, lang_cells, encodings, n_examples)
    table = _frame(significance, stats.COLUMNS)
    if correction is not None:
        table = stats.adjust(table, correction, alpha, family, allow_unreplicated)
    return Comparison(table, _frame(pies, pie_floor.COLUMNS), _frame(examples, pie_floor.EXAMPLE_COLUMNS))


def _one_language(lang: str, load: Callable[[str], list[Cell]], **kwargs) -> Comparison:
    return compare_to_dense(load(lang), correction=None, **kwargs)


def _leave_interrupts_to_the_parent() -> None:
    """In a worker: Ctrl-C reaches the whole process group; the parent stops the pool and reports it on one line."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def compare_languages(load: Callable[[str], list[Cell]], langs: Sequence[str], jobs: int = 1,
                      confidence: float = 0.95, correction: str = "holm", alpha: float = 0.05,
                      family: Sequence[str] = FAMILY, pie_levels: Sequence[str] = LEVELS, n_examples: int = 0,
                      allow_unreplicated: bool = False) -> Comparison:
    """:func:`compare_to_dense` over ``load(lang)`` for every language, in ``jobs`` processes.

    ``load`` must be picklable (a module-level function or a ``functools.partial`` of one) and return
    the cells of one language. Languages go to workers one at a time, largest test sets best first as
    the caller orders them; rows come back in ``langs`` order and are adjusted together."""
    work = partial(_one_language, load=load, confidence=confidence, pie_levels=pie_levels, n_examples=n_examples)
    if jobs <= 1:
        parts = [work(lang) for lang in langs]
    else:
        # spawn, not fork: the caller may hold threads (torch, a notebook kernel) that fork would copy half-way
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_leave_interrupts_to_the_parent) as pool:
            parts = list(pool.map(work, langs))
    table = stats.adjust(_frame([p.significance for p in parts], stats.COLUMNS), correction, alpha, family,
                         allow_unreplicated)
    return Comparison(table, _frame([p.pie for p in parts], pie_floor.COLUMNS),
                      _frame([p.examples for p in parts], pie_floor.EXAMPLE_COLUMNS))
