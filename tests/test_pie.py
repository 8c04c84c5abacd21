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


# --- vectorised modal, per-seed PIE rates and the noise floor -------------------------------------------

import numpy as np  # noqa: E402

from sparsenlp.analysis.pie_floor import COLUMNS as FLOOR_COLUMNS, disagreement, pie_floor_table  # noqa: E402
from sparsenlp.analysis.stats import Cell  # noqa: E402
from sparsenlp.analysis.synthetic import seed_runs  # noqa: E402
from sparsenlp.evaluation.pie import modal_codes  # noqa: E402


def test_modal_codes_follow_the_modal_rule_column_by_column():
    rng = np.random.default_rng(0)
    for k in (1, 2, 3, 4, 7):
        codes = rng.integers(0, 4, size=(k, 300))
        assert modal_codes(codes).tolist() == [modal(list(col)) for col in codes.T]


def test_pie_rate_over_all_seeds_equals_find_pies():
    dense, sparse = populations()
    table = pie_floor_table([Cell("de", "global", 0.5, "clean", dense, sparse)])
    assert tuple(table.columns) == FLOOR_COLUMNS
    for level in ("sentence", "token"):
        row = table[table["level"] == level].iloc[0]
        assert row["pie_rate_all"] == pytest.approx(find_pies(dense, sparse, level).fraction)
        assert not row["too_small"] and row["reference_seeds"] == 2  # 3 + 3 seeds: a floor and an interval
    dense, sparse = seed_runs(300, range(5), miss=0.2, test_seed=1), seed_runs(300, range(9, 12), miss=0.3, test_seed=1)
    table = pie_floor_table([Cell("de", "global", 0.5, "clean", dense, sparse)])
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


def test_per_seed_rate_and_floor_on_seeds_that_disagree_by_a_known_amount():
    # three dense seeds: each is compared with the mode of the other two (a tie goes to the smaller label);
    # each sparse seed with the mode of each pair of dense seeds, averaged over the three pairs
    dense = one_token_runs([
        [X, X, X],  # all agree: floor 0; pair modes X, X, X
        [X, X, Y],  # seed 0 vs {X, Y} → X: 0; seed 1 vs {X, Y} → X: 0; seed 2 vs {X, X}: 1 → floor 1/3;
                    # pair modes ({1,2}, {0,2}, {0,1}) = X, X, X
        [X, Y, Z],  # seed 0 vs min(Y, Z) = Y: 1; seed 1 vs min(X, Z) = X: 1; seed 2 vs min(X, Y) = X: 1 → 1;
                    # pair modes Y, X, X
    ])
    sparse = one_token_runs([
        [Y, X],  # Y differs from every pair mode: 1; X from none: 0 → rate 1/2
        [X, X],  # 0
        [Y, Z],  # Y differs from X, X (2 of 3): 2/3; Z from all: 1 → rate 5/6
    ])
    table = pie_floor_table([Cell("de", "a", 0.9, "clean", dense, sparse)], levels=("sentence",))
    row = table.iloc[0]
    assert row["noise_floor"] == pytest.approx((0 + 1 / 3 + 1) / 3)
    assert row["pie_rate"] == pytest.approx((1 / 2 + 0 + 5 / 6) / 3)
    assert row["excess"] == pytest.approx(row["pie_rate"] - row["noise_floor"])
    rate, floor = disagreement(np.array([[0, 0, 0], [0, 0, 1], [0, 1, 2]]).T, np.array([[1, 0, 1], [0, 0, 2]]))
    assert rate.mean(axis=0).tolist() == pytest.approx([1 / 2, 0, 5 / 6])
    assert floor.mean(axis=0).tolist() == pytest.approx([0, 1 / 3, 1])
    token = pie_floor_table([Cell("de", "a", 0.9, "clean", dense, sparse)], levels=("token",)).iloc[0]
    assert (token["pie_rate"], token["noise_floor"]) == pytest.approx((row["pie_rate"], row["noise_floor"]))


def test_token_rates_are_tokens_over_tokens():
    dense, sparse = seed_runs(200, range(3), miss=0.2, test_seed=5), seed_runs(200, range(7, 10), miss=0.35, test_seed=5)
    row = pie_floor_table([Cell("de", "a", 0.5, "clean", dense, sparse)], levels=("token",)).iloc[0]
    # by hand on the rows: a dense seed's tag differs from the mode of the other two (ties to the smaller tag)
    by_id = [{r["id"]: r for r in run} for run in dense]
    ids = sorted(by_id[0])
    differ = total = 0
    for r in range(3):
        others = [o for o in range(3) if o != r]
        for i in ids:
            for t, tag in enumerate(by_id[r][i]["pred"]):
                differ += tag != modal([by_id[o][i]["pred"][t] for o in others])
                total += 1
    assert row["noise_floor"] == pytest.approx(differ / total) and row["n_units"] == total / 3


def test_sparse_runs_that_behave_like_dense_sit_on_the_floor():
    runs = seed_runs(3000, range(6), miss=0.2, test_seed=2)
    worse = seed_runs(3000, range(50, 53), miss=0.35, test_seed=2)
    table = pie_floor_table([Cell("de", "null", 0.5, "clean", runs[:3], runs[3:]),
                             Cell("de", "drop", 0.5, "clean", runs[:3], worse)])
    for level in ("sentence", "token"):
        null = table[(table["arm"] == "null") & (table["level"] == level)].iloc[0]
        drop = table[(table["arm"] == "drop") & (table["level"] == level)].iloc[0]
        assert null["excess_ci_low"] < 0 < null["excess_ci_high"] and null["excess_p"] > 0.05
        assert drop["excess_ci_low"] > 0 and drop["pie_rate"] > drop["noise_floor"] > 0
        assert null["noise_floor"] == drop["noise_floor"]  # the floor depends on the dense runs only


def test_excess_interval_is_the_t_interval_of_the_per_seed_rates_without_sentence_effects():
    """One-token sentences whose every run is right or wrong as a whole: with the same share of sentences
    on which each seed is wrong everywhere, the interval is Student's over the per-seed rates."""
    rng = np.random.default_rng(4)
    n = 400
    rates = {"dense": [0.10, 0.14, 0.12], "sparse": [0.2, 0.25, 0.18]}
    wrong = {name: [rng.random(n) < r for r in rs] for name, rs in rates.items()}
    labels = [[Y if wrong[name][r][s] else X for name in ("dense", "sparse") for r in range(3)] for s in range(n)]
    runs = one_token_runs(labels)
    row = pie_floor_table([Cell("de", "a", 0.5, "clean", runs[:3], runs[3:])], levels=("sentence",)).iloc[0]
    dense_codes = np.array([[int(w) for w in wrong["dense"][r]] for r in range(3)])
    sparse_codes = np.array([[int(w) for w in wrong["sparse"][r]] for r in range(3)])
    rate, floor = disagreement(dense_codes, sparse_codes)
    assert row["pie_rate"] == pytest.approx(rate.mean()) and row["noise_floor"] == pytest.approx(floor.mean())
    assert row["excess_df"] >= 4 and row["excess_ci_low"] < row["excess"] < row["excess_ci_high"]


def test_small_populations_are_flagged():
    runs = seed_runs(50, range(6), miss=0.3, test_seed=4)
    table = pie_floor_table([Cell("de", "d1", 0.5, "clean", runs[:1], runs[3:5]),
                             Cell("de", "d2", 0.5, "clean", runs[:2], runs[4:6]),
                             Cell("de", "s1", 0.5, "clean", runs[:3], runs[4:5]),
                             Cell("de", "ok", 0.5, "clean", runs[:3], runs[4:6])], levels=("sentence",))
    flags = table.set_index("arm")
    assert flags["too_small"].to_dict() == {"d1": True, "d2": True, "s1": True, "ok": False}
    assert np.isnan(flags.loc["d1", "noise_floor"]) and np.isfinite(flags.loc["s1", "noise_floor"])
    # two dense seeds: each one's reference is the other, so the two floor rows are one and their spread is 0
    _, floor = disagreement(np.array([[0, 1, 2, 0], [1, 1, 0, 0]]), np.array([[0, 0, 0, 0], [1, 1, 1, 1]]))
    assert (floor[0] == floor[1]).all() and np.isfinite(flags.loc["d2", "noise_floor"])
    with pytest.raises(SparseNLPError, match="unknown PIE level"):
        pie_floor_table([Cell("de", "ok", 0.5, "clean", runs[:4], runs[4:6])], levels=("entity",))


def test_quoted_examples_are_the_sentence_pies_of_find_pies():
    from sparsenlp.analysis.dense_comparison import compare_to_dense

    dense, sparse = populations()
    more_dense = seed_runs(200, range(3), "sw", miss=0.2, test_seed=2)
    more_sparse = seed_runs(200, range(7, 9), "sw", miss=0.35, test_seed=2)
    cells = [Cell("de", "global", 0.5, "clean", dense, sparse),
             Cell("sw", "global", 0.9, "clean", more_dense, more_sparse)]
    examples = compare_to_dense(cells, n_examples=3).examples
    for cell in cells:
        ref = find_pies(cell.dense, cell.sparse, "sentence", n_examples=3).examples
        got = examples[examples["lang"] == cell.lang]
        assert got["id"].tolist() == [ex.id for ex in ref] and len(ref) == 3
        for name in ("tokens", "gold", "dense", "sparse"):
            assert got[name].tolist() == [" ".join(getattr(ex, name)) for ex in ref]
        assert set(got["arm"]) == {"global"} and set(got["sparsity"]) == {cell.sparsity}
    assert compare_to_dense(cells).examples.empty  # none unless asked for
