"""Prediction rows → aligned integer arrays, once per run, so that the statistics are numpy sums.

The significance test (:mod:`sparsenlp.analysis.stats`) and the PIE noise floor
(:mod:`sparsenlp.analysis.pie_floor`) never look at tags again. Per run and test sentence they need

- the number of predicted spans and of correctly predicted spans (type, start, end), with spans as
  seqeval's ``get_entities`` finds them (:mod:`sparsenlp.analysis.spans`): the extraction behind
  ``seqeval.metrics.f1_score`` in its default, conlleval-compatible mode, so that F1 = 2·TP /
  (predicted + gold) summed over any set of sentences is seqeval's micro span F1 on those sentences;
- a code for the predicted tag sequence, ranked in the lexicographic order of the sequences, so that a
  modal prediction computed on codes breaks ties exactly as :func:`sparsenlp.evaluation.pie.modal` does.

Spans are extracted once per distinct tag sequence of a test set (runs repeat most predictions), and
the only per-row Python work is reading the row, checking it against the test set and looking its
sequence up. A run may also come as arrays (:class:`~sparsenlp.tracking.compact.CompactPredictions`,
what a report reads from the prediction files' ``.npz`` companions): it is checked against the test set
with array comparisons (lengths, token hashes, gold tags) and only the sentences whose prediction
differs from gold are looked up one by one, by the bytes of their label ids.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sparsenlp.analysis.spans import extract
from sparsenlp.errors import SparseNLPError
from sparsenlp.tracking.compact import CompactPredictions, token_hash

Row = Mapping[str, Any]
Run = Sequence[Row] | CompactPredictions
TYPE_SLOTS = 1 << 16  # span key = (start · (longest + 1) + end) · TYPE_SLOTS + type

# what every mismatch between a run and its test set asks for
SAME_TEST_SET = ("compare runs of the same language and test condition (runs of one arm scored on other test "
                 "sets, e.g. another data.test_limit or data.root: report their sweeps separately)")


@dataclass(frozen=True)
class RunArrays:
    """One run on one test set, in :attr:`TestSet.ids` order: correct spans, predicted spans and the
    vocabulary code of the predicted tag sequence per sentence."""

    tp: np.ndarray
    pred: np.ndarray
    codes: np.ndarray


def _ids_order(ids: Sequence[Any]) -> list[Any]:
    """Sentence ids sorted, so that runs (and test conditions) listing them in any order align."""
    try:
        return sorted(ids)
    except TypeError:  # ids of mixed types: compare their representations
        return sorted(ids, key=repr)


class TestSet:
    """The sentences that every run of one language and test condition is scored on.

    Built from a reference run (its ids, tokens and gold tags); :meth:`encode` turns any run of the same
    test set into :class:`RunArrays` and raises when a run does not cover the same sentences with the
    same tokens and gold tags (a run of another language, condition or perturbation seed).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, reference: Run, lang: str | None = None, condition: str | None = None) -> None:
        self.condition = condition
        self._vocab: dict[tuple[str, ...], int] = {}
        self._sequences: list[tuple[str, ...]] = []  # index = code
        self._types: dict[str, int] = {}
        self._span_counts = np.zeros(0, dtype=np.int64)  # spans per code
        self._span_offsets = np.zeros(1, dtype=np.int64)  # code → first span in the concatenated keys
        self._keys = np.zeros(0, dtype=np.int64)
        self._label_ids: dict[str, int] = {}  # tag → its id in this test set's label arrays
        self._label_names: list[str] = []
        self._by_bytes: dict[bytes, int] = {}  # label ids of a sequence (uint16 bytes) → code
        self._gold_flat: np.ndarray | None = None
        self._token_hashes: np.ndarray | None = None
        if isinstance(reference, CompactPredictions):
            self.lang = lang
            self._from_arrays(reference)
        else:
            self.lang = lang if lang is not None else next((r.get("lang") for r in reference), None)
            self._from_rows(reference)
        self._ids_array = np.array(self.ids)
        self._longest = int(self.n_tokens.max(initial=0)) + 1
        self._word_offsets = np.concatenate([[0], np.cumsum(self.n_tokens)]).astype(np.int64)
        self._token_sentence = np.repeat(np.arange(len(self.ids)), self.n_tokens)
        self.gold_codes = np.array(self._gold_codes, dtype=np.int64)
        self._extract()
        self.gold = self._span_counts[self.gold_codes].astype(np.int64)
        self._gold_keys = np.sort(self._sentence_keys(np.arange(len(self.ids)), self.gold_codes))
        self._ranked: tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def _from_rows(self, reference: Sequence[Row]) -> None:
        by_id = {r["id"]: r for r in reference}
        if len(by_id) != len(reference):
            raise SparseNLPError(f"the reference run of {self._where()} repeats sentence ids; its file is corrupt")
        if not by_id:
            raise SparseNLPError(f"the reference run of {self._where()} has no sentences")
        self.ids: tuple[Any, ...] = tuple(_ids_order(list(by_id)))
        self.position = {sid: i for i, sid in enumerate(self.ids)}
        self._ids_list = list(self.ids)
        rows = [by_id[sid] for sid in self.ids]
        # the reference's own lists (copied only if they are not lists): other runs often share them
        self.tokens: list[list[str]] | None = [t if isinstance(t, list) else list(t)
                                               for t in (r["tokens"] for r in rows)]
        self.gold_tags: list[list[str]] | None = [g if isinstance(g, list) else list(g)
                                                  for g in (r["gold"] for r in rows)]
        self.n_tokens = np.array([len(t) for t in self.tokens], dtype=np.int64)
        self._gold_codes = [self._code(tuple(g)) for g in self.gold_tags]
        self._reference: tuple[CompactPredictions, np.ndarray] | None = None

    def _from_arrays(self, reference: CompactPredictions) -> None:
        """The test set of a run given as arrays: sentences in id order, gold codes by label-id bytes."""
        if len(reference) == 0:
            raise SparseNLPError(f"the reference run of {self._where()} has no sentences")
        if len(np.unique(reference.ids)) != len(reference):
            raise SparseNLPError(f"the reference run of {self._where()} repeats sentence ids; its file is corrupt")
        order = np.argsort(reference.ids, kind="stable")
        self.ids = tuple(reference.ids[order].tolist())
        self.position = {sid: i for i, sid in enumerate(self.ids)}
        self._ids_list = list(self.ids)
        self.tokens = self.gold_tags = None
        self._reference = (reference, order)
        self.n_tokens = reference.lengths[order].astype(np.int64)
        index = _word_index(reference.offsets, order)
        self._gold_flat = self._translate(reference.labels)[reference.gold if index is None else reference.gold[index]]
        self._token_hashes = reference.token_hash[order]
        offsets = np.concatenate([[0], np.cumsum(self.n_tokens)]).astype(np.int64)
        self._gold_codes = self._look_up(self._gold_flat, offsets, np.arange(len(self.ids))).tolist()

    def _where(self) -> str:
        return f"lang={self.lang} condition={self.condition}"

    def __len__(self) -> int:
        return len(self.ids)

    def _code(self, seq: tuple[str, ...]) -> int:
        code = self._vocab.get(seq)
        if code is None:
            code = self._vocab[seq] = len(self._vocab)
            self._sequences.append(seq)
        return code

    def sequence(self, code: int) -> tuple[str, ...]:
        """The tag sequence behind a vocabulary code."""
        return self._sequences[code]

    def _extract(self) -> None:
        """Spans of every sequence added to the vocabulary since the last call, as integer keys."""
        done = len(self._span_counts)
        if done == len(self._sequences):
            return
        spans = extract(self._sequences[done:])
        types = np.array([self._types.setdefault(t, len(self._types)) for t in spans.types], dtype=np.int64)
        keys = (spans.start * self._longest + spans.end) * TYPE_SLOTS + types[spans.type]
        counts = np.bincount(spans.sequence, minlength=len(self._sequences) - done)
        self._span_counts = np.concatenate([self._span_counts, counts])
        self._span_offsets = np.concatenate([[0], np.cumsum(self._span_counts)])
        self._keys = np.concatenate([self._keys, keys])

    def _sentence_keys(self, sentences: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Keys (sentence, span) of every span of ``codes[j]`` read as sentence ``sentences[j]``."""
        counts = self._span_counts[codes]
        firsts = np.repeat(self._span_offsets[codes], counts)
        within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        span_space = self._longest * self._longest * TYPE_SLOTS
        return np.repeat(sentences, counts) * span_space + self._keys[firsts + within]

    def encode(self, run: Run, who: str = "run") -> RunArrays:
        """Counts and codes of one run; raises :class:`SparseNLPError` naming ``who`` when it does not fit."""
        if isinstance(run, CompactPredictions):
            return self._encode_arrays(run, who)
        if self.tokens is None:  # rows against a test set built from arrays
            return self._encode_arrays(CompactPredictions.from_rows(run), who)
        n = len(self.ids)
        if len(run) != n:
            raise SparseNLPError(f"{who} ({self._where()}) has {len(run)} sentences, the test set {n}; "
                                 + SAME_TEST_SET)
        ids = [row["id"] for row in run]
        if ids == self._ids_list:
            order: Sequence[int] = range(n)  # the usual case: the file lists the test set in order
        else:
            order = self._positions(ids, who)
        codes = [0] * n
        gold_tags, tokens, vocab, gold_codes = self.gold_tags, self.tokens, self._vocab, self._gold_codes
        for i, row in zip(order, run):
            g, t, p = row["gold"], row["tokens"], row["pred"]
            gold = gold_tags[i]
            if (g is not gold and g != gold) or (t is not tokens[i] and t != tokens[i]):
                self._mismatch(row, i, who)
            if p is gold or p == gold:  # most predictions: no tuple to build and hash
                codes[i] = gold_codes[i]
                continue
            if len(p) != len(t):
                raise SparseNLPError(f"{who} predicts {len(p)} tags for the {len(t)} tokens of sentence "
                                     f"id={row['id']!r} ({self._where()}); its file is corrupt")
            seq = tuple(p)
            code = vocab.get(seq)
            codes[i] = self._code(seq) if code is None else code
        return self.counts(np.array(codes, dtype=np.int64))

    def counts(self, codes: np.ndarray) -> RunArrays:
        """Span counts of a run given the code of its prediction for every sentence (ids order)."""
        self._extract()
        pred = self._span_counts[codes]
        tp = self.gold.copy()
        changed = np.flatnonzero(codes != self.gold_codes)
        keys = self._sentence_keys(changed, codes[changed])
        hits = np.isin(keys, self._gold_keys, assume_unique=True)
        tp[changed] = np.bincount(np.repeat(np.arange(len(changed)), self._span_counts[codes[changed]]),
                                  weights=hits, minlength=len(changed)).astype(np.int64)
        return RunArrays(tp, pred.astype(np.int64), codes)

    def _positions(self, ids: Sequence[Any], who: str) -> list[int]:
        order, seen = [], set()
        for sid in ids:
            i = self.position.get(sid)
            if i is None:
                raise SparseNLPError(f"{who} ({self._where()}) has sentence id={sid!r}, which the test set lacks; "
                                     + SAME_TEST_SET)
            if i in seen:
                raise SparseNLPError(f"{who} ({self._where()}) repeats sentence id={sid!r}; its file is corrupt")
            seen.add(i)
            order.append(i)
        return order

    # --- runs as arrays --------------------------------------------------------------------------------

    def _translate(self, labels: Sequence[str]) -> np.ndarray:
        """A run's label ids → this test set's (uint16, so every sequence has one byte key)."""
        for label in labels:
            if label not in self._label_ids:
                self._label_ids[label] = len(self._label_names)
                self._label_names.append(label)
        return np.array([self._label_ids[label] for label in labels], dtype=np.uint16)

    def _look_up(self, flat: np.ndarray, offsets: np.ndarray, sentences: np.ndarray) -> np.ndarray:
        """Codes of sentences i (an index array), whose label ids are ``flat[offsets[i]:offsets[i + 1]]``: one
        dictionary look-up by bytes a sentence, a tuple of tag names only for a sequence not seen before."""
        data, get = flat.tobytes(), self._by_bytes.get
        starts, ends = (2 * offsets[sentences]).tolist(), (2 * offsets[sentences + 1]).tolist()  # uint16: 2 bytes
        codes = [get(data[a:b]) for a, b in zip(starts, ends)]
        names = self._label_names
        for k in [k for k, code in enumerate(codes) if code is None]:
            key = data[starts[k]:ends[k]]
            code = self._by_bytes.get(key)  # an earlier sentence of this run may have added it
            if code is None:
                ids = flat[starts[k] // 2:ends[k] // 2].tolist()
                code = self._by_bytes[key] = self._code(tuple(names[t] for t in ids))
            codes[k] = code
        return np.array(codes, dtype=np.int64)

    @property
    def gold_flat(self) -> np.ndarray:
        """Gold label ids of every word, sentences in ids order."""
        if self._gold_flat is None:
            assert self.gold_tags is not None
            labels = sorted({t for g in self.gold_tags for t in g})
            ids = dict(zip(labels, self._translate(labels).tolist()))
            self._gold_flat = np.fromiter((ids[t] for g in self.gold_tags for t in g), dtype=np.uint16,
                                          count=int(self.n_tokens.sum()))
        return self._gold_flat

    @property
    def token_hashes(self) -> np.ndarray:
        """:func:`~sparsenlp.tracking.compact.token_hash` of every sentence, ids order."""
        if self._token_hashes is None:
            assert self.tokens is not None
            self._token_hashes = np.fromiter((token_hash(t) for t in self.tokens), dtype=np.uint64,
                                             count=len(self.tokens))
        return self._token_hashes

    def _order(self, run: CompactPredictions, who: str) -> np.ndarray | None:
        """For each test-set position, the run's row holding that sentence (None: the same order)."""
        if np.array_equal(run.ids, self._ids_array):
            return None
        positions = pd.Index(self._ids_array).get_indexer(run.ids)
        if (positions < 0).any():
            sid = run.ids[np.flatnonzero(positions < 0)[0]].item()
            raise SparseNLPError(f"{who} ({self._where()}) has sentence id={sid!r}, which the test set lacks; "
                                 + SAME_TEST_SET)
        counts = np.bincount(positions, minlength=len(self.ids))
        if (counts > 1).any():
            sid = self.ids[int(np.flatnonzero(counts > 1)[0])]
            raise SparseNLPError(f"{who} ({self._where()}) repeats sentence id={sid!r}; its file is corrupt")
        return np.argsort(positions)

    def _encode_arrays(self, run: CompactPredictions, who: str) -> RunArrays:
        n = len(self.ids)
        if len(run) != n:
            raise SparseNLPError(f"{who} ({self._where()}) has {len(run)} sentences, the test set {n}; "
                                 + SAME_TEST_SET)
        order = self._order(run, who)
        lengths = run.lengths if order is None else run.lengths[order]
        hashes = run.token_hash if order is None else run.token_hash[order]
        differs = (lengths != self.n_tokens) | (hashes != self.token_hashes)
        if differs.any():
            self._array_mismatch(int(np.flatnonzero(differs)[0]), "tokens", who)
        index = _word_index(run.offsets, order)
        translate = self._translate(run.labels)
        gold = translate[run.gold if index is None else run.gold[index]]
        wrong = np.flatnonzero(gold != self.gold_flat)
        if wrong.size:
            self._array_mismatch(int(self._token_sentence[wrong[0]]), "gold", who)
        pred = translate[run.pred if index is None else run.pred[index]]
        changed = np.flatnonzero(np.bincount(self._token_sentence, weights=pred != gold, minlength=n))
        codes = self.gold_codes.copy()
        codes[changed] = self._look_up(pred, self._word_offsets, changed)
        return self.counts(codes)

    def _array_mismatch(self, i: int, key: str, who: str) -> None:
        raise SparseNLPError(f"{who} differs from the reference run in {key!r} of sentence id={self.ids[i]!r} "
                             f"({self._where()}); runs must share the test set and the perturbation seed")

    def sentence_tokens(self, positions: Sequence[int]) -> list[list[str]]:
        """Tokens of the sentences at these positions (ids order), for quoting a few of them."""
        if self.tokens is not None:
            return [list(self.tokens[i]) for i in positions]
        assert self._reference is not None
        reference, order = self._reference
        return reference.tokens_at(order[list(positions)].tolist())

    def _mismatch(self, row: Row, i: int, who: str) -> None:
        key = "gold" if row["gold"] != self.gold_tags[i] else "tokens"
        raise SparseNLPError(f"{who} differs from the reference run in {key!r} of sentence id={row['id']!r} "
                             f"({self._where()}); runs must share the test set and the perturbation seed")

    def _ranking(self) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(vocabulary size, sequence rank per code, flat tag ranks of every sequence, offsets, lengths)."""
        size = len(self._vocab)
        if self._ranked is None or self._ranked[0] != size:
            seqs = self._sequences
            order = sorted(range(size), key=seqs.__getitem__)
            rank = np.empty(size, dtype=np.int64)
            rank[order] = np.arange(size)
            tags = sorted({t for s in seqs for t in s})
            tag_rank = {t: k for k, t in enumerate(tags)}
            lengths = np.array([len(s) for s in seqs], dtype=np.int64)
            offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
            flat = np.fromiter((tag_rank[t] for s in seqs for t in s), dtype=np.int64, count=int(lengths.sum()))
            self._ranked = (size, rank, flat, offsets, lengths)
        return self._ranked

    def sentence_ranks(self, codes: np.ndarray) -> np.ndarray:
        """Codes → ranks of their tag sequences in lexicographic order (same shape).

        Ranks are comparable only within one vocabulary: encode every run to be compared first, since a
        run with new sequences shifts the ranks of others (codes themselves never change)."""
        return self._ranking()[1][codes]

    def token_ranks(self, codes: np.ndarray) -> np.ndarray:
        """Codes of shape (..., n) → per-token tag ranks of shape (..., total tokens), sentences in ids order;
        tags rank in string order, as :func:`~sparsenlp.evaluation.pie.modal` compares them (comparable
        within one vocabulary, as for :meth:`sentence_ranks`)."""
        _, _, flat, offsets, _ = self._ranking()
        starts = np.repeat(np.cumsum(self.n_tokens) - self.n_tokens, self.n_tokens)
        within = np.arange(int(self.n_tokens.sum())) - starts
        return flat[np.repeat(offsets[codes], self.n_tokens, axis=-1) + within]

    @property
    def single_entity_share(self) -> float:
        """Share of sentences whose tokens are all one gold entity span (``B-X`` then ``I-X`` to the end): a
        test-set fact the covariate model uses, NaN for an empty test set."""
        if len(self.ids) == 0:
            return float("nan")
        codes, counts = np.unique(self.gold_codes, return_counts=True)

        def whole(tags: tuple[str, ...]) -> bool:
            return bool(tags) and tags[0].startswith("B-") and all(t == "I-" + tags[0][2:] for t in tags[1:])

        return float(sum(int(c) for code, c in zip(codes, counts) if whole(self.sequence(int(code)))) / len(self.ids))

    @property
    def token_sentence(self) -> np.ndarray:
        """The sentence index of every token (ids order)."""
        return self._token_sentence

    def codes_of_ranks(self, ranks: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`sentence_ranks`: ranks → codes (same vocabulary)."""
        return np.argsort(self._ranking()[1])[ranks]


def _word_index(offsets: np.ndarray, order: np.ndarray | None) -> np.ndarray | None:
    """Indices into a flat per-word array that put its sentences in ``order`` (None: keep them)."""
    if order is None:
        return None
    lengths = np.diff(offsets)[order]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return np.repeat(offsets[:-1][order] - starts, lengths) + np.arange(int(lengths.sum()))


class Encodings:
    """Encoded runs, each encoded once however many cells and tables use it.

    Keyed by the run object (a run is one seed's prediction rows of one language and condition) and
    its test set, i.e. language and condition; the first run seen for a test set is its reference.
    The cache keeps the runs it has seen alive, so their ids cannot be reused while it exists.
    """

    def __init__(self) -> None:
        self.tests: dict[tuple[str, str], TestSet] = {}
        self._runs: dict[tuple[int, str, str], tuple[Run, RunArrays]] = {}

    def test_set(self, lang: str, condition: str, reference: Run) -> TestSet:
        """The test set of ``lang`` × ``condition``, built from ``reference`` the first time it is asked for."""
        test = self.tests.get((lang, condition))
        if test is None:
            test = self.tests[(lang, condition)] = TestSet(reference, lang, condition)
        return test

    def encode(self, lang: str, condition: str, run: Run, who: str = "run") -> RunArrays:
        key = (id(run), lang, condition)
        hit = self._runs.get(key)
        if hit is None:
            hit = self._runs[key] = (run, self.test_set(lang, condition, run).encode(run, who))
        return hit[1]
