"""`sparsenlp-report status`: a sweep's jobs classified from their folders alone (record, live or dead job lock,
failure.json), with throughput and ETA from the records written since the launch, and the CLI around it."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sparsenlp.analysis import status
from sparsenlp.analysis.report import main
from sparsenlp.tracking import failure, joblist

LAUNCH = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # exited and reaped: no process has it (pids are not reused this soon)


def _sweep(root: Path) -> Path:
    """Six jobs: two done (one an hour after the launch, one two hours after), one running here, one killed here,
    one that failed with an error, one pending; and one folder of an earlier launch."""
    sweep = root / "sweep"
    names = ["de-dense-seed1", "de-global-s0.5-seed1", "sw-dense-seed1", "sw-global-s0.5-seed1", "yo-dense-seed1",
             "yo-global-s0.5-seed1"]
    jobs = [joblist.ListedJob(folder=f"{n}-{i:012x}", name=n, hash=f"{i:012x}", overrides=[f"x={i}"],
                              at_launch=joblist.LAUNCHED) for i, n in enumerate(names)]
    sweep.mkdir()
    (sweep / joblist.JOBS).write_text(json.dumps(joblist.JobList(
        sweep_dir=str(sweep), launched_at=LAUNCH.isoformat(), launcher="JoblibLauncher", jobs=jobs).model_dump()))
    done, done2, running, killed, failed, _ = (sweep / j.folder for j in jobs)
    for folder, hours in ((done, 1), (done2, 2)):
        folder.mkdir()
        (folder / "results.json").write_text("{}")
        stamp = (LAUNCH + timedelta(hours=hours)).timestamp()
        os.utime(folder / "results.json", (stamp, stamp))
    running.mkdir()
    (running / ".job.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": "x"}))
    (running / "sparsenlp.log").write_text("[..] - start\n[..] - step 10/300: loss 1.2000\n")
    killed.mkdir()
    (killed / ".job.lock").write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "started": "x"}))
    (killed / "sparsenlp.log").write_text("[..] - step 50/300: loss 0.9000\n\n")
    failure.write(failed, ValueError("line 3 of sw/train has 3 columns"))
    (sweep / "af-dense-seed1-aaaaaaaaaaaa" / ".hydra").mkdir(parents=True)
    return sweep


def test_every_state_is_read_from_the_folders(tmp_path):
    sweep = _sweep(tmp_path)
    now = (LAUNCH + timedelta(hours=4)).timestamp()
    report = status.status(sweep, now=now)
    states = {job.folder.rsplit("-", 1)[0]: job.state for job in report.jobs}
    assert states == {"de-dense-seed1": "done", "de-global-s0.5-seed1": "done", "sw-dense-seed1": "running",
                      "sw-global-s0.5-seed1": "failed", "yo-dense-seed1": "failed", "yo-global-s0.5-seed1": "pending"}
    details = {job.folder.rsplit("-", 1)[0]: job.detail for job in report.jobs}
    assert details["yo-dense-seed1"] == "ValueError: line 3 of sw/train has 3 columns"
    assert "stopped without a record" in details["sw-global-s0.5-seed1"] and "loss 0.9000" in details["sw-global-s0.5-seed1"]
    assert f"pid {os.getpid()}" in details["sw-dense-seed1"] and "loss 1.2000" in details["sw-dense-seed1"]
    assert report.other_folders == 1
    # 2 records in the 4 hours since the launch: 0.5 jobs/h; running + pending = 2 jobs left: 4 h
    assert report.jobs_per_hour == pytest.approx(0.5) and report.eta_hours == pytest.approx(4.0)


def test_a_lock_held_on_another_host_is_running_until_its_folder_goes_quiet(tmp_path):
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / ".job.lock").write_text(json.dumps({"pid": 1, "host": "gpu-node-17", "started": "x"}))
    fresh = (folder / ".job.lock").stat().st_mtime
    assert status.job_state(folder, now=fresh + 60, stale_after=1800).state == "running"
    assert status.job_state(folder, now=fresh + 3600, stale_after=1800).state == "failed"


def test_the_cli_prints_counts_failed_jobs_and_what_next(tmp_path, capsys):
    sweep = _sweep(tmp_path)
    assert main(["status", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"{sweep}: 6 jobs: 2 done, 1 running, 2 failed, 1 pending"
    assert "yo-dense-seed1-000000000004: ValueError: line 3" in out and "jobs/h since the launch" in out
    assert out.strip().splitlines()[-1].startswith("next: read a failed job's log")
    assert main(["status", str(sweep), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"] == {"done": 2, "running": 1, "failed": 2, "pending": 1}
    assert main(["status", str(tmp_path / "nowhere")]) == 1
    assert "does not exist" in capsys.readouterr().err
