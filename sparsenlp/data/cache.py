"""On-disk cache of encoded splits, so the runs of a sweep tokenize each language once.

The key covers everything the encoding depends on: the tokenizer (hash of its full serialisation),
the raw data's identity, language, split, max_length and the sentence limit. Files are written
atomically under a per-entry file lock, so parallel sweep workers share one cache folder safely and
each entry is built once.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from filelock import FileLock

from sparsenlp.data.align import Features
from sparsenlp.io import atomic_path

log = logging.getLogger(__name__)
CACHE_VERSION = 1


def tokenizer_fingerprint(tokenizer) -> str:
    """Content hash of a fast tokenizer (vocab, normaliser, pre-tokeniser, post-processor)."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode("utf-8")).hexdigest()[:16]


def cache_key(*parts: object) -> str:
    text = "\x1f".join(str(p) for p in (CACHE_VERSION, *parts))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class FeatureCache:
    """Load-or-build encoded features; ``hits``/``misses`` make cache use observable (benchmarks, tests)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.hits = 0
        self.misses = 0

    def get(self, key: str, build: Callable[[], Features]) -> Features:
        if self.folder is None:
            self.misses += 1
            return build()
        path = self.folder / f"{key}.npz"
        self.folder.mkdir(parents=True, exist_ok=True)
        # one builder per entry: parallel sweep jobs on the same language wait here and then read it
        with FileLock(str(path) + ".lock"):
            features = self._load(path)
            if features is not None:
                self.hits += 1
                return features
            self.misses += 1
            features = build()
            with atomic_path(path) as tmp:
                with tmp.open("wb") as handle:
                    np.savez(handle, **features.to_arrays())
        return features

    @staticmethod
    def _load(path: Path) -> Features | None:
        if not path.is_file():
            return None
        try:
            with np.load(path) as arrays:
                return Features.from_arrays(dict(arrays))
        except (OSError, ValueError, KeyError) as exc:  # a corrupt entry is rebuilt, never trusted
            log.warning("ignoring unreadable cache entry %s (%s)", path, exc)
            return None
