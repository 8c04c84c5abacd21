"""Figures of the statistical analysis: pure functions DataFrame → matplotlib Figure, built without pyplot.

Inputs (one row each; ``dense`` rows of a runs table have ``arm="dense"`` and ``sparsity=0``):

- runs table: ``lang, tier, arm, sparsity, seed, condition, f1`` (+ ``script``, ``family`` for
  :func:`f1_small_multiples`), one row per run × test language × condition;
- significance table (:func:`sparsenlp.analysis.stats.significance_table`) with ``tier`` (and
  ``train_size``, optionally ``name``, for :func:`delta_heatmap`) merged in;
- PIE table (:func:`sparsenlp.analysis.pie_floor.pie_floor_table`) with ``tier`` merged in;
- covariate table (:func:`sparsenlp.analysis.covariates.covariate_table`).

Rules every figure follows: one panel per arm and never an average over arms or perturbation kinds;
seeds are averaged within a language first, then languages are averaged with equal weight; **one band
rule**: a mean over languages carries its 95 % t-interval over languages as a band wherever it averages
at least :data:`MIN_BAND` languages, and no band elsewhere (with 2, t = 12.7 makes a band meaningless),
and every figure says so (languages are the replicates of a tier mean; the seed and sentence noise of
each language's value is in the significance table); rates (F1, PIE rates) are drawn within [0, 1];
comparisons with one seed on a side are drawn as crosses, marked "unreplicated"; robustness is shown
as perturbed F1 and as the relative gap (clean − perturbed) / clean, never as a quantity that improves
when the model gets worse; the x axis spaces sparsities by the log of the remaining weights, so 0.9,
0.95 and 0.98 are as far apart as the halvings they are; legends sit below the panels, never on data,
with as many columns as fit the canvas; titles wrap to their panel's width.
"""
from __future__ import annotations

import io
import textwrap
from collections.abc import Collection, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from scipy import stats as scipy_stats

from sparsenlp.analysis.collect import EMPTY
from sparsenlp.analysis.stats import UNREPLICATED

DENSE = "dense"
MIN_BAND = 3  # languages a mean needs for its t-interval to be drawn
BAND = f"band: 95% t-interval over languages, where ≥ {MIN_BAND}"
TIER_COLORS = {"high": "tab:blue", "low": "tab:orange"}
ARM_COLORS = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:red", "tab:gray")
CONFIDENCE = 0.95


# --- helpers ----------------------------------------------------------------------------------------------


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): the mean with a t-interval (NaN bounds for fewer than 2 finite values)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.nan, np.nan, np.nan
    mean = float(v.mean())
    if v.size < 2 or np.all(v == v[0]):
        return mean, (mean if v.size >= 2 else np.nan), (mean if v.size >= 2 else np.nan)
    low, high = scipy_stats.t.interval(confidence, v.size - 1, loc=mean, scale=scipy_stats.sem(v))
    return mean, float(low), float(high)


def group_means(df: pd.DataFrame, keys: Sequence[str], value: str) -> pd.DataFrame:
    """Per ``keys`` group: ``mean``, ``low``, ``high`` (t-interval) and ``n`` of ``value``."""
    rows = []
    for key, g in df.groupby(list(keys), sort=True):
        mean, low, high = mean_ci(g[value])
        rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))), "mean": mean, "low": low,
                     "high": high, "n": int(g[value].notna().sum())})
    return pd.DataFrame(rows, columns=[*keys, "mean", "low", "high", "n"])


def seed_mean(runs: pd.DataFrame, value: str,
              keys: Sequence[str] = ("lang", "arm", "sparsity", "condition")) -> pd.DataFrame:
    """Mean of ``value`` over seeds per language × arm × sparsity × condition, language facts kept."""
    facts = [c for c in ("tier", "script", "family", "train_size") if c in runs and c not in keys]
    out = runs.groupby(list(keys), sort=True)[value].mean().reset_index()
    if facts:
        out = out.merge(runs[["lang", *facts]].drop_duplicates("lang"), on="lang", how="left")
    return out


def sparse_arms(df: pd.DataFrame) -> list[str]:
    arms = sorted(set(df["arm"]) - {DENSE})
    if not arms:
        raise ValueError("no sparse arm in the table")
    return arms


def _with_dense(df: pd.DataFrame, arm: str) -> pd.DataFrame:
    """One arm's rows plus the dense rows, which start every arm's line at sparsity 0."""
    return df[(df["arm"] == arm) | (df["arm"] == DENSE)]


def _forward(s):
    return -np.log10(1.0 - np.clip(np.asarray(s, dtype=float), 0.0, 0.9999))


def _inverse(x):
    return 1.0 - 10.0 ** (-np.asarray(x, dtype=float))


def percent(sparsity: float) -> str:
    """A sparsity as a tick label: ``dense`` or its percentage ("50", "95", "98")."""
    return "dense" if sparsity == 0 else f"{100 * sparsity:g}"


def sparsity_axis(ax, sparsities: Sequence[float], label: str | None = "sparsity (%)") -> None:
    """x spaced by −log10(remaining weights): 0.5, 0.9, 0.99 are one halving, then tenfold steps apart."""
    ax.set_xscale("function", functions=(_forward, _inverse))
    ticks = sorted(set(float(s) for s in sparsities))
    ax.set_xticks(ticks, [percent(s) for s in ticks])
    ax.tick_params(axis="x", labelsize="small")
    if label:
        ax.set_xlabel(label)
    if ticks:
        low, high = _forward(min(ticks)), _forward(max(ticks))
        pad = 0.05 * max(high - low, 0.5)
        ax.set_xlim(_inverse(low - pad), _inverse(high + pad))


def _panels(nrows: int, ncols: int, width: float = 3.6, height: float = 2.9,
            sharey: bool | str = True) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width * ncols + 0.6, height * nrows + 1.2), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharey=sharey, sharex=True, squeeze=False)
    return fig, axes


def _suptitle(fig: Figure, text: str, fontsize: float | None = None) -> None:
    """A figure title wrapped to the figure's width (constrained layout makes room for its height, not its
    width); the first line is the title, the others say how to read the figure, smaller."""
    fontsize = fontsize or (12.0 if fig.get_figwidth() >= 10 else 11.0)
    width_pt = fig.get_figwidth() * 72
    chars = max(20, int(width_pt / (0.58 * fontsize)))  # a generous average glyph width for the default font
    lines = [wrapped for line in text.split("\n") for wrapped in textwrap.wrap(line, chars)]
    fig.suptitle("\n".join(lines), fontsize=fontsize)


def _legend_below(fig: Figure, handles: Sequence, ncols: int | None = None, title: str | None = None) -> None:
    """A figure legend under every panel (constrained layout makes room for it outside the axes); fewer
    columns where the canvas is too narrow for them (:func:`_declutter`)."""
    legend = fig.legend(handles=list(handles), loc="outside lower center", ncols=ncols or min(len(handles), 4),
                        fontsize="small", title=title, title_fontsize="small", frameon=False)
    legend._sparsenlp_handles = (list(handles), title)


def _fit_legends(fig: Figure, canvas) -> None:
    """Redraw each figure legend with one column fewer until it fits the canvas's width."""
    for legend in list(fig.legends):
        handles, title = getattr(legend, "_sparsenlp_handles", (None, None))
        ncols = legend._ncols
        while handles and ncols > 1 and legend.get_window_extent(canvas.get_renderer()).width > fig.bbox.width - 4:
            legend.remove()
            ncols -= 1
            legend = fig.legend(handles=handles, loc="outside lower center", ncols=ncols, fontsize="small",
                                title=title, title_fontsize="small", frameon=False)
            legend._sparsenlp_handles = (handles, title)
            canvas.draw()


def _wrap(text: str, width_in: float, fontsize: float) -> str:
    """``text`` in lines that fit ``width_in`` inches at ``fontsize`` points, breaking after spaces and '/'."""
    chars = max(8, int(width_in * 72 / (0.6 * fontsize)))
    lines = []
    for paragraph in text.split("\n"):
        words, line = [w for w in paragraph.replace("/", "/\0").replace(" ", " \0").split("\0") if w], ""
        for word in words:
            if line and len(line + word.rstrip()) > chars:
                lines.append(line.rstrip())
                line = ""
            line += word
        lines.append(line.rstrip())
    return "\n".join(lines)


def _panel_title(ax, text: str, fontsize: float = 10.0) -> None:
    """A panel title wrapped to the panel's width, so neighbouring titles never run into each other."""
    width = ax.get_position().width * ax.figure.get_figwidth()
    ax.set_title(_wrap(text, width, fontsize), fontsize=fontsize)


def _bottom_labels(axes: np.ndarray, n: int, label: str) -> None:
    """Tick labels and an x label under the lowest visible panel of every column (shared x axes show
    them on the bottom row only, which may be hidden)."""
    nrows, ncols = axes.shape
    for column in range(min(ncols, n)):
        bottom = max(r for r in range(nrows) if r * ncols + column < n)
        axes[bottom, column].xaxis.set_tick_params(labelbottom=True)
        axes[bottom, column].set_xlabel(label, fontsize="small")


def _declutter(fig: Figure) -> Figure:
    """Turn an axis's x tick labels vertical where neighbours would touch (narrow panels)."""
    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)  # Agg measures text
    canvas.draw()
    _fit_legends(fig, canvas)
    renderer = canvas.get_renderer()
    for ax in fig.axes:
        labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        boxes = [t.get_window_extent(renderer) for t in labels]
        if any(a.x1 + 2 > b.x0 for a, b in zip(boxes, boxes[1:])):
            ax.tick_params(axis="x", labelrotation=90)
    return fig


def _band(ax, x, g: pd.DataFrame, color: str, label: str, alpha_band: float = 0.18,
          limits: tuple[float, float] | None = None, **kw) -> None:
    """A mean line with its t-interval as a band where the mean is over ≥ :data:`MIN_BAND` languages (the
    band is labelled ``_band`` so legends skip it); ``limits`` clip the band to a quantity's range (a rate's
    [0, 1])."""
    ax.plot(x, g["mean"], color=color, marker="o", markersize=3.5, linewidth=1.8, label=label, **kw)
    shown = (g["n"] >= MIN_BAND).to_numpy()
    if shown.any():
        low, high = g["low"].to_numpy(float), g["high"].to_numpy(float)
        if limits is not None:
            low, high = np.clip(low, *limits), np.clip(high, *limits)
        ax.fill_between(np.asarray(x, dtype=float), np.where(shown, low, np.nan), np.where(shown, high, np.nan),
                        color=color, alpha=alpha_band, linewidth=0, label="_band")


def _tier_color(tier: str) -> str:
    return TIER_COLORS.get(tier, "tab:gray")


def _tier_handles(tiers: Sequence[str], what: str = "mean over languages") -> list:
    return [Line2D([], [], color=_tier_color(t), marker="o", markersize=3.5, label=f"{t}-resource ({what})")
            for t in sorted(set(tiers))]


# --- robustness -----------------------------------------------------------------------------------------


def robustness_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per run and perturbed condition: ``f1`` (perturbed) and ``relative_gap`` = (clean − perturbed) / clean
    of the same run, then averaged over seeds per language × arm × sparsity × condition."""
    keys = ["lang", "arm", "sparsity", "seed"]
    clean = runs[runs["condition"] == "clean"][[*keys, "f1"]].rename(columns={"f1": "clean_f1"})
    perturbed = runs[runs["condition"] != "clean"].merge(clean, on=keys, how="inner")
    if perturbed.empty:
        raise ValueError("no perturbed condition with a clean counterpart in the runs table")
    perturbed["relative_gap"] = (perturbed["clean_f1"] - perturbed["f1"]) / perturbed["clean_f1"].where(
        perturbed["clean_f1"] > 0)
    f1 = seed_mean(perturbed, "f1")
    gap = seed_mean(perturbed, "relative_gap")[["lang", "arm", "sparsity", "condition", "relative_gap"]]
    return f1.merge(gap, on=["lang", "arm", "sparsity", "condition"])


def robustness(runs: pd.DataFrame, arm: str, metric: str = "f1", ncols: int = 4) -> Figure:
    """Perturbed F1 (``metric="f1"``) or relative robustness gap (``"relative_gap"``) of one arm against
    sparsity (the dense runs at 0): one panel per perturbed condition, one line per tier (mean over
    languages, 95% CI). One figure per arm keeps panels readable for a full perturbation suite."""
    if metric not in ("f1", "relative_gap"):
        raise ValueError(f"metric must be 'f1' or 'relative_gap', not {metric!r}")
    table = robustness_table(runs)
    if arm not in set(table["arm"]):
        raise ValueError(f"arm {arm!r} not in the runs table; it has {', '.join(sparse_arms(table))}")
    rows = _with_dense(table, arm)
    conditions = sorted(set(rows["condition"]))
    ncols = min(ncols, len(conditions))
    nrows = -(-len(conditions) // ncols)
    fig, axes = _panels(nrows, ncols, width=3.3, height=2.6)
    for ax in axes.ravel()[len(conditions):]:
        ax.set_visible(False)
    for ax, condition in zip(axes.ravel(), conditions):
        sub = rows[rows["condition"] == condition]
        for tier, g in group_means(sub, ["tier", "sparsity"], metric).groupby("tier"):
            _band(ax, g["sparsity"], g, _tier_color(tier), f"{tier}", limits=(0.0, 1.0) if metric == "f1" else None)
        if metric == "relative_gap":
            ax.axhline(0.0, color="black", linewidth=0.7)
        else:
            ax.set_ylim(0.0, 1.0)
        sparsity_axis(ax, rows["sparsity"], label=None)
        _panel_title(ax, condition)
    _bottom_labels(axes, len(conditions), "sparsity (%)")
    for ax in axes[:, 0]:
        ax.set_ylabel("perturbed F1" if metric == "f1" else "relative gap\n(clean − perturbed) / clean")
    what = ("F1 on each perturbed test set" if metric == "f1"
            else "Relative robustness gap, (clean F1 − perturbed F1) / clean F1 (higher = less robust)")
    _suptitle(fig, f"{arm}: {what} vs sparsity\none panel per perturbation; {BAND}; x: log scale of remaining "
                   "weights; a perturbation that cannot apply to a language leaves it out")
    _legend_below(fig, _tier_handles(table["tier"]))
    return _declutter(fig)


# --- change vs dense --------------------------------------------------------------------------------------


def _replicated(rows: pd.DataFrame) -> np.ndarray:
    """Rows the table tested: replicated ones, and unreplicated ones too when the report was asked to
    (``--allow-unreplicated`` gives them a verdict), so figures and tables always agree."""
    if "verdict" in rows:
        return (rows["verdict"] != UNREPLICATED).to_numpy()
    return rows["replicated"].astype(bool).to_numpy() if "replicated" in rows else np.ones(len(rows), dtype=bool)


def _in_means(rows: pd.DataFrame) -> pd.DataFrame:
    """The tested rows whose absolute and relative ΔF1 are both defined: the languages every mean is over, as in
    the summary's tables (a language with dense F1 = 0 has no relative change, so it is in neither mean)."""
    kept = rows[_replicated(rows)]
    both = [c for c in ("delta_f1", "rel_delta_f1") if c in kept]
    return kept[kept[both].notna().all(axis=1)] if both else kept


def delta_vs_dense(sig: pd.DataFrame, relative: bool = False, condition: str = "clean",
                   alpha: float = 0.05) -> Figure:
    """ΔF1 vs dense (absolute, or relative to dense F1) against sparsity, one panel per arm: per tier the
    mean over its replicated languages (band: the one rule), and each language as a dot, filled when
    significant after the table's correction (p_adjusted < ``alpha``), hollow when not, a cross when the
    comparison is unreplicated (one seed on a side: not tested, not in the means)."""
    value = "rel_delta_f1" if relative else "delta_f1"
    sub = sig[sig["condition"] == condition]
    if sub.empty:
        raise ValueError(f"no rows for condition {condition!r}")
    arms = sparse_arms(sub)
    fig, axes = _panels(1, len(arms), width=4.4, height=3.4)
    tiers = sorted(set(sub["tier"]))
    offsets = {t: 0.012 * (k - (len(tiers) - 1) / 2) for k, t in enumerate(tiers)}  # dots of tiers side by side
    for ax, arm in zip(axes[0], arms):
        rows = sub[sub["arm"] == arm]
        for tier in tiers:
            t = rows[rows["tier"] == tier]
            color = _tier_color(tier)
            x = _inverse(_forward(t["sparsity"]) + offsets[tier])
            replicated = _replicated(t)
            significant = (t["p_adjusted"] < alpha).to_numpy() & replicated
            tested = replicated & ~significant
            ax.scatter(x[significant], t[value][significant], s=9, color=color, alpha=0.55, linewidths=0,
                       label=f"_{tier} significant")
            ax.scatter(x[tested], t[value][tested], s=9, facecolors="none", edgecolors=color,
                       alpha=0.7, linewidths=0.6, label=f"_{tier} not significant")
            ax.scatter(x[~replicated], t[value][~replicated], s=12, marker="x", color=color, alpha=0.7,
                       linewidths=0.6, label=f"_{tier} unreplicated")
            g = group_means(_in_means(t), ["sparsity"], value)
            if not g.empty:
                _band(ax, g["sparsity"], g, color, f"{tier} mean", zorder=3)
        ax.axhline(0.0, color="black", linewidth=0.8)
        sparsity_axis(ax, rows["sparsity"])
        _panel_title(ax, arm)
    axes[0, 0].set_ylabel("ΔF1 / dense F1" if relative else "ΔF1 (sparse − dense)")
    correction = sub["correction"].iloc[0] if "correction" in sub else "the table's correction"
    kind = "Relative change" if relative else "Change"
    _suptitle(fig, f"{kind} in span F1 vs dense (sparse − dense, seed means), {condition} test set\n"
                   f"line: mean over a tier's languages; {BAND}")
    handles = [*_tier_handles(tiers),
               Line2D([], [], linestyle="none", marker="o", color="black", markersize=4,
                      label=f"a language, p_adjusted < {alpha:g} ({correction})"),
               Line2D([], [], linestyle="none", marker="o", markerfacecolor="none", markeredgecolor="black",
                      markersize=4, label="a language, not significant")]
    if not _replicated(sub).all():
        handles.append(Line2D([], [], linestyle="none", marker="x", color="black", markersize=4,
                              label="unreplicated (one seed on a side): not tested"))
    _legend_below(fig, handles, ncols=2)
    return _declutter(fig)


def heatmap_order(sig: pd.DataFrame) -> list[str]:
    """Languages by tier (high first), then by training size (largest first), then by code."""
    facts = sig.drop_duplicates("lang").copy()
    facts["_tier"] = facts["tier"].map({"high": 0, "low": 1}).fillna(2)
    size = facts["train_size"] if "train_size" in facts else 0
    facts["_size"] = -pd.to_numeric(size, errors="coerce").fillna(0)
    return facts.sort_values(["_tier", "_size", "lang"])["lang"].tolist()


def delta_heatmap(sig: pd.DataFrame, condition: str = "clean", relative: bool = False, alpha: float = 0.05) -> Figure:
    """Language × sparsity heatmap of ΔF1 (or relative ΔF1), one panel per arm; languages ordered by tier and
    training size (sentences trained on), a dot on every cell significant after correction, a cross on every
    unreplicated cell, a colour scale centred on 0."""
    sub = sig[sig["condition"] == condition]
    if sub.empty:
        raise ValueError(f"no rows for condition {condition!r}")
    sparsities = sorted(set(sub["sparsity"]))
    panels = {arm: sub[sub["arm"] == arm] for arm in sparse_arms(sub)}
    return _delta_grid(sub, panels, "sparsity", sparsities, [percent(s) for s in sparsities], "sparsity (%)",
                       relative, alpha, f"per language, {condition} test set")


def calibration_heatmap(matrix: pd.DataFrame, condition: str = "clean", relative: bool = False,
                        alpha: float = 0.05) -> Figure:
    """Language × calibration-language heatmap of ΔF1 vs dense (:func:`calibration_matrix`), one panel per one-shot
    arm without its calibration (method, target, recovery): which data calibrates best, language by language."""
    sub = matrix[matrix["condition"] == condition]
    if sub.empty:
        raise ValueError(f"no one-shot rows for condition {condition!r}")
    present = set(sub["calibration"])
    columns = [c for c in CALIBRATIONS if c in present] + sorted(present - set(CALIBRATIONS))
    panels = {panel: sub[sub["panel"] == panel] for panel in sorted(set(sub["panel"]))}
    return _delta_grid(sub, panels, "calibration", columns, columns, "calibration data", relative, alpha,
                       f"by calibration data, {condition} test set")


def _delta_grid(sub: pd.DataFrame, panels: dict[str, pd.DataFrame], column: str, columns: Sequence[Any],
                labels: Sequence[str], xlabel: str, relative: bool, alpha: float, title: str) -> Figure:
    """Heatmaps of ΔF1 with language rows (by tier, then training size) and ``column`` columns, one panel each."""
    value = "rel_delta_f1" if relative else "delta_f1"
    order = heatmap_order(sub)
    limit = float(np.nanmax(np.abs(sub[value]))) if sub[value].notna().any() else 1.0
    limit = limit or 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    height = 0.21 * len(order) + 2.2
    fig = Figure(figsize=(2.3 + 0.52 * len(columns) * len(panels) + 1.0, height), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    names = sub.drop_duplicates("lang").set_index("lang")
    # a size on the shared language axis only where every panel trained on the same number of sentences
    sizes = sub.groupby("lang")["train_size"].unique() if "train_size" in sub else pd.Series(dtype=object)

    def label(lang: str) -> str:
        name = f"{names.loc[lang, 'name']} ({lang})" if "name" in names else lang
        size = sizes.get(lang)
        return f"{name} {size[0] / 1000:g}k" if size is not None and len(size) == 1 else name

    image = None
    for ax, (panel, rows) in zip(axes, panels.items()):
        grid = rows.pivot(index="lang", columns=column, values=value).reindex(index=order, columns=columns)
        image = ax.imshow(grid.to_numpy(float), cmap="RdBu", norm=norm, aspect="auto", interpolation="nearest")
        p = rows.pivot(index="lang", columns=column, values="p_adjusted").reindex(index=order, columns=columns)
        ys, xs = np.nonzero((p < alpha).to_numpy())
        ax.scatter(xs, ys, s=7, color="black", edgecolors="white", linewidths=0.4, label="_significant")
        lone = rows.assign(lone=~_replicated(rows)).pivot(index="lang", columns=column, values="lone")
        ys, xs = np.nonzero(lone.reindex(index=order, columns=columns).fillna(False).to_numpy(bool))
        ax.scatter(xs, ys, s=14, marker="x", color="black", linewidths=0.6, label="_unreplicated")
        ax.set_xticks(range(len(columns)), list(labels), fontsize="small")
        ax.set_xlabel(xlabel)
        _panel_title(ax, panel)
        tiers = names.loc[order, "tier"].tolist()
        for k in range(1, len(order)):
            if tiers[k] != tiers[k - 1]:
                ax.axhline(k - 0.5, color="black", linewidth=1.2)
    axes[0].set_yticks(range(len(order)), [label(lang) for lang in order], fontsize="small")
    for tick, lang in zip(axes[0].get_yticklabels(), order):
        tick.set_color(_tier_color(names.loc[lang, "tier"]))
    what = "ΔF1 / dense F1" if relative else "ΔF1 (sparse − dense)"
    fig.colorbar(image, ax=list(axes), shrink=0.6, label=what, location="right")
    correction = sub["correction"].iloc[0] if "correction" in sub else "corrected"
    _suptitle(fig, f"{what} {title}\nlanguages by tier, then sentences trained on")
    handles = [Line2D([], [], linestyle="none", marker="o", color="black", markeredgecolor="white", markersize=4,
                      label=f"p_adjusted < {alpha:g} ({correction})"),
               *(Patch(color=_tier_color(t), label=f"{t}-resource (label colour)") for t in sorted(set(sub["tier"])))]
    if not _replicated(sub).all():
        handles.append(Line2D([], [], linestyle="none", marker="x", color="black", markersize=4,
                              label="unreplicated: not tested"))
    _legend_below(fig, handles, ncols=len(handles))
    return _declutter(fig)


CALIBRATIONS = ("self", "en", "mix", "none")  # the order of calibration-data columns; others follow, sorted
MATRIX = ("panel", "calibration", "lang", "condition", "sparsity", "delta_f1", "ci_low", "ci_high", "rel_delta_f1",
          "rel_ci_low", "rel_ci_high", "p_value", "p_adjusted", "correction", "verdict", "replicated", "n_dense_seeds",
          "n_sparse_seeds", "arm", "name", "lang_name", "tier", "script", "family", "train_size")


def calibration_matrix(sig: pd.DataFrame) -> pd.DataFrame:
    """The one-shot arms' comparisons with dense (``calibration.csv``): one row per language × condition × arm, the
    arm split into ``panel`` (everything but its calibration data: method, target, recovery) and ``calibration``
    (self, a code, mix, none). The rows are the significance table's own, so their intervals and corrected
    p-values are the same statistics as every other comparison's; nothing is averaged over calibrations."""
    if "calibration" not in sig:
        return pd.DataFrame(columns=list(MATRIX))
    sub = sig[~sig["calibration"].isin([EMPTY, None])].copy()
    if sub.empty:
        return pd.DataFrame(columns=list(MATRIX))
    key = sub["arm"].str.replace(r"cal=[^·@+]*", "cal=*", regex=True)
    # calibration=none is the method's data-free magnitude control ("wanda:magnitude[row]"): beside its method's
    # calibrations, in the same panel
    key = key.str.replace(r"([\w-]+):magnitude\[", r"\1[", regex=True)
    sub["panel"] = [k if "@" in k else f"{k}@{s:g}" for k, s in zip(key, sub["sparsity"])]
    return sub[[c for c in MATRIX if c in sub]].sort_values(["panel", "condition", "lang", "calibration"])


# --- F1 per group ----------------------------------------------------------------------------------------


def f1_small_multiples(runs: pd.DataFrame, by: str = "tier", condition: str = "clean", ncols: int = 5) -> Figure:
    """F1 vs sparsity, one small panel per ``by`` group (tier, script, family): per arm the mean over the
    group's languages (seed means first; band: the one rule), and each language as a thin line where the
    group has fewer than :data:`MIN_BAND` languages."""
    if by not in ("tier", "script", "family"):
        raise ValueError(f"by must be tier, script or family, not {by!r}")
    sub = seed_mean(runs[runs["condition"] == condition], "f1")
    if sub.empty:
        raise ValueError(f"no runs for condition {condition!r}")
    arms = sparse_arms(sub)
    sizes = sub.groupby(by)["lang"].nunique().sort_values(ascending=False, kind="stable")
    groups = sizes.index.tolist()
    ncols = min(ncols, len(groups))
    nrows = -(-len(groups) // ncols)
    small = ncols >= 4  # many groups: small panels
    fig, axes = _panels(nrows, ncols, width=2.6 if small else 3.6, height=2.2 if small else 2.8)
    for ax in axes.ravel()[len(groups):]:
        ax.set_visible(False)
    colors = dict(zip(arms, ARM_COLORS * len(arms)))
    for ax, group in zip(axes.ravel(), groups):
        rows = sub[sub[by] == group]
        for arm in arms:
            arm_rows = _with_dense(rows, arm).sort_values("sparsity")
            g = group_means(arm_rows, ["sparsity"], "f1")
            _band(ax, g["sparsity"], g, colors[arm], arm, alpha_band=0.12, limits=(0.0, 1.0))
            if sizes[group] < MIN_BAND:
                if sizes[group] > 1:
                    for lang, one in arm_rows.groupby("lang"):
                        ax.plot(one["sparsity"], one["f1"], color=colors[arm], linewidth=0.7, alpha=0.6,
                                label=f"_{lang}")
        sparsity_axis(ax, sub["sparsity"], label=None)
        n = sizes[group]
        _panel_title(ax, f"{group} ({n} language{'s' if n != 1 else ''})", fontsize=8.0)
        ax.tick_params(axis="both", labelsize="x-small")
        ax.set_ylim(0.0, 1.0)
    _bottom_labels(axes, len(groups), "sparsity (%)")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"F1 ({condition})", fontsize="small")
    _suptitle(fig, f"Span F1 vs sparsity per {by}, mean over its languages\n{BAND}; thin lines: each language of "
                   f"a group of fewer; x: log scale of remaining weights")
    handles = [Line2D([], [], color=colors[a], marker="o", markersize=3.5, label=a) for a in arms]
    _legend_below(fig, handles, title="arm (each starts from the dense runs at sparsity 0)")
    return _declutter(fig)


# --- PIEs -------------------------------------------------------------------------------------------------


def pie_vs_sparsity(pie: pd.DataFrame, condition: str = "clean") -> Figure:
    """Per-seed PIE rate (solid) and the dense-vs-dense noise floor (dashed) against sparsity: one panel per arm
    (columns) × level (rows), one colour per tier (means over languages with ≥ 2 seeds a side; band: the one
    rule), within [0, 1]. Rows with too few seeds are left out, and the panel says how many."""
    sub = pie[pie["condition"] == condition]
    if sub.empty:
        raise ValueError(f"no PIE rows for condition {condition!r}")
    arms = sparse_arms(sub)
    levels = [lv for lv in ("sentence", "token") if lv in set(sub["level"])]
    fig, axes = _panels(len(levels), len(arms), width=4.2, height=3.0, sharey="row")
    for r, level in enumerate(levels):
        for c, arm in enumerate(arms):
            ax = axes[r, c]
            everything = sub[(sub["level"] == level) & (sub["arm"] == arm)]
            rows = everything[~everything["too_small"].astype(bool)]
            for tier, t in rows.groupby("tier"):
                color = _tier_color(tier)
                g = group_means(t, ["sparsity"], "pie_rate")
                _band(ax, g["sparsity"], g, color, f"{tier} PIE rate", limits=(0.0, 1.0))
                f = group_means(t, ["sparsity"], "noise_floor")
                ax.plot(f["sparsity"], f["mean"], color=color, linestyle="--", linewidth=1.4,
                        label=f"{tier} noise floor")
            sparsity_axis(ax, everything["sparsity"])
            ax.set_ylim(bottom=0.0, top=min(1.0, max(0.05, 1.15 * float(np.nanmax(
                rows[["pie_rate", "noise_floor"]].to_numpy(float), initial=0.0)))))
            small = everything["too_small"].astype(bool).mean() if len(everything) else 0.0
            note = f" ({small:.0%} of languages: too few seeds, left out)" if small else ""
            _panel_title(ax, f"{arm}, {level} level{note}", fontsize=9.0 if small else 10.0)
            if c == 0:
                ax.set_ylabel(f"PIE rate ({level}s)")
            if r < len(levels) - 1:
                ax.set_xlabel("")
    _suptitle(fig, f"Pruning Identified Exemplars vs sparsity, {condition} test set: a sparse seed vs the dense "
                   f"seeds' mode, next to a dense seed vs the other dense seeds' mode\n{BAND}")
    tiers = sorted(set(sub["tier"]))
    handles = [*_tier_handles(tiers, "PIE rate per seed"),
               *(Line2D([], [], color=_tier_color(t), linestyle="--", label=f"{t}-resource noise floor")
                 for t in tiers)]
    _legend_below(fig, handles, ncols=2)
    return _declutter(fig)


# --- covariates -----------------------------------------------------------------------------------------


def covariate_effects(table: pd.DataFrame, arm: str, condition: str = "clean", alpha: float = 0.05) -> Figure:
    """The covariate model's coefficients for one arm (:mod:`sparsenlp.analysis.covariates`): one panel per
    fact (a script or family level against the reference), its effect on ΔF1 at each sparsity with its 95%
    t-interval as an error bar, filled where the Holm-adjusted p-value is below ``alpha``."""
    rows = table[(table["arm"] == arm) & (table["condition"] == condition)
                 & (table["term"] != "ΔF1 at the mean facts")]
    if rows.empty:
        raise ValueError(f"no covariate model for arm {arm!r} on {condition!r}")
    rows = rows.assign(name=np.where(rows["level"].astype(str) != "", rows["term"] + ": " + rows["level"].astype(str),
                                     rows["term"]))
    names = list(dict.fromkeys(rows["name"]))
    ncols = min(4, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = _panels(nrows, ncols, width=3.0, height=2.4, sharey=False)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.ravel(), names):
        g = rows[rows["name"] == name].sort_values("sparsity")
        x = g["sparsity"].to_numpy(float)
        ax.errorbar(x, g["estimate"], yerr=[g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]],
                    fmt="none", ecolor="tab:blue", elinewidth=1.0, capsize=2)
        significant = (g["p_adjusted"] < alpha).to_numpy()
        ax.scatter(x[significant], g["estimate"][significant], s=16, color="tab:blue", zorder=3, label="_sig")
        ax.scatter(x[~significant], g["estimate"][~significant], s=16, facecolors="white", edgecolors="tab:blue",
                   zorder=3, label="_not")
        ax.axhline(0.0, color="black", linewidth=0.7)
        sparsity_axis(ax, rows["sparsity"], label=None)
        _panel_title(ax, f"{name}\n({g['unit'].iloc[0]})", fontsize=8.0)
        ax.tick_params(axis="both", labelsize="x-small")
    _bottom_labels(axes, len(names), "sparsity (%)")
    for ax in axes[:, 0]:
        ax.set_ylabel("effect on ΔF1", fontsize="small")
    n = int(rows["n_langs"].max())
    _suptitle(fig, f"{arm}: what predicts ΔF1, {condition} test set (mixed model over {n} languages, facts held "
                   "fixed)\nbar: 95% t-interval of the coefficient; filled: Holm-adjusted p < "
                   f"{alpha:g} within its model")
    handles = [Line2D([], [], linestyle="none", marker="o", color="tab:blue", label="significant after Holm"),
               Line2D([], [], linestyle="none", marker="o", markerfacecolor="white", markeredgecolor="tab:blue",
                      label="not significant")]
    _legend_below(fig, handles)
    return _declutter(fig)


def file_stem(name: str) -> str:
    """A figure name safe as a file stem (arm labels hold '·' and '@')."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _make(makers: dict, only: Collection[str] | None) -> tuple[dict[str, Figure], list[str]]:
    made, notes = {}, []
    for name, make in makers.items():
        if only is not None and name not in only:
            continue
        try:
            made[name] = make()
        except ValueError as exc:
            notes.append(f"figure {name} not drawn: {exc}")
    return made, notes


def run_figures(runs: pd.DataFrame, only: Collection[str] | None = None) -> tuple[dict[str, Figure], list[str]]:
    """The figures of the runs table alone (F1 per tier, script, family; robustness per arm and metric when
    the runs have perturbed conditions), by file stem, and a note for each one the data cannot give."""
    makers = {f"f1_by_{by}": partial(f1_small_multiples, runs, by) for by in ("tier", "script", "family") if by in runs}
    if set(runs["condition"]) - {"clean"}:
        for arm in sorted(set(runs["arm"]) - {DENSE}):
            for metric in ("f1", "relative_gap"):
                makers[file_stem(f"robustness_{metric}_{arm}")] = partial(robustness, runs, arm, metric)
    return _make(makers, only)


def comparison_figures(sig: pd.DataFrame, pie: pd.DataFrame | None = None, covariates: pd.DataFrame | None = None,
                       only: Collection[str] | None = None) -> tuple[dict[str, Figure], list[str]]:
    """The figures of the significance, PIE and covariate tables (ΔF1 absolute and relative, the heatmap,
    PIEs, one covariate figure per arm)."""
    makers = {"delta_vs_dense": partial(delta_vs_dense, sig),
              "delta_vs_dense_relative": partial(delta_vs_dense, sig, relative=True),
              "delta_heatmap": partial(delta_heatmap, sig)}
    if pie is not None and not pie.empty:
        makers["pie_vs_sparsity"] = partial(pie_vs_sparsity, pie)
    if covariates is not None and not covariates.empty:
        for arm in sorted(set(covariates.loc[covariates["condition"] == "clean", "arm"])):
            makers[file_stem(f"covariates_{arm}")] = partial(covariate_effects, covariates, arm)
    matrix = calibration_matrix(sig)
    if not matrix.empty:
        makers["calibration_heatmap"] = partial(calibration_heatmap, matrix)
    return _make(makers, only)


def statistical_figures(runs: pd.DataFrame, sig: pd.DataFrame, pie: pd.DataFrame | None = None,
                        covariates: pd.DataFrame | None = None,
                        only: Collection[str] | None = None) -> tuple[dict[str, Figure], list[str]]:
    """Every figure of the analysis (:func:`comparison_figures` then :func:`run_figures`) by file stem
    (``only``: just these), and a note for each one the data cannot give."""
    compared, notes = comparison_figures(sig, pie, covariates, only)
    from_runs, more = run_figures(runs, only)
    return {**compared, **from_runs}, notes + more


def png_bytes(figures: dict[str, Figure], dpi: int = 120) -> dict[str, bytes]:
    """Each figure rendered as PNG, in memory (a report writes nothing before everything is computed)."""
    out = {}
    for name, fig in figures.items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        out[name] = buffer.getvalue()
    return out
