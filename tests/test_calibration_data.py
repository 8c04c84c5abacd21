"""Calibration sentences: training splits only, seeded, equal shares for mix, a content hash, clear errors,
and batches encoded exactly as training encodes them."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sparsenlp.config.data import DataConfig
from sparsenlp.data.align import encode
from sparsenlp.data.calibration import (
    CalibrationInfo,
    calibration_batches,
    calibration_langs,
    draw_calibration,
    sentences_sha256,
    shares,
    training_pools,
)
from sparsenlp.data.wikiann import Sentence, read_wikiann_file
from sparsenlp.errors import SparseNLPError

LANGS = ["de", "en", "sw", "yo"]


@pytest.fixture(scope="module")
def cfg(wikiann_root) -> DataConfig:
    return DataConfig(source="local", root=str(wikiann_root), train_limit=400, cache_dir=None)


@pytest.fixture(scope="module")
def pools(cfg):
    return training_pools(cfg, LANGS)


def _keys(sentences) -> list[tuple[str, tuple[str, ...]]]:
    return [(s.lang, s.tokens) for s in sentences]


def test_sentences_come_from_the_training_split_only(pools, wikiann_root):
    sample = draw_calibration(pools, "mix", "de", LANGS, sentences=128, seed=3)
    train = {lang: set(_keys(read_wikiann_file(wikiann_root / lang / "train", lang))) for lang in LANGS}
    held_out = {lang: set(_keys(read_wikiann_file(wikiann_root / lang / split, lang)))
                for lang in LANGS for split in ("dev", "test")}
    for key in _keys(sample.sentences):
        assert key in train[key[0]]
    # none of them is a dev/test sentence (unless the very same sentence also sits in train)
    leaked = [k for k in _keys(sample.sentences) if k in held_out.get(k[0], set()) and k not in train[k[0]]]
    assert not leaked
    assert sample.info.sentences == len(sample.sentences) == 128


def test_training_pools_honour_the_training_limit(cfg, pools):
    assert {lang: len(pool) for lang, pool in pools.items()} == {"de": 400, "en": 400, "sw": 400, "yo": 100}
    assert all(s.lang == lang for lang, pool in pools.items() for s in pool)
    assert pools["en"] == read_wikiann_file(Path(cfg.root) / "en" / "train", "en", 400)


def test_self_code_mix_and_none_resolve_as_documented():
    assert calibration_langs("self", "sw", ["de", "sw"]) == ["sw"]
    assert calibration_langs("en", "sw", ["sw"]) == ["en"]
    assert calibration_langs("mix", "sw", ["sw", "de", "sw"]) == ["de", "sw"]
    assert calibration_langs("none", "sw", ["sw"]) == []


def test_the_draw_is_seeded_and_reproducible(pools):
    a = draw_calibration(pools, "self", "en", ["en"], sentences=64, seed=1)
    b = draw_calibration(pools, "self", "en", ["en"], sentences=64, seed=1)
    c = draw_calibration(pools, "self", "en", ["en"], sentences=64, seed=2)
    assert a == b and a.info.sha256 == b.info.sha256
    assert _keys(a.sentences) != _keys(c.sentences) and a.info.sha256 != c.info.sha256
    # the draw is the seeded permutation's prefix, written out independently here
    order = np.random.default_rng([1, *b"en"]).permutation(len(pools["en"]))[:64]
    assert list(a.sentences) == [pools["en"][i] for i in order]
    # nested: a smaller draw is a prefix of a larger one
    bigger = draw_calibration(pools, "self", "en", ["en"], sentences=100, seed=1)
    assert bigger.sentences[:64] == a.sentences


def test_the_hash_is_stable_across_processes(pools):
    sample = draw_calibration(pools, "mix", "en", LANGS, sentences=40, seed=0)
    tokens = [list(s.tokens) for s in sample.sentences]
    code = ("import hashlib, json, sys; t = json.load(sys.stdin); "
            "print(hashlib.sha256(json.dumps(t, ensure_ascii=False, separators=(',', ':')).encode()).hexdigest())")
    other = subprocess.run([sys.executable, "-c", code], input=json.dumps(tokens), capture_output=True,
                           text=True, check=True).stdout.strip()
    assert sample.info.sha256 == other == sentences_sha256(sample.sentences)
    assert len(other) == 64 and int(other, 16) >= 0


def test_the_hash_is_sensitive_to_content_and_order(pools):
    sentences = list(draw_calibration(pools, "self", "de", ["de"], sentences=20, seed=0).sentences)
    base = sentences_sha256(sentences)
    first = sentences[0]
    changed = [Sentence(first.tokens[:-1] + (first.tokens[-1] + "x",), first.tags, first.lang), *sentences[1:]]
    assert sentences_sha256(changed) != base
    assert sentences_sha256(sentences[::-1]) != base
    assert sentences_sha256(sentences[:-1]) != base
    # token boundaries count: "a b" + "c" is not "a" + "b c"
    assert sentences_sha256([Sentence(("a b", "c"), ("O", "O"), "en")]) != \
        sentences_sha256([Sentence(("a", "b c"), ("O", "O"), "en")])
    # labels are not what the model reads: they do not change the hash
    relabelled = [Sentence(s.tokens, tuple("O" for _ in s.tags), s.lang) for s in sentences]
    assert sentences_sha256(relabelled) == base
    assert base == hashlib.sha256(json.dumps([list(s.tokens) for s in sentences], ensure_ascii=False,
                                             separators=(",", ":")).encode()).hexdigest()


def test_mix_gives_equal_shares_and_a_deterministic_remainder(pools):
    sample = draw_calibration(pools, "mix", "de", LANGS, sentences=130, seed=0)
    assert sample.info.per_lang == {"de": 33, "en": 33, "sw": 32, "yo": 32}  # remainder 2: first in code order
    counted = {lang: sum(s.lang == lang for s in sample.sentences) for lang in LANGS}
    assert counted == sample.info.per_lang
    assert shares(128, LANGS) == {"de": 32, "en": 32, "sw": 32, "yo": 32}
    # the composition is the same for every seed; only the sentences change
    other = draw_calibration(pools, "mix", "de", LANGS, sentences=130, seed=5)
    assert other.info.per_lang == sample.info.per_lang and other.sentences != sample.sentences
    # a language's draw does not depend on which others are mixed in
    alone = draw_calibration(pools, "mix", "de", ["de", "en"], sentences=66, seed=0)
    assert [s for s in alone.sentences if s.lang == "de"] == [s for s in sample.sentences if s.lang == "de"]


def test_a_language_with_too_few_sentences_gives_all_it_has(pools):
    """yo has 100 training sentences: all of them are used and the shortfall is recorded."""
    sample = draw_calibration(pools, "self", "yo", ["yo"], sentences=128, seed=0)
    assert sample.info.requested == 128 and sample.info.sentences == 100
    assert sorted(_keys(sample.sentences)) == sorted(_keys(pools["yo"]))  # each training sentence once
    assert sample.info.available == {"yo": 100} and sample.info.per_lang == {"yo": 100}
    mixed = draw_calibration(pools, "mix", "en", ["en", "yo"], sentences=300, seed=0)
    assert mixed.info.per_lang == {"en": 150, "yo": 100} and mixed.info.sentences == 250  # not topped up
    CalibrationInfo.model_validate(mixed.info.model_dump())


def test_none_draws_nothing(pools):
    sample = draw_calibration(pools, "none", "en", ["en"], sentences=128, seed=0)
    assert sample.sentences == () and sample.info.sha256 is None and sample.info.sentences == 0


@pytest.mark.parametrize("lang,sentences,message", [
    ("xx", 128, r"needs training sentences of 'xx', which are not loaded \(loaded: de en sw yo\)"),
    ("", 128, "is not a language"),
    ("mix", 3, "calibration.sentences=3 cannot give each of the 4 languages a sentence; ask for at least 4"),
    ("en", 0, "must be a positive number of sentences"),
    ("en", 2.5, "must be a positive number of sentences"),
])
def test_bad_requests_fail_with_one_line(pools, lang, sentences, message):
    with pytest.raises(SparseNLPError, match=message) as error:
        draw_calibration(pools, lang, "en", LANGS, sentences=sentences, seed=0)
    assert "\n" not in str(error.value)


def test_an_unknown_language_fails_when_its_training_split_is_read(cfg):
    with pytest.raises(SparseNLPError, match="no WikiANN folder for language 'xx'"):
        training_pools(cfg, ["xx"])


def test_batches_are_the_training_encoding(pools, mbert_tokenizer):
    sample = draw_calibration(pools, "mix", "en", LANGS, sentences=24, seed=0)
    batches = calibration_batches(sample.sentences, mbert_tokenizer, max_length=12, batch_size=5)
    features = encode(sample.sentences, mbert_tokenizer, 12)
    assert all(set(b) == {"input_ids", "attention_mask"} for b in batches)
    got = sorted(tuple(row[mask.bool()].tolist()) for b in batches for row, mask in zip(b["input_ids"], b["attention_mask"]))
    expected = sorted(tuple(features.window(i)[0].tolist()) for i in range(len(features)))
    assert got == expected  # every window once, padding marked by the attention mask
    assert len(features) > 24  # some sentences are longer than 10 subwords and become several windows
    assert calibration_batches((), mbert_tokenizer, 32) == []
