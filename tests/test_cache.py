"""The feature cache: keyed by everything the encoding depends on, built once even by parallel jobs."""
from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import numpy as np

from sparsenlp.data.align import encode
from sparsenlp.data.cache import FeatureCache, cache_key, tokenizer_fingerprint
from sparsenlp.data.wikiann import Sentence

SENTENCES = [Sentence(("Nairobi", "ni", "mji"), ("B-LOC", "O", "O"), "sw")]


def _slow_build(log: str) -> object:
    with open(log, "a") as handle:
        handle.write("built\n")
    time.sleep(1.0)
    from transformers import AutoTokenizer

    from tests.conftest import MBERT_TOKENIZER

    return encode(SENTENCES, AutoTokenizer.from_pretrained(str(MBERT_TOKENIZER)), 16)


def _worker(folder: str, log: str) -> None:
    FeatureCache(Path(folder)).get("same-key", lambda: _slow_build(log))


def test_parallel_jobs_build_an_entry_once(tmp_path):
    log = tmp_path / "builds.log"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(tmp_path / "cache"), str(log))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert log.read_text().count("built") == 1


def test_hit_returns_identical_features_and_key_tracks_inputs(tmp_path, mbert_tokenizer):
    cache = FeatureCache(tmp_path)
    built = cache.get("k", lambda: encode(SENTENCES, mbert_tokenizer, 16))
    again = cache.get("k", lambda: (_ for _ in ()).throw(AssertionError("rebuilt")))
    assert (cache.hits, cache.misses) == (1, 1)
    assert all(np.array_equal(a, b) for a, b in zip(built.to_arrays().values(), again.to_arrays().values()))
    fp = tokenizer_fingerprint(mbert_tokenizer)
    assert cache_key(fp, "sw", "test", 128, None) != cache_key(fp, "sw", "test", 64, None)
    assert cache_key(fp, "sw", "test", 128, None) == cache_key(fp, "sw", "test", 128, None)


def test_corrupt_entry_is_rebuilt(tmp_path, mbert_tokenizer):
    (tmp_path / "k.npz").write_bytes(b"not a zip")
    cache = FeatureCache(tmp_path)
    features = cache.get("k", lambda: encode(SENTENCES, mbert_tokenizer, 16))
    assert cache.misses == 1 and len(features) == 1
    assert FeatureCache(tmp_path).get("k", lambda: None).n_sentences == 1
