"""ΔF1 vs dense: span counts against seqeval, the bootstrap against explicit resamples and scipy, the
corrections against statsmodels and a hand computation, and populations whose answer is known."""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from seqeval.metrics import f1_score
from statsmodels.stats.multitest import multipletests

from sparsenlp.analysis import stats
from sparsenlp.analysis.encode import Encodings, TestSet
from sparsenlp.analysis.resample import (SentenceSums, bootstrap_p_value, keyed_rng, percentile_interval,
                                         resampled_sums, sentence_counts)
from sparsenlp.analysis.stats import Cell, adjust, compare, significance_table, span_f1, verdict_summary
from sparsenlp.errors import SparseNLPError
from tests.synthetic import make_test_set, predict

TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


def population(lang: str, n: int, seeds: range, miss: float, confuse: float = 0.05, spurious: float = 0.05,
               test_seed: int = 0) -> list[list[dict]]:
    sentences = make_test_set(np.random.default_rng(test_seed), n)
    return [predict(np.random.default_rng(1000 * test_seed + s), sentences, lang, miss, confuse, spurious)
            for s in seeds]


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


# --- the bootstrap, replicate by replicate ---------------------------------------------------------------


def test_replicates_equal_seqeval_on_the_same_sentence_and_seed_resamples():
    """The vectorised path (counts @ per-sentence rows, F1 per run, seed picks) against seqeval recomputed on
    explicitly resampled sentence lists of explicitly picked runs."""
    dense = population("de", 40, range(3), miss=0.2)
    sparse = population("de", 40, range(3, 5), miss=0.4)
    sparse[1] = random_tags(np.random.default_rng(1), sparse[1])
    test = TestSet(dense[0], "de", "clean")
    runs = [*dense, *sparse]
    counts = [test.encode(run) for run in runs]
    rng = np.random.default_rng(7)
    n_boot = 12
    index = rng.integers(0, len(test), size=(n_boot, len(test)))
    weights = np.stack([np.bincount(i, minlength=len(test)) for i in index]).astype(float)
    picks_d = rng.integers(0, 3, size=(n_boot, 3))
    picks_s = rng.integers(0, 2, size=(n_boot, 2))
    f1 = np.stack([span_f1(weights @ c.tp, weights @ c.pred, weights @ test.gold) for c in counts])
    delta = stats.population_f1(f1[3:], picks_s) - stats.population_f1(f1[:3], picks_d)
    ordered = [by_id(run, test) for run in runs]
    for b in range(n_boot):
        d = np.mean([seqeval_f1(ordered[j], index[b]) for j in picks_d[b]])
        s = np.mean([seqeval_f1(ordered[3 + j], index[b]) for j in picks_s[b]])
        assert delta[b] == pytest.approx(s - d, abs=1e-12)


def test_sentence_counts_are_multinomial_resamples_and_sums_use_them():
    n, n_boot = 37, 500
    counts = np.vstack(list(sentence_counts(keyed_rng(0, "x"), n, n_boot)))
    assert counts.shape == (n_boot, n) and (counts.sum(axis=1) == n).all()
    assert (counts >= 0).all() and (counts == np.round(counts)).all()
    assert counts.mean() == pytest.approx(1.0) and counts.var() == pytest.approx(1 - 1 / n, rel=0.05)
    rows = np.random.default_rng(1).integers(0, 5, size=(3, n))
    assert np.array_equal(resampled_sums(keyed_rng(0, "x"), rows, n_boot), counts @ rows.T)


def test_p_value_and_interval_of_known_replicate_sets():
    assert bootstrap_p_value(np.zeros(99)) == 1.0
    assert bootstrap_p_value(np.full(99, 0.1)) == pytest.approx(2 / 100)
    assert bootstrap_p_value(np.r_[np.full(10, -1.0), np.full(89, 1.0)]) == pytest.approx(2 * 11 / 100)
    low, high = percentile_interval(np.arange(101.0), 0.9)
    assert (low, high) == pytest.approx((5.0, 95.0))
    assert np.isnan(percentile_interval(np.full(5, np.nan))[0])


# --- populations whose answer is known -------------------------------------------------------------------


def test_identical_predictions_give_no_difference_and_p_one():
    dense = population("de", 500, range(3), miss=0.2)
    copies = [[dict(r) for r in run] for run in dense]  # same predictions, other objects
    table = significance_table([Cell("de", "same", 0.5, "clean", dense, dense),
                                Cell("de", "copy", 0.5, "clean", dense, copies),
                                Cell("de", "one", 0.5, "clean", dense[:1], copies[:1])], n_boot=1000)
    assert (table["delta_f1"] == 0).all() and (table["rel_delta_f1"] == 0).all()
    one = table.set_index("arm").loc["one"]
    assert one["p_value"] == 1.0 and one["ci_low"] == one["ci_high"] == 0.0  # sentences alone cannot separate them
    for arm in ("same", "copy"):  # seeds drawn independently per population: symmetric around 0
        row = table.set_index("arm").loc[arm]
        assert row["p_value"] > 0.8 and row["ci_low"] < 0 < row["ci_high"]
        assert row["verdict"] == "indistinguishable"


def test_a_consistent_improvement_is_significant_and_its_ci_excludes_zero():
    dense = population("de", 1000, range(3), miss=0.30)
    better = population("de", 1000, range(3, 6), miss=0.10)
    table = significance_table([Cell("de", "better", 0.5, "clean", dense, better),
                                Cell("de", "worse", 0.5, "clean", better, dense)], n_boot=1000)
    up, down = table.set_index("arm").loc["better"], table.set_index("arm").loc["worse"]
    assert 0 < up["ci_low"] < up["delta_f1"] < up["ci_high"] and up["verdict"] == "better"
    assert down["ci_high"] < 0 and down["verdict"] == "worse"
    assert up["p_value"] == pytest.approx(2 / 1001)  # every replicate above 0: the floor
    f1 = lambda runs: np.mean([seqeval_f1(r) for r in runs])  # noqa: E731
    assert up["delta_f1"] == pytest.approx(f1(better) - f1(dense), abs=1e-12)
    assert up["f1_dense"] == pytest.approx(f1(dense), abs=1e-12)
    assert up["rel_delta_f1"] == pytest.approx(up["delta_f1"] / up["f1_dense"])
    assert up["rel_ci_low"] > 0 and down["rel_ci_high"] < 0


# --- against scipy.stats.bootstrap ------------------------------------------------------------------------


def _close(ours: tuple[float, float], theirs, se: float) -> None:
    """Percentile endpoints from independent Monte-Carlo draws agree within a quarter of the bootstrap SE
    (the Monte-Carlo error of a 2.5 % quantile at 4000 replicates is about 0.04 SE)."""
    assert abs(ours[0] - theirs.low) < 0.25 * se and abs(ours[1] - theirs.high) < 0.25 * se


def test_sentence_level_bootstrap_agrees_with_scipy_paired_bootstrap():
    dense = population("de", 800, range(1), miss=0.25)
    sparse = population("de", 800, range(5, 6), miss=0.3)
    n_boot = 4000
    row = compare([Cell("de", "a", 0.5, "clean", dense, sparse)], n_boot=n_boot, resample=("sentences",)).iloc[0]
    test = TestSet(dense[0], "de", "clean")
    d, s = test.encode(dense[0]), test.encode(sparse[0])

    def delta(tp_s, p_s, tp_d, p_d, g, axis=-1):
        return (2 * tp_s.sum(axis) / (p_s.sum(axis) + g.sum(axis))
                - 2 * tp_d.sum(axis) / (p_d.sum(axis) + g.sum(axis)))

    ref = scipy_stats.bootstrap((s.tp, s.pred, d.tp, d.pred, test.gold), delta, paired=True, vectorized=True,
                                n_resamples=n_boot, method="percentile", rng=np.random.default_rng(11))
    assert row["delta_f1"] == pytest.approx(delta(s.tp, s.pred, d.tp, d.pred, test.gold))
    _close((row["ci_low"], row["ci_high"]), ref.confidence_interval, ref.standard_error)


def test_seed_level_bootstrap_agrees_with_scipy_two_sample_bootstrap():
    sentences = make_test_set(np.random.default_rng(0), 300)
    # seeds that differ in quality, so the seed level has variance of its own
    dense = [predict(np.random.default_rng(s), sentences, "de", 0.15 + 0.03 * s) for s in range(6)]
    sparse = [predict(np.random.default_rng(10 + s), sentences, "de", 0.2 + 0.04 * s) for s in range(5)]
    n_boot = 4000
    row = compare([Cell("de", "a", 0.5, "clean", dense, sparse)], n_boot=n_boot, resample=("seeds",)).iloc[0]
    f1_d, f1_s = np.array([seqeval_f1(r) for r in dense]), np.array([seqeval_f1(r) for r in sparse])
    ref = scipy_stats.bootstrap((f1_s, f1_d), lambda a, b, axis=-1: a.mean(axis) - b.mean(axis), paired=False,
                                vectorized=True, n_resamples=n_boot, method="percentile", rng=np.random.default_rng(5))
    assert row["delta_f1"] == pytest.approx(f1_s.mean() - f1_d.mean(), abs=1e-12)
    _close((row["ci_low"], row["ci_high"]), ref.confidence_interval, ref.standard_error)


def test_two_level_interval_is_wider_than_either_level_alone():
    sentences = make_test_set(np.random.default_rng(0), 600)
    dense = [predict(np.random.default_rng(s), sentences, "de", 0.15 + 0.03 * s) for s in range(3)]
    sparse = [predict(np.random.default_rng(10 + s), sentences, "de", 0.2 + 0.03 * s) for s in range(3)]
    cell = [Cell("de", "a", 0.5, "clean", dense, sparse)]
    width = {levels: (lambda r: r["ci_high"] - r["ci_low"])(compare(cell, n_boot=2000, resample=levels).iloc[0])
             for levels in (("seeds",), ("sentences",), ("seeds", "sentences"))}
    assert width[("seeds", "sentences")] > max(width[("seeds",)], width[("sentences",)])


# --- determinism -----------------------------------------------------------------------------------------


def _cells() -> list[Cell]:
    cells = []
    for k, lang in enumerate(("de", "sw", "yo")):
        dense = population(lang, 200, range(3), miss=0.2, test_seed=k)
        for arm, extra in (("global", 0.05), ("layerwise", 0.1)):
            sparse = population(lang, 200, range(10, 12), miss=0.2 + extra, test_seed=k)
            cells.append(Cell(lang, arm, 0.9, "clean", dense, sparse))
    return cells


def test_results_depend_on_the_seed_only_not_on_other_cells_or_their_order():
    cells = _cells()
    table = significance_table(cells, n_boot=500, seed=3)
    pd.testing.assert_frame_equal(significance_table(cells, n_boot=500, seed=3), table)
    shuffled = significance_table(cells[::-1], n_boot=500, seed=3).sort_values(["lang", "arm"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(shuffled, table.sort_values(["lang", "arm"]).reset_index(drop=True))
    alone = compare(cells[2:3], n_boot=500, seed=3).iloc[0]
    pd.testing.assert_series_equal(alone.drop(["p_adjusted", "correction", "family_size", "verdict"]),
                                   table.iloc[2].drop(["p_adjusted", "correction", "family_size", "verdict"]),
                                   check_names=False)
    other = significance_table(cells, n_boot=500, seed=4)
    assert not np.allclose(other["ci_low"], table["ci_low"])
    assert (other["delta_f1"] == table["delta_f1"]).all()  # the point estimate does not resample


def test_columns_and_population_sizes():
    dense = population("de", 100, range(4), miss=0.2)
    sparse = population("de", 100, range(7, 9), miss=0.3)
    table = significance_table([Cell("de", "a", 0.5, "char_noise@0.1", dense, sparse)], n_boot=200)
    assert tuple(table.columns) == stats.COLUMNS
    row = table.iloc[0]
    assert (row["n_dense_seeds"], row["n_sparse_seeds"], row["n_seeds"], row["n_sentences"]) == (4, 2, 2, 100)
    assert row["condition"] == "char_noise@0.1" and row["correction"] == "holm" and row["family_size"] == 1


def test_empty_population_or_bad_settings_are_errors():
    dense = population("de", 20, range(2), miss=0.2)
    with pytest.raises(SparseNLPError, match="no sparse run for lang=de"):
        compare([Cell("de", "a", 0.5, "clean", dense, [])])
    with pytest.raises(SparseNLPError, match="unknown resampling level"):
        compare([Cell("de", "a", 0.5, "clean", dense, dense)], resample=("runs",))
    with pytest.raises(SparseNLPError, match="unknown multiple-comparison correction 'sidak-ish'"):
        significance_table([Cell("de", "a", 0.5, "clean", dense, dense)], n_boot=10, correction="sidak-ish")


def test_an_encoding_cache_is_shared_and_reused():
    cells = _cells()
    encodings = Encodings()
    a = compare(cells, n_boot=100, encodings=encodings)
    assert len(encodings.tests) == 3
    b = compare(cells, n_boot=100, encodings=encodings)
    pd.testing.assert_frame_equal(a, b)


# --- multiple comparisons --------------------------------------------------------------------------------


def _p_table(p_values: list[float], arm: str = "a", deltas: list[float] | None = None) -> pd.DataFrame:
    langs = [f"l{i}" for i in range(len(p_values))]
    return pd.DataFrame({"lang": langs, "arm": arm, "sparsity": 0.9, "condition": "clean", "p_value": p_values,
                         "delta_f1": deltas if deltas is not None else [-0.01] * len(p_values)})


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


def test_too_few_replicates_for_the_family_warn():
    table = adjust(_p_table([2 / 101] * 40))
    with pytest.warns(UserWarning, match="cannot reach alpha=0.05; use n_boot > 1600"):
        stats.warn_resolution(table, 100, "holm", 0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats.warn_resolution(table, 2000, "holm", 0.05)
        stats.warn_resolution(table, 100, "bh", 0.05)


# --- summary ---------------------------------------------------------------------------------------------


def test_verdict_summary_counts_languages_overall_and_per_tier():
    table = pd.DataFrame({
        "lang": ["de", "en", "sw", "yo", "de", "en", "sw", "yo"],
        "arm": ["a"] * 4 + ["b"] * 4, "sparsity": 0.9, "condition": "clean",
        "verdict": ["worse", "indistinguishable", "worse", "better", *["indistinguishable"] * 4],
        "delta_f1": [-0.02, 0.0, -0.06, 0.01, 0.0, 0.0, 0.0, 0.0], "rel_delta_f1": 0.0,
    })
    tiers = {"de": "high", "en": "high", "sw": "low", "yo": "low"}
    out = verdict_summary(table, tiers).set_index(["arm", "tier"])
    assert out.loc[("a", "all"), ["n_langs", "better", "worse", "indistinguishable"]].tolist() == [4, 1, 2, 1]
    assert out.loc[("a", "high"), ["better", "worse", "indistinguishable"]].tolist() == [0, 1, 1]
    assert out.loc[("a", "low"), ["better", "worse", "indistinguishable"]].tolist() == [1, 1, 0]
    assert out.loc[("a", "low"), "delta_f1_mean"] == pytest.approx(-0.025)
    assert out.loc[("a", "all"), "delta_f1_std"] == pytest.approx(np.std([-0.02, 0.0, -0.06, 0.01], ddof=1))
    assert out.loc[("b", "all"), "indistinguishable"] == 4
    assert list(verdict_summary(table.assign(tier=table["lang"].map(tiers)))["tier"][:3]) == ["all", "high", "low"]
    with pytest.raises(SparseNLPError, match="needs tiers"):
        verdict_summary(table)


def test_sentence_sums_refuse_rows_after_compute():
    sums = SentenceSums(0, 10)
    sums.add("de", (1, 2), np.ones((1, 2)))
    sums.compute()
    with pytest.raises(RuntimeError):
        sums.add("de", (1, 2), np.ones((1, 2)))
    assert sums.sums(0).shape == (10, 1) and (sums.sums(0) == 2).all()


def test_keyed_streams_are_reproducible_and_distinct():
    a = keyed_rng(0, "de", "clean").integers(0, 2**31, 4)
    assert (a == keyed_rng(0, "de", "clean").integers(0, 2**31, 4)).all()
    for other in (keyed_rng(1, "de", "clean"), keyed_rng(0, "de", "char_noise@0.1"), keyed_rng(0, "clean", "de")):
        assert not (a == other.integers(0, 2**31, 4)).all()
    assert len({tuple(keyed_rng(0, *names).integers(0, 2**31, 2)) for names in itertools.permutations("abc")}) == 6


def test_one_pass_gives_both_tables_as_the_separate_functions_do():
    from sparsenlp.analysis.dense_comparison import compare_to_dense
    from sparsenlp.analysis.pie_floor import pie_floor_table

    cells = _cells()
    both = compare_to_dense(cells, n_boot=300, seed=2)
    pd.testing.assert_frame_equal(both.significance, significance_table(cells, n_boot=300, seed=2))
    pd.testing.assert_frame_equal(both.pie, pie_floor_table(cells, n_boot=300, seed=2))
    raw = compare_to_dense(cells, n_boot=300, seed=2, correction=None, pie_levels=())
    assert raw.significance["p_adjusted"].isna().all() and raw.pie.empty
    pd.testing.assert_frame_equal(adjust(raw.significance), both.significance)
    # an F1 interval over seeds only leaves the PIE interval over sentences, as pie_floor_table computes it
    seeds_only = compare_to_dense(cells, n_boot=300, seed=2, resample=("seeds",))
    pd.testing.assert_frame_equal(seeds_only.significance,
                                  significance_table(cells, n_boot=300, seed=2, resample=("seeds",)))
    pd.testing.assert_frame_equal(seeds_only.pie, both.pie)
    assert (seeds_only.pie["excess_ci_high"] > seeds_only.pie["excess_ci_low"]).any()


def _load_language(lang: str) -> list[Cell]:
    """One language's cells, built in whichever process asks (module level: picklable)."""
    return [cell for cell in _cells() if cell.lang == lang]


def test_languages_in_worker_processes_give_the_tables_of_one_process():
    from sparsenlp.analysis.dense_comparison import compare_languages, compare_to_dense

    serial = compare_to_dense(_cells(), n_boot=200, seed=1)
    for jobs in (1, 2):
        parallel = compare_languages(_load_language, ["de", "sw", "yo"], jobs=jobs, n_boot=200, seed=1)
        pd.testing.assert_frame_equal(parallel.significance, serial.significance)
        pd.testing.assert_frame_equal(parallel.pie, serial.pie)
