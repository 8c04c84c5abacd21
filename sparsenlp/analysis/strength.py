"""How strong each perturbation was in each language, next to its gap, and which conditions are uneven.

A robustness gap answers a dose: two languages' gaps compare only when their test text was changed as
much. Every run records, per test language and condition, the measured strength
(:mod:`sparsenlp.perturb.strength`: shares of sentences, characters and subwords changed, [UNK] rate
before and after) and the conditions that cannot change a language (``robustness_not_applicable``).

:func:`strength_table` has one row per cell × condition × test language, where a cell is the model, the
regime and, for joint runs, the training languages (strength depends on the tokenizer and, through the
entity pools, on what the run trained on; per-language runs form one cell). Strength is the median over
the cell's runs (runs that share tokenizer and data measure the same value), and the dense runs' relative
gap (clean − perturbed) / clean, mean over seeds, stands beside it.

:func:`spread_table` flags a condition when the share of characters or of subwords it changed differs
across languages by more than :data:`SPREAD_FACTOR` between the 10th and the 90th percentile of
languages. The factor is an assumption: the suite's own dose steps are 3x apart (``char_noise`` 0.1 and
0.3), so languages 2x apart in dose are two thirds of a step apart, enough for a difference in their gaps
to be the dose's rather than the model's. Percentiles rather than the extremes, so that one odd language
does not raise the flag alone (with 40 languages, 4 lie outside on each side).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sparsenlp.analysis.summary import markdown_table
from sparsenlp.tracking.schema import CLEAN, DENSE, RunRecord

MEASURES = ("sentences_changed", "characters_changed", "subwords_changed", "unk_before", "unk_after")
FLAGGED_BY = ("characters_changed", "subwords_changed")
SPREAD_FACTOR = 2.0
QUANTILES = (0.1, 0.9)
CELL = ("model", "regime", "training")
OWN = "own language"  # the training cell of per-language runs


def _cells(frame: pd.DataFrame) -> pd.Series:
    return frame["train_langs"].where(frame["regime"] != "per_language", OWN)


def strength_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per cell × condition × test language: the measured strength and the dense runs' relative gap."""
    keys = [*CELL, "condition", "lang"]
    perturbed = table[(table["condition"] != CLEAN) & (table["quantization"] == "none")]
    perturbed = perturbed.assign(training=_cells(perturbed))
    if perturbed.empty:
        return pd.DataFrame(columns=[*keys, "runs", *MEASURES, "dense_gap_ratio"])
    out = perturbed.groupby(keys, sort=True).agg(runs=("run_dir", "nunique"), **{m: (m, "median") for m in MEASURES})
    dense = perturbed[perturbed["method"] == DENSE]
    gap = dense.groupby([*keys, "seed"])["gap_ratio"].mean().groupby(keys).mean().rename("dense_gap_ratio")
    return out.join(gap).reset_index()


def _ratio(low: float, high: float) -> float:
    if low > 0:
        return high / low
    return np.inf if high > 0 else np.nan


def spread_table(strength: pd.DataFrame, factor: float = SPREAD_FACTOR) -> pd.DataFrame:
    """Per cell × condition: languages, 10th percentile / median / 90th percentile of each measure in
    :data:`FLAGGED_BY` over languages, their ratio, the median dense gap, and whether a ratio exceeds ``factor``."""
    rows = []
    for key, group in strength.groupby([*CELL, "condition"], sort=True):
        row = dict(zip([*CELL, "condition"], key)) | {"languages": group["lang"].nunique()}
        flagged = []
        for measure in FLAGGED_BY:
            low, mid, high = np.quantile(group[measure], [QUANTILES[0], 0.5, QUANTILES[1]])
            ratio = _ratio(low, high) if len(group) > 1 else np.nan
            row |= {f"{measure}_p10": low, f"{measure}_median": mid, f"{measure}_p90": high,
                    f"{measure}_ratio": ratio}
            if ratio > factor:
                flagged.append(measure.removesuffix("_changed"))
        row |= {"dense_gap_ratio_median": group["dense_gap_ratio"].median(), "flagged": ", ".join(flagged)}
        rows.append(row)
    return pd.DataFrame(rows)


def not_applicable_table(loaded: Iterable[tuple[Path, RunRecord]]) -> pd.DataFrame:
    """Per cell × test language × condition that did not apply: the reason, as the runs recorded it."""
    rows = []
    for _, record in loaded:
        arm = record.arm
        training = OWN if arm.regime == "per_language" else "+".join(arm.train_langs)
        for lang, conditions in record.robustness_not_applicable.items():
            rows += [{"model": arm.model, "regime": arm.regime, "training": training, "lang": lang,
                      "condition": condition, "reason": reason} for condition, reason in conditions.items()]
    columns = [*CELL, "lang", "condition", "reason"]
    return pd.DataFrame(rows, columns=columns).drop_duplicates([*CELL, "lang", "condition"]).reset_index(drop=True)


def _short(reason: str) -> str:
    """A reason without its per-language numbers, so that languages with the same reason group together."""
    reason = re.sub(r" \([^()]*\)$", "", reason)
    return re.sub(r": changes [0-9.]+% of the test sentences", ": changes too few of the test sentences", reason)


def markdown(spread: pd.DataFrame, not_applicable: pd.DataFrame, factor: float = SPREAD_FACTOR) -> str:
    """The report's strength section: the spread table with its flags, then what did not apply, and why."""
    text = ("## Perturbation strength\n\nHow much each condition changed each language's test text, next to the "
            "dense runs' relative gap: share of characters and of the run's subwords changed, 10th percentile / "
            "median / 90th percentile over languages (every language: `strength.csv`). **Flagged**: the share "
            f"differs across languages by more than {factor:g}x between the 10th and 90th percentile, so gaps of "
            "that condition may differ by dose rather than by model (the factor: `sparsenlp/analysis/strength.py`)."
            "\n\n")
    if spread.empty:
        text += "No perturbed test set in this sweep.\n"
    else:
        shown = spread.copy()
        for measure in FLAGGED_BY:
            short = measure.removesuffix("_changed")
            shown[f"{short} p10 / median / p90"] = [
                f"{r[f'{measure}_p10']:.3f} / {r[f'{measure}_median']:.3f} / {r[f'{measure}_p90']:.3f}"
                for _, r in spread.iterrows()]
            shown[f"{short} ratio"] = spread[f"{measure}_ratio"]
        columns = [*CELL, "condition", "languages", *(c for c in shown.columns if " / " in c or c.endswith(" ratio")),
                   "dense_gap_ratio_median", "flagged"]
        text += markdown_table(shown[columns].rename(columns={"dense_gap_ratio_median": "dense relative gap (median)"}))
    if not not_applicable.empty:
        grouped = (not_applicable.assign(reason=not_applicable["reason"].map(_short))
                   .groupby([*CELL, "condition", "reason"], sort=True)["lang"]
                   .agg(lambda langs: " ".join(sorted(set(langs)))).reset_index()
                   .rename(columns={"lang": "languages"}))
        text += ("\n### Not applicable\n\nConditions that cannot change a language have no gap (never a gap of 0); "
                 "each run records its reason in `robustness_not_applicable`.\n\n" + markdown_table(grouped))
    return text


def report(table: pd.DataFrame, loaded: Sequence[tuple[Path, RunRecord]],
           factor: float = SPREAD_FACTOR) -> tuple[pd.DataFrame, str]:
    """``strength.csv`` (one row per cell × condition × language, applicable or not, with the reason) and the
    Markdown section of the report."""
    strength = strength_table(table)
    missing = not_applicable_table(loaded)
    page = markdown(spread_table(strength, factor), missing, factor)
    return pd.concat([strength, missing], ignore_index=True), page
