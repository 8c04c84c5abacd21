"""Everything a run needs from the data: sentences and encoded windows for train, dev and each test language.

One place turns the `data` + `lang` config into ready-to-use splits, so train.py, the benchmarks and
the tests all load data the same way (and share the feature cache).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsenlp.data.align import Features, encode
from sparsenlp.data.cache import FeatureCache, cache_key, tokenizer_fingerprint
from sparsenlp.data.wikiann import Sentence, fingerprint, load_split

log = logging.getLogger(__name__)


@dataclass
class Split:
    """Sentences of one split (possibly several languages) and their encoded windows."""

    sentences: list[Sentence]
    features: Features | None = None


@dataclass
class NERData:
    langs: list[str]
    train: Split
    dev: Split
    test: dict[str, Split] = field(default_factory=dict)

    def train_corpus(self) -> Iterator[list[str]]:
        return (list(s.tokens) for s in self.train.sentences)


def _limit(cfg_data: Mapping[str, Any], split: str) -> int | None:
    value = cfg_data.get(f"{split}_limit")
    return None if value is None else int(value)


def _root(cfg_data: Mapping[str, Any]) -> Path | None:
    root = cfg_data.get("root")
    return None if root is None else Path(str(root)).expanduser().resolve()


def load_sentences(cfg_data: Mapping[str, Any], langs: Sequence[str]) -> NERData:
    """Read (or download) train/dev for all languages, concatenated, and test per language."""
    source, root = str(cfg_data["source"]), _root(cfg_data)
    hub_cache = cfg_data.get("hub_cache_dir")

    def read(lang: str, split: str) -> list[Sentence]:
        return load_split(source, root, lang, split, _limit(cfg_data, split), hub_cache)

    # test first: the cheapest way to find a missing language before reading large training files
    test = {lang: Split(read(lang, "test")) for lang in langs}
    dev = Split([s for lang in langs for s in read(lang, "dev")])
    train = Split([s for lang in langs for s in read(lang, "train")])
    return NERData(list(langs), train, dev, test)


def corpus_key(cfg_data: Mapping[str, Any], langs: Sequence[str]) -> str:
    """Identity of the training text (for caching tokenizers trained on it)."""
    source, root = str(cfg_data["source"]), _root(cfg_data)
    return "|".join(f"{fingerprint(source, root, lang, 'train')}:{_limit(cfg_data, 'train')}" for lang in langs)


def encode_all(data: NERData, cfg_data: Mapping[str, Any], tokenizer) -> FeatureCache:
    """Encode every split in place, through the on-disk cache (one entry per language and split)."""
    cache_dir = cfg_data.get("cache_dir")
    cache = FeatureCache(Path(str(cache_dir)).expanduser() / "features" if cache_dir else None)
    source, root = str(cfg_data["source"]), _root(cfg_data)
    max_length = int(cfg_data["max_length"])
    tok_id = tokenizer_fingerprint(tokenizer)

    def encoded(lang: str, split: str, sentences: list[Sentence]) -> Features:
        key = cache_key(tok_id, fingerprint(source, root, lang, split), lang, split, max_length,
                        _limit(cfg_data, split))
        return cache.get(key, lambda: encode(sentences, tokenizer, max_length))

    def by_lang(sentences: list[Sentence]) -> dict[str, list[Sentence]]:
        groups: dict[str, list[Sentence]] = {lang: [] for lang in data.langs}
        for s in sentences:
            groups[s.lang].append(s)
        return groups

    for split_name, split in (("train", data.train), ("dev", data.dev)):
        groups = by_lang(split.sentences)
        split.features = Features.concat([encoded(lang, split_name, groups[lang]) for lang in data.langs])
    for lang, split in data.test.items():
        split.features = encoded(lang, "test", split.sentences)
    log.info("features: %d cache hits, %d encoded", cache.hits, cache.misses)
    return cache
