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
