"""Our metric dict equals seqeval's own numbers, overall and per type, default and strict."""
from __future__ import annotations

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from sparsenlp.evaluation.metrics import ner_metrics

GOLD = [
    ["B-PER", "I-PER", "O", "B-LOC"],
    ["O", "B-ORG", "I-ORG", "I-ORG", "O"],
    ["B-LOC", "O", "B-PER"],
]
PRED = [
    ["B-PER", "I-PER", "O", "B-ORG"],     # PER right, LOC predicted as ORG
    ["O", "I-ORG", "I-ORG", "I-ORG", "O"],  # ill-formed start: counts in default mode, not in strict
    ["B-LOC", "O", "O"],                  # PER missed
]


def test_matches_seqeval_default_mode():
    m = ner_metrics(GOLD, PRED).model_dump()
    assert m["precision"] == pytest.approx(precision_score(GOLD, PRED))
    assert m["recall"] == pytest.approx(recall_score(GOLD, PRED))
    assert m["f1"] == pytest.approx(f1_score(GOLD, PRED))
    report = classification_report(GOLD, PRED, output_dict=True)
    for name in ("PER", "LOC", "ORG"):
        assert m["per_type"][name]["f1"] == pytest.approx(report[name]["f1-score"])
        assert m["per_type"][name]["support"] == report[name]["support"]


def test_hand_computed_counts():
    # gold spans: PER, LOC, ORG, LOC, PER = 5; predicted (default mode): PER, ORG, ORG, LOC = 4;
    # correct: PER(s1), ORG(s2), LOC(s3) = 3 -> P = 3/4, R = 3/5
    m = ner_metrics(GOLD, PRED).model_dump()
    assert m["precision"] == pytest.approx(3 / 4) and m["recall"] == pytest.approx(3 / 5)
    assert m["per_type"]["PER"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2,
                                    "missing": None}


def test_strict_mode_matches_seqeval_strict():
    m = ner_metrics(GOLD, PRED, mode="strict").model_dump()
    assert m["f1"] == pytest.approx(f1_score(GOLD, PRED, mode="strict", scheme=IOB2))
    assert m["precision"] == pytest.approx(2 / 3)  # the I-ORG span is not a strict span
    assert m["f1"] < ner_metrics(GOLD, PRED).f1


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        ner_metrics(GOLD, PRED[:2])


def test_a_test_set_without_gold_entities_has_no_f1_never_0():
    """0/0 is undefined: recall and F1 without a gold span, precision without a predicted one (seqeval's
    zero_division would make each 0). F1 with gold spans but no prediction is 0: 2·TP / (2·TP + FP + FN)."""
    no_gold = [["O", "O"], ["O"]]
    nothing = ner_metrics(no_gold, no_gold)
    assert (nothing.precision, nothing.recall, nothing.f1) == (None, None, None) and nothing.per_type == {}
    assert "no gold entity" in nothing.missing and "no predicted entity" in nothing.missing
    assert f1_score(no_gold, no_gold, zero_division=0) == 0.0  # what was recorded before

    spurious = ner_metrics(no_gold, [["B-PER", "O"], ["O"]])
    assert spurious.precision == 0.0 and spurious.recall is None and spurious.f1 is None
    assert spurious.missing == "no gold entity: recall and F1 are undefined"
    assert spurious.per_type["PER"].f1 is None and spurious.per_type["PER"].support == 0

    silent = ner_metrics(GOLD, [["O"] * len(g) for g in GOLD])
    assert silent.precision is None and silent.recall == 0.0 and silent.f1 == 0.0
    assert silent.missing == "no predicted entity: precision is undefined"
    # a type never predicted: its precision is undefined, its recall and F1 are 0
    assert (silent.per_type["LOC"].precision, silent.per_type["LOC"].f1) == (None, 0.0)
