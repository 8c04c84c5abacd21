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
    assert m["per_type"]["PER"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}


def test_strict_mode_matches_seqeval_strict():
    m = ner_metrics(GOLD, PRED, mode="strict").model_dump()
    assert m["f1"] == pytest.approx(f1_score(GOLD, PRED, mode="strict", scheme=IOB2))
    assert m["precision"] == pytest.approx(2 / 3)  # the I-ORG span is not a strict span
    assert m["f1"] < ner_metrics(GOLD, PRED).f1


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        ner_metrics(GOLD, PRED[:2])
