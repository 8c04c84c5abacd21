"""Everything a run needs from the data: sentences and encoded windows for train, dev and each test language.

One place turns the `data` + `lang` config into ready-to-use splits, so train.py, the benchmarks and
the tests all load data the same way (and share the feature cache).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sparsenlp.config.data import DataConfig
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
    """Train and dev of the training languages (concatenated), and one test split per evaluation language."""

    train_langs: list[str]
    train: Split
    dev: Split
    test: dict[str, Split] = field(default_factory=dict)

    def train_corpus(self) -> Iterator[list[str]]:
        return (list(s.tokens) for s in self.train.sentences)

    def train_sentences_per_lang(self) -> dict[str, int]:
        counts = dict.fromkeys(self.train_langs, 0)
        for s in self.train.sentences:
            counts[s.lang] += 1
        return counts


def _root(cfg: DataConfig) -> Path | None:
    return None if cfg.root is None else Path(cfg.root).expanduser().resolve()


def read_split(cfg: DataConfig, lang: str, split: str, limit: int | None = None) -> list[Sentence]:
    """One split of one language from wherever `data` points (``limit`` overrides ``data.<split>_limit``)."""
    return load_split(cfg.resolved_source, _root(cfg), lang, split, limit or cfg.limit(split), cfg.hub_cache_dir)


def load_sentences(cfg: DataConfig, train_langs: Sequence[str], eval_langs: Sequence[str]) -> NERData:
    """Read (or download) train/dev for the training languages, concatenated, and test per evaluation language."""
    # test first: the cheapest way to find a missing language before reading large training files
    test = {lang: Split(read_split(cfg, lang, "test")) for lang in eval_langs}
    dev = Split([s for lang in train_langs for s in read_split(cfg, lang, "dev")])
    train = Split([s for lang in train_langs for s in read_split(cfg, lang, "train")])
    return NERData(list(train_langs), train, dev, test)


def corpus_key(cfg: DataConfig, langs: Sequence[str]) -> str:
    """Identity of the training text (for caching tokenizers trained on it)."""
    source, root = cfg.resolved_source, _root(cfg)
    return "|".join(f"{fingerprint(source, root, lang, 'train')}:{cfg.train_limit}" for lang in langs)


def encode_all(data: NERData, cfg: DataConfig, tokenizer) -> FeatureCache:
    """Encode every split in place, through the on-disk cache (one entry per language and split)."""
    cache = FeatureCache(Path(cfg.cache_dir).expanduser() / "features" if cfg.cache_dir else None)
    source, root = cfg.resolved_source, _root(cfg)
    tok_id = tokenizer_fingerprint(tokenizer)

    def encoded(lang: str, split: str, sentences: list[Sentence]) -> Features:
        key = cache_key(tok_id, fingerprint(source, root, lang, split), lang, split, cfg.max_length, cfg.limit(split))
        return cache.get(key, lambda: encode(sentences, tokenizer, cfg.max_length))

    def by_lang(sentences: list[Sentence]) -> dict[str, list[Sentence]]:
        groups: dict[str, list[Sentence]] = {lang: [] for lang in data.train_langs}
        for s in sentences:
            groups[s.lang].append(s)
        return groups

    for split_name, split in (("train", data.train), ("dev", data.dev)):
        groups = by_lang(split.sentences)
        split.features = Features.concat([encoded(lang, split_name, groups[lang]) for lang in data.train_langs])
    for lang, split in data.test.items():
        split.features = encoded(lang, "test", split.sentences)
    log.info("features: %d cache hits, %d encoded", cache.hits, cache.misses)
    return cache

