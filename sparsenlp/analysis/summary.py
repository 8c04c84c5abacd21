"""The report's Markdown: ``summary.md`` (provenance, verdicts, robustness, PIEs, skipped records) and ``pie.md``.

Pure functions of the tables (DataFrame → str). Every aggregate is per comparison arm (see
:func:`sparsenlp.analysis.sweep_comparison.cell_arms`) × sparsity × condition, and per tier next to all
languages; nothing is averaged across arms or across perturbation kinds.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from sparsenlp.analysis import stats
from sparsenlp.analysis.pie_floor import MIN_DENSE_SEEDS, MIN_SPARSE_SEEDS
from sparsenlp.analysis.stats import UNDEFINED, UNREPLICATED, VERDICTS

CLEAN = "clean"


def markdown_table(df: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub Markdown table; missing values (NaN, None) show as '–', never as 0 or 'nan'."""
    return df.astype(object).where(df.notna(), None).to_markdown(index=False, floatfmt=f".{digits}f",
                                                                 missingval="–") + "\n"


def _conditions(df: pd.DataFrame) -> list[str]:
    """Clean first, then the perturbed conditions in name order."""
    return sorted(set(df["condition"]), key=lambda c: (c != CLEAN, c))


def verdict_table(sig: pd.DataFrame) -> pd.DataFrame:
    """Per condition × arm × sparsity: languages better / worse / indistinguishable from dense, over all
    languages and per tier; how many were not tested (one seed on a side; no F1); and, over the same tested
    languages (their number shown), the mean and spread of ΔF1 and the mean relative ΔF1."""
    counts = stats.verdict_summary(sig)
    counts["verdicts"] = [" / ".join(str(r[v]) for v in VERDICTS) for _, r in counts.iterrows()]
    wide = counts.pivot_table(index=["condition", "arm", "sparsity"], columns="tier", values="verdicts",
                              aggfunc="first")
    tiers = ["all", *sorted(t for t in wide.columns if t != "all")]
    wide = wide[tiers].rename(columns={t: f"{t}: better / worse / indistinguishable" if t == "all" else t
                                       for t in tiers})
    overall = counts[counts["tier"] == "all"].set_index(["condition", "arm", "sparsity"])
    wide["not tested: unreplicated / no F1"] = (overall[UNREPLICATED].astype(str) + " / "
                                                + overall[UNDEFINED].astype(str))
    wide["languages in the means"] = overall["n_means"]
    wide["mean ΔF1"] = overall["delta_f1_mean"]
    wide["sd ΔF1 over languages"] = overall["delta_f1_std"]
    wide["mean relative ΔF1"] = overall["rel_delta_f1_mean"]
    out = wide.reset_index()
    out.columns.name = None
    order = {c: k for k, c in enumerate(_conditions(out))}
    return out.sort_values(["condition", "arm", "sparsity"], key=lambda s: s.map(order) if s.name == "condition"
                           else s, kind="stable").reset_index(drop=True)


def significance_section(sig: pd.DataFrame, alpha: float, allow_unreplicated: bool = False) -> str:
    if sig.empty:
        return ("## Sparse vs dense\n\nNo comparison: the sweep has no sparse run next to a dense run of the same "
                "cell.\n")
    correction = sig["correction"].iloc[0]
    text = (
        "## Sparse vs dense: which languages change\n\n"
        "Per language, arm and sparsity: ΔF1 = seed-mean span F1 of the sparse runs − that of the dense runs "
        "of the same model, regime, training languages and quantization, on the same test sentences. Its 95% "
        "interval and p-value come from a t-test for the crossed seeds × sentences design: the seed-to-seed "
        "spread of run F1 (Welch's k − 1 degrees of freedom per side) plus the part "
        "of sentence sampling that does not cancel between dense and sparse (`sparsenlp/analysis/crossed.py`; "
        "its false-positive rate and coverage are measured in BENCHMARKS.md). P-values are adjusted across the "
        f"languages of each arm × sparsity × condition with **{_correction_name(correction)}** (`{correction}`). "
        f"A language is better or worse when its adjusted p-value is below {alpha:g}, indistinguishable "
        "otherwise. Means are over the tested languages whose relative change is defined too (their number is "
        "shown). Every row, with its interval: `significance.csv`.\n\n")
    unreplicated = int((~sig["replicated"].astype(bool)).sum()) if "replicated" in sig else 0
    if unreplicated:
        text += (f"**{unreplicated} of {len(sig)} comparisons are unreplicated** (one seed on a side: seed "
                 "variation cannot be measured, and an interval over sentences alone calls seed noise an effect). "
                 + ("They are tested and counted as asked (`--allow-unreplicated`).\n\n" if allow_unreplicated
                    else "They are marked `unreplicated` and left out of every count and mean.\n\n"))
    no_f1 = int((sig["n_gold_spans"] == 0).sum())
    no_interval = int((sig["p_value"].isna() & (sig["n_gold_spans"] > 0)).sum())
    if no_f1:
        text += (f"{no_f1} comparisons have no F1 (a test set without gold entities): `undefined`, missing, "
                 "never 0.\n\n")
    if no_interval:
        text += (f"{no_interval} comparisons have an F1 but no interval (a test set of fewer than 2 sentences): "
                 "`undefined`, left out of every count and mean.\n\n")
    return text + markdown_table(verdict_table(sig))


def _correction_name(method: str) -> str:
    return {"holm": "Holm's step-down correction (family-wise error)",
            "fdr_bh": "Benjamini–Hochberg (false discovery rate)",
            "fdr_by": "Benjamini–Yekutieli (false discovery rate)", "bonferroni": "Bonferroni"}.get(method, method)


def robustness_table(robust: pd.DataFrame) -> pd.DataFrame:
    """Per perturbation × arm × sparsity (0: the arm's dense baseline) and tier: mean over languages of the
    perturbed F1 and of the relative gap (clean − perturbed) / clean (``figures.robustness_table`` rows), and how
    many languages have a gap (a perturbation that cannot apply to a language is absent, never a gap of 0)."""
    grouped = robust.groupby(["condition", "arm", "sparsity", "tier"], sort=True).agg(
        languages=("relative_gap", "count"), perturbed_f1=("f1", "mean"), relative_gap=("relative_gap", "mean"))
    wide = grouped.unstack("tier")
    wide.columns = [f"{tier}: {what.replace('_', ' ')}" for what, tier in wide.columns]
    return wide[sorted(wide.columns, key=lambda c: (c.split(":")[0], c))].reset_index()


def robustness_section(robust: pd.DataFrame | None) -> str:
    if robust is None or robust.empty:
        return "## Robustness\n\nNo perturbed test set in this sweep (run with `perturbation=suite`).\n"
    return ("## Robustness, per perturbation\n\nF1 on each perturbed test set and the relative gap "
            "(clean F1 − perturbed F1) / clean F1 of the same runs (higher: less robust), seed means per language, "
            "then the mean over the languages of a tier. Sparsity 0 is the arm's dense baseline. Perturbations are "
            "never averaged together.\n\n" + markdown_table(robustness_table(robust)))


def pie_table(pie: pd.DataFrame) -> pd.DataFrame:
    """Per condition × arm × sparsity × level, over the languages with ≥ 2 seeds a side: mean per-seed PIE
    rate, noise floor and excess, how many languages' excess interval lies above 0; and how many rows had
    too few seeds (never counted)."""
    counted = pie[~pie["too_small"].astype(bool)]
    keys = ["condition", "arm", "sparsity", "level"]
    out = counted.assign(above=counted["excess_ci_low"] > 0).groupby(keys, sort=True).agg(
        languages=("lang", "nunique"), pie_rate=("pie_rate", "mean"), noise_floor=("noise_floor", "mean"),
        excess=("excess", "mean"), above=("above", "sum"))
    small = pie[pie["too_small"].astype(bool)].groupby(keys, sort=True)["lang"].nunique().rename("too_small")
    out = out.join(small, how="outer").fillna({"languages": 0, "above": 0, "too_small": 0})
    out = out.astype({"languages": int, "above": int, "too_small": int})
    return out.reset_index().rename(columns={"languages": "languages counted", "pie_rate": "PIE rate per seed",
                                             "above": "languages with excess CI > 0",
                                             "too_small": "languages with too few seeds (not counted)"})


def pie_section(pie: pd.DataFrame | None, skipped_reason: str | None = None) -> str:
    head = "## Pruning Identified Exemplars, with a noise floor\n\n"
    if pie is None or pie.empty:
        return head + (skipped_reason or "No PIE comparison in this sweep.") + "\n"
    small = int(pie["too_small"].sum())
    text = head + (
        "A unit (sentence or token) is a PIE of a sparse seed when its prediction differs from the modal prediction "
        "of the dense seeds (D − 1 of them, each left out in turn). Dense seeds already disagree among themselves, "
        "so each rate stands next to the rate at which a dense seed differs from the modal prediction of the "
        "other D − 1 (`noise_floor`); `excess` = rate − floor, with a 95% t-interval that counts seed variation "
        "(per language in `pie.csv`, with Hooker et al.'s rate between the modes of all seeds, `pie_rate_all`). "
        "Means over languages; examples in `pie_examples.csv`.\n\n")
    if small:
        text += (f"**{small} of {len(pie)} rows have too few seeds** (`too_small`: fewer than {MIN_DENSE_SEEDS} "
                 f"dense or {MIN_SPARSE_SEEDS} sparse seeds): they are left out of every count and mean below.\n\n")
    return text + markdown_table(pie_table(pie))


def covariate_section(table: pd.DataFrame) -> str:
    head = "## Who gets hurt: ΔF1 against the languages' facts\n\n"
    if table.empty:
        return head + "No covariate model (too few tested languages; see the notes).\n"
    text = head + (
        "One linear mixed model per arm × condition × sparsity (statsmodels MixedLM, REML) of every tested "
        "language's dense and sparse run F1, with a random intercept and sparse slope per language: each row is "
        "the change in ΔF1 per unit of a fact, holding the others fixed, with a 95% t-interval (languages − "
        "coefficients degrees of freedom) and Holm's correction across the facts of a model. Rows with an "
        "adjusted p-value below 0.05 (every row, with units, in `covariates.csv`):\n\n")
    facts = table[table["term"] != "ΔF1 at the mean facts"]
    shown = facts[facts["p_adjusted"] < 0.05]
    if shown.empty:
        return text + f"None of {len(facts)} fact coefficients.\n"
    columns = ["arm", "condition", "sparsity", "term", "level", "estimate", "ci_low", "ci_high", "p_adjusted",
               "n_langs"]
    return text + markdown_table(shown[columns], digits=4)


def _section(title: str, items: Sequence[str], empty: str) -> str:
    return f"## {title}\n\n" + ("".join(f"- {item}\n" for item in items) if items else f"{empty}\n")


def summary_markdown(sweep_dir: str, provenance_md: str, sig: pd.DataFrame, robust: pd.DataFrame | None,
                     pie: pd.DataFrame | None, covariates: pd.DataFrame, figures: Sequence[str], notes: Sequence[str],
                     skipped: Sequence[str], alpha: float, pie_skipped: str | None = None,
                     allow_unreplicated: bool = False, strength_md: str = "") -> str:
    """``summary.md``: provenance first, then the verdicts, robustness with the perturbations' measured strength
    (``strength_md``, :mod:`sparsenlp.analysis.strength`), PIEs, covariates, figures, notes and skipped records."""
    parts = [f"# sparsenlp report: `{sweep_dir}`\n\n## What was run\n\n", provenance_md, "\n",
             significance_section(sig, alpha, allow_unreplicated), "\n", robustness_section(robust), "\n",
             *([strength_md, "\n"] if strength_md else []), pie_section(pie, pie_skipped), "\n",
             covariate_section(covariates), "\n",
             _section("Figures", [f"[{name}](figures/{name}.png)" for name in figures], "None drawn (see the notes)."),
             "\n", _section("Notes", notes, "None."), "\n",
             _section("Skipped records", skipped, "None: every results.json under the sweep was read.")]
    return "".join(parts)


def pie_markdown(sweep_dir: str, pie: pd.DataFrame, examples: pd.DataFrame, notes: Sequence[str]) -> str:
    """``pie.md`` of ``sparsenlp-report pie``: the PIE section, the examples of the clean test set, notes."""
    parts = [f"# Pruning Identified Exemplars: `{sweep_dir}`\n\n", pie_section(pie)]
    if not examples.empty:
        conditions = _conditions(examples)
        shown = examples[examples["condition"] == conditions[0]]
        parts += [f"\n## PIE examples ({conditions[0]}, sentence level; every condition in `pie_examples.csv`)\n\n",
                  markdown_table(shown[["lang", "arm", "sparsity", "id", "tokens", "gold", "dense", "sparse"]])]
    parts += ["\n", _section("Notes", notes, "None.")]
    return "".join(parts)
