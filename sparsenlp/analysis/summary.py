"""The report's Markdown: ``summary.md`` (provenance, verdicts, robustness, PIEs, skipped records) and ``pie.md``.

Pure functions of the tables (DataFrame → str). Every aggregate is per comparison arm (see
:func:`sparsenlp.analysis.sweep_comparison.cell_arms`) × sparsity × condition, and per tier next to all
languages; nothing is averaged across arms or across perturbation kinds.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from sparsenlp.analysis import stats
from sparsenlp.analysis.pie_floor import MIN_HALF
from sparsenlp.analysis.stats import VERDICTS

CLEAN = "clean"


def markdown_table(df: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub Markdown table; missing values show as '–'."""
    return df.to_markdown(index=False, floatfmt=f".{digits}f", missingval="–") + "\n"


def _conditions(df: pd.DataFrame) -> list[str]:
    """Clean first, then the perturbed conditions in name order."""
    return sorted(set(df["condition"]), key=lambda c: (c != CLEAN, c))


def verdict_table(sig: pd.DataFrame) -> pd.DataFrame:
    """Per condition × arm × sparsity: languages better / worse / indistinguishable from dense, over all
    languages and per tier, with the mean and spread of ΔF1 over languages."""
    counts = stats.verdict_summary(sig)
    counts["verdicts"] = [" / ".join(str(r[v]) for v in VERDICTS) for _, r in counts.iterrows()]
    wide = counts.pivot_table(index=["condition", "arm", "sparsity"], columns="tier", values="verdicts",
                              aggfunc="first")
    tiers = ["all", *sorted(t for t in wide.columns if t != "all")]
    wide = wide[tiers].rename(columns={t: f"{t}: better / worse / indistinguishable" if t == "all" else t
                                       for t in tiers})
    overall = counts[counts["tier"] == "all"].set_index(["condition", "arm", "sparsity"])
    wide["mean ΔF1"] = overall["delta_f1_mean"]
    wide["sd ΔF1 over languages"] = overall["delta_f1_std"]
    wide["mean relative ΔF1"] = overall["rel_delta_f1_mean"]
    out = wide.reset_index()
    out.columns.name = None
    order = {c: k for k, c in enumerate(_conditions(out))}
    return out.sort_values(["condition", "arm", "sparsity"], key=lambda s: s.map(order) if s.name == "condition"
                           else s, kind="stable").reset_index(drop=True)


def significance_section(sig: pd.DataFrame, n_boot: int, alpha: float) -> str:
    if sig.empty:
        return ("## Sparse vs dense\n\nNo comparison: the sweep has no sparse run next to a dense run of the same "
                "cell.\n")
    correction = sig["correction"].iloc[0]
    text = (
        "## Sparse vs dense: which languages change\n\n"
        "Per language, arm and sparsity: ΔF1 = seed-mean span F1 of the sparse runs − that of the dense runs "
        "of the same model, regime, training languages and quantization, on the same test sentences. Its 95% "
        "interval comes from a two-level bootstrap (seeds and test sentences resampled, "
        f"B = {n_boot:,}); the p-value from a paired bootstrap test on sentence-level predictions, adjusted "
        f"across the languages of each arm × sparsity × condition with **{_correction_name(correction)}** "
        f"(`{correction}`). A language is better or worse when its adjusted p-value is below {alpha:g}, "
        "indistinguishable otherwise. Every row, with its interval: `significance.csv`.\n\n")
    return text + markdown_table(verdict_table(sig))


def _correction_name(method: str) -> str:
    return {"holm": "Holm's step-down correction (family-wise error)",
            "fdr_bh": "Benjamini–Hochberg (false discovery rate)",
            "fdr_by": "Benjamini–Yekutieli (false discovery rate)", "bonferroni": "Bonferroni"}.get(method, method)


def robustness_table(robust: pd.DataFrame) -> pd.DataFrame:
    """Per perturbation × arm × sparsity (0: the arm's dense baseline) and tier: mean over languages of the
    perturbed F1 and of the relative gap (clean − perturbed) / clean (``figures.robustness_table`` rows)."""
    grouped = robust.groupby(["condition", "arm", "sparsity", "tier"], sort=True).agg(
        languages=("lang", "nunique"), perturbed_f1=("f1", "mean"), relative_gap=("relative_gap", "mean"))
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
    """Per condition × arm × sparsity × level: mean PIE rate, noise floor and excess over languages, how many
    languages' excess interval lies above 0, and how many rows have too few seeds to tell."""
    pie = pie.assign(above=pie["excess_ci_low"] > 0)
    out = pie.groupby(["condition", "arm", "sparsity", "level"], sort=True).agg(
        languages=("lang", "nunique"), pie_rate=("pie_rate", "mean"), noise_floor=("noise_floor", "mean"),
        excess=("excess", "mean"), excess_above_floor=("above", "sum"), too_small=("too_small", "sum"))
    return out.reset_index().rename(columns={"excess_above_floor": "languages with excess CI > 0",
                                             "too_small": "languages too small to tell"})


def pie_section(pie: pd.DataFrame | None, skipped_reason: str | None = None) -> str:
    head = "## Pruning Identified Exemplars, with a noise floor\n\n"
    if pie is None or pie.empty:
        return head + (skipped_reason or "No PIE comparison in this sweep.") + "\n"
    small = int(pie["too_small"].sum())
    text = head + (
        "A sentence (token) is a PIE when the modal prediction of the sparse seeds differs from that of the dense "
        "seeds. Dense seeds already disagree among themselves, so each PIE rate stands next to the rate between "
        "two dense populations of the same sizes (`noise_floor`); `excess` = rate − floor, with a 95% interval "
        "over test sentences per language in `pie.csv`. Means over languages; examples in `pie_examples.csv`.\n\n")
    if small:
        text += (f"**{small} of {len(pie)} rows have too few seeds to separate PIEs from seed noise** "
                 f"(`too_small`: fewer than {2 * MIN_HALF} dense or {MIN_HALF} sparse seeds; the floor then "
                 "comes from resampling the dense seeds and its bias has no known sign). Read their excess as "
                 "unknown, not as zero; more dense seeds are the cheap fix.\n\n")
    return text + markdown_table(pie_table(pie))


def _section(title: str, items: Sequence[str], empty: str) -> str:
    return f"## {title}\n\n" + ("".join(f"- {item}\n" for item in items) if items else f"{empty}\n")


def summary_markdown(sweep_dir: str, provenance_md: str, sig: pd.DataFrame, robust: pd.DataFrame | None,
                     pie: pd.DataFrame | None, figures: Sequence[str], notes: Sequence[str],
                     skipped: Sequence[str], n_boot: int, alpha: float, pie_skipped: str | None = None,
                     strength_md: str = "") -> str:
    """``summary.md``: provenance first, then the verdicts, robustness with the perturbations' measured strength
    (``strength_md``, :mod:`sparsenlp.analysis.strength`), PIEs, figures, notes and skipped records."""
    parts = [f"# sparsenlp report: `{sweep_dir}`\n\n## What was run\n\n", provenance_md, "\n",
             significance_section(sig, n_boot, alpha), "\n", robustness_section(robust), "\n",
             *([strength_md, "\n"] if strength_md else []), pie_section(pie, pie_skipped), "\n",
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
