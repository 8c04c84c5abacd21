"""Span-level NER metrics via seqeval: overall micro P/R/F1 and per entity type.

``mode=None`` is seqeval's default (conlleval-compatible: an I- tag after O starts a span);
``mode="strict"`` with the IOB2 scheme only counts well-formed spans, as in the strict evaluations.

A ratio whose denominator is 0 is undefined, and recorded as missing (None) with the reason in ``missing``,
never as seqeval's ``zero_division`` 0: recall and F1 without a gold entity (a test set, or an entity type, with
none), precision without a predicted one. F1 with gold entities but no prediction is 0, as 2·TP / (2·TP + FP + FN)
says.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from sparsenlp.tracking.schema import Metrics, Score

AVERAGES = ("micro avg", "macro avg", "weighted avg")


def _score(precision: float, recall: float, f1: float, gold: int, predicted: int, what: str) -> dict[str, Any]:
    """P/R/F1 of ``gold`` gold and ``predicted`` predicted spans, undefined ratios as None with the reason."""
    reasons = []
    if gold == 0:
        recall = f1 = None  # type: ignore[assignment]
        reasons.append(f"no gold {what}: recall and F1 are undefined")
    if predicted == 0:
        precision = None  # type: ignore[assignment]
        reasons.append(f"no predicted {what}: precision is undefined")
    return {"precision": precision, "recall": recall, "f1": f1, "missing": "; ".join(reasons) or None}


def ner_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], mode: str | None = None) -> Metrics:
    """P/R/F1 (micro over spans) and per-type P/R/F1/support: the record's ``Metrics``."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold vs {len(pred)} predicted sentences")
    gold_l = [list(g) for g in gold]
    pred_l = [list(p) for p in pred]
    kwargs: dict[str, Any] = {"mode": "strict", "scheme": IOB2} if mode == "strict" else {}
    with warnings.catch_warnings():  # numpy's "mean of empty slice" for the macro average of no entity type
        warnings.simplefilter("ignore", RuntimeWarning)
        report = classification_report(gold_l, pred_l, output_dict=True, zero_division=0, **kwargs)
        # the same report with the roles swapped: its support counts the predicted spans, in the same mode
        predicted = classification_report(pred_l, gold_l, output_dict=True, zero_division=0, **kwargs)
    types = [name for name in report if name not in AVERAGES]
    count = {name: int(predicted[name]["support"]) if name in predicted else 0 for name in types}
    per_type = {
        name: Score(**_score(float(v["precision"]), float(v["recall"]), float(v["f1-score"]), int(v["support"]),
                             count[name], f"{name} entity"), support=int(v["support"]))
        for name, v in report.items() if name in types
    }
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    total_gold = sum(int(report[name]["support"]) for name in types)
    return Metrics(
        **_score(float(micro["precision"]), float(micro["recall"]), float(micro["f1-score"]), total_gold,
                 sum(count.values()), "entity"),
        sentences=len(gold_l),
        per_type=per_type,
    )
