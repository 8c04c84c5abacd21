"""On-disk cache of encoded splits, so the runs of a sweep tokenize each language once.

The key covers everything the encoding depends on: the tokenizer (hash of its full serialisation),
the raw data's identity, language, split, max_length and the sentence limit. Files are written
atomically under a per-entry file lock, so parallel sweep workers share one cache folder safely and
each entry is built once. Entries are checked on every read (zip CRC-32), so a truncated or damaged
file is reported with its path and rebuilt instead of failing every later run.

A complete entry is read without the lock (it was renamed into place whole), so a warm cache on a read-only
file system (a shared, pre-built cache on a cluster) is simply used. An entry that must be written where it
cannot be (read-only, full, a file in the way) is one line naming the folder and the fix (:func:`unwritable_cache`).
"""
from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from filelock import FileLock

from sparsenlp.data.align import Features
from sparsenlp.errors import SparseNLPError
from sparsenlp.io import DISK_ERRNOS, atomic_path

log = logging.getLogger(__name__)
CACHE_VERSION = 1


def tokenizer_fingerprint(tokenizer) -> str:
    """Content hash of a fast tokenizer (vocab, normaliser, pre-tokeniser, post-processor)."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode("utf-8")).hexdigest()[:16]


def cache_key(*parts: object) -> str:
    text = "\x1f".join(str(p) for p in (CACHE_VERSION, *parts))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def unwritable_cache(folder: Path, exc: OSError) -> SparseNLPError:
    """The one-line error for a cache entry that cannot be written into ``folder``."""
    where = exc.filename or folder
    return SparseNLPError(
        f"cannot write to the cache folder {folder} ({exc.strerror or exc}: {where}); free space there or make it "
        "writable, or point data.cache_dir at another folder (data.cache_dir=null: no cache)"
    )


@contextmanager
def writing(folder: Path) -> Iterator[None]:
    """Around creating, locking and writing an entry in the cache ``folder``: what the user can fix is one line."""
    try:
        yield
    except OSError as exc:
        if exc.errno in DISK_ERRNOS or isinstance(exc, (FileExistsError, NotADirectoryError)):
            raise unwritable_cache(folder, exc) from None
        raise


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
        features = self._load(path, quiet=True)  # a complete entry needs no lock (nor a writable folder)
        if features is not None:
            self.hits += 1
            return features
        with writing(self.folder):
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
    def _load(path: Path, quiet: bool = False) -> Features | None:
        """The entry at ``path``; None if there is none or it is damaged (reported unless ``quiet``: the locked
        second look reports it, and a builder may be replacing it right now)."""
        if not path.is_file():
            return None
        try:
            return read_checked(path)
        # a damaged entry is rebuilt, never trusted; truncation and bit flips surface as a dozen exception
        # types (BadZipFile, EOFError, ValueError, SyntaxError, NotImplementedError, ...), so catch them all
        except Exception as exc:  # noqa: BLE001
            if not quiet:
                log.warning("damaged feature cache entry %s (%s: %s); rebuilding it", path, type(exc).__name__, exc)
            return None


def read_checked(path: Path) -> Features:
    """Features from an ``.npz`` entry, after checking every member against the CRC-32 the zip format
    stores with it, so any damage is found here, before numpy parses a single header."""
    with zipfile.ZipFile(path) as archive:
        bad = archive.testzip()
    if bad is not None:
        raise ValueError(f"member {bad} fails its CRC-32 check")
    with np.load(path, allow_pickle=False) as arrays:
        return Features.from_arrays(dict(arrays))
