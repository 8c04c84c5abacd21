"""The compact companion of a prediction file: ``predictions/<name>.npz`` next to ``<name>.jsonl``.

The JSONL rows (``{"id", "lang", "tokens", "gold", "pred"}``) are what people and other tools read, but
parsing them costs about 9 µs a row, and a study-sized sweep holds over ten million rows per test
condition. The analysis needs neither the tokens nor the tag strings of every row: only which tag each
word got, per sentence, and a way to tell that two runs scored the same sentences. The companion holds
exactly that, as numpy arrays (``np.savez``, no pickled objects), and loads in milliseconds:

- ``format``: this layout's version (:data:`FORMAT`);
- ``ids`` (n,): sentence ids, int64 (or unicode when a writer used string ids); ``lang`` (n,): language codes;
- ``offsets`` (n + 1,): int64, sentence i's words are ``offsets[i]:offsets[i + 1]`` of the flat arrays;
- ``labels`` (L,): tag names; ``gold``, ``pred`` (words,): label ids, uint8 (uint16 beyond 256 tags);
- ``token_hash`` (n,): uint64, the first 8 bytes of BLAKE2b over the sentence's tokens joined by U+001F,
  so runs of another test set (another perturbation seed) are told apart without storing the tokens.

Rows are in the JSONL's order (row k = line k), so the few sentences a report quotes can be read back
from the JSONL by position. Writers write the companion right after the JSONL and both before
``results.json``; readers that find no companion (older runs) fall back on the JSONL.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparsenlp.errors import SparseNLPError
from sparsenlp.io import atomic_path

FORMAT = 1
SUFFIX = ".npz"
SEPARATOR = "\x1f"
ARRAYS = ("format", "ids", "lang", "offsets", "labels", "gold", "pred", "token_hash")


def companion_path(jsonl: Path) -> Path:
    """``predictions/test.char_noise@0.1.jsonl`` → ``predictions/test.char_noise@0.1.npz``."""
    jsonl = Path(jsonl)
    return jsonl.with_name(jsonl.name.removesuffix(".jsonl") + SUFFIX)


def token_hash(tokens: Sequence[str]) -> int:
    """A sentence's tokens as 64 bits (stable across processes and machines, unlike ``hash``)."""
    digest = hashlib.blake2b(SEPARATOR.join(tokens).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True)
class CompactPredictions:
    """One run's prediction rows as arrays (see the module docstring); ``rows``: each row's position in
    ``source`` (the JSONL), kept through :meth:`select`; ``tokens``: the rows' tokens when built from
    rows in memory (None when read from a companion file)."""

    ids: np.ndarray
    lang: np.ndarray
    offsets: np.ndarray
    labels: tuple[str, ...]
    gold: np.ndarray
    pred: np.ndarray
    token_hash: np.ndarray
    rows: np.ndarray
    source: Path | None = None
    tokens: Sequence[Sequence[str]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], source: Path | None = None) -> CompactPredictions:
        """Arrays of prediction rows (each needs ``id``, ``tokens``, ``gold``, ``pred``; ``lang`` optional)."""
        ids = [row["id"] for row in rows]
        if not (all(isinstance(i, int) for i in ids) or all(isinstance(i, str) for i in ids)):
            raise SparseNLPError(f"sentence ids of {source or 'the rows'} mix types; use integers or strings")
        lengths = np.fromiter((len(row["tokens"]) for row in rows), dtype=np.int64, count=len(rows))
        for name in ("gold", "pred"):
            if any(len(row[name]) != n for row, n in zip(rows, lengths.tolist())):
                raise SparseNLPError(f"{source or 'a row'}: {name} and tokens differ in length; re-run that run")
        total = int(lengths.sum())
        tags = np.fromiter(chain(chain.from_iterable(r["gold"] for r in rows),
                                 chain.from_iterable(r["pred"] for r in rows)), dtype=object, count=2 * total)
        codes, uniques = pd.factorize(tags, sort=True)
        dtype = np.uint8 if len(uniques) <= 256 else np.uint16
        codes = codes.astype(dtype)
        return cls(
            ids=np.array(ids, dtype=np.int64 if ids and isinstance(ids[0], int) else str),
            lang=np.array([str(row.get("lang", "")) for row in rows], dtype=str),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            labels=tuple(str(u) for u in uniques), gold=codes[:total], pred=codes[total:],
            token_hash=np.fromiter((token_hash(row["tokens"]) for row in rows), dtype=np.uint64, count=len(rows)),
            rows=np.arange(len(rows), dtype=np.int64), source=source, tokens=[row["tokens"] for row in rows],
        )

    def select(self, lang: str) -> CompactPredictions:
        """The rows of one test language (the whole run when it holds only that language)."""
        keep = self.lang == lang
        if keep.all():
            return self
        index = np.flatnonzero(keep)
        starts, lengths = self.offsets[index], self.lengths[index]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        words = np.repeat(starts - offsets[:-1], lengths) + np.arange(int(offsets[-1]))
        return CompactPredictions(self.ids[index], self.lang[index], offsets, self.labels, self.gold[words],
                                  self.pred[words], self.token_hash[index], self.rows[index], self.source,
                                  None if self.tokens is None else [self.tokens[i] for i in index.tolist()])

    def tokens_at(self, positions: Iterable[int]) -> list[list[str]]:
        """Tokens of the rows at ``positions`` (indices into this object), from memory or the JSONL."""
        positions = list(positions)
        if self.tokens is not None:
            return [list(self.tokens[p]) for p in positions]
        if self.source is None or not self.source.is_file():
            raise SparseNLPError(f"prediction file {self.source} is missing (quoted sentences are read from it); "
                                 "restore it or re-run that run")
        wanted = {int(self.rows[p]): p for p in positions}
        found: dict[int, list[str]] = {}
        with self.source.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(line for line in handle if line.strip()):
                if line_no in wanted:
                    row = json.loads(line)
                    if str(row["id"]) != str(self.ids[wanted[line_no]]):
                        raise SparseNLPError(f"{self.source} no longer matches {companion_path(self.source)}; "
                                             "delete the .npz (the JSONL is then read instead)")
                    found[wanted[line_no]] = row["tokens"]
                    if len(found) == len(wanted):
                        break
        return [found[p] for p in positions]


def write(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write the companion of ``rows`` atomically at ``path`` (a ``.npz`` next to the rows' JSONL)."""
    compact = CompactPredictions.from_rows(rows)
    arrays = {"format": np.array(FORMAT), "ids": compact.ids, "lang": compact.lang, "offsets": compact.offsets,
              "labels": np.array(compact.labels, dtype=str), "gold": compact.gold, "pred": compact.pred,
              "token_hash": compact.token_hash}
    with atomic_path(Path(path)) as tmp, tmp.open("wb") as handle:
        np.savez(handle, **arrays)


class DamagedCompanion(SparseNLPError):
    """A companion file that cannot be used (truncated, bit-flipped, of another layout)."""


def _bad(path: Path, why: str) -> DamagedCompanion:
    return DamagedCompanion(f"{path} is not a valid prediction companion ({why}); delete it and the JSONL next to "
                            "it is read instead")


def read(path: Path, source: Path | None = None) -> CompactPredictions:
    """A companion file; ``source``: its JSONL (default: the same name with ``.jsonl``)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in ARRAYS if name not in data.files]
            if missing:
                raise _bad(path, f"lacks {missing}")
            arrays = {name: data[name] for name in ARRAYS}
    except DamagedCompanion:
        raise
    # truncation and bit flips surface as BadZipFile, EOFError, ValueError, zlib.error, ... (a bad CRC-32 of a
    # member is found when numpy reads it through zipfile): all mean damage
    except Exception as exc:  # noqa: BLE001
        raise _bad(path, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}") from None
    if int(arrays["format"]) != FORMAT:
        raise _bad(path, f"format {int(arrays['format'])}, this version reads {FORMAT}")
    n, offsets = len(arrays["ids"]), arrays["offsets"]
    words = int(offsets[-1]) if len(offsets) else -1
    if (len(offsets) != n + 1 or len(arrays["lang"]) != n or len(arrays["token_hash"]) != n or offsets[0] != 0
            or np.any(np.diff(offsets) < 0) or len(arrays["gold"]) != words or len(arrays["pred"]) != words):
        raise _bad(path, "array lengths disagree")
    labels = tuple(str(label) for label in arrays["labels"])
    if words and max(int(arrays["gold"].max()), int(arrays["pred"].max())) >= len(labels):
        raise _bad(path, "a label id beyond its labels")
    source = companion_source(path) if source is None else source
    return CompactPredictions(arrays["ids"], arrays["lang"], offsets.astype(np.int64), labels, arrays["gold"],
                              arrays["pred"], arrays["token_hash"], np.arange(n, dtype=np.int64), source)


def companion_source(path: Path) -> Path:
    return Path(path).with_name(Path(path).name.removesuffix(SUFFIX) + ".jsonl")
