"""Vectorised span extraction against seqeval's get_entities, exhaustively on short sequences."""
from __future__ import annotations

import itertools
import warnings

import numpy as np
from seqeval.metrics.sequence_labeling import get_entities

from sparsenlp.analysis.spans import extract

IOB2 = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
# every prefix seqeval distinguishes (B I E S O .), untyped tags, an unknown prefix and a type with a dash
ODD = ["E-PER", "S-LOC", "B", "I", ".", "X-PER", "I-PER-X"]


def as_tuples(sequences):
    spans = extract(sequences)
    out = [[] for _ in sequences]
    for s, a, b, t in zip(spans.sequence, spans.start, spans.end, spans.type):
        out[s].append((spans.types[t], int(a), int(b)))
    return out


def reference(seq):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns about tags that are not NE tags
        return get_entities(list(seq))


def test_equal_to_get_entities_on_every_short_sequence():
    alphabet = IOB2 + ODD
    sequences = [list(s) for n in range(0, 4) for s in itertools.product(alphabet, repeat=n)]
    sequences += [list(s) for s in itertools.product(IOB2, repeat=4)]
    assert as_tuples(sequences) == [reference(s) for s in sequences]


def test_equal_to_get_entities_on_long_random_sequences():
    rng = np.random.default_rng(0)
    alphabet = IOB2 + ["B-ORG", "I-ORG"]
    sequences = [[alphabet[t] for t in rng.integers(0, len(alphabet), rng.integers(1, 60))] for _ in range(500)]
    assert as_tuples(sequences) == [reference(s) for s in sequences]


def test_no_sequences_and_empty_sequences():
    assert extract([]).sequence.size == 0
    assert as_tuples([[], ["B-PER"], []]) == [[], [("PER", 0, 0)], []]
