"""The study's figures, from the DataFrames of :mod:`sparsenlp.analysis.collect` and ``pie_report``.

Every function takes DataFrames and returns a :class:`matplotlib.figure.Figure` built without pyplot,
so figures carry no global state, work under any backend (a notebook shows them inline, the CLI saves
them with Agg) and many can be made in one process. Each data line is labelled (a language code, a
tier, ``<tier> · <arm>``), which is what legends show and what tests count.

Conventions: one panel per pruning setting (an arm without its sparsity level, column ``setting``) and
the dense runs at sparsity 0 in every panel, since they are the baseline each setting starts from;
languages are coloured by resource tier.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sparsenlp.analysis.collect import DENSE, seed_means

TIER_COLORS = {"high": "tab:blue", "low": "tab:orange"}
ARM_STYLES = ("-", "--", ":", "-.")
PANEL = (4.5, 3.5)


def _color(tier: str) -> str:
    return TIER_COLORS.get(tier, "tab:gray")


def sparse_arms(table: pd.DataFrame) -> list[str]:
    """The pruning settings of the sweep's sparse arms; just dense when the sweep has no sparse run."""
    return sorted(set(table.loc[table["method"] != DENSE, "setting"])) or [DENSE]


def _arm_rows(table: pd.DataFrame, setting: str) -> pd.DataFrame:
    """The rows of one pruning setting plus the shared dense baseline."""
    return table[(table["setting"] == setting) | (table["method"] == DENSE)]


def _arm_title(setting: str) -> str:
    return setting


def _panels(n: int, ncols: int = 3, sharey: bool = True) -> tuple[Figure, list]:
    ncols = min(n, ncols)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(PANEL[0] * ncols, PANEL[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharey=sharey, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _line(ax, x: Iterable[float], y: Iterable[float], band: Iterable[float] | None = None, **kw) -> None:
    x, y = np.asarray(list(x), float), np.asarray(list(y), float)
    ax.plot(x, y, marker="o", **kw)
    if band is not None:
        band = np.nan_to_num(np.asarray(list(band), float))
        ax.fill_between(x, y - band, y + band, color=kw.get("color"), alpha=0.15, linewidth=0)


def _per_language(ax, stats: pd.DataFrame, y: str, band: str | None = None, thin: bool = False) -> None:
    """One line per language (x: target sparsity), coloured by tier and named at its last point
    (with 40 languages a legend entry each would be unreadable)."""
    for (lang, tier), g in stats.sort_values("target_sparsity").groupby(["lang", "tier"]):
        _line(ax, g["target_sparsity"], g[y], g[band] if band else None, color=_color(tier), label=lang,
              linewidth=0.8 if thin else 1.5, alpha=0.5 if thin else 1.0, markersize=3 if thin else 5)
        ax.annotate(lang, (g["target_sparsity"].iloc[-1], g[y].iloc[-1]), xytext=(4, 0),
                    textcoords="offset points", fontsize="x-small", color=_color(tier), va="center")


def _tier_legend(ax, tiers: Iterable[str]) -> None:
    ax.legend(handles=[Line2D([], [], color=_color(t), label=t) for t in sorted(set(tiers))],
              title="tier", fontsize="small")


def _per_tier(ax, stats: pd.DataFrame, y: str, label: str = "{tier}", **kw) -> None:
    """One line per tier: the mean over languages (each language weighs equally), band = std over languages."""
    agg = stats.groupby(["tier", "target_sparsity"])[y].agg(["mean", "std"]).reset_index()
    for tier, g in agg.groupby("tier"):
        _line(ax, g["target_sparsity"], g["mean"], g["std"], color=_color(tier), label=label.format(tier=tier),
              linewidth=2.5, **kw)


def f1_vs_sparsity(table: pd.DataFrame, by: str = "lang", condition: str = "clean") -> Figure:
    """F1 (mean ± std over seeds) against target sparsity per language (``by="lang"``) or per tier."""
    if by not in ("lang", "tier"):
        raise ValueError(f"by must be 'lang' or 'tier', not {by!r}")
    sub = table[table["condition"] == condition]
    arms = sparse_arms(sub)
    fig, axes = _panels(len(arms))
    for ax, arm in zip(axes, arms):
        stats = seed_means(_arm_rows(sub, arm), ["lang", "tier", "target_sparsity"])
        if by == "lang":
            _per_language(ax, stats, "f1_mean", "f1_std")
            _tier_legend(ax, stats["tier"])
        else:
            _per_tier(ax, stats, "f1_mean")
            ax.legend(title="tier", fontsize="small")
        ax.set(title=_arm_title(arm), xlabel="target sparsity", ylabel=f"F1 ({condition})")
    fig.suptitle(f"F1 vs sparsity per {'language' if by == 'lang' else 'resource tier'}")
    return fig


def delta_vs_dense(relative: pd.DataFrame, condition: str = "clean", value: str = "f1") -> Figure:
    """Change relative to dense per language (thin, coloured by tier) and per tier mean (thick)."""
    sub = relative[relative["condition"] == condition]
    arms = sparse_arms(sub)
    fig, axes = _panels(len(arms))
    for ax, arm in zip(axes, arms):
        rows = sub[sub["setting"] == arm]
        # the dense baseline is the origin of every language's line: no change at sparsity 0
        origin = rows[rows[f"{value}_dense"].notna()].drop_duplicates("lang").assign(
            target_sparsity=0.0, **{f"delta_{value}": 0.0})
        rows = pd.concat([origin, rows])
        _per_language(ax, rows, f"delta_{value}", thin=True)
        _per_tier(ax, rows, f"delta_{value}", label="{tier} mean")
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set(title=_arm_title(arm), xlabel="target sparsity", ylabel=f"Δ{value.upper()} vs dense ({condition})")
        ax.legend(handles=[line for line in ax.lines if line.get_label().endswith(" mean")], fontsize="small")
    fig.suptitle("Change relative to dense: low- vs high-resource languages")
    return fig


def robustness_gap(table: pd.DataFrame) -> Figure:
    """Robustness gap (clean F1 − perturbed F1) against sparsity: one panel per perturbed condition,
    one line per tier and arm (mean over languages)."""
    perturbed = table[table["condition"] != "clean"]
    conditions = sorted(perturbed["condition"].unique())
    if not conditions:
        raise ValueError("no perturbed condition in the table; run with perturbation=suite")
    arms = sparse_arms(perturbed)
    fig, axes = _panels(len(conditions), ncols=4)
    for ax, condition in zip(axes, conditions):
        sub = perturbed[perturbed["condition"] == condition]
        for arm, style in zip(arms, ARM_STYLES * len(arms)):
            stats = seed_means(_arm_rows(sub, arm), ["lang", "tier", "target_sparsity"], ["gap"])
            _per_tier(ax, stats, "gap_mean", label=f"{{tier}} · {_arm_title(arm)}", linestyle=style)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set(title=condition, xlabel="target sparsity", ylabel="F1 gap (clean − perturbed)")
        ax.legend(fontsize="small")
    fig.suptitle("Robustness gap vs sparsity")
    return fig


def pie_rate(pies: pd.DataFrame, condition: str = "clean") -> Figure:
    """PIE fraction against sparsity: one panel per level (sentence, token), one line per tier and arm."""
    sub = pies[pies["condition"] == condition]
    if sub.empty:
        raise ValueError(f"no PIE results for condition {condition!r}")
    levels = [lv for lv in ("sentence", "token") if lv in set(sub["level"])]
    arms = sparse_arms(sub)
    fig, axes = _panels(len(levels), sharey=False)
    for ax, level in zip(axes, levels):
        rows = sub[sub["level"] == level]
        for arm, style in zip(arms, ARM_STYLES * len(arms)):
            arm_rows = rows[rows["setting"] == arm]
            _per_tier(ax, arm_rows, "fraction", label=f"{{tier}} · {_arm_title(arm)}", linestyle=style)
        ax.set(title=f"{level} level", xlabel="target sparsity", ylabel=f"PIE fraction ({condition})")
        ax.legend(fontsize="small")
    fig.suptitle("Pruning Identified Exemplars vs sparsity")
    return fig


def method_comparison(table: pd.DataFrame, a: str = "global_magnitude", b: str = "layerwise_magnitude",
                      condition: str = "clean") -> Figure:
    """Paired comparison of two methods: one point per language × target sparsity (seed-mean F1 of ``a``
    on x, of ``b`` on y), coloured by tier; points above the diagonal favour ``b``."""
    sub = table[(table["condition"] == condition) & table["method"].isin([a, b])]
    paired = ["lang", "tier", "model", "regime", "schedule", "embeddings", "quantization", "target_sparsity"]
    stats = seed_means(sub, [*paired, "method"])
    wide = stats.pivot(index=paired, columns="method", values="f1_mean")
    if a not in wide or b not in wide or wide[[a, b]].dropna().empty:
        raise ValueError(f"need runs of both {a} and {b} at the same sparsity to compare them")
    wide = wide[[a, b]].dropna().reset_index()
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.subplots()
    for tier, g in wide.groupby("tier"):
        ax.scatter(g[a], g[b], color=_color(tier), label=tier, s=15 + 60 * g["target_sparsity"])
    lo, hi = float(wide[[a, b]].min().min()), float(wide[[a, b]].max().max())
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8, label="_diagonal")
    ax.set(xlabel=f"F1 {a} ({condition})", ylabel=f"F1 {b} ({condition})", aspect="equal",
           title=f"{b} vs {a}\n(one point per language and sparsity; size: sparsity)")
    ax.legend(fontsize="small")
    return fig


def study_figures(table: pd.DataFrame, relative: pd.DataFrame,
                  pies: pd.DataFrame | None = None) -> tuple[dict[str, Figure], list[str]]:
    """The report's standard figures by file stem, and a note for each one the sweep has no data for."""
    makers = {
        "f1_vs_sparsity_lang": lambda: f1_vs_sparsity(table, by="lang"),
        "f1_vs_sparsity_tier": lambda: f1_vs_sparsity(table, by="tier"),
        "delta_vs_dense": lambda: delta_vs_dense(relative),
        "robustness_gap": lambda: robustness_gap(table),
        "global_vs_layerwise": lambda: method_comparison(table),
    }
    if pies is not None and not pies.empty:
        makers["pie_rate"] = lambda: pie_rate(pies)
    figures, notes = {}, []
    for name, make in makers.items():
        if name == "delta_vs_dense" and relative.empty:
            notes.append(f"{name}: skipped, the sweep has no sparse run")
            continue
        try:
            figures[name] = make()
        except ValueError as exc:
            notes.append(f"{name}: skipped, {exc}")
    return figures, notes


def save(figures: dict[str, Figure], out_dir: str | Path, dpi: int = 120) -> list[Path]:
    """Write each figure as ``<out_dir>/<name>.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        path = out / f"{name}.png"
        fig.savefig(path, dpi=dpi)
        paths.append(path)
    return paths
