"""Shared fixtures: the real WikiANN files beside the clone, an isolated cache, tiny-run overrides."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WIKIANN = REPO.parent / "shared" / "data" / "wikiann"
MBERT_TOKENIZER = REPO.parent / "shared" / "data" / "mbert-tokenizer"

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _hub_cache_with_mbert_listed() -> str:
    """A Hugging Face cache in which mBERT's config and tokenizer config are "downloaded" (no weights): what a
    user who fetched mBERT once has, so that checks before launch pass the grids of `experiment=paper` and
    `experiment=calibration`, which these tests list but never train (the Hub is not reachable here)."""
    cache = Path(tempfile.mkdtemp(prefix="hf-hub-cache-"))
    repo = cache / "models--bert-base-multilingual-cased"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    for name in ("config.json", "tokenizer_config.json"):
        (repo / "snapshots" / commit / name).write_text("{}")
    return str(cache)


os.environ.setdefault("HF_HUB_CACHE", _hub_cache_with_mbert_listed())
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def wikiann_root() -> Path:
    if not (WIKIANN / "en" / "train").is_file():
        pytest.fail(f"the WikiANN data must sit beside the clone: {WIKIANN} (see README, 'Data')")
    return WIKIANN


@pytest.fixture(scope="session")
def mbert_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(MBERT_TOKENIZER))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One feature/tokenizer cache for the whole session, as a sweep would share one."""
    return tmp_path_factory.mktemp("sparsenlp-cache")


@pytest.fixture(scope="session")
def tiny_overrides(wikiann_root, cache_dir) -> list[str]:
    """A fast offline run: tiny BERT, local data, small limits, no W&B."""
    return [
        "model=tiny", f"data.root={wikiann_root}", f"data.cache_dir={cache_dir}",
        "data.train_limit=400", "data.dev_limit=100", "data.test_limit=100", "trainer.max_steps=30",
        "trainer.batch_size=16", "trainer.eval_every=15", "trainer.progress=false", "logger=none",
    ]


def pytest_configure(config) -> None:
    """Keep wandb's settings, caches and artifact staging out of the user's home during tests."""
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="sparsenlp-wandb-home-"))
    for var in ("WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_ARTIFACT_DIR"):
        os.environ.setdefault(var, str(home / var.lower()))
