"""ΔF1 vs dense: span counts against seqeval, the crossed seeds × sentences t-test against scipy's t-tests and
statsmodels' ANOVA, the corrections against statsmodels and a hand computation, and populations whose answer
is known."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from seqeval.metrics import f1_score
from statsmodels.stats.multitest import multipletests

from sparsenlp.analysis import stats
from sparsenlp.analysis.crossed import contrast, linearized_f1, mean_squares
from sparsenlp.analysis.encode import Encodings, TestSet
from sparsenlp.analysis.stats import Cell, adjust, compare, significance_table, span_f1, verdict_summary
from sparsenlp.analysis.synthetic import seed_runs
from sparsenlp.errors import SparseNLPError

TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


def population(lang: str, n: int, seeds: range, miss: float, test_seed: int = 0) -> list[list[dict]]:
    return seed_runs(n, [1000 * test_seed + s for s in seeds], lang, miss, test_seed=test_seed)


def random_tags(rng: np.random.Generator, run: list[dict]) -> list[dict]:
    """The same sentences with uniformly random tags: ill-formed spans (I- after O, type changes) included."""
    return [{**r, "pred": [TAGS[t] for t in rng.integers(0, len(TAGS), len(r["tokens"]))]} for r in run]


def seqeval_f1(run: list[dict], index=None) -> float:
    rows = run if index is None else [run[i] for i in index]
    return float(f1_score([r["gold"] for r in rows], [r["pred"] for r in rows], zero_division=0))


def by_id(run: list[dict], test: TestSet) -> list[dict]:
    """A run's rows in the test set's sentence order."""
    rows = {r["id"]: r for r in run}
    return [rows[i] for i in test.ids]


# --- span counts ------------------------------------------------------------------------------------------


def test_span_counts_give_seqeval_f1_on_the_test_set_and_on_any_resample():
    rng = np.random.default_rng(3)
    runs = population("de", 400, range(2), miss=0.2)
    runs.append(random_tags(rng, runs[0]))  # conlleval rules on ill-formed sequences
    runs.append([{**r, "pred": ["O"] * len(r["tokens"])} for r in runs[0]])  # no predicted span: F1 0
    test = TestSet(runs[0], "de", "clean")
    for run in runs:
        counts = test.encode(run)
        ordered = by_id(run, test)
        assert span_f1(counts.tp.sum(), counts.pred.sum(), test.gold.sum()) == pytest.approx(seqeval_f1(run), abs=1e-15)
        for _ in range(3):  # a bootstrap resample: sentences drawn with replacement, duplicates counted
            index = rng.integers(0, len(test), len(test))
            assert span_f1(counts.tp[index].sum(), counts.pred[index].sum(), test.gold[index].sum()) == pytest.approx(
                seqeval_f1(ordered, index), abs=1e-15)


def test_runs_listing_sentences_in_another_order_align_by_id():
    runs = population("de", 50, range(2), miss=0.3)
    test = TestSet(runs[0], "de", "clean")
    shuffled = [runs[1][i] for i in np.random.default_rng(0).permutation(50)]
    a, b = test.encode(runs[1]), test.encode(shuffled)
    assert (a.tp == b.tp).all() and (a.pred == b.pred).all() and (a.codes == b.codes).all()


def test_runs_of_another_test_set_are_rejected():
    runs = population("de", 30, range(2), miss=0.3)
    test = TestSet(runs[0], "de", "clean")
    with pytest.raises(SparseNLPError, match="has 29 sentences"):
        test.encode(runs[1][:-1])
    other_gold = [dict(r) for r in runs[1]]
    other_gold[4] = {**other_gold[4], "gold": ["O"] * len(other_gold[4]["gold"])}
    with pytest.raises(SparseNLPError, match="differs from the reference run in 'gold' of sentence id=4"):
        test.encode(other_gold, "sparse run 1")
    repeated = [*runs[1][:-1], runs[1][0]]
    with pytest.raises(SparseNLPError, match="repeats sentence id=0"):
        test.encode(repeated)
    short = [dict(r) for r in runs[1]]
    short[2] = {**short[2], "pred": short[2]["pred"][:-1]}
    with pytest.raises(SparseNLPError, match="tags for the .* tokens of sentence id=2"):
        test.encode(short)


# --- the crossed seeds × sentences t-test ----------------------------------------------------------------


def test_linearised_f1_averages_to_each_runs_seqeval_f1():
    runs = population("de", 300, range(3), miss=0.25)
    test = TestSet(runs[0], "de", "clean")
    counts = [test.encode(run) for run in runs]
    table = linearized_f1(np.vstack([c.tp for c in counts]), np.vstack([c.pred for c in counts]), test.gold)
    assert table.mean(axis=1).tolist() == pytest.approx([seqeval_f1(run) for run in runs], abs=1e-12)


def test_mean_squares_equal_statsmodels_two_way_anova():
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    table = np.random.default_rng(0).normal(size=(4, 30)) + np.arange(4)[:, None] * 0.3
    long = pd.DataFrame({"y": table.ravel(), "run": np.repeat(np.arange(4), 30), "sentence": np.tile(np.arange(30), 4)})
    anova = anova_lm(smf.ols("y ~ C(run) + C(sentence)", long).fit())
    between, within = mean_squares(table)
    assert between == pytest.approx(anova.loc["C(run)", "mean_sq"])
    assert within == pytest.approx(anova.loc["Residual", "mean_sq"])


def _runs_on_shared_sentences(values: list[float], sentence_effect: np.ndarray) -> np.ndarray:
    """Runs whose per-sentence values are their own level plus the same sentence effect: nothing but the
    seeds differ between two such populations."""
    return np.asarray(values)[:, None] + sentence_effect[None, :]


def test_seed_part_is_welchs_t_whatever_the_seed_counts():
    """Each side keeps its own k − 1 degrees of freedom (Welch), with equal seed counts too: pruning may change
    how much seeds spread, and the pooled t's S + D − 2 would then be liberal."""
    sentences = np.random.default_rng(1).normal(0, 0.2, 200)
    dense, sparse = [0.80, 0.82, 0.79], [0.74, 0.78, 0.73]
    for dense_seeds in (dense, [0.80, 0.82, 0.79, 0.85, 0.81]):
        result = contrast([_runs_on_shared_sentences(sparse, sentences),
                           _runs_on_shared_sentences(dense_seeds, sentences)], (1.0, -1.0))
        welch = scipy_stats.ttest_ind(sparse, dense_seeds, equal_var=False)
        ci = welch.confidence_interval(0.95)
        assert result.p_value == pytest.approx(welch.pvalue) and result.df == pytest.approx(welch.df)
        assert (result.ci_low, result.ci_high) == pytest.approx((ci.low, ci.high))
        assert result.replicated
    assert result.df != pytest.approx(len(sparse) + 5 - 2)  # not the pooled t's


def test_one_seed_a_side_is_the_paired_t_over_sentences_and_unreplicated():
    rng = np.random.default_rng(2)
    dense, sparse = rng.normal(0.8, 0.3, (1, 150)), rng.normal(0.75, 0.3, (1, 150))
    result = contrast([sparse, dense], (1.0, -1.0))
    paired = scipy_stats.ttest_rel(sparse[0], dense[0])
    assert not result.replicated and result.df == 149 and result.p_value == pytest.approx(paired.pvalue)


def test_sentence_part_counts_what_does_not_cancel_between_populations():
    """Sparse runs that suffer on some sentences more than dense runs: the sentence part is the variance of
    that difference over sentences less the noise it holds, by hand."""
    rng = np.random.default_rng(3)
    n = 400
    extra = rng.normal(0, 0.5, n)  # sentence-specific harm, the same in every sparse run
    dense = rng.normal(0.8, 0.1, (3, n))
    sparse = rng.normal(0.8, 0.1, (3, n)) + extra[None, :]
    result = contrast([sparse, dense], (1.0, -1.0))
    (b_s, w_s), (b_d, w_d) = mean_squares(sparse), mean_squares(dense)
    difference = sparse.mean(0) - dense.mean(0)
    sentence = difference.var(ddof=1) / n - (w_s / 3 + w_d / 3) / n
    seed_s, seed_d = b_s / (3 * n), b_d / (3 * n)
    total = seed_s + seed_d + sentence
    assert sentence > 0 and result.se == pytest.approx(np.sqrt(total))
    assert result.df == pytest.approx(total**2 / (seed_s**2 / 2 + seed_d**2 / 2 + sentence**2 / (n - 1)))


# --- populations whose answer is known -------------------------------------------------------------------


def test_identical_predictions_give_no_difference_and_p_one():
    dense = population("de", 500, range(3), miss=0.2)
    copies = [[dict(r) for r in run] for run in dense]  # same predictions, other objects
    table = significance_table([Cell("de", "same", 0.5, "clean", dense, dense),
                                Cell("de", "copy", 0.5, "clean", dense, copies),
                                Cell("de", "one", 0.5, "clean", dense[:1], copies[:1])])
    assert (table["delta_f1"].abs() < 1e-15).all() and (table["rel_delta_f1"].abs() < 1e-15).all()
    one = table.set_index("arm").loc["one"]
    assert one["p_value"] == 1.0 and one["ci_low"] == one["ci_high"] == 0.0  # sentences alone cannot separate them
    assert one["verdict"] == "unreplicated" and not one["replicated"]
    for arm in ("same", "copy"):  # the same seeds on both sides: centred on 0, as wide as the seeds spread
        row = table.set_index("arm").loc[arm]
        assert row["p_value"] == pytest.approx(1.0) and row["ci_low"] < 0 < row["ci_high"]
        assert row["verdict"] == "indistinguishable"


def test_a_consistent_improvement_is_significant_and_its_ci_excludes_zero():
    dense = population("de", 1000, range(3), miss=0.30)
    better = population("de", 1000, range(3, 6), miss=0.10)
    table = significance_table([Cell("de", "better", 0.5, "clean", dense, better),
                                Cell("de", "worse", 0.5, "clean", better, dense)])
    up, down = table.set_index("arm").loc["better"], table.set_index("arm").loc["worse"]
    assert 0 < up["ci_low"] < up["delta_f1"] < up["ci_high"] and up["verdict"] == "better"
    assert down["ci_high"] < 0 and down["verdict"] == "worse"
    assert up["p_value"] < 0.01 and up["df"] >= 2  # Welch: between k − 1 = 2 and S + D − 2 = 4
    assert up["rel_ci_low"] < up["rel_delta_f1"] < up["rel_ci_high"]
    f1 = lambda runs: np.mean([seqeval_f1(r) for r in runs])  # noqa: E731
    assert up["delta_f1"] == pytest.approx(f1(better) - f1(dense), abs=1e-12)
    assert up["f1_dense"] == pytest.approx(f1(dense), abs=1e-12)
    assert up["rel_delta_f1"] == pytest.approx(up["delta_f1"] / up["f1_dense"])
    assert up["rel_ci_low"] > 0 and down["rel_ci_high"] < 0


def test_a_test_set_without_entities_has_no_f1_and_no_verdict():
    dense = population("de", 20, range(2), miss=0.2)
    empty = [[{**r, "gold": ["O"] * len(r["gold"]), "pred": ["O"] * len(r["gold"])} for r in run] for run in dense]
    row = significance_table([Cell("de", "a", 0.5, "clean", empty, empty)]).iloc[0]
    assert np.isnan(row["delta_f1"]) and np.isnan(row["p_value"]) and row["verdict"] == "undefined"
    assert row["n_gold_spans"] == 0 and row["family_size"] == 0


def test_a_one_sentence_test_set_has_an_f1_but_no_interval_and_says_so():
    """F1 exists (one gold span), but sentences cannot be resampled: no p-value, `undefined`, and the summary
    says why (not "no gold entities")."""
    from sparsenlp.analysis.summary import significance_section

    dense = population("de", 1, range(3), miss=0.0)
    other = population("sw", 30, range(3), miss=0.2)
    cells = [Cell("de", "a", 0.5, "clean", dense, dense), Cell("sw", "a", 0.5, "clean", other, other)]
    table = significance_table(cells)
    one = table.set_index("lang").loc["de"]
    assert one["n_gold_spans"] > 0 and np.isfinite(one["f1_dense"]) and np.isnan(one["p_value"])
    assert one["verdict"] == "undefined"
    text = significance_section(table.assign(tier="high"), 0.05)
    assert "1 comparisons have an F1 but no interval (a test set of fewer than 2 sentences)" in text
    assert "have no F1" not in text


def test_unreplicated_rows_stay_out_of_families_unless_allowed():
    dense = population("de", 300, range(3), miss=0.2)
    worse = population("de", 300, range(10, 13), miss=0.4)
    cells = [Cell("de", "a", 0.9, "clean", dense, worse), Cell("sw", "a", 0.9, "clean", dense, worse[:1])]
    table = significance_table(cells)
    assert table["verdict"].tolist() == ["worse", "unreplicated"] and table["family_size"].tolist() == [1, 1]
    assert np.isnan(table["p_adjusted"].iloc[1]) and table["replicated"].tolist() == [True, False]
    allowed = significance_table(cells, allow_unreplicated=True)
    assert allowed["family_size"].tolist() == [2, 2] and allowed["verdict"].iloc[1] == "worse"
    assert allowed["p_adjusted"].tolist() == pytest.approx(multipletests(table["p_value"], method="holm")[1])


def test_single_entity_share_of_the_test_set():
    rows = [{"id": 0, "tokens": ["a", "b"], "gold": ["B-PER", "I-PER"], "pred": ["O", "O"]},
            {"id": 1, "tokens": ["a"], "gold": ["B-LOC"], "pred": ["O"]},
            {"id": 2, "tokens": ["a", "b"], "gold": ["B-PER", "O"], "pred": ["O", "O"]},
            {"id": 3, "tokens": ["a", "b"], "gold": ["B-PER", "I-LOC"], "pred": ["O", "O"]}]
    assert TestSet(rows, "de", "clean").single_entity_share == 0.5


# --- determinism -----------------------------------------------------------------------------------------


def _cells() -> list[Cell]:
    cells = []
    for k, lang in enumerate(("de", "sw", "yo")):
        dense = population(lang, 200, range(3), miss=0.2, test_seed=k)
        for arm, extra in (("global", 0.05), ("layerwise", 0.1)):
            sparse = population(lang, 200, range(10, 12), miss=0.2 + extra, test_seed=k)
            cells.append(Cell(lang, arm, 0.9, "clean", dense, sparse))
    return cells


def test_results_do_not_depend_on_other_cells_or_their_order():
    cells = _cells()
    table = significance_table(cells)
    pd.testing.assert_frame_equal(significance_table(cells), table)
    shuffled = significance_table(cells[::-1]).sort_values(["lang", "arm"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(shuffled, table.sort_values(["lang", "arm"]).reset_index(drop=True))
    alone = compare(cells[2:3]).iloc[0]
    pd.testing.assert_series_equal(alone.drop(["p_adjusted", "correction", "family_size", "verdict"]),
                                   table.iloc[2].drop(["p_adjusted", "correction", "family_size", "verdict"]),
                                   check_names=False)


def test_columns_and_population_sizes():
    dense = population("de", 100, range(4), miss=0.2)
    sparse = population("de", 100, range(7, 9), miss=0.3)
    table = significance_table([Cell("de", "a", 0.5, "char_noise@0.1", dense, sparse)])
    assert tuple(table.columns) == stats.COLUMNS
    row = table.iloc[0]
    assert (row["n_dense_seeds"], row["n_sparse_seeds"], row["n_seeds"], row["n_sentences"]) == (4, 2, 2, 100)
    assert row["condition"] == "char_noise@0.1" and row["correction"] == "holm" and row["family_size"] == 1


def test_empty_population_or_bad_settings_are_errors():
    dense = population("de", 20, range(2), miss=0.2)
    with pytest.raises(SparseNLPError, match="no sparse run for lang=de"):
        compare([Cell("de", "a", 0.5, "clean", dense, [])])
    with pytest.raises(SparseNLPError, match="unknown multiple-comparison correction 'sidak-ish'"):
        significance_table([Cell("de", "a", 0.5, "clean", dense, dense)], correction="sidak-ish")


def test_an_encoding_cache_is_shared_and_reused():
    cells = _cells()
    encodings = Encodings()
    a = compare(cells, encodings=encodings)
    assert len(encodings.tests) == 3
    b = compare(cells, encodings=encodings)
    pd.testing.assert_frame_equal(a, b)


# --- multiple comparisons --------------------------------------------------------------------------------


def _p_table(p_values: list[float], arm: str = "a", deltas: list[float] | None = None) -> pd.DataFrame:
    langs = [f"l{i}" for i in range(len(p_values))]
    return pd.DataFrame({"lang": langs, "arm": arm, "sparsity": 0.9, "condition": "clean", "p_value": p_values,
                         "replicated": True, "delta_f1": deltas if deltas is not None else [-0.01] * len(p_values)})


def test_holm_equals_a_hand_computation_and_statsmodels_per_family():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm by hand: sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, max(0.04·1, 0.06) = 0.06
    holm = [0.03, 0.06, 0.06, 0.02]
    other = [0.2, 0.001]
    table = adjust(pd.concat([_p_table(p, "a", [0.01, -0.02, 0.01, -0.01]), _p_table(other, "b")],
                             ignore_index=True))
    a, b = table[table["arm"] == "a"], table[table["arm"] == "b"]
    assert a["p_adjusted"].tolist() == pytest.approx(holm)
    assert a["p_adjusted"].tolist() == pytest.approx(multipletests(p, method="holm")[1].tolist())
    assert b["p_adjusted"].tolist() == pytest.approx(multipletests(other, method="holm")[1].tolist())  # own family
    assert a["verdict"].tolist() == ["better", "indistinguishable", "indistinguishable", "worse"]
    assert set(table["correction"]) == {"holm"} and a["family_size"].tolist() == [4] * 4


def test_benjamini_hochberg_is_selectable_and_recorded():
    p = [0.01, 0.04, 0.03, 0.005]
    # BH by hand: sorted p·m/rank = 0.02, 0.02, 0.04, 0.04; running minimum from the top leaves them as they are
    table = adjust(_p_table(p), method="bh")
    assert table["p_adjusted"].tolist() == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert table["p_adjusted"].tolist() == pytest.approx(multipletests(p, method="fdr_bh")[1].tolist())
    assert set(table["correction"]) == {"fdr_bh"}
    assert (table["verdict"] == "worse").all()


def test_families_are_arm_sparsity_and_condition_and_configurable():
    t = pd.concat([_p_table([0.01, 0.02]), _p_table([0.01, 0.02]).assign(condition="char_noise@0.1")],
                  ignore_index=True)
    per_condition = adjust(t)
    assert per_condition["p_adjusted"].tolist() == pytest.approx([0.02, 0.02, 0.02, 0.02])
    pooled = adjust(t, family=("arm", "sparsity"))
    assert pooled["p_adjusted"].tolist() == pytest.approx(multipletests([0.01, 0.02, 0.01, 0.02], method="holm")[1])


# --- summary ---------------------------------------------------------------------------------------------


def test_verdict_summary_counts_languages_overall_and_per_tier():
    table = pd.DataFrame({
        "lang": ["de", "en", "sw", "yo", "de", "en", "sw", "yo"],
        "arm": ["a"] * 4 + ["b"] * 4, "sparsity": 0.9, "condition": "clean",
        "verdict": ["worse", "indistinguishable", "worse", "better", *["indistinguishable"] * 3, "unreplicated"],
        "delta_f1": [-0.02, 0.0, -0.06, 0.01, 0.0, 0.0, 0.0, 0.5],
        "rel_delta_f1": [-0.025, np.nan, -0.1, 0.02, 0.0, 0.0, 0.0, 0.6],
    })
    tiers = {"de": "high", "en": "high", "sw": "low", "yo": "low"}
    out = verdict_summary(table, tiers).set_index(["arm", "tier"])
    assert out.loc[("a", "all"), ["n_langs", "better", "worse", "indistinguishable"]].tolist() == [4, 1, 2, 1]
    assert out.loc[("a", "high"), ["better", "worse", "indistinguishable"]].tolist() == [0, 1, 1]
    assert out.loc[("a", "low"), ["better", "worse", "indistinguishable"]].tolist() == [1, 1, 0]
    assert out.loc[("a", "low"), "delta_f1_mean"] == pytest.approx(-0.025)
    # both means over the same languages: en has no relative change, so neither mean counts it
    assert out.loc[("a", "all"), "n_means"] == 3
    assert out.loc[("a", "all"), "delta_f1_mean"] == pytest.approx(np.mean([-0.02, -0.06, 0.01]))
    assert out.loc[("a", "all"), "rel_delta_f1_mean"] == pytest.approx(np.mean([-0.025, -0.1, 0.02]))
    assert out.loc[("a", "all"), "delta_f1_std"] == pytest.approx(np.std([-0.02, -0.06, 0.01], ddof=1))
    # an unreplicated comparison is counted as such, never as a verdict or in a mean
    assert out.loc[("b", "all"), ["indistinguishable", "unreplicated", "n_means"]].tolist() == [3, 1, 3]
    assert out.loc[("b", "all"), "delta_f1_mean"] == 0.0
    assert list(verdict_summary(table.assign(tier=table["lang"].map(tiers)))["tier"][:3]) == ["all", "high", "low"]
    with pytest.raises(SparseNLPError, match="needs tiers"):
        verdict_summary(table)


def test_one_pass_gives_both_tables_as_the_separate_functions_do():
    from sparsenlp.analysis.dense_comparison import compare_to_dense
    from sparsenlp.analysis.pie_floor import pie_floor_table

    cells = _cells()
    both = compare_to_dense(cells)
    pd.testing.assert_frame_equal(both.significance, significance_table(cells))
    pd.testing.assert_frame_equal(both.pie, pie_floor_table(cells))
    raw = compare_to_dense(cells, correction=None, pie_levels=())
    assert raw.significance["p_adjusted"].isna().all() and raw.pie.empty
    pd.testing.assert_frame_equal(adjust(raw.significance), both.significance)


def _load_language(lang: str) -> list[Cell]:
    """One language's cells, built in whichever process asks (module level: picklable)."""
    return [cell for cell in _cells() if cell.lang == lang]


def test_languages_in_worker_processes_give_the_tables_of_one_process():
    from sparsenlp.analysis.dense_comparison import compare_languages, compare_to_dense

    serial = compare_to_dense(_cells())
    for jobs in (1, 2):
        parallel = compare_languages(_load_language, ["de", "sw", "yo"], jobs=jobs)
        pd.testing.assert_frame_equal(parallel.significance, serial.significance)
        pd.testing.assert_frame_equal(parallel.pie, serial.pie)
