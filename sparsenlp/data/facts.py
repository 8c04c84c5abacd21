"""Per-language facts of a run's data, computed once per run for the analysis.

What a language's scores can be explained by besides the model: how much of it was trained on and
selected on, how its test set looks (sentences that are one entity and nothing else, names the model
was trained on), and how finely the run's tokenizer cuts its words.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seqeval.metrics.sequence_labeling import get_entities

from sparsenlp.data.align import word_pieces
from sparsenlp.data.datamodule import NERData
from sparsenlp.data.wikiann import Sentence


@dataclass(frozen=True)
class LanguageDataFacts:
    """``train_sentences`` / ``dev_sentences``: of this language in the run's training / dev data (0 for a
    zero-shot test language); ``single_entity_share``: share of test sentences whose tokens are all one
    entity span; ``seen_entity_share``: share of test entity mentions whose surface form is an entity
    anywhere in the run's training data (None: the test set has no entity); ``subwords_per_word``: the
    run's tokenizer's subwords per test word (a word it maps to nothing counts one: the [UNK] the model
    reads for it)."""

    train_sentences: int
    dev_sentences: int
    test_sentences: int
    single_entity_share: float
    seen_entity_share: float | None
    subwords_per_word: float


def _forms(sentence: Sentence) -> list[tuple[str, ...]]:
    return [tuple(sentence.tokens[start : end + 1]) for _, start, end in get_entities(list(sentence.tags))]


def _single_entity(sentence: Sentence) -> bool:
    found = get_entities(list(sentence.tags))
    return len(found) == 1 and found[0][1] == 0 and found[0][2] == len(sentence.tokens) - 1


def _count(sentences: Sequence[Sentence], lang: str) -> int:
    return sum(s.lang == lang for s in sentences)


def language_facts(data: NERData, tokenizer) -> dict[str, LanguageDataFacts]:
    """The facts of every test language of ``data`` (keyed like ``data.test``)."""
    trained = {form for s in data.train.sentences for form in _forms(s)}
    facts = {}
    for lang, split in data.test.items():
        test = split.sentences
        mentions = [form for s in test for form in _forms(s)]
        words = sum(len(s.tokens) for s in test)
        subwords = sum(len(ids) for pieces in word_pieces(tokenizer, test) for ids in pieces) if test else 0
        facts[lang] = LanguageDataFacts(
            train_sentences=_count(data.train.sentences, lang),
            dev_sentences=_count(data.dev.sentences, lang),
            test_sentences=len(test),
            single_entity_share=sum(map(_single_entity, test)) / len(test) if test else 0.0,
            seen_entity_share=sum(f in trained for f in mentions) / len(mentions) if mentions else None,
            subwords_per_word=subwords / words if words else 0.0,
        )
    return facts
