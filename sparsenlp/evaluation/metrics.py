"""Span-level NER metrics via seqeval: overall micro P/R/F1 and per entity type.

``mode=None`` is seqeval's default (conlleval-compatible: an I- tag after O starts a span);
``mode="strict"`` with the IOB2 scheme only counts well-formed spans, as in the strict evaluations.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seqeval.metrics import (
    classification_report,
    f1_score,
    precision_score,
    recall_score,
)
from seqeval.scheme import IOB2

from sparsenlp.tracking.schema import Metrics, Score


def ner_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], mode: str | None = None) -> Metrics:
    """P/R/F1 (micro over spans) and per-type P/R/F1/support: the record's ``Metrics``."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold vs {len(pred)} predicted sentences")
    gold_l = [list(g) for g in gold]
    pred_l = [list(p) for p in pred]
    kwargs: dict[str, Any] = {"mode": "strict", "scheme": IOB2} if mode == "strict" else {}
    report = classification_report(gold_l, pred_l, output_dict=True, zero_division=0, **kwargs)
    per_type = {
        name: Score(precision=float(v["precision"]), recall=float(v["recall"]), f1=float(v["f1-score"]),
                    support=int(v["support"]))
        for name, v in report.items()
        if name not in {"micro avg", "macro avg", "weighted avg"}
    }
    return Metrics(
        precision=float(precision_score(gold_l, pred_l, zero_division=0, **kwargs)),
        recall=float(recall_score(gold_l, pred_l, zero_division=0, **kwargs)),
        f1=float(f1_score(gold_l, pred_l, zero_division=0, **kwargs)),
        sentences=len(gold_l),
        per_type=per_type,
    )
