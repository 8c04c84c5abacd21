"""Helpers shared by the benchmarks: where and when a number was measured, memory, Markdown tables.

A benchmark number without its machine, load, library versions, command and date cannot be
compared with a rerun, so every benchmark prints ``environment_lines()`` under its table.
"""
from __future__ import annotations

import os
import platform
import resource
import shlex
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import psutil
import torch
from tabulate import tabulate

from sparsenlp.tracking.records import git_revision

REPO = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    """The processor's marketing name (platform.processor() is empty on most Linux systems)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peak_rss_mib() -> float:
    """This process's resident-set high-water mark (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


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


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    return tabulate(rows, headers=list(headers), tablefmt="github", disable_numparse=True)
