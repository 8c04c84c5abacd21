"""Faults of a study run at scale: unwritable output folders, relaunches over jobs that still run, a
sweep's main process killed under its workers. Each through the real CLI, asserting the exit status,
the one-line message and what is left on disk."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sparsenlp import runlock
from sparsenlp.tracking import joblist
from tests.conftest import REPO
from tests.faults import read_only_for_command
from tests.helpers import assert_one_line_error, cli

# --- an output folder that cannot be written -------------------------------------------------------------------


@pytest.fixture
def read_only(tmp_path) -> Iterator[tuple[Path, list[str]]]:
    """A folder with one subfolder, and a command prefix under which both are read-only."""
    folder = tmp_path / "ro"
    (folder / "existing").mkdir(parents=True)
    with read_only_for_command(folder) as prefix:
        yield folder, prefix


@pytest.mark.parametrize("case", ["run dir exists", "run dir to create", "sweep dir"])
def test_unwritable_output_folder_is_one_line_error(read_only, case, tiny_overrides):
    folder, prefix = read_only
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    if case == "sweep dir":
        target, key = folder / "sweep", "hydra.sweep.dir"
        args = ["-m", f"hydra.sweep.dir={target}", "lang=de,sw"]
    else:
        target, key = (folder / "existing" if case == "run dir exists" else folder / "new" / "run"), "hydra.run.dir"
        args = [f"hydra.run.dir={target}"]
    result = cli([*args[:1], *tiny_overrides, *args[1:]], prefix=prefix)  # Hydra wants -m before overrides
    assert_one_line_error(result, f"cannot write to the output folder {target}", f"{key}=")
    assert result.returncode == 1
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before


def test_an_unwritable_logger_dir_is_one_line_error_before_training(read_only, tiny_overrides, tmp_path):
    """W&B would fall back to a temporary folder with a warning, where `sparsenlp-report sync` never looks."""
    folder, prefix = read_only
    out = tmp_path / "run"
    result = cli([*tiny_overrides, "logger=wandb", f"logger.dir={folder / 'wandb-files'}", f"hydra.run.dir={out}"],
                 prefix=prefix)
    assert_one_line_error(result, f"logger.dir={folder / 'wandb-files'}", "cannot be written", "logger.dir=null")
    assert not out.exists()


@pytest.mark.parametrize("case", ["sweep relaunch", "run dir"])
def test_unwritable_job_folder_left_by_an_earlier_run_is_one_line_error(tmp_path, case, tiny_overrides):
    """A writable sweep (or run) folder holding a job folder that cannot be written: a relaunch stops before
    any job, naming what cannot be written (Hydra would fail in each job's logging set-up)."""
    root = tmp_path / "out"
    if case == "sweep relaunch":  # job 0 of an earlier sweep is read-only, job 1 is fine
        for job in ("0", "1"):
            (root / job / ".hydra").mkdir(parents=True)
            (root / job / ".hydra" / "config.yaml").write_text("seed: 1\n")
        blocked, key, args = root / "0", "hydra.sweep.dir", ["-m", f"hydra.sweep.dir={root}", "lang=de,sw"]
    else:  # the run folder is writable, the config folder of its earlier run is not
        (root / ".hydra").mkdir(parents=True)
        blocked, key, args = root / ".hydra", "hydra.run.dir", [f"hydra.run.dir={root}"]
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    with read_only_for_command(blocked) as prefix:
        result = cli([*args[:1], *tiny_overrides, *args[1:]], prefix=prefix)
    assert_one_line_error(result, f"cannot write to {blocked}", f"chmod -R u+w {root}", f"{key}=")
    assert result.returncode == 1
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # no job ran, nothing was added


# --- one live process per job folder ---------------------------------------------------------------------------


def _short_job(tiny_overrides: list[str], out: Path) -> list[str]:
    return [*tiny_overrides, "lang=sw", "trainer.max_steps=5", "trainer.eval_every=5", "trainer.cpu_threads=1",
            f"hydra.run.dir={out}"]


HOLD = """
import sys
from pathlib import Path
from sparsenlp.runlock import job_lock
with job_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.mark.slow
def test_a_job_held_by_a_live_process_is_refused_and_a_dead_holders_lock_is_taken_over(tmp_path, tiny_overrides):
    out = tmp_path / "job"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = cli(_short_job(tiny_overrides, out))
        assert_one_line_error(refused, f"job folder {out} is in use by pid {holder.pid} on host {socket.gethostname()}",
                              f"kill {holder.pid}")
        assert refused.returncode == 1 and holder.poll() is None
        assert not (out / "results.json").exists() and not (out / "checkpoints").exists()  # nothing of the job ran
    finally:
        holder.kill()  # SIGKILL: no clean-up, the lock file and its holder's pid stay behind
        holder.wait()
    assert json.loads((out / runlock.LOCK_NAME).read_text())["pid"] == holder.pid

    again = cli(_short_job(tiny_overrides, out))
    assert again.returncode == 0, again.stderr[-3000:]
    log = (out / "sparsenlp.log").read_text()
    assert f"taking over the job lock of pid {holder.pid} on host {socket.gethostname()}" in log
    assert json.loads((out / "results.json").read_text())["status"] == "complete"
    assert not (out / runlock.LOCK_NAME).exists()


# --- the sweep's main process killed under its joblib workers -----------------------------------------------------


def _sweep_args(tiny_overrides: list[str], sweep: Path) -> list[str]:
    """No periodic checkpoint before step 10,000: whatever a relaunch resumes from was written on the stop."""
    return ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}", *tiny_overrides,
            "lang=sw", "pruning=dense,global_magnitude", "pruning.sparsity=0.5", "trainer.max_steps=400",
            "trainer.eval_every=400", "trainer.checkpoint_every=10000", "trainer.cpu_threads=1"]


def _training(job: Path) -> bool:
    log = job / "sparsenlp.log"
    return log.is_file() and "features:" in log.read_text() and (job / runlock.LOCK_NAME).is_file()


def _lock_holders(sweep: Path, jobs: int, proc: subprocess.Popen) -> dict[Path, int]:
    """job folder → pid of the process training it, once every job has read its data and trained a while."""
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended (status {proc.returncode}) before it could be interrupted")
        listing = joblist.read(sweep) if (sweep / joblist.JOBS).is_file() else None
        dirs = [sweep / job.folder for job in listing.jobs] if listing else []
        if len(dirs) == jobs and all(_training(d) for d in dirs):
            time.sleep(3)  # some optimizer steps into training
            holders = {d: runlock.holder(d / runlock.LOCK_NAME).get("pid") for d in dirs}
            if all(holders.values()):
                return holders
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_joblib_workers_stop_with_the_sweep_and_a_relaunch_resumes_every_job(tmp_path, tiny_overrides, sig):
    sweep = tmp_path / "sweep"
    args = _sweep_args(tiny_overrides, sweep)
    main = subprocess.Popen([sys.executable, "-m", "sparsenlp", *args], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        holders = _lock_holders(sweep, 2, main)
        assert main.pid not in holders.values()  # the jobs run in worker processes
        main.send_signal(sig)  # only the main process, as `kill` on its pid would
        main.wait()
        # the workers notice within about a second; the wait only guards against a hang
        gone, alive = psutil.wait_procs([psutil.Process(p) for p in holders.values() if psutil.pid_exists(p)],
                                        timeout=120)
        assert not alive, f"workers still running after the sweep's main process died: {alive}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(main.pid, signal.SIGKILL)  # whatever is left of this test's process group
    for job in holders:
        assert not (job / "results.json").exists()  # stopped mid-training, not left to finish on their own
        assert "the sweep's main process" in (job / "sparsenlp.log").read_text()
        assert (job / "checkpoints" / "last.pt").is_file()  # written on the stop: no periodic one was due

    again = cli(args)
    assert again.returncode == 0, again.stderr[-3000:]
    for job in holders:
        record = json.loads((job / "results.json").read_text())
        assert record["status"] == "complete" and record["training"]["resumed_from_step"] > 0
        assert not (job / runlock.LOCK_NAME).exists()


def test_a_file_system_without_locks_runs_the_job_unlocked_with_a_warning(tmp_path, monkeypatch, caplog):
    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(runlock.fcntl, "flock", no_flock)
    ran = []
    with caplog.at_level("WARNING", logger="sparsenlp.runlock"), runlock.job_lock(tmp_path / "job"):
        ran.append(True)
    assert ran and "runs without protection" in caplog.text and os.strerror(errno.ENOLCK) in caplog.text
    assert not (tmp_path / "job" / runlock.LOCK_NAME).exists()
