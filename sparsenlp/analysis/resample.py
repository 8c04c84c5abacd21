"""Sentence resampling shared by the significance table and the PIE noise floor.

A bootstrap replicate over test sentences is a vector of multinomial counts (how often each sentence
was drawn, n draws with replacement). Every quantity the analysis resamples is a sum over sentences of
a per-sentence count (true positives, predicted spans, gold spans, PIE tokens), so the replicates of all
of them are one matrix product: counts (replicates × sentences) @ per-sentence rows (sentences × rows).
One draw of the counts serves every run, arm and test condition scored on the same sentences, and
every test set of the same size (count j of a replicate weighs the j-th sentence of whichever test set
it is applied to). Each comparison is still a valid bootstrap of its own test set; comparisons merely
share their Monte-Carlo noise instead of each adding its own (common random numbers), which no
analysis here assumes away (Holm's correction holds under any dependence). Drawing the counts is the
costliest step of the analysis, so sharing them is what keeps a 40-language report fast.

Random streams are keyed by names (test-set size, arm, ...) rather than drawn in sequence, so a
result does not depend on which other cells were analysed in the same call or in which order.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

CHUNK_ELEMENTS = 4_000_000  # counts drawn per chunk
CACHE_BYTES = 256 * 2**20  # resample counts kept for reuse (float32: 80 MB for 2000 × 10,000)


def keyed_rng(seed: int, *names: object) -> np.random.Generator:
    """A generator for one named stream: ``default_rng`` seeded with ``seed`` and a CRC of the names."""
    key = "\x1f".join(map(repr, names)).encode("utf-8")
    return np.random.default_rng([int(seed), zlib.crc32(key)])


def sentence_counts(rng: np.random.Generator, n: int, n_boot: int) -> Iterator[np.ndarray]:
    """Multinomial resample counts, ``n_boot`` rows of ``n`` (float32, exact: each row sums to n), in chunks."""
    rows = max(1, CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, n_boot, rows):
        size = min(rows, n_boot - start)
        draws = rng.integers(0, n, size=(size, n), dtype=np.int64 if n > 2**31 - 1 else np.int32)
        counts = np.empty((size, n), dtype=np.float32)
        for r in range(size):  # one bincount a row: faster than one over the flattened chunk
            counts[r] = np.bincount(draws[r], minlength=n)
        yield counts


def resampled_sums(rng: np.random.Generator, rows: np.ndarray, n_boot: int) -> np.ndarray:
    """``rows`` (R × n, per-sentence values) summed over ``n_boot`` sentence resamples: (n_boot × R)."""
    rows32 = np.ascontiguousarray(rows, dtype=np.float32)
    out = np.empty((n_boot, rows32.shape[0]), dtype=np.float64)
    start = 0
    for counts in sentence_counts(rng, rows32.shape[1], n_boot):
        out[start : start + len(counts)] = counts @ rows32.T
        start += len(counts)
    return out


class ResampleCounts:
    """The sentence resamples of every test-set size, drawn from a stream keyed by the size and kept
    (while they fit in ``cache_bytes``) for every later test set of that size.

    Products are float32: exact for the integer counts summed here (totals stay far below 2**24), within
    about 1e-7 relative for fractional per-sentence values (PIE rates)."""

    def __init__(self, seed: int, n_boot: int, cache_bytes: int = CACHE_BYTES) -> None:
        self.seed, self.n_boot, self.cache_bytes = seed, n_boot, cache_bytes
        self._cache: dict[int, np.ndarray] = {}

    def rng(self, n: int) -> np.random.Generator:
        return keyed_rng(self.seed, "sentences", n)

    def sums(self, rows: np.ndarray) -> np.ndarray:
        """(n_boot × R) sums of ``rows`` (R × n) over the resamples of n sentences."""
        n = rows.shape[1]
        counts = self._cache.get(n)
        if counts is None:
            used = sum(c.nbytes for c in self._cache.values())
            if used + self.n_boot * n * 4 > self.cache_bytes:
                return resampled_sums(self.rng(n), rows, self.n_boot)
            counts = self._cache[n] = np.vstack(list(sentence_counts(self.rng(n), n, self.n_boot)))
        return (counts @ np.ascontiguousarray(rows, dtype=np.float32).T).astype(np.float64)


class SentenceSums:
    """Rows of per-sentence values to be summed over the sentence resamples of their test set.

    Analyses add their rows first (:meth:`add`), then :meth:`compute` sums every test set's rows over its
    resamples (:class:`ResampleCounts`, which a caller may share between calls). With ``resample=False``
    every "replicate" is the plain total (no sentence variation).
    """

    def __init__(self, seed: int, n_boot: int, resample: bool = True, counts: ResampleCounts | None = None) -> None:
        self.seed, self.n_boot, self.resample = seed, n_boot, resample
        self.counts = ResampleCounts(seed, n_boot) if counts is None else counts
        if (self.counts.seed, self.counts.n_boot) != (seed, n_boot):
            raise ValueError("shared ResampleCounts must have the same seed and n_boot")
        self._rows: dict[tuple[str, tuple[Any, ...]], list[np.ndarray]] = {}
        self._handles: list[tuple[tuple[str, tuple[Any, ...]], int, int]] = []
        self._sums: dict[tuple[str, tuple[Any, ...]], np.ndarray] = {}

    def add(self, lang: str, ids: Sequence[Any], rows: np.ndarray) -> int:
        """Queue ``rows`` (R × len(ids)) for the test set of ``lang`` with these sentence ids; returns a handle."""
        key = (lang, tuple(ids))
        if key in self._sums:
            raise RuntimeError("rows added after compute(); add every analysis's rows first")
        rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        queued = self._rows.setdefault(key, [])
        start = sum(len(r) for r in queued)
        queued.append(rows)
        self._handles.append((key, start, start + len(rows)))
        return len(self._handles) - 1

    def compute(self) -> None:
        for key, parts in self._rows.items():
            if key in self._sums:
                continue
            rows = np.vstack(parts)
            if self.resample:
                self._sums[key] = self.counts.sums(rows)
            else:
                self._sums[key] = np.broadcast_to(rows.sum(axis=1), (self.n_boot, len(rows)))

    def sums(self, handle: int) -> np.ndarray:
        """(n_boot × R) resampled sums of the rows behind ``handle`` (after :meth:`compute`)."""
        key, start, stop = self._handles[handle]
        return self._sums[key][:, start:stop]


def percentile_interval(replicates: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Equal-tailed percentile interval of bootstrap replicates (NaN replicates ignored; NaN if none)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_p_value(replicates: np.ndarray) -> float:
    """Two-sided p-value of "the statistic is 0" from its bootstrap distribution: twice the smaller share
    of replicates on either side of 0 (ties count on both), with the (count + 1) / (B + 1) convention of
    Monte-Carlo tests (Phipson & Smyth 2010, "Permutation p-values should never be zero"). It is, up to
    that +1, the smallest level at which the equal-tailed percentile interval excludes 0, so a verdict
    and its interval cannot contradict each other. Its floor is 2 / (B + 1): B must exceed 2·m/α for a
    Holm-adjusted p-value over m comparisons to be able to reach α."""
    below = int(np.count_nonzero(replicates <= 0))
    above = int(np.count_nonzero(replicates >= 0))
    return min(1.0, 2.0 * (min(below, above) + 1) / (replicates.size + 1))
