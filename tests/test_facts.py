"""Per-language data facts of a run: hand-computed on a toy run, and checked on real data and mBERT's tokenizer."""
from __future__ import annotations

import pytest
from seqeval.metrics.sequence_labeling import get_entities

from sparsenlp.data.datamodule import NERData, Split, load_sentences
from sparsenlp.data.facts import language_facts
from sparsenlp.data.wikiann import Sentence
from tests.helpers import compose_settings


def S(text: str, tags: str, lang: str) -> Sentence:
    return Sentence(tuple(text.split()), tuple(tags.split()), lang)


def test_facts_of_a_toy_run_by_hand(mbert_tokenizer):
    train = [S("Anna lives in Rome", "B-PER O O B-LOC", "de"), S("New York", "B-LOC I-LOC", "de")]
    dev = [S("Bob", "B-PER", "de")]
    test = {
        "de": Split([S("New York", "B-LOC I-LOC", "de"),  # one entity and nothing else; seen in training
                     S("Rome and Paris", "B-LOC O B-LOC", "de"),  # Rome seen, Paris not
                     S("Bob Smith", "B-PER I-PER", "de")]),  # one entity; only in dev, so not seen in training
        "sw": Split([S("hakuna", "O", "sw")]),  # zero-shot, no entity
    }
    facts = language_facts(NERData(["de"], Split(train), Split(dev), test), mbert_tokenizer)
    de, sw = facts["de"], facts["sw"]
    assert (de.train_sentences, de.dev_sentences, de.test_sentences) == (2, 1, 3)
    assert (sw.train_sentences, sw.dev_sentences, sw.test_sentences) == (0, 0, 1)
    assert de.single_entity_share == pytest.approx(2 / 3) and sw.single_entity_share == 0
    assert de.seen_entity_share == pytest.approx(2 / 4) and sw.seen_entity_share is None
    words = ["New", "York", "Rome", "and", "Paris", "Bob", "Smith"]
    pieces = sum(len(mbert_tokenizer.tokenize(w)) for w in words)
    assert de.subwords_per_word == pytest.approx(pieces / 7)
    assert sw.subwords_per_word == len(mbert_tokenizer.tokenize("hakuna"))


@pytest.mark.parametrize("overrides", [["lang=ka", "eval_lang=[ka,zh]"], ["lang=[hi,my]"]])
def test_facts_on_real_data(wikiann_root, mbert_tokenizer, overrides):
    s = compose_settings([f"data.root={wikiann_root}", "data.train_limit=300", "data.dev_limit=50",
                          "data.test_limit=200", *overrides])
    data = load_sentences(s.data, s.train_langs, s.eval_langs)
    facts = language_facts(data, mbert_tokenizer)
    assert sorted(facts) == sorted(s.eval_langs)
    trained = {tuple(x.tokens[i : j + 1]) for x in data.train.sentences for _, i, j in get_entities(list(x.tags))}
    for lang, f in facts.items():
        test = data.test[lang].sentences
        trains = lang in s.train_langs
        assert f.test_sentences == len(test) == (100 if lang == "my" else 200)  # my's splits have 100 sentences
        assert f.train_sentences == ((100 if lang == "my" else 300) if trains else 0)
        assert f.dev_sentences == (50 if trains else 0)
        mentions = [tuple(x.tokens[i : j + 1]) for x in test for _, i, j in get_entities(list(x.tags))]
        assert f.seen_entity_share == pytest.approx(sum(m in trained for m in mentions) / len(mentions))
        single = sum(len(e) == 1 and e[0][1] == 0 and e[0][2] == len(x.tokens) - 1
                     for x in test for e in [get_entities(list(x.tags))])
        assert f.single_entity_share == pytest.approx(single / len(test))
        words = [w for x in test for w in x.tokens]
        # a word the tokenizer maps to nothing is read as one [UNK]
        assert f.subwords_per_word == pytest.approx(sum(max(1, len(mbert_tokenizer.tokenize(w))) for w in words)
                                                    / len(words))
    if "zh" in facts:
        assert facts["zh"].subwords_per_word < facts["ka"].subwords_per_word  # one character a word vs words
