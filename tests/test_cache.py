"""The feature and tokenizer caches: keyed by everything the encoding depends on, built once even by parallel
jobs, and a damaged entry is reported with its path and rebuilt."""
from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
import pytest

from sparsenlp import tokenizer_cache
from sparsenlp.data.align import encode
from sparsenlp.data.cache import FeatureCache, cache_key, read_checked, tokenizer_fingerprint
from sparsenlp.data.wikiann import Sentence
from tests.helpers import cli

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


# --- damaged entries, through the CLI --------------------------------------------------------------------------


def _run_args(tmp_path: Path, tiny_overrides: list[str]) -> list[str]:
    """A short job with its own cache folder (so the test can damage it)."""
    return [*(o for o in tiny_overrides if not o.startswith("data.cache_dir=")), f"data.cache_dir={tmp_path / 'cache'}",
            "lang=sw", "trainer.max_steps=5", "trainer.eval_every=5", "trainer.cpu_threads=1"]


def _run(args: list[str], out: Path) -> tuple[dict, str]:
    result = cli([*args, f"hydra.run.dir={out}"])
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "results.json").read_text()), (out / "sparsenlp.log").read_text()


@pytest.mark.slow
def test_truncated_and_bit_flipped_feature_entries_are_reported_and_rebuilt(tmp_path, tiny_overrides):
    args = _run_args(tmp_path, tiny_overrides)
    first, _ = _run(args, tmp_path / "first")
    entries = sorted((tmp_path / "cache" / "features").glob("*.npz"))
    assert len(entries) == 3  # sw train, dev, test
    originals = {p: read_checked(p).to_arrays() for p in entries}
    truncated, flipped, intact = entries
    _truncate(truncated)
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x10
    flipped.write_bytes(bytes(data))

    second, log = _run(args, tmp_path / "second")
    assert f"damaged feature cache entry {truncated}" in log and f"damaged feature cache entry {flipped}" in log
    assert str(intact) not in log
    assert second["data"]["feature_cache"] == {"hits": 1, "misses": 2}
    for path, arrays in originals.items():  # rebuilt in place, equal to what the first run encoded
        rebuilt = read_checked(path).to_arrays()
        assert all(np.array_equal(rebuilt[k], arrays[k]) for k in arrays)
    assert second["test"] == first["test"] and second["training"]["history"] == first["training"]["history"]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _rename_a_token(path: Path) -> None:
    """Still valid JSON, a different vocabulary: only the checksum can tell."""
    spec = json.loads(path.read_text(encoding="utf-8"))
    vocab = spec["model"]["vocab"]
    token = next(t for t in vocab if len(t) > 3 and not t.startswith("["))
    vocab[token[::-1] + "\u00b7"] = vocab.pop(token)
    path.write_text(json.dumps(spec), encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("damage", [_truncate, _rename_a_token], ids=["truncated", "altered"])
def test_damaged_cached_tokenizer_is_reported_and_rebuilt(tmp_path, tiny_overrides, damage):
    args = _run_args(tmp_path, tiny_overrides)
    _run(args, tmp_path / "first")
    (folder,) = [p for p in (tmp_path / "cache" / "tokenizers").iterdir() if p.is_dir()]
    damage(folder / "tokenizer.json")
    assert tokenizer_cache.damage(folder) is not None  # the checksum notices either damage

    second, log = _run(args, tmp_path / "second")
    assert f"damaged tokenizer cache entry: {folder / 'tokenizer.json'}" in log
    assert tokenizer_cache.damage(folder) is None and tokenizer_cache.load(folder) is not None
    assert second["status"] == "complete"
