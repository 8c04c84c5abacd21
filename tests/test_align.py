"""First-subword label alignment and windowing, with mBERT's real tokenizer."""
from __future__ import annotations

import numpy as np

from sparsenlp.data.align import IGNORE, encode
from sparsenlp.data.wikiann import LABEL2ID, Sentence, read_wikiann_file


def _decode(tokenizer, features, i):
    ids, labels, words = features.window(i)
    return tokenizer.convert_ids_to_tokens(ids.tolist()), labels.tolist(), words.tolist()


def test_labels_sit_on_first_subwords_only(mbert_tokenizer):
    # hand-checked: mBERT splits Katja -> Kat ##ja, Kipping -> Ki ##pping, Riexinger -> R ##ie ##xin ##ger
    sentence = Sentence(("Katja", "Kipping", ",", "Bernd", "Riexinger"), ("B-PER", "I-PER", "O", "B-PER", "I-PER"), "de")
    features = encode([sentence], mbert_tokenizer, max_length=32)
    tokens, labels, words = _decode(mbert_tokenizer, features, 0)
    assert tokens == ["[CLS]", "Kat", "##ja", "Ki", "##pping", ",", "Bernd", "R", "##ie", "##xin", "##ger", "[SEP]"]
    b, i, o = LABEL2ID["B-PER"], LABEL2ID["I-PER"], LABEL2ID["O"]
    assert labels == [IGNORE, b, IGNORE, i, IGNORE, o, b, i, IGNORE, IGNORE, IGNORE, IGNORE]
    assert words == [-1, 0, -1, 1, -1, 2, 3, 4, -1, -1, -1, -1]


def test_word_without_subwords_still_gets_a_position(mbert_tokenizer):
    sentence = Sentence(("Berlin", "\u200b", "Mitte"), ("B-LOC", "I-LOC", "I-LOC"), "de")
    tokens, labels, words = _decode(mbert_tokenizer, encode([sentence], mbert_tokenizer, 16), 0)
    assert "[UNK]" in tokens and sorted(w for w in words if w >= 0) == [0, 1, 2]
    assert labels[tokens.index("[UNK]")] == LABEL2ID["I-LOC"]


def test_long_sentence_is_windowed_and_covers_every_word_once(mbert_tokenizer):
    words = [f"Wort{i}" for i in range(150)] + ["Riexinger"]
    sentence = Sentence(tuple(words), tuple(["O"] * 150 + ["B-PER"]), "de")
    features = encode([sentence], mbert_tokenizer, max_length=24)
    assert len(features) > 1
    covered = []
    for i in range(len(features)):
        tokens, labels, word_ids = _decode(mbert_tokenizer, features, i)
        assert len(tokens) <= 24 and tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
        covered += [w for w in word_ids if w >= 0]
    assert covered == list(range(len(words)))  # each word exactly once, in order
    assert set(features.sentence.tolist()) == {0}


def test_a_real_split_round_trips(mbert_tokenizer, wikiann_root):
    sentences = read_wikiann_file(wikiann_root / "ja" / "test", "ja", limit=300)
    features = encode(sentences, mbert_tokenizer, max_length=32)
    assert features.lengths().max() <= 32
    per_sentence = np.zeros(len(sentences), dtype=int)
    for i in range(len(features)):
        _, labels, word_ids = features.window(i)
        first = word_ids >= 0
        per_sentence[features.sentence[i]] += first.sum()
        assert (labels[first] >= 0).all() and (labels[~first] == IGNORE).all()
    assert per_sentence.tolist() == [len(s.tokens) for s in sentences]
    assert len(features) > len(sentences)  # Japanese sentences are long in subwords: some were split
