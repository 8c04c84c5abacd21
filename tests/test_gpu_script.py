"""bench/gpu.sh, run on the CPU: the whole check at a tiny size, and its robustness (a failing step, a
step past its timeout, an exhausted budget, a broken summary script) — the table prints every time."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import gpu_summary  # noqa: E402

SCRIPT = REPO / "bench" / "gpu.sh"
STEPS = ["tests", "pruning", "train_step", "vs_hf", "semi_structured"]


def gpu_sh(*args: str, python: str | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if python is not None:
        env["PYTHON"] = python
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def table(stdout: str) -> dict[str, list[str]]:
    """Rows of the summary table by step: [command, status, seconds, result]."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] in STEPS:
            rows[cells[0]] = cells[1:]
    return rows


def wrapper(tmp_path: Path, body: str) -> str:
    """A stand-in for python that misbehaves for some commands and runs the real interpreter otherwise."""
    path = tmp_path / "python"
    path.write_text(f"#!/usr/bin/env bash\n{body}\nexec {sys.executable} \"$@\"\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.mark.slow
def test_tiny_check_on_cpu_prints_every_step(tmp_path):
    out = tmp_path / "out"
    proc = gpu_sh("--device", "cpu", "--tiny", "--out", str(out), "--tests", "tests/test_pruning_semi_structured.py",
                  python=sys.executable)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = table(proc.stdout)
    assert list(rows) == STEPS
    for step, (_, status, seconds, result) in rows.items():
        assert status == "ok" and float(seconds) > 0 and result != "—", (step, rows[step])
    assert "0 failed, 0 errors" in rows["tests"][3] and "1 skipped" in rows["tests"][3]  # the CUDA test, skipped
    assert "2:4 kernels n/a" in rows["semi_structured"][3]
    assert "movement scores + masks" in rows["train_step"][3]
    for step in STEPS[1:]:
        assert json.loads((out / f"{step}.json").read_text())
    assert (out / "summary.md").read_text().strip() == proc.stdout[proc.stdout.index("## GPU check"):].strip()
    assert "| sparsenlp movement" in (out / "train_step.log").read_text()


@pytest.mark.slow
def test_failed_and_timed_out_steps_still_print_the_table(tmp_path):
    out = tmp_path / "out"
    python = wrapper(tmp_path, 'if [[ "$*" == *semi_structured.py* ]]; then sleep 60; fi')
    proc = gpu_sh("--device", "cpu", "--tiny", "--out", str(out), "--only", "tests,semi_structured",
                  "--tests", "tests/no_such_test_file.py", "--limit", "semi_structured=5", python=python, timeout=120)
    assert proc.returncode == 1
    rows = table(proc.stdout)
    assert list(rows) == STEPS
    assert rows["tests"][1].startswith("failed (exit 4)") and "no_such_test_file" in rows["tests"][3]
    assert rows["semi_structured"][1] == "timeout (5 s)" and 5 <= float(rows["semi_structured"][2]) < 20
    assert all(rows[s][1] == "skipped: not selected (--only)" for s in ("pruning", "train_step", "vs_hf"))


def test_exhausted_budget_and_broken_summary_still_print(tmp_path):
    out = tmp_path / "out"
    python = wrapper(tmp_path, 'if [[ "$*" == *gpu_summary.py* ]]; then exit 3; fi')
    proc = gpu_sh("--device", "cpu", "--tiny", "--out", str(out), "--budget", "10", python=python, timeout=120)
    assert proc.returncode == 1
    for step in STEPS:  # the plain fallback table, straight from the status files
        assert f"| {step} | skipped no time left in the 10s budget |" in proc.stdout
    assert not any((out / f"{step}.log").exists() for step in STEPS)


def test_bad_arguments():
    for args, message in ((["--device", "tpu"], "--device must be cuda or cpu"),
                          (["--limit", "nope=3"], "--limit takes STEP=SECONDS"),
                          (["--limit", "tests=x"], "--limit takes STEP=SECONDS"),
                          (["--frobnicate"], "unknown argument")):
        proc = gpu_sh(*args)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
    assert "--budget SECONDS" in gpu_sh("--help").stdout


def test_summary_of_partial_results(tmp_path):
    """Statuses of every kind and results that are missing or cut short: one row each, no exception."""
    (tmp_path / "tests.status").write_text("0 61234 75\n")
    (tmp_path / "tests.xml").write_text('<testsuites><testsuite tests="9" failures="1" errors="0" skipped="3"/>'
                                        "</testsuites>")
    (tmp_path / "pruning.status").write_text("1 2100 45\n")
    (tmp_path / "pruning.log").write_text("Traceback ...\n\nRuntimeError: CUDA error: out of memory\n\n")
    (tmp_path / "train_step.status").write_text("0 50000 75\n")
    (tmp_path / "train_step.json").write_text('{"dense_ms": 1.0}')  # an older or partial file
    (tmp_path / "vs_hf.status").write_text("124 180000 180\n")
    (tmp_path / "semi_structured.status").write_text("skipped no time left in the 470s budget\n")
    text, ok = gpu_summary.summary(tmp_path, "cuda", tiny=False)
    rows = table(text)
    assert not ok and list(rows) == STEPS
    assert rows["tests"][1:] == ["ok", "61.2", "5 passed, 3 skipped, 1 failed, 0 errors (of 9 CUDA tests)"]
    assert rows["pruning"][1] == "failed (exit 1)"
    assert rows["pruning"][3] == "log: RuntimeError: CUDA error: out of memory"
    assert rows["train_step"][1] == "ok" and rows["train_step"][3].startswith("unreadable result (KeyError")
    assert rows["vs_hf"][1:3] == ["timeout (180 s)", "180.0"] and rows["vs_hf"][3] == "log: no log"
    assert rows["semi_structured"][1:] == ["skipped: no time left in the 470s budget", "—", "—"]
    assert "machine: no GPU" in text
