"""The statistical figures: what they draw equals the input (recomputed here with pandas and scipy), and
nothing is clipped, hidden under a legend or printed over its neighbour, also at 40 languages."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.image import AxesImage
from scipy import stats as scipy_stats

from sparsenlp.analysis import figures
from sparsenlp.analysis.synthetic import xtreme40
from tests.conftest import WIKIANN

LANGS = {  # lang: (tier, script, family, train size)
    "de": ("high", "Latin", "Indo-European", 20000), "ar": ("high", "Arabic", "Afro-Asiatic", 20000),
    "ru": ("high", "Cyrillic", "Indo-European", 20000), "et": ("low", "Latin", "Uralic", 15000),
    "sw": ("low", "Latin", "Niger-Congo", 1000), "yo": ("low", "Latin", "Niger-Congo", 100),
}
ARMS = ("global·cubic", "layerwise·cubic")
SPARSITIES = (0.5, 0.9, 0.98)
CONDITIONS = ("clean", "char_noise@0.1", "lower@1")


def runs_table(langs=LANGS) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for k, (lang, (tier, script, family, size)) in enumerate(langs.items()):
        for arm, sparsity in [("dense", 0.0), *((a, s) for a in ARMS for s in SPARSITIES)]:
            for seed in range(3):
                clean = 0.9 - 0.3 * sparsity**3 * (1.5 if tier == "low" else 1) + rng.normal(0, 0.01)
                for condition in CONDITIONS:
                    drop = {"clean": 0.0, "char_noise@0.1": 0.1, "lower@1": 0.2}[condition] * (1 + sparsity)
                    rows.append({"lang": lang, "tier": tier, "script": script, "family": family, "train_size": size,
                                 "arm": arm, "sparsity": sparsity, "seed": seed, "condition": condition,
                                 "f1": clean * (1 - drop)})
    return pd.DataFrame(rows)


def significance_table(langs) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for lang, (tier, _, _, size) in langs.items():
        for arm in ARMS:
            for sparsity in SPARSITIES:
                delta = -0.2 * sparsity**3 + rng.normal(0, 0.01)
                rows.append({"lang": lang, "tier": tier, "train_size": size, "name": lang.upper(), "arm": arm,
                             "sparsity": sparsity, "condition": "clean", "delta_f1": delta,
                             "rel_delta_f1": delta / 0.85, "p_adjusted": rng.uniform(0, 0.1), "correction": "holm"})
    return pd.DataFrame(rows)


def pie_table(langs=LANGS) -> pd.DataFrame:
    rows = []
    for k, (lang, (tier, *_)) in enumerate(langs.items()):
        for arm in ARMS:
            for sparsity in SPARSITIES:
                for level, scale in (("sentence", 1.0), ("token", 0.2)):
                    rows.append({"lang": lang, "tier": tier, "arm": arm, "sparsity": sparsity, "condition": "clean",
                                 "level": level, "pie_rate": scale * (0.1 + sparsity**2 / 2 + 0.01 * k),
                                 "noise_floor": scale * (0.1 + 0.005 * k), "too_small": False})
    return pd.DataFrame(rows)


def forty() -> dict:
    return {lang.code: (lang.tier, lang.script, lang.family, lang.train_size) for lang in xtreme40(WIKIANN)}


def _lines(ax) -> dict[str, list[float]]:
    return {line.get_label(): list(line.get_ydata()) for line in ax.lines if not line.get_label().startswith("_")}


def _t_interval(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return scipy_stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=v.std(ddof=1) / np.sqrt(len(v)))


def _band_limits(ax) -> list[tuple[float, float]]:
    """(lowest, highest) y of every band drawn with fill_between."""
    out = []
    for c in ax.collections:
        if isinstance(c, PolyCollection) and c.get_label() == "_band":
            y = np.concatenate([p.vertices[:, 1] for p in c.get_paths()])
            out.append((float(np.nanmin(y)), float(np.nanmax(y))))
    return out


# --- the data drawn equals the input --------------------------------------------------------------------


def test_delta_figure_draws_tier_means_with_t_intervals_and_every_language():
    sig = significance_table(LANGS)
    fig = figures.delta_vs_dense(sig)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == list(ARMS)
    for ax, arm in zip(axes, ARMS):
        rows = sig[sig["arm"] == arm]
        expected = rows.groupby(["tier", "sparsity"])["delta_f1"].mean()
        lines = _lines(ax)
        for tier in ("high", "low"):
            assert lines[f"{tier} mean"] == pytest.approx(expected[tier].tolist())
        # one band per tier, spanning its t-intervals over the sparsities
        ref = []
        for _, tier in rows.groupby("tier"):
            intervals = [_t_interval(g["delta_f1"]) for _, g in tier.groupby("sparsity")]
            ref.append((min(lo for lo, _ in intervals), max(hi for _, hi in intervals)))
        assert np.ravel(sorted(_band_limits(ax))).tolist() == pytest.approx(np.ravel(sorted(ref)).tolist())
        points = [c for c in ax.collections if isinstance(c, PathCollection)]
        drawn = np.sort(np.concatenate([np.asarray(c.get_offsets())[:, 1] for c in points]))
        # every language at every sparsity
        assert drawn.tolist() == pytest.approx(np.sort(rows["delta_f1"].to_numpy()).tolist())
        filled = sum(len(c.get_offsets()) for c in points if c.get_label().endswith(" significant")
                     and "not" not in c.get_label())
        assert filled == int((rows["p_adjusted"] < 0.05).sum())
    assert "Change in span F1 vs dense" in fig._suptitle.get_text()
    relative = figures.delta_vs_dense(sig, relative=True)
    assert _lines(relative.axes[0])["low mean"] == pytest.approx(
        sig[(sig["arm"] == ARMS[0]) & (sig["tier"] == "low")].groupby("sparsity")["rel_delta_f1"].mean().tolist())
    assert "Relative change" in relative._suptitle.get_text()


def test_heatmap_cells_equal_the_table_in_tier_and_size_order_with_significance_dots():
    sig = significance_table(LANGS)
    fig = figures.delta_heatmap(sig)
    ax = fig.axes[0]
    order = ["ar", "de", "ru", "et", "sw", "yo"]  # high before low, larger training sets first, then code
    assert [t.get_text().split(" ")[1].strip("()") for t in ax.get_yticklabels()] == order
    image = next(a for a in ax.get_children() if isinstance(a, AxesImage))
    rows = sig[sig["arm"] == ARMS[0]]
    expected = rows.pivot(index="lang", columns="sparsity", values="delta_f1").loc[order]
    assert np.asarray(image.get_array()).ravel().tolist() == pytest.approx(expected.to_numpy().ravel().tolist())
    dots = next(c for c in ax.collections if isinstance(c, PathCollection))
    significant = rows.pivot(index="lang", columns="sparsity", values="p_adjusted").loc[order] < 0.05
    expected_dots = {(x, y) for y, x in zip(*np.nonzero(significant.to_numpy()))}
    assert {tuple(map(int, xy)) for xy in np.asarray(dots.get_offsets())} == expected_dots
    assert image.norm.vcenter == 0  # the colour scale is centred on no change


def test_robustness_draws_perturbed_f1_and_relative_gap_per_condition():
    runs = runs_table()
    for metric in ("f1", "relative_gap"):
        fig = figures.robustness(runs, ARMS[1], metric)
        axes = [ax for ax in fig.axes if ax.get_visible()]
        assert [ax.get_title() for ax in axes] == ["char_noise@0.1", "lower@1"]  # one panel per perturbation
        for ax in axes:
            condition = ax.get_title()
            rows = runs[runs["arm"].isin(["dense", ARMS[1]])]
            clean = rows[rows["condition"] == "clean"].set_index(["lang", "arm", "sparsity", "seed"])["f1"]
            pert = rows[rows["condition"] == condition].set_index(["lang", "arm", "sparsity", "seed"])
            value = pert["f1"] if metric == "f1" else (clean - pert["f1"]) / clean
            per_lang = value.groupby(["lang", "sparsity"]).mean().reset_index(name="v")
            per_lang["tier"] = per_lang["lang"].map({k: v[0] for k, v in LANGS.items()})
            expected = per_lang.groupby(["tier", "sparsity"])["v"].mean()
            for tier in ("high", "low"):
                assert _lines(ax)[tier] == pytest.approx(expected[tier].tolist())
            assert list(ax.lines[0].get_xdata()) == [0.0, *SPARSITIES]  # the dense runs start the line
    with pytest.raises(ValueError, match="metric"):
        figures.robustness(runs, ARMS[0], "gap")
    with pytest.raises(ValueError, match="arm 'magnitude' not in the runs table"):
        figures.robustness(runs, "magnitude")


def test_small_multiples_have_one_panel_per_group_with_its_languages_mean():
    runs = runs_table()
    fig = figures.f1_small_multiples(runs, by="script")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["Latin (4 languages)", "Arabic (1 language)", "Cyrillic (1 language)"]
    clean = runs[runs["condition"] == "clean"]
    for ax, script in zip(axes, ("Latin", "Arabic", "Cyrillic")):
        for arm in ARMS:
            rows = clean[(clean["script"] == script) & clean["arm"].isin(["dense", arm])]
            expected = rows.groupby(["lang", "sparsity"])["f1"].mean().groupby("sparsity").mean()
            assert _lines(ax)[arm] == pytest.approx(expected.tolist())
    assert len(_band_limits(axes[0])) == 2 and not _band_limits(axes[1])  # bands for ≥ 3 languages only
    family = figures.f1_small_multiples(runs, by="family")
    niger_congo = next(ax for ax in family.axes if ax.get_title().startswith("Niger-Congo"))
    assert len([line for line in niger_congo.lines if line.get_label() in ("_sw", "_yo")]) == 2 * len(ARMS)
    with pytest.raises(ValueError, match="by must be"):
        figures.f1_small_multiples(runs, by="genus")


def test_pie_figure_draws_rates_and_noise_floors_per_tier():
    pie = pie_table()
    fig = figures.pie_vs_sparsity(pie)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 4  # 2 levels × 2 arms
    for ax in axes:
        arm, level = ax.get_title().split(", ")[0], ax.get_title().split(", ")[1].split(" ")[0]
        rows = pie[(pie["arm"] == arm) & (pie["level"] == level)]
        for tier in ("high", "low"):
            t = rows[rows["tier"] == tier]
            assert _lines(ax)[f"{tier} PIE rate"] == pytest.approx(t.groupby("sparsity")["pie_rate"].mean().tolist())
            assert _lines(ax)[f"{tier} noise floor"] == pytest.approx(
                t.groupby("sparsity")["noise_floor"].mean().tolist())
    flagged = figures.pie_vs_sparsity(pie.assign(too_small=True))
    assert "too few seeds" in flagged.axes[0].get_title()


def test_the_set_of_figures_and_their_file_names():
    made, notes = figures.statistical_figures(runs_table(), significance_table(LANGS), pie_table())
    assert notes == []
    assert set(made) == {"delta_vs_dense", "delta_vs_dense_relative", "delta_heatmap", "f1_by_tier", "f1_by_script",
                         "f1_by_family", "pie_vs_sparsity", "robustness_f1_global_cubic",
                         "robustness_relative_gap_global_cubic", "robustness_f1_layerwise_cubic",
                         "robustness_relative_gap_layerwise_cubic"}


def test_a_figure_the_data_cannot_give_is_a_note_and_the_others_are_drawn():
    perturbed = significance_table(LANGS).assign(condition="lower@1")
    made, notes = figures.statistical_figures(runs_table(), perturbed, pie_table(), only={"delta_vs_dense", "f1_by_tier"})
    assert set(made) == {"f1_by_tier"}
    assert notes == ["figure delta_vs_dense not drawn: no rows for condition 'clean'"]
    clean_only = runs_table()[lambda df: df["condition"] == "clean"]
    assert set(figures.run_figures(clean_only)[0]) == {"f1_by_tier", "f1_by_script", "f1_by_family"}  # no robustness


def test_mean_ci_is_the_t_interval():
    values = [0.1, 0.3, 0.2, 0.5]
    mean, low, high = figures.mean_ci(values)
    assert mean == pytest.approx(0.275) and (low, high) == pytest.approx(_t_interval(values))
    assert np.isnan(figures.mean_ci([0.4])[1]) and figures.mean_ci([])[0] != figures.mean_ci([])[0]


# --- nothing clipped, covered or overprinted ------------------------------------------------------------


def _render(fig):
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _overlap(a, b, slack: float = 0.5) -> bool:
    return a.x0 < b.x1 - slack and b.x0 < a.x1 - slack and a.y0 < b.y1 - slack and b.y0 < a.y1 - slack


FIGURES = {
    "delta": lambda: figures.delta_vs_dense(significance_table(LANGS)),
    "delta_relative_40": lambda: figures.delta_vs_dense(significance_table(forty()), relative=True),
    "heatmap_40": lambda: figures.delta_heatmap(significance_table(forty())),
    "robustness": lambda: figures.robustness(runs_table(), ARMS[0], "relative_gap"),
    "tier": lambda: figures.f1_small_multiples(runs_table(), "tier"),
    "family_40": lambda: figures.f1_small_multiples(runs_table(forty()), "family"),
    "script_40": lambda: figures.f1_small_multiples(runs_table(forty()), "script"),
    "pie": lambda: figures.pie_vs_sparsity(pie_table().assign(too_small=True)),
}


def _tick_labels(axis, low: float, high: float) -> list:
    """The tick labels matplotlib draws: visible, non-empty, at a location inside the view limits."""
    low, high = min(low, high), max(low, high)
    return [tick.label1 for loc, tick in zip(axis.get_majorticklocs(), axis.get_major_ticks())
            if low - 1e-9 <= loc <= high + 1e-9 and tick.label1.get_visible() and tick.label1.get_text()]


def _drawn_texts(fig) -> list:
    texts = [t for t in (fig._suptitle, fig._supxlabel, fig._supylabel) if t is not None]
    texts += [t for legend in fig.legends for t in (*legend.get_texts(), legend.get_title())]
    for ax in (ax for ax in fig.axes if ax.get_visible()):
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        texts += _tick_labels(ax.xaxis, *ax.get_xlim()) + _tick_labels(ax.yaxis, *ax.get_ylim())
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def layout_problems(fig) -> list[str]:
    """Clipped texts, legends over panels, colliding tick labels and a title over panels, as messages."""
    renderer = _render(fig)
    page, problems = fig.bbox, []
    for text in _drawn_texts(fig):
        box = text.get_window_extent(renderer)
        if not (page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1 and page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1):
            problems.append(f"{text.get_text()!r} is clipped")
    tight = fig.get_tightbbox(renderer)  # every drawn artist, in inches
    if tight.x0 < -0.01 or tight.y0 < -0.01 or tight.x1 > fig.get_figwidth() + 0.01 or \
            tight.y1 > fig.get_figheight() + 0.01:
        problems.append(f"drawn artists reach {tight} outside the figure")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    for legend in fig.legends + [ax.get_legend() for ax in visible if ax.get_legend()]:
        box = legend.get_window_extent(renderer)
        problems += [f"a legend covers panel {ax.get_title()!r}" for ax in visible
                     if _overlap(box, ax.get_window_extent(renderer))]
    for ax in visible:
        for labels, along in ((_tick_labels(ax.xaxis, *ax.get_xlim()), "x"),
                              (_tick_labels(ax.yaxis, *ax.get_ylim()), "y")):
            boxes = sorted((t.get_window_extent(renderer) for t in labels),
                           key=lambda b: b.x0 if along == "x" else b.y0)
            if any(_overlap(a, b) for a, b in zip(boxes, boxes[1:])):
                problems.append(f"{along} tick labels of {ax.get_title()!r} collide")
    if fig._suptitle is not None:
        title = fig._suptitle.get_window_extent(renderer)
        problems += [f"the title covers panel {ax.get_title()!r}" for ax in visible
                     if _overlap(title, ax.get_window_extent(renderer))]
    return problems


@pytest.mark.parametrize("name", FIGURES)
def test_no_text_is_clipped_no_legend_covers_an_axes_and_no_labels_collide(name):
    fig = FIGURES[name]()
    assert len(_drawn_texts(fig)) > 10
    assert layout_problems(fig) == []


def test_the_layout_check_sees_clipping_covered_data_and_collisions():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], label="data")
    fig.suptitle("a title far too long for a figure only three inches wide, so it runs off both edges")
    ax.legend(loc="center")
    fig.legend(loc="center")
    ax.set_xticks([0.0, 0.01, 0.02], ["0.000", "0.010", "0.020"])
    problems = layout_problems(fig)
    assert any("is clipped" in p for p in problems)
    assert any("legend covers" in p for p in problems)
    assert any("x tick labels" in p for p in problems)


# --- every figure of a 40-language sweep, computed by the analysis ------------------------------------


LONG_ARMS = ("mbert/per_language/global_magnitude·cubic", "mbert/joint:40langs#1a2b3c4d/layerwise_magnitude·cubic+emb")


@pytest.fixture(scope="module")
def forty_languages():
    """A 40-language synthetic sweep with the study's long arm names, 3 + 3 seeds (one language with a single
    sparse seed), clean and one perturbed condition, small test sets; its tables as the report makes them."""
    from sparsenlp.analysis import covariates, synthetic
    from sparsenlp.analysis.dense_comparison import compare_to_dense

    languages = xtreme40(WIKIANN)
    cells = []
    for lang in languages:
        cells += synthetic.sweep_language(lang, seeds=1 if lang.code == "yo" else 3, arms=LONG_ARMS,
                                          sparsities=(0.5, 0.9, 0.98), conditions=("clean", "char_noise@0.1"),
                                          max_sentences=25)
    runs = synthetic.runs_table(cells, languages)
    comparison = compare_to_dense(cells)
    facts = pd.DataFrame([{"lang": lang.code, "tier": lang.tier, "train_size": lang.train_size, "name": lang.name}
                          for lang in languages])
    sig = comparison.significance.merge(facts, on="lang")
    pie = comparison.pie.merge(facts[["lang", "tier"]], on="lang")
    model, _ = covariates.covariate_table(runs, sig)
    return runs, sig, pie, model


def _titles_overlap(fig) -> list[str]:
    renderer = _render(fig)
    titles = [t for t in [fig._suptitle, *(ax.title for ax in fig.axes if ax.get_visible())]
              if t is not None and t.get_text().strip()]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in titles]
    return [f"{a!r} overlaps {b!r}" for k, (a, box) in enumerate(boxes) for b, other in boxes[k + 1:]
            if _overlap(box, other)]


def _in_unit_interval(fig) -> bool:
    for ax in fig.axes:
        for c in ax.collections:
            if isinstance(c, PolyCollection):
                y = np.concatenate([p.vertices[:, 1] for p in c.get_paths()]) if c.get_paths() else np.zeros(0)
                if y.size and (np.nanmin(y) < -1e-9 or np.nanmax(y) > 1 + 1e-9):
                    return False
        if ax.get_visible() and (ax.get_ylim()[0] < -1e-9 or ax.get_ylim()[1] > 1 + 1e-9):
            return False
    return True


@pytest.mark.slow
def test_every_figure_of_a_40_language_sweep_fits_its_canvas_and_no_titles_overlap(forty_languages):
    runs, sig, pie, model = forty_languages
    one_arm = sig[sig["arm"] == LONG_ARMS[0]]  # a narrow figure: its legend must still fit
    drawn = {}
    for suffix, table in (("", sig), (" (one arm)", one_arm)):
        made, notes = figures.statistical_figures(runs, table, pie, model)
        assert notes == []
        drawn.update({name + suffix: fig for name, fig in made.items()})
    assert {"delta_vs_dense", "delta_heatmap", "pie_vs_sparsity", "f1_by_family",
            "covariates_mbert_per_language_global_magnitude_cubic"} <= set(drawn)
    assert any(name.startswith("robustness_") for name in drawn)
    problems = {}
    for name, fig in drawn.items():
        fig.set_dpi(120)  # as the report saves them
        found = layout_problems(fig) + _titles_overlap(fig)
        if found:
            problems[name] = found
    assert problems == {}
    for name in ("pie_vs_sparsity", "f1_by_tier", "f1_by_script"):  # rates stay rates
        assert _in_unit_interval(drawn[name]), name


def test_bands_follow_one_rule_and_say_so(forty_languages):
    runs, sig, pie, model = forty_languages
    # a tier of two languages: a mean line but no band, in the ΔF1 figure as in the small multiples
    two = sig[sig["lang"].isin(["sw", "yo", "de", "en", "fr", "es"]) & (sig["lang"] != "yo")]
    two = two.assign(tier=two["lang"].map({"sw": "low", "de": "low", "en": "high", "fr": "high", "es": "high"}))
    fig = figures.delta_vs_dense(two)
    for ax in fig.axes:
        assert len(_band_limits(ax)) == 1  # the high tier's three languages only
    for name, fig in figures.statistical_figures(runs, sig, pie, model)[0].items():
        if any(_band_limits(ax) for ax in fig.axes):
            assert figures.BAND in fig._suptitle.get_text().replace("\n", " "), name


def test_unreplicated_comparisons_are_crosses_and_not_in_the_means(forty_languages):
    _, sig, _, _ = forty_languages
    assert set(sig.loc[sig["lang"] == "yo", "verdict"]) == {"unreplicated"}
    fig = figures.delta_vs_dense(sig)
    ax = fig.axes[0]
    crosses = [c for c in ax.collections if c.get_label().endswith("unreplicated")]
    assert sum(len(c.get_offsets()) for c in crosses) == int(((sig["arm"] == sig["arm"].min())
                                                              & (sig["condition"] == "clean")
                                                              & ~sig["replicated"]).sum()) > 0
    clean = sig[(sig["condition"] == "clean") & (sig["arm"] == sorted(set(sig["arm"]))[0]) & sig["replicated"]]
    expected = clean[clean["tier"] == "low"].groupby("sparsity")["delta_f1"].mean()
    assert _lines(ax)["low mean"] == pytest.approx(expected.tolist())
    assert any("unreplicated" in t.get_text() for t in fig.legends[0].get_texts())


def test_allowed_unreplicated_comparisons_are_drawn_as_the_table_tests_them(forty_languages):
    """With ``--allow-unreplicated`` the table gives one-seed rows verdicts: the figure then draws them as tested
    languages in the means, with no "not tested" cross."""
    from sparsenlp.analysis.stats import adjust

    _, sig, _, _ = forty_languages
    allowed = adjust(sig, allow_unreplicated=True)
    assert set(allowed.loc[allowed["lang"] == "yo", "verdict"]) <= {"better", "worse", "indistinguishable"}
    fig = figures.delta_vs_dense(allowed)
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections if c.get_label().endswith("unreplicated")) == 0
    clean = allowed[(allowed["condition"] == "clean") & (allowed["arm"] == sorted(set(allowed["arm"]))[0])]
    assert _lines(ax)["low mean"] == pytest.approx(
        clean[clean["tier"] == "low"].groupby("sparsity")["delta_f1"].mean().tolist())
    assert not any("not tested" in t.get_text() for t in fig.legends[0].get_texts())


def test_absolute_and_relative_means_are_over_the_same_languages():
    """A language whose dense F1 is 0 has no relative change: it is left out of the absolute mean too, as in the
    summary's tables."""
    sig = significance_table(LANGS)
    low = sig[(sig["arm"] == ARMS[0]) & (sig["tier"] == "low")]
    zero = low["lang"].iloc[0]
    sig.loc[(sig["lang"] == zero) & (sig["arm"] == ARMS[0]), "rel_delta_f1"] = np.nan
    kept = low[low["lang"] != zero]
    for relative, value in ((False, "delta_f1"), (True, "rel_delta_f1")):
        ax = figures.delta_vs_dense(sig, relative=relative).axes[0]
        assert _lines(ax)["low mean"] == pytest.approx(kept.groupby("sparsity")[value].mean().tolist())


def test_heatmap_rows_name_a_training_size_only_where_every_panel_trained_on_it():
    sig = significance_table(LANGS)
    other = sig["arm"] == ARMS[1]
    sig.loc[other & (sig["lang"] == "de"), "train_size"] = 1000  # that arm trained de on fewer sentences
    labels = {t.get_text().split(" ")[1].strip("()"): t.get_text()
              for t in figures.delta_heatmap(sig).axes[0].get_yticklabels()}
    assert not labels["de"].endswith("k") and labels["ar"].endswith("k")
