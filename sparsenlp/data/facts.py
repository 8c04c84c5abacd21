"""What a run's data was (the record's ``data`` section), with per-language facts for the analysis.

What a language's scores can be explained by besides the model: how much of it was trained on and
selected on, how its test set looks (sentences that are one entity and nothing else, names the model
was trained on), and how finely the run's tokenizer cuts its words.
"""
from __future__ import annotations

from collections.abc import Sequence

from seqeval.metrics.sequence_labeling import get_entities

from sparsenlp.config.data import DataConfig
from sparsenlp.data.align import word_pieces
from sparsenlp.data.cache import FeatureCache, tokenizer_fingerprint
from sparsenlp.data.datamodule import NERData
from sparsenlp.data.wikiann import Sentence
from sparsenlp.tracking.schema import DataInfo, FeatureCacheUse, LanguageDataFacts


def _forms(sentence: Sentence) -> list[tuple[str, ...]]:
    return [tuple(sentence.tokens[start : end + 1]) for _, start, end in get_entities(list(sentence.tags))]


def _single_entity(sentence: Sentence) -> bool:
    found = get_entities(list(sentence.tags))
    return len(found) == 1 and found[0][1] == 0 and found[0][2] == len(sentence.tokens) - 1


def _count(sentences: Sequence[Sentence], lang: str) -> int:
    return sum(s.lang == lang for s in sentences)


def language_facts(data: NERData, tokenizer) -> dict[str, LanguageDataFacts]:
    """The facts of every test language of ``data`` (keyed like ``data.test``): the record's ``data.facts``.
    ``seen_entity_share`` counts the test entity mentions whose surface form is an entity anywhere in the run's
    training data (None: the test set has no entity); ``subwords_per_word`` counts a word the tokenizer maps to
    nothing as one (the [UNK] the model reads for it)."""
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


def data_info(data: NERData, cfg: DataConfig, tokenizer, cache: FeatureCache) -> DataInfo:
    """The record's ``data`` section: what the run read and how it was encoded."""
    return DataInfo(
        source=cfg.resolved_source, train_sentences=len(data.train.sentences),
        train_sentences_per_lang=data.train_sentences_per_lang(), dev_sentences=len(data.dev.sentences),
        test_sentences={lang: len(split.sentences) for lang, split in data.test.items()},
        train_windows=len(data.train.features or ()), max_length=cfg.max_length,
        tokenizer=tokenizer_fingerprint(tokenizer), feature_cache=FeatureCacheUse(hits=cache.hits, misses=cache.misses),
        facts=language_facts(data, tokenizer),
    )
