"""Helpers shared by the benchmarks: where and when a number was measured, time, memory, Markdown tables,
and the mBERT-shaped model the CUDA benchmarks run on.

A benchmark number without its machine, load, library versions, command and date cannot be
compared with a rerun, so every benchmark prints ``environment_lines()`` under its table.
"""
from __future__ import annotations

import argparse
import functools
import os
import platform
import resource
import shlex
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psutil
import torch
from tabulate import tabulate

from sparsenlp.tracking.records import git_revision

REPO = Path(__file__).resolve().parents[1]
MBERT_TOKENIZER = REPO.parent / "shared" / "data" / "mbert-tokenizer"
# --tiny: the same architecture family shrunk so every script runs in seconds on a CPU (dimensions stay
# multiples of 64, so the 2:4 kernels' shape constraints hold on a GPU too)
TINY_ARCHITECTURE = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 512}
ARCHITECTURE_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "hidden_dropout_prob", "attention_probs_dropout_prob",
                     "hidden_act", "layer_norm_eps", "type_vocab_size", "initializer_range")


def cpu_model() -> str:
    """The processor's marketing name (platform.processor() is empty on most Linux systems)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass
class Clock:
    """Wall and process CPU time (all threads) spent inside ``timing()`` blocks or ``wrap``ped calls.

    CPU time is the steadier number on a shared machine: time spent descheduled does not count.
    """

    wall: float = 0.0
    cpu: float = 0.0
    calls: int = 0

    @contextmanager
    def timing(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu
            self.calls += 1

    def wrap(self, fn: Callable[..., object]) -> Callable[..., object]:
        """``fn``, timed at every call: for a method a library calls from inside its own loop."""
        @functools.wraps(fn)
        def timed(*args: object, **kwargs: object) -> object:
            with self.timing():
                return fn(*args, **kwargs)
        return timed


def peak_rss_mib() -> float:
    """This process's resident-set high-water mark.

    Linux's VmHWM counts from the process's own exec; ``ru_maxrss`` keeps the parent's peak across fork and
    exec, so a benchmark child started by a larger parent would report the parent's figure.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


class RssPeak:
    """Peak resident memory of this process while a ``with`` block runs, sampled by a thread every
    ``interval`` seconds: per phase of one process, where ``peak_rss_mib`` only knows the whole run's."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.before_mib = self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "RssPeak":
        self.before_mib = self.peak_mib = rss_mib()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.peak_mib = max(self.peak_mib, rss_mib())

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mib = max(self.peak_mib, rss_mib())

    @property
    def growth_mib(self) -> float:
        """Peak minus the resident memory when the block started."""
        return self.peak_mib - self.before_mib


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} logical cores"


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def environment_lines(packages: Sequence[str] = ("torch", "transformers")) -> list[str]:
    """Machine, load, versions, the exact command and the date, as Markdown bullet points."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    versions = ", ".join(f"{name} {package_version(name)}" for name in packages)
    command = shlex.join(["python", os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
    full = git_revision()  # with '-dirty' when the checkout has uncommitted changes
    revision = f"{full[:7]}{'-dirty' if full.endswith('-dirty') else ''}" if full else "unknown"
    return [
        f"- machine: {cpu_model()}, {os.cpu_count()} logical cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM; GPU: {gpu}",
        f"- load average when the table was printed: {load_average()}",
        f"- python {platform.python_version()}, {versions}; sparsenlp git {revision}",
        f"- command: `{command}`",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
    ]


def mbert_architecture(tiny: bool = False) -> dict[str, object]:
    """mBERT's architecture from its config.json (12 layers, hidden 768, FFN 3072), or the tiny variant.

    No weights are read (none are reachable offline): models built from it are randomly initialised,
    which is all a speed measurement needs."""
    import json

    config = json.loads((MBERT_TOKENIZER / "config.json").read_text())
    architecture = {key: config[key] for key in ARCHITECTURE_KEYS if key in config}
    return {**architecture, **(TINY_ARCHITECTURE if tiny else {})}


def mbert_shaped(num_labels: int, tiny: bool = False):
    """(BertForTokenClassification with random weights, mBERT's real tokenizer): the vocabulary (119,547
    WordPieces) is mBERT's, so the embedding matrix has mBERT's size even in the tiny variant."""
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    tokenizer = AutoTokenizer.from_pretrained(str(MBERT_TOKENIZER))
    config = BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, num_labels=num_labels,
                        **mbert_architecture(tiny))
    return BertForTokenClassification(config), tokenizer


def parse_with_run_options(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Add the options the CPU/CUDA pruning benchmarks share (--threads, --device, --tiny, --json), parse
    the command line and apply --threads."""
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--tiny", action="store_true", help="2 layers, hidden 128, FFN 512 (a smoke run)")
    parser.add_argument("--json", type=Path, default=None, help="also write the headline numbers here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    return tabulate(rows, headers=list(headers), tablefmt="github", disable_numparse=True)
