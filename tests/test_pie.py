"""PIEs on a hand-built population of three dense and three sparse runs."""
from __future__ import annotations

import json
import math

import pytest
from seqeval.metrics import f1_score

from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.pie import find_pies, load_predictions, modal

TOKENS = [
    ["Anna", "lebt", "in", "Berlin"],
    ["Paris", "Hilton"],
    ["die", "UN", "sagten"],
    ["Rom"],
    ["Hamburg", "ist", "schön"],
    ["Apple", "Inc"],
]
GOLD = [
    ["B-PER", "O", "O", "B-LOC"],
    ["B-PER", "I-PER"],
    ["O", "B-ORG", "O"],
    ["B-LOC"],
    ["B-LOC", "O", "O"],
    ["B-ORG", "I-ORG"],
]
IDS = [10, 11, 12, 13, 14, 15]
OK = GOLD
# Rows: runs; columns: sentences. Comments give the hand-derived modal predictions.
DENSE = [
    [OK[0], ["B-LOC", "I-LOC"], OK[2], ["B-ORG"], OK[4], ["B-PER", "I-PER"]],
    [OK[0], ["B-PER", "I-PER"], OK[2], ["B-LOC"], OK[4], ["B-PER", "I-PER"]],
    [OK[0], ["B-PER", "I-PER"], ["O", "O", "O"], ["O"], OK[4], ["B-PER", "I-PER"]],
]
# dense modal: s0 gold, s1 gold (2 votes), s2 gold (2 votes), s3 three-way tie -> (B-LOC), s4 gold, s5 (B-PER I-PER)
SPARSE = [
    [OK[0], ["B-PER", "I-PER"], ["O", "O", "O"], ["B-ORG"], ["B-ORG", "O", "O"], ["B-PER", "I-PER"]],
    [["B-PER", "O", "O", "B-ORG"], ["B-LOC", "I-PER"], ["O", "O", "O"], ["B-ORG"], OK[4], ["B-PER", "I-PER"]],
    [["B-PER", "O", "O", "B-ORG"], ["B-PER", "O"], OK[2], ["O"], OK[4], ["B-PER", "I-PER"]],
]
# sparse modal: s0 ...B-ORG (PIE), s1 three-way tie -> (B-LOC I-PER) (PIE at sentence level only: per token the
# modes are B-PER, I-PER as in dense), s2 all O (PIE, token 1), s3 (B-ORG) (PIE), s4 gold, s5 as dense.
SENTENCE_MASK = (True, True, True, True, False, False)
TOKEN_MASK = ((False, False, False, True), (False, False), (False, True, False), (True,), (False,) * 3, (False,) * 2)


def run(preds: list[list[str]], order: list[int] | None = None) -> list[dict]:
    records = [
        {"id": IDS[i], "lang": "de", "tokens": TOKENS[i], "gold": GOLD[i], "pred": p} for i, p in enumerate(preds)
    ]
    return [records[i] for i in order] if order else records


def populations(order: list[int] | None = None) -> tuple[list[list[dict]], list[list[dict]]]:
    return [run(p) for p in DENSE], [run(p, order) for p in SPARSE]


def seqeval_mean(pop: list[list[list[str]]], subset: list[int]) -> float:
    return sum(f1_score([GOLD[i] for i in subset], [p[i] for i in subset]) for p in pop) / len(pop)


def test_modal_breaks_ties_to_the_smallest_label():
    assert modal(["b", "a", "b", "a", "c"]) == "a"
    assert modal(["c", "b", "b"]) == "b"
    assert modal([("O", "B-PER"), ("B-LOC", "O"), ("O", "B-PER")]) == ("O", "B-PER")
    assert modal([("O", "B-PER"), ("B-LOC", "O")]) == ("B-LOC", "O")


def test_sentence_level_pies_match_the_hand_derived_ones():
    dense, sparse = populations(order=[5, 3, 1, 0, 2, 4])  # sparse records in another order: aligned by id
    r = find_pies(dense, sparse, level="sentence")
    assert r.ids == tuple(IDS)
    assert r.sentence_mask == SENTENCE_MASK and r.token_mask is None
    assert (r.n_units, r.n_pie, r.fraction) == (6, 4, pytest.approx(4 / 6))
    assert [e.id for e in r.examples] == [10, 11, 12, 13]
    ex = r.examples[1]
    assert ex.tokens == ("Paris", "Hilton") and ex.gold == ("B-PER", "I-PER")
    assert ex.dense == ("B-PER", "I-PER") and ex.sparse == ("B-LOC", "I-PER")
    assert r.examples[3].dense == ("B-LOC",) and r.examples[3].sparse == ("B-ORG",)


def test_token_level_pies_match_the_hand_derived_ones():
    dense, sparse = populations()
    r = find_pies(dense, sparse, level="token")
    assert r.token_mask == TOKEN_MASK
    assert r.sentence_mask == (True, False, True, True, False, False)
    assert (r.n_units, r.n_pie, r.fraction) == (15, 3, pytest.approx(0.2))
    assert r.examples[0].sparse == ("B-PER", "O", "O", "B-ORG")


def test_result_does_not_depend_on_run_order():
    dense, sparse = populations()
    for level in ("sentence", "token"):
        a = find_pies(dense, sparse, level=level)
        b = find_pies(dense[::-1], [sparse[1], sparse[2], sparse[0]], level=level)
        assert a == b


def test_f1_on_pie_subsets_is_the_mean_seqeval_f1_of_each_population():
    dense, sparse = populations()
    r = find_pies(dense, sparse, level="sentence")
    # By hand, dense runs on the PIE sentences 0-3 (5 gold entities): run 1 has 3 of 5 predicted right
    # (F1 0.6), run 2 all 5 (1.0), run 3 3 predicted, all right (P 1, R 0.6, F1 0.75).
    assert r.f1_dense_pie == pytest.approx((0.6 + 1.0 + 0.75) / 3)
    assert r.f1_dense_pie == pytest.approx(seqeval_mean(DENSE, [0, 1, 2, 3]))
    assert r.f1_dense_non_pie == pytest.approx(seqeval_mean(DENSE, [4, 5]))
    assert r.f1_sparse_pie == pytest.approx(seqeval_mean(SPARSE, [0, 1, 2, 3]))
    assert r.f1_sparse_non_pie == pytest.approx(seqeval_mean(SPARSE, [4, 5]))
    t = find_pies(dense, sparse, level="token")
    assert t.f1_sparse_pie == pytest.approx(seqeval_mean(SPARSE, [0, 2, 3]))
    assert t.f1_dense_non_pie == pytest.approx(seqeval_mean(DENSE, [1, 4, 5]))
    assert r.summary()["f1_sparse_non_pie"] == r.f1_sparse_non_pie


def test_empty_subset_gives_nan_f1():
    dense, _ = populations()
    r = find_pies(dense, dense[1:], level="sentence")
    assert not any(r.sentence_mask)  # runs 2 and 3 alone give the same modal labels (ties included)
    assert math.isnan(r.f1_dense_pie) and r.fraction == 0


def test_fewer_than_two_runs_is_an_error():
    dense, sparse = populations()
    with pytest.raises(SparseNLPError, match="≥2 seeds per population; found 1 dense run.*lang=de"):
        find_pies(dense[:1], sparse)
    with pytest.raises(SparseNLPError, match="found 1 sparse"):
        find_pies(dense, sparse[:1])


def test_runs_that_do_not_line_up_are_an_error():
    dense, sparse = populations()
    with pytest.raises(SparseNLPError, match="sparse run 1 .*same sentence ids"):
        find_pies(dense, [sparse[0], sparse[1][:-1], sparse[2]])
    changed = [dict(r) for r in sparse[2]]
    changed[3] = {**changed[3], "tokens": ["Roma"]}
    with pytest.raises(SparseNLPError, match="sparse run 2 differs .*'tokens' of sentence id=13"):
        find_pies(dense, [sparse[0], sparse[1], changed])
    with pytest.raises(SparseNLPError, match="unknown PIE level"):
        find_pies(dense, sparse, level="entity")


def test_load_predictions_round_trip_and_errors(tmp_path):
    path = tmp_path / "clean.jsonl"
    records = run(SPARSE[1])
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    assert load_predictions(path) == records
    with pytest.raises(SparseNLPError, match="does not exist"):
        load_predictions(tmp_path / "missing.jsonl")
    path.write_text('{"id": 1, "tokens": ["a"], "gold": ["O"]}\n', encoding="utf-8")
    with pytest.raises(SparseNLPError, match=r"clean.jsonl:1 lacks \['pred'\]"):
        load_predictions(path)
    path.write_text('{"id": 1,\n', encoding="utf-8")
    with pytest.raises(SparseNLPError, match="not valid JSON"):
        load_predictions(path)


# --- vectorised modal, PIE rates and the noise floor ------------------------------------------------------

import numpy as np  # noqa: E402
from scipy import stats as scipy_stats  # noqa: E402

from sparsenlp.analysis.pie_floor import (COLUMNS as FLOOR_COLUMNS, balanced_splits, pie_floor_table,  # noqa: E402
                                          resampled_floor)
from sparsenlp.analysis.stats import Cell  # noqa: E402
from sparsenlp.evaluation.pie import modal_codes  # noqa: E402
from tests.synthetic import make_test_set, predict  # noqa: E402


def test_modal_codes_follow_the_modal_rule_column_by_column():
    rng = np.random.default_rng(0)
    for k in (1, 2, 3, 4, 7):
        codes = rng.integers(0, 4, size=(k, 300))
        assert modal_codes(codes).tolist() == [modal(list(col)) for col in codes.T]


def test_pie_rate_over_all_seeds_equals_find_pies():
    dense, sparse = populations()
    table = pie_floor_table([Cell("de", "global", 0.5, "clean", dense, sparse)], n_boot=50)
    assert tuple(table.columns) == FLOOR_COLUMNS
    for level in ("sentence", "token"):
        row = table[table["level"] == level].iloc[0]
        assert row["pie_rate_all"] == pytest.approx(find_pies(dense, sparse, level).fraction)
        # three dense seeds: the floor is resampled, the rate is over all seeds, and the row is flagged
        assert row["floor_method"] == "resampled" and row["pie_rate"] == row["pie_rate_all"] and row["too_small"]
    sentences = make_test_set(np.random.default_rng(1), 300)
    dense = [predict(np.random.default_rng(s), sentences, "de", 0.2, 0.05, 0.05) for s in range(5)]
    sparse = [predict(np.random.default_rng(9 + s), sentences, "de", 0.3, 0.05, 0.05) for s in range(3)]
    table = pie_floor_table([Cell("de", "global", 0.5, "clean", dense, sparse)], n_boot=50)
    for level in ("sentence", "token"):
        row = table[table["level"] == level].iloc[0]
        ref = find_pies(dense, sparse, level)
        assert row["pie_rate_all"] == pytest.approx(ref.fraction) and row["n_units"] == ref.n_units


def one_token_runs(labels: list[str]) -> list[list[dict]]:
    """Runs over one-token sentences: ``labels[s][r]`` is run r's tag on sentence s (sentence = token level)."""
    n_runs = len(labels[0])
    return [[{"id": s, "lang": "de", "tokens": ["x"], "gold": ["B-LOC"], "pred": [row[r]]}
             for s, row in enumerate(labels)] for r in range(n_runs)]


# X = B-LOC < Y = B-PER < O in string order
X, Y, Z = "B-LOC", "B-PER", "O"


def test_halves_floor_on_dense_seeds_that_disagree_by_a_known_amount():
    # four dense seeds; splits of {0,1,2,3}: {0,1}|{2,3}, {0,2}|{1,3}, {0,3}|{1,2}; two sparse seeds: m = 2
    dense = one_token_runs([
        [X, X, X, X],  # all agree: floor 0
        [X, X, Y, Y],  # only {0,1}|{2,3} separates X from Y; the mixed halves both tie to X: floor 1/3
        [X, Z, Z, Z],  # seed 0 alone: its half ties to min(X, Z) = X against Z in every split: floor 1
        [Z, Y, Y, Y],  # seed 0 alone, tie to min(Z, Y) = Y: halves agree on Y: floor 0
    ])
    sparse = one_token_runs([
        [Y, Y],  # every reference half is X: rate 1
        [X, X],  # the reference halves {0,1}, {0,2}, {0,3} are X, X, X: rate 0
        [Z, Z],  # references X, X, X: rate 1
        [Y, Z],  # sparse mode min(Y, Z) = Y; references Y: rate 0
    ])
    table = pie_floor_table([Cell("de", "a", 0.9, "clean", dense, sparse)], levels=("sentence",), n_boot=200)
    row = table.iloc[0]
    assert row["floor_method"] == "halves" and not row["too_small"]
    assert row["noise_floor"] == pytest.approx((0 + 1 / 3 + 1 + 0) / 4)
    assert row["pie_rate"] == pytest.approx((1 + 0 + 1 + 0) / 4)
    assert row["excess"] == pytest.approx(0.5 - 1 / 3)
    assert row["pie_rate_all"] == pytest.approx(find_pies(dense, sparse).fraction)
    token = pie_floor_table([Cell("de", "a", 0.9, "clean", dense, sparse)], levels=("token",), n_boot=200).iloc[0]
    assert (token["pie_rate"], token["noise_floor"]) == pytest.approx((row["pie_rate"], row["noise_floor"]))


def test_resampled_floor_is_the_exact_expectation_over_draws():
    # dense seeds tag X, X, Y. Two draws of 3 with replacement: mode X unless ≥ 2 draws hit seed 2:
    # P(Y) = 3·(1/3)²·(2/3) + (1/3)³ = 7/27, so P(modes differ) = 1 − (20/27)² − (7/27)² = 280/729.
    codes = np.array([[0], [0], [1]])
    assert resampled_floor(codes, 3)[0] == pytest.approx(280 / 729)
    # draws of 2: a tie {X, Y} goes to X, so the mode is Y only for {2, 2}: 1 − (8/9)² − (1/9)² = 16/81
    assert resampled_floor(codes, 2)[0] == pytest.approx(16 / 81)
    assert resampled_floor(np.array([[4], [4], [4]]), 3)[0] == 0.0  # dense seeds agree: no noise


def test_splits_are_every_balanced_split_once_or_a_reproducible_sample():
    assert balanced_splits(4) == [((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))]
    assert len(balanced_splits(5)) == 10 and len(balanced_splits(6)) == 10
    with pytest.raises(ValueError, match="exceed max_splits"):
        balanced_splits(8)
    drawn = balanced_splits(8, np.random.default_rng(0), max_splits=20)
    assert len(drawn) == len(set(drawn)) == 20 and drawn == balanced_splits(8, np.random.default_rng(0), 20)


def test_sparse_runs_that_behave_like_dense_sit_on_the_floor():
    sentences = make_test_set(np.random.default_rng(2), 3000)
    runs = [predict(np.random.default_rng(s), sentences, "de", 0.2, 0.05, 0.05) for s in range(9)]
    worse = [predict(np.random.default_rng(50 + s), sentences, "de", 0.35, 0.05, 0.05) for s in range(3)]
    table = pie_floor_table([Cell("de", "null", 0.5, "clean", runs[:6], runs[6:]),
                             Cell("de", "drop", 0.5, "clean", runs[:6], worse)], n_boot=1000)
    for level in ("sentence", "token"):
        null = table[(table["arm"] == "null") & (table["level"] == level)].iloc[0]
        drop = table[(table["arm"] == "drop") & (table["level"] == level)].iloc[0]
        assert null["excess_ci_low"] < 0 < null["excess_ci_high"]
        assert drop["excess_ci_low"] > 0 and drop["pie_rate"] > drop["noise_floor"] > 0
        assert null["noise_floor"] == drop["noise_floor"]  # the floor depends on the dense runs only


def test_excess_interval_agrees_with_scipy_bootstrap_of_the_per_sentence_excess():
    from sparsenlp.analysis.encode import TestSet
    from sparsenlp.analysis.pie_floor import pie_rates

    sentences = make_test_set(np.random.default_rng(3), 1500)
    dense = [predict(np.random.default_rng(s), sentences, "de", 0.2, 0.05, 0.05) for s in range(4)]
    sparse = [predict(np.random.default_rng(20 + s), sentences, "de", 0.3, 0.05, 0.05) for s in range(2)]
    n_boot = 4000
    row = pie_floor_table([Cell("de", "a", 0.5, "clean", dense, sparse)], levels=("sentence",), n_boot=n_boot).iloc[0]
    test = TestSet(dense[0], "de", "clean")
    codes = [test.encode(r).codes for r in [*dense, *sparse]]  # every run first: ranks need the whole vocabulary
    d, s = test.sentence_ranks(np.vstack(codes[:4])), test.sentence_ranks(np.vstack(codes[4:]))
    rate, floor, _ = pie_rates(d, s, dense_names=("de", "clean", "sentence"),
                               sparse_names=("de", "clean", "sentence", "a", 0.5))
    assert row["excess"] == pytest.approx((rate - floor).mean())
    ref = scipy_stats.bootstrap((rate - floor,), np.mean, n_resamples=n_boot, method="percentile",
                                rng=np.random.default_rng(1))
    se = ref.standard_error
    assert abs(row["excess_ci_low"] - ref.confidence_interval.low) < 0.25 * se
    assert abs(row["excess_ci_high"] - ref.confidence_interval.high) < 0.25 * se


def test_small_populations_are_flagged():
    sentences = make_test_set(np.random.default_rng(4), 50)
    runs = [predict(np.random.default_rng(s), sentences, "de", 0.3) for s in range(6)]
    table = pie_floor_table([Cell("de", "k3", 0.5, "clean", runs[:3], runs[3:5]),
                             Cell("de", "s1", 0.5, "clean", runs[:4], runs[4:5]),
                             Cell("de", "ok", 0.5, "clean", runs[:4], runs[4:6])], levels=("sentence",), n_boot=20)
    assert table.set_index("arm")["too_small"].to_dict() == {"k3": True, "s1": True, "ok": False}
    assert table.set_index("arm")["floor_method"].to_dict() == {"k3": "resampled", "s1": "halves", "ok": "halves"}
    with pytest.raises(SparseNLPError, match="unknown PIE level"):
        pie_floor_table([Cell("de", "ok", 0.5, "clean", runs[:4], runs[4:6])], levels=("entity",))


def test_quoted_examples_are_the_sentence_pies_of_find_pies():
    from sparsenlp.analysis.dense_comparison import compare_to_dense

    dense, sparse = populations()
    sentences = make_test_set(np.random.default_rng(2), 200)
    more_dense = [predict(np.random.default_rng(s), sentences, "sw", 0.2, 0.05, 0.05) for s in range(3)]
    more_sparse = [predict(np.random.default_rng(7 + s), sentences, "sw", 0.35, 0.05, 0.05) for s in range(2)]
    cells = [Cell("de", "global", 0.5, "clean", dense, sparse),
             Cell("sw", "global", 0.9, "clean", more_dense, more_sparse)]
    examples = compare_to_dense(cells, n_boot=50, n_examples=3).examples
    for cell in cells:
        ref = find_pies(cell.dense, cell.sparse, "sentence", n_examples=3).examples
        got = examples[examples["lang"] == cell.lang]
        assert got["id"].tolist() == [ex.id for ex in ref] and len(ref) == 3
        for name in ("tokens", "gold", "dense", "sparse"):
            assert got[name].tolist() == [" ".join(getattr(ex, name)) for ex in ref]
        assert set(got["arm"]) == {"global"} and set(got["sparsity"]) == {cell.sparsity}
    assert compare_to_dense(cells, n_boot=50).examples.empty  # none unless asked for
