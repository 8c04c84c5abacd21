"""Every sparse arm against dense, per language: the significance table and the PIE noise floor in one pass.

:func:`compare_to_dense` runs :mod:`sparsenlp.analysis.stats` and :mod:`sparsenlp.analysis.pie_floor`
over the same cells with one encoding of each run and one draw of sentence resamples per test set, so
both tables use the same resamples (and the cost of drawing them is paid once). Cells are consumed one
language at a time, so a caller can stream a sweep language by language in bounded memory.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from sparsenlp.analysis import pie_floor, stats
from sparsenlp.analysis.encode import Encodings
from sparsenlp.analysis.stats import FAMILY, RESAMPLE, Cell, Settings
from sparsenlp.evaluation.pie import LEVELS


@dataclass(frozen=True)
class Comparison:
    """``significance``: one row per cell (:data:`sparsenlp.analysis.stats.COLUMNS`), p-values adjusted
    unless ``correction=None``. ``pie``: one row per cell × PIE level (:data:`sparsenlp.analysis.pie_floor.COLUMNS`)."""

    significance: pd.DataFrame
    pie: pd.DataFrame


def compare_to_dense(cells: Iterable[Cell], n_boot: int = 2000, seed: int = 0, confidence: float = 0.95,
                     correction: str | None = "holm", alpha: float = 0.05, family: Sequence[str] = FAMILY,
                     resample: Sequence[str] = RESAMPLE, pie_levels: Sequence[str] = LEVELS,
                     max_splits: int = pie_floor.MAX_SPLITS) -> Comparison:
    """Both tables for ``cells``; identical to :func:`stats.significance_table` and
    :func:`pie_floor.pie_floor_table` called with the same arguments. ``correction=None`` leaves
    ``p_adjusted`` empty, for a caller that streams parts of a sweep and adjusts the concatenation
    (:func:`stats.adjust`); ``pie_levels=()`` skips PIEs."""
    settings = Settings(n_boot, seed, confidence, tuple(resample))
    counts = settings.counts()  # test sets of the same size share their resamples
    significance, pies = [], []
    for lang, lang_cells in stats.language_groups(cells):
        encodings = Encodings()  # one language's runs at a time
        sums = settings.sums(counts)
        finish_f1 = stats.plan_language(lang, lang_cells, encodings, sums, settings)
        finish_pie = (pie_floor.plan_language(lang, lang_cells, encodings, sums, settings, pie_levels, max_splits)
                      if pie_levels else list)
        sums.compute()
        significance += finish_f1()
        pies += finish_pie()
    table = pd.DataFrame(significance, columns=list(stats.COLUMNS))
    if correction is not None:
        table = stats.adjust(table, correction, alpha, family)
        stats.warn_resolution(table, n_boot, correction, alpha)
    return Comparison(table, pd.DataFrame(pies, columns=list(pie_floor.COLUMNS)))
