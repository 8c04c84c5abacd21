"""Reports never mix two versions and never hide what they could not use.

A report is interrupted at every one of its writes, by a real SIGKILL (in a forked process) and by Ctrl-C
(KeyboardInterrupt), and the folder then holds the previous report or the new one, whole; a folder of the
user's is never replaced; ``--out`` that cannot be written and Ctrl-C are one line. A truncated prediction
companion is rebuilt (or read around), a job folder without ``results.json`` is named with exit status 3, and
a test set without gold entities gives a missing F1 with its reason, in the record and the report, never 0.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparsenlp import io
from sparsenlp.analysis import sweep_report
from sparsenlp.analysis.report import EXIT_SKIPPED, main
from sparsenlp.analysis.sweep_report import Options
from sparsenlp.analysis.synthetic import make_test_set, predict, write_run
from sparsenlp.tracking import compact
from tests.conftest import REPO
from tests.faults import read_only_for_command
from tests.helpers import cli


def _sweep(root: Path) -> Path:
    """de and sw, dense and global_magnitude 0.5, two seeds each: 8 synthetic jobs with predictions."""
    tests = {lang: make_test_set(np.random.default_rng(k), 80) for k, lang in enumerate(("de", "sw"))}
    job = 0
    for seed in (1, 2):
        for method, sparsity in (("dense", 0.0), ("global_magnitude", 0.5)):
            for lang, test in tests.items():
                rows = predict(np.random.default_rng([seed, job]), test, lang, 0.1 + sparsity / 3, 0.05, 0.05)
                write_run(root / str(job), rows, [lang], method=method, sparsity=sparsity, seed=seed)
                job += 1
    return root


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    return _sweep(tmp_path_factory.mktemp("sweep"))


@pytest.fixture(scope="module")
def reports(sweep) -> tuple[sweep_report.SweepReport, sweep_report.SweepReport]:
    """Two different reports of the sweep (Holm and Benjamini-Hochberg corrections), with figures."""
    return (sweep_report.analyse(sweep, Options(correction="holm", pie=False)),
            sweep_report.analyse(sweep, Options(correction="bh", pie=False)))


def _contents(folder: Path) -> dict[str, str] | None:
    """Every file below ``folder`` by content hash; None if there is no folder."""
    if not folder.is_dir():
        return None
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# every call that writes, moves or removes something of a report folder
WRITES = (("pandas.DataFrame.to_csv", pd.DataFrame, "to_csv"),
          ("pandas.DataFrame.to_parquet", pd.DataFrame, "to_parquet"),
          ("Path.write_bytes", Path, "write_bytes"), ("write_text", sweep_report, "write_text"),
          ("os.link", os, "link"), ("os.rename", os, "rename"), ("os.replace", os, "replace"),
          ("rename exchange", io, "_exchange"), ("shutil.rmtree", shutil, "rmtree"))


@contextmanager
def _interrupting(at: int, action: Callable[[], None]) -> list[str]:
    """Count the writes (:data:`WRITES`); run ``action`` instead of the ``at``-th one (never if ``at`` < 0)."""
    seen: list[str] = []
    saved = [(owner, name, getattr(owner, name)) for _, owner, name in WRITES]

    def counting(label: str, real: Callable) -> Callable:
        def call(*args, **kwargs):
            seen.append(label)
            if len(seen) - 1 == at:  # once: the clean-up after the interruption writes too
                action()
            return real(*args, **kwargs)
        return call

    for (label, owner, name), (_, _, real) in zip(WRITES, saved):
        setattr(owner, name, counting(label, real))
    try:
        yield seen
    finally:
        for owner, name, real in saved:
            setattr(owner, name, real)


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _interrupt() -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_a_report_interrupted_at_any_write_leaves_the_previous_one_or_the_new_one_whole(tmp_path, reports,
                                                                                        monkeypatch, exchange):
    old, new = reports
    if not exchange:  # a file system without RENAME_EXCHANGE: the fallback's window leaves no folder, never a mix
        monkeypatch.setattr(io, "_exchange", lambda a, b: False)
    out = tmp_path / "report"
    sweep_report.write(old, out)
    (out / "dashboard.json").write_text("{}\n")  # another command's file: carried over by both
    before = _contents(out)
    fresh = tmp_path / "fresh"
    sweep_report.write(new, fresh)
    (fresh / "dashboard.json").write_text("{}\n")
    after = _contents(fresh)
    assert before != after
    with _interrupting(-1, _interrupt) as seen:  # the writes of one report over another, counted
        sweep_report.write(new, out)
    writes = len(seen)
    assert writes > 10 and _contents(out) == after

    for at in range(writes):
        for action in ("SIGKILL", "Ctrl-C"):
            sweep_report.write(old, out)  # back to the previous report; what an interrupted write left is cleaned
            assert _contents(out) == before and not list(tmp_path.glob(f".report{io.PARTIAL}*"))
            if action == "SIGKILL":
                pid = os.fork()
                if pid == 0:  # the child writes the new report and is killed at write number `at`
                    try:
                        with _interrupting(at, _kill_self):
                            sweep_report.write(new, out)
                    finally:
                        os._exit(3)
                _, status = os.waitpid(pid, 0)
                assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (at, seen[at], status)
            else:
                with pytest.raises(KeyboardInterrupt), _interrupting(at, _interrupt):
                    sweep_report.write(new, out)
            # a kill between the fallback's two renames leaves no folder (the previous one beside it, put back by
            # the next writer), never a mix
            allowed = [before, after] + ([None] if not exchange and action == "SIGKILL" else [])
            assert _contents(out) in allowed, (action, at, seen[at])
            if _contents(out) is None:
                io.remove_stale_partials(out)
                assert _contents(out) == before
    sweep_report.write(new, out)
    assert _contents(out) == after and not list(tmp_path.glob(f".report{io.PARTIAL}*"))


def test_a_folder_that_is_not_a_report_is_never_replaced(tmp_path, sweep, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes\n")
    assert main([str(sweep), "--out", str(mine), "--no-pie"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"sparsenlp error: --out {mine} holds {mine / 'notes.txt'}, which is not part of a "
                              "report")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_an_out_folder_that_cannot_be_written_is_one_line(tmp_path, sweep):
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only_for_command(locked) as prefix:
        result = subprocess.run([*prefix, sys.executable, "-m", "sparsenlp.analysis.report", str(sweep), "--out",
                                 str(locked / "report"), "--no-pie"], capture_output=True, text=True, cwd=REPO,
                                timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"sparsenlp error: cannot write the report to "
                                                            f"{locked / 'report'}")
    assert not any(locked.iterdir())


@pytest.mark.slow
def test_ctrl_c_to_the_report_is_one_line_and_keeps_the_previous_report(tmp_path, sweep):
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out), "--no-pie"]) == 0
    before = _contents(out)
    for delay in (0.3, 2.0):  # while importing the analysis, while computing
        proc = subprocess.Popen([sys.executable, "-m", "sparsenlp.analysis.report", str(sweep), "--out", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 130, stderr[-2000:]
        assert stderr.strip().splitlines()[-1].startswith("sparsenlp: interrupted (Ctrl-C)")
        assert "Traceback" not in stderr
        assert _contents(out) == before


# --- what a report could not use -----------------------------------------------------------------------------


def _copy(sweep: Path, dest: Path) -> Path:
    shutil.copytree(sweep, dest)
    return dest


def test_a_truncated_companion_is_rebuilt_from_its_jsonl(tmp_path, sweep, capsys):
    copy = _copy(sweep, tmp_path / "sweep")
    companion = copy / "0" / "predictions" / "test.npz"
    good = companion.read_bytes()
    companion.write_bytes(good[: len(good) // 2])  # was: BadZipFile, no report
    assert main([str(copy), "--no-pie"]) == 0
    err = capsys.readouterr().err
    assert f"{companion} was damaged" in err and "rebuilt from test.jsonl" in err
    reference = tmp_path / "reference"
    assert main([str(sweep), "--out", str(reference), "--no-pie"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(copy / "report" / "significance.csv"),
                                  pd.read_csv(reference / "significance.csv"))
    assert np.array_equal(compact.read(companion).pred, compact.read(sweep / "0" / "predictions" / "test.npz").pred)


@pytest.mark.slow
def test_a_truncated_companion_in_a_read_only_sweep_is_read_around(tmp_path, sweep):
    copy = _copy(sweep, tmp_path / "sweep")
    companion = copy / "0" / "predictions" / "test.npz"
    companion.write_bytes(companion.read_bytes()[:100])
    out = tmp_path / "report"
    with read_only_for_command(copy) as prefix:
        result = subprocess.run([*prefix, sys.executable, "-m", "sparsenlp.analysis.report", str(copy), "--out",
                                 str(out), "--no-pie"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{companion} is damaged" in result.stderr and "test.jsonl is read instead" in result.stderr
    assert len(pd.read_csv(out / "significance.csv")) == 2


def test_unusable_predictions_and_unfinished_jobs_are_named_with_exit_3(tmp_path, sweep, capsys):
    copy = _copy(sweep, tmp_path / "sweep")
    companion = copy / "2" / "predictions" / "test.npz"
    companion.write_bytes(companion.read_bytes()[:100])
    (copy / "2" / "predictions" / "test.jsonl").unlink()
    unfinished = copy / "8"
    (unfinished / ".hydra").mkdir(parents=True)  # a job that started and never wrote its record
    (unfinished / ".hydra" / "config.yaml").write_text("lang: de\n")
    assert main([str(copy), "--no-pie"]) == EXIT_SKIPPED  # was: 0, the job named nowhere
    assert f"exit status {EXIT_SKIPPED}" in capsys.readouterr().err
    summary = (copy / "report" / "summary.md").read_text()
    skipped = summary.split("## Skipped records")[1]
    assert f"- {unfinished}: no results.json" in skipped
    assert f"- {copy / '2' / 'predictions' / 'test.jsonl'}: {companion} is damaged" in skipped
    assert "left out of the comparisons of condition=clean" in skipped


# --- a metric that cannot be computed ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_test_set_without_entities_has_a_missing_f1_and_gap_never_0(tmp_path, tiny_overrides, wikiann_root):
    root = tmp_path / "data"
    shutil.copytree(wikiann_root / "sw", root / "sw")
    test = root / "sw" / "test"
    test.write_text(re.sub(r"\t[BI]-[A-Z]+", "\tO", test.read_text(encoding="utf-8")), encoding="utf-8")
    out = tmp_path / "sweep" / "0"
    result = cli([*(o for o in tiny_overrides if not o.startswith("data.root")), f"data.root={root}", "lang=sw",
                  "trainer.max_steps=10", "trainer.eval_every=10", "trainer.cpu_threads=1", "perturbation=suite",
                  *(f"~perturbation.members.{m}" for m in ("lower", "upper", "strip_diacritics", "context_drop",
                                                           "swap_seen", "swap_unseen", "swap_script", "swap_family")),
                  f"hydra.run.dir={out}"])
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "results.json").read_text())
    clean = record["test"]["sw"]["clean"]
    assert clean["f1"] is None and clean["recall"] is None  # was: 0.0
    assert clean["missing"].startswith("no gold entity: recall and F1 are undefined")
    gaps = record["robustness"]["sw"]
    assert gaps and all(g["gap"] is None and g["missing"].startswith("the clean test set has no gold entity")
                        for g in gaps.values())  # was: a gap of 0.0

    assert main([str(out.parent), "--no-pie"]) == 0
    table = pd.read_csv(out.parent / "report" / "runs.csv")
    assert table["f1"].isna().all() and table["gap"].isna().all()
    summary = (out.parent / "report" / "summary.md").read_text()
    assert "F1 of sw on clean is missing in 1 run(s): no gold entity" in summary
