"""Pruning Identified Exemplars (Hooker et al. 2019, "What do compressed deep neural networks forget?").

An example is a PIE when the modal prediction of a population of sparse runs (one method and
sparsity, several seeds) differs from the modal prediction of a population of dense runs.
At ``level="sentence"`` the label of a sentence is its whole predicted tag sequence; at
``level="token"`` each token's tag is a label, and a sentence counts as a PIE sentence (for the F1
subsets) when it holds at least one PIE token.

Ties in the mode go to the lexicographically smallest label (tags compare as strings, sequences
element-wise). That rule depends only on the multiset of predictions, never on the order runs are
listed in, which a sweep directory does not fix.

:func:`modal_codes` is the same rule on integer codes that rank the labels (one column per unit, one
row per run), for the array-based analyses (:mod:`sparsenlp.analysis.pie_floor`) that compute PIE
rates for many populations at once.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Hashable, Sequence, TypeVar

import numpy as np
from seqeval.metrics import f1_score

from sparsenlp.errors import SparseNLPError

Record = dict
Run = Sequence[Record]
LEVELS = ("sentence", "token")
REQUIRED = ("id", "tokens", "gold", "pred")
L = TypeVar("L", bound=Hashable)


def load_predictions(path: str | Path) -> list[Record]:
    """Read one run's ``predictions/<condition>.jsonl`` (one ``{"id", "lang", "tokens", "gold", "pred"}`` a line)."""
    path = Path(path)
    if not path.is_file():
        raise SparseNLPError(f"predictions file {path} does not exist; check the run directory and condition name")
    records = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SparseNLPError(f"{path}:{n} is not valid JSON ({exc.msg}); re-run or delete that run") from None
            missing = [k for k in REQUIRED if k not in rec]
            if missing:
                raise SparseNLPError(f"{path}:{n} lacks {missing}; predictions need {list(REQUIRED)}")
            if not len(rec["tokens"]) == len(rec["gold"]) == len(rec["pred"]):
                raise SparseNLPError(f"{path}:{n} has tokens, gold and pred of different lengths; re-run that run")
            records.append(rec)
    return records


def modal(labels: Sequence[L]) -> L:
    """The most frequent label; ties go to the lexicographically smallest one."""
    counts = Counter(labels)
    top = max(counts.values())
    return min(label for label, c in counts.items() if c == top)


def modal_codes(codes: np.ndarray) -> np.ndarray:
    """Column-wise :func:`modal` of integer codes (runs × units) that rank the labels: the most frequent
    code of each column, ties to the smallest code (= the smallest label)."""
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 2 or codes.shape[0] == 0:
        raise ValueError(f"need a (runs × units) array with at least one run, got shape {codes.shape}")
    if codes.size and codes.min() < 0:
        raise ValueError("codes must be non-negative ranks")
    if codes.shape[0] <= 3:  # the usual population sizes, without the general counting below
        if codes.shape[0] < 3:
            return codes.min(axis=0)  # one run, or two: equal, or a tie that goes to the smaller code
        a, b, c = codes
        return np.where((a == b) | (a == c), a, np.where(b == c, b, np.minimum(a, np.minimum(b, c))))
    shared = np.zeros(codes.shape, dtype=np.int64)  # shared[j, u]: runs whose label equals run j's
    for j in range(codes.shape[0]):
        shared += codes == codes[j]
    # the highest count wins; among equal counts the smallest code (scores stay far below 2**63)
    score = shared * (int(codes.max(initial=0)) + 1) - codes
    return np.take_along_axis(codes, score.argmax(axis=0)[None], axis=0)[0]


@dataclass(frozen=True)
class PieExample:
    """One PIE sentence with both populations' modal predictions (per token at token level)."""

    id: int
    tokens: tuple[str, ...]
    gold: tuple[str, ...]
    dense: tuple[str, ...]
    sparse: tuple[str, ...]


@dataclass(frozen=True)
class PieResult:
    """PIEs of one language and test condition.

    ``sentence_mask[i]``: sentence ``ids[i]`` is a PIE (token level: holds a PIE token).
    ``token_mask``: per-token PIE flags at token level, ``None`` at sentence level.
    ``fraction``: PIE share of the level's units (sentences or tokens).
    ``f1_<population>_<subset>``: mean over that population's runs of seqeval micro F1 on the PIE or
    non-PIE sentences; NaN when the subset is empty.
    """

    lang: str | None
    level: str
    n_dense: int
    n_sparse: int
    ids: tuple[int, ...]
    sentence_mask: tuple[bool, ...]
    token_mask: tuple[tuple[bool, ...], ...] | None
    n_units: int
    n_pie: int
    fraction: float
    f1_dense_pie: float
    f1_dense_non_pie: float
    f1_sparse_pie: float
    f1_sparse_non_pie: float
    examples: tuple[PieExample, ...]

    def summary(self) -> dict[str, object]:
        """Scalar fields only: one row of the report's tidy table."""
        return {
            k: getattr(self, k)
            for k in ("lang", "level", "n_dense", "n_sparse", "n_units", "n_pie", "fraction",
                      "f1_dense_pie", "f1_dense_non_pie", "f1_sparse_pie", "f1_sparse_non_pie")
        }


def _lang(runs: Sequence[Run]) -> str | None:
    return next((r.get("lang") for run in runs for r in run), None)


def _align(dense: Sequence[Run], sparse: Sequence[Run]) -> list[list[Record]]:
    """Each run's records in the first dense run's id order; raise if the runs do not cover the same sentences."""
    lang = _lang([*dense, *sparse])
    for name, pop in (("dense", dense), ("sparse", sparse)):
        if len(pop) < 2:
            raise SparseNLPError(
                f"PIE needs ≥2 seeds per population; found {len(pop)} {name} run(s) for lang={lang}; "
                "run more seeds for that configuration"
            )
    runs = [*dense, *sparse]
    names = [f"dense run {k}" for k in range(len(dense))] + [f"sparse run {k}" for k in range(len(sparse))]
    ref = runs[0]
    aligned = []
    for who, run in zip(names, runs):
        by_id = {r["id"]: r for r in run}
        if len(by_id) != len(run):
            raise SparseNLPError(f"{who} (lang={lang}) repeats sentence ids; its predictions file is corrupt")
        if by_id.keys() != {r["id"] for r in ref}:
            diff = sorted(by_id.keys() ^ {r["id"] for r in ref})[:5]
            raise SparseNLPError(
                f"{who} (lang={lang}) does not cover the same sentence ids as dense run 0 (differ on {diff}); "
                "compare runs of the same language and test condition"
            )
        rows = [by_id[r["id"]] for r in ref]
        for mine, theirs in zip(rows, ref):
            if len(mine["pred"]) != len(mine["tokens"]):
                raise SparseNLPError(
                    f"{who} predicts {len(mine['pred'])} tags for the {len(mine['tokens'])} tokens of sentence "
                    f"id={mine['id']} (lang={lang}); its predictions file is corrupt"
                )
            for key in ("tokens", "gold", "lang"):
                if mine.get(key) != theirs.get(key):
                    raise SparseNLPError(
                        f"{who} differs from dense run 0 in {key!r} of sentence id={mine['id']} (lang={lang}); "
                        "runs must share the test set and the perturbation seed"
                    )
        aligned.append(rows)
    return aligned


def _mean_f1(runs: Sequence[Sequence[Record]], subset: Sequence[int]) -> float:
    if not subset:
        return math.nan
    scores = [
        float(f1_score([list(run[i]["gold"]) for i in subset], [list(run[i]["pred"]) for i in subset], zero_division=0))
        for run in runs
    ]
    return math.fsum(scores) / len(scores)  # fsum: exactly rounded, so the run order cannot change the mean


def find_pies(dense: Sequence[Run], sparse: Sequence[Run], level: str = "sentence", n_examples: int = 5) -> PieResult:
    """PIEs between two populations of runs (each run: a list of prediction records of one condition)."""
    if level not in LEVELS:
        raise SparseNLPError(f"unknown PIE level {level!r}; use one of {', '.join(LEVELS)}")
    aligned = _align(dense, sparse)
    d_runs, s_runs = aligned[: len(dense)], aligned[len(dense) :]
    ref = aligned[0]
    d_modal, s_modal, token_mask = [], [], []
    for i in range(len(ref)):
        d_preds = [tuple(run[i]["pred"]) for run in d_runs]
        s_preds = [tuple(run[i]["pred"]) for run in s_runs]
        if level == "sentence":
            d_modal.append(modal(d_preds))
            s_modal.append(modal(s_preds))
        else:
            d_modal.append(tuple(modal(col) for col in zip(*d_preds)))
            s_modal.append(tuple(modal(col) for col in zip(*s_preds)))
            token_mask.append(tuple(a != b for a, b in zip(d_modal[i], s_modal[i])))
    sentence_mask = tuple(a != b for a, b in zip(d_modal, s_modal))
    if level == "sentence":
        n_units, n_pie = len(ref), sum(sentence_mask)
    else:
        n_units, n_pie = sum(len(m) for m in token_mask), sum(sum(m) for m in token_mask)
    pie = [i for i, m in enumerate(sentence_mask) if m]
    non_pie = [i for i, m in enumerate(sentence_mask) if not m]
    return PieResult(
        lang=_lang(aligned),
        level=level,
        n_dense=len(d_runs),
        n_sparse=len(s_runs),
        ids=tuple(r["id"] for r in ref),
        sentence_mask=sentence_mask,
        token_mask=tuple(token_mask) if level == "token" else None,
        n_units=n_units,
        n_pie=n_pie,
        fraction=n_pie / n_units if n_units else math.nan,
        f1_dense_pie=_mean_f1(d_runs, pie),
        f1_dense_non_pie=_mean_f1(d_runs, non_pie),
        f1_sparse_pie=_mean_f1(s_runs, pie),
        f1_sparse_non_pie=_mean_f1(s_runs, non_pie),
        examples=tuple(
            PieExample(ref[i]["id"], tuple(ref[i]["tokens"]), tuple(ref[i]["gold"]), d_modal[i], s_modal[i])
            for i in pie[:n_examples]
        ),
    )
