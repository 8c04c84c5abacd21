"""A job folder belongs to one config and one live process, and a job that stops keeps its checkpoint or nothing.

Through the real CLI: a checkpoint is resumed only by the config that wrote it (kill -9, then a relaunch
with another seed, method or sparsity is refused on one line naming both hashes, the folder untouched); a
second job never touches a running job's files, not even the config copy Hydra writes before any task code
(also inside joblib's worker processes); a damaged checkpoint is reported and trained again; SIGTERM,
SIGUSR1 and Ctrl-C between two checkpoints write one at the current step, and the relaunch ends bit-identical
to an uninterrupted run; a stop before training keeps nothing.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sparsenlp import jobdir, runlock
from sparsenlp.errors import SparseNLPError
from sparsenlp.identity import config_hash
from sparsenlp.training import stop
from sparsenlp.training.checkpoint import DamagedCheckpoint, checkpoint_path, read_checkpoint, save_checkpoint
from tests.conftest import REPO
from tests.helpers import assert_one_line_error, assert_same_result, cli, compose_run


def _job(tiny_overrides: list[str], out: Path, *extra: str) -> list[str]:
    """A job with gradual pruning, an eval (and a log line) every 20 steps and no periodic checkpoint."""
    return [*tiny_overrides, "lang=sw", "pruning=global_magnitude", "schedule=cubic", "pruning.sparsity=0.6",
            "schedule.start=0.1", "schedule.end=0.7", "schedule.updates=7", "trainer.max_steps=300",
            "trainer.eval_every=20", "trainer.log_every=7", "trainer.checkpoint_every=null", "trainer.save_model=true",
            "trainer.cpu_threads=1", f"hydra.run.dir={out}", *extra]


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sparsenlp", *args], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(proc: subprocess.Popen, ready, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the job ended (status {proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _training(out: Path) -> bool:
    """The job is in its training loop: it has logged its first dev evaluation (step 20)."""
    log = out / "sparsenlp.log"
    return log.is_file() and "step 20: dev F1" in log.read_text()


def _checkpoint_step(out: Path) -> int | None:
    path = checkpoint_path(out)
    try:
        return int(torch.load(path, weights_only=False)["step"]) if path.is_file() else None
    except Exception:  # noqa: BLE001 - being renamed into place right now
        return None


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file below ``folder``: content hash and modification time."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _record(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_overrides) -> Path:
    """An uninterrupted run of :func:`_job`."""
    out = tmp_path_factory.mktemp("reference") / "run"
    result = cli(_job(tiny_overrides, out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


# --- a checkpoint belongs to its config ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_checkpoint_is_resumed_only_by_the_config_that_wrote_it(tmp_path, tiny_overrides, reference):
    out = tmp_path / "run"
    args = _job(tiny_overrides, out, "trainer.checkpoint_every=10")
    proc = _start(args)
    try:
        _wait_for(proc, lambda: (_checkpoint_step(out) or 0) >= 10, "its first checkpoint")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9: no clean-up at all
        proc.wait()
    owner = json.loads((out / jobdir.MARKER).read_text())["config_hash"]
    (out / runlock.LOCK_NAME).unlink()  # the dead holder's lock file: a refused relaunch takes it over and drops it
    before = _snapshot(out)
    for extra, differs in ((["seed=7"], "seed=42->7"), (["pruning=layerwise_magnitude"], "pruning.method="),
                           (["pruning.sparsity=0.7"], "pruning.sparsity=0.6->0.7")):
        refused = cli([*args, *extra])
        assert_one_line_error(refused, f"job folder {out} belongs to another config (config hash {owner}; this job is ",
                              differs, "relaunch that config", "hydra.run.dir=")
        assert refused.returncode == 1
        assert _snapshot(out) == before  # not even Hydra's config copy or the log was touched

    resumed = cli(args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _record(out)["training"]["resumed_from_step"] >= 10 and _record(out)["config"]["seed"] == 42
    assert_same_result(reference, out)


@pytest.mark.slow
def test_a_sweep_relaunched_with_its_values_reordered_mixes_nothing(tmp_path, tiny_overrides):
    """The same points in another order land on other job numbers: no record is overwritten by, or resumed
    as, another config's; every folder's record is the config its marker names."""
    sweep = tmp_path / "sweep"
    common = ["-m", f"hydra.sweep.dir={sweep}", *tiny_overrides, "lang=sw", "trainer.max_steps=5",
              "trainer.eval_every=5", "trainer.cpu_threads=1"]
    first = cli([*common, "seed=1,2"])
    assert first.returncode == 0, first.stderr[-3000:]
    before = _snapshot(sweep)
    again = cli([*common, "seed=2,1"])
    if again.returncode != 0:
        assert_one_line_error(again, "belongs to another config", "seed=")
    records = [p for p in before if p.endswith("results.json")]
    assert {p: _snapshot(sweep)[p] for p in records} == {p: before[p] for p in records}
    for job in sorted(p.parent for p in sweep.glob("*/results.json")):
        marker = json.loads((job / jobdir.MARKER).read_text())
        assert marker["config_hash"] == config_hash(_record(job)["config"])


@pytest.mark.slow
def test_a_job_run_again_into_its_complete_folder_changes_nothing_there(tmp_path, tiny_overrides):
    """``hydra.run.dir`` at a folder that holds this config's complete record: the job says it skips, and every
    file there — Hydra's copies of the config that made the record, the log — stays as it was."""
    out = tmp_path / "run"
    args = [*tiny_overrides, "lang=sw", "trainer.max_steps=5", "trainer.cpu_threads=1", f"hydra.run.dir={out}"]
    first = cli(args)
    assert first.returncode == 0, first.stderr[-3000:]
    before = _snapshot(out)
    again = cli(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already holds a complete record of this config" in again.stdout + again.stderr
    assert _snapshot(out) == before


def test_a_checkpoint_of_another_config_or_of_none_is_refused_and_a_damaged_one_named(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    path = tmp_path / "last.pt"
    save_checkpoint(path, identity="aaaaaaaaaaaa", model=model, optimizer=optimizer, scheduler=scheduler,
                    callbacks=[], step=3)
    assert read_checkpoint(path, "aaaaaaaaaaaa")["step"] == 3
    with pytest.raises(SparseNLPError, match=f"checkpoint {path} was written by config hash aaaaaaaaaaaa, this job "
                                             "is config hash bbbbbbbbbbbb; relaunch that config.*or delete"):
        read_checkpoint(path, "bbbbbbbbbbbb")
    save_checkpoint(path, identity=None, model=model, optimizer=optimizer, scheduler=scheduler, callbacks=[], step=3)
    with pytest.raises(SparseNLPError, match="written by a config it does not name"):
        read_checkpoint(path, "bbbbbbbbbbbb")
    data = path.read_bytes()
    for name, damaged in (("truncated", data[: len(data) // 2]),
                          ("bit-flipped", data[:600] + bytes([data[600] ^ 0x10]) + data[601:])):
        path.write_bytes(damaged)
        with pytest.raises(DamagedCheckpoint) as info:
            read_checkpoint(path, None)
        assert info.value.path == path and info.value.reason, name


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "bit-flipped"])
def test_a_damaged_checkpoint_is_named_and_trained_again_to_the_same_result(tmp_path, tiny_overrides, reference,
                                                                            damage):
    out = tmp_path / "run"
    args = _job(tiny_overrides, out, "trainer.checkpoint_every=100", "trainer.keep_checkpoint=true")
    first = cli(args)
    assert first.returncode == 0, first.stderr[-3000:]
    checkpoint = checkpoint_path(out)
    data = checkpoint.read_bytes()
    middle = len(data) // 2
    checkpoint.write_bytes(data[:middle] if damage == "truncated" else
                           data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:])
    (out / "results.json").unlink()  # as if the job had been killed after its last checkpoint

    again = cli(args)  # was: a traceback on every relaunch until the file was deleted by hand
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"damaged checkpoint {checkpoint}" in (out / "sparsenlp.log").read_text()
    assert _record(out)["training"]["resumed_from_step"] is None
    assert_same_result(reference, out)


# --- a second job never touches a running job's files ----------------------------------------------------------


@pytest.mark.slow
def test_a_second_job_never_touches_a_running_jobs_files(tmp_path, tiny_overrides):
    out = tmp_path / "run"
    running = _start(_job(tiny_overrides, out, "trainer.max_steps=100000", "trainer.eval_every=1000"))
    try:
        log = out / "sparsenlp.log"
        _wait_for(running, lambda: log.is_file() and "features:" in log.read_text(),
                  "the job to read its data")  # long after Hydra's writes
        assert runlock.holder(out / runlock.LOCK_NAME).get("pid") == running.pid
        config_copy = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / ".hydra").iterdir()}
        marker = (out / jobdir.MARKER).read_bytes()
        for extra in ([], ["seed=7"]):  # the same config and another one: both refused, neither writes
            second = cli(_job(tiny_overrides, out, *extra))
            assert_one_line_error(second, f"job folder {out} is in use by pid {running.pid}", f"kill {running.pid}")
            assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / ".hydra").iterdir()} == config_copy
            assert (out / jobdir.MARKER).read_bytes() == marker
        assert running.poll() is None
    finally:
        os.killpg(running.pid, signal.SIGKILL)
        running.wait()


HOLD = """
import sys
from pathlib import Path
from sparsenlp.runlock import job_lock
with job_lock(Path(sys.argv[1])), job_lock(Path(sys.argv[2])):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.mark.slow
def test_a_sweep_leaves_the_jobs_another_process_holds_untouched(tmp_path, tiny_overrides):
    """A relaunch (here with joblib workers) while another process still runs some of its jobs: those jobs are
    left to it, said in the end-of-sweep line, and not one of their files is written."""
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}", *tiny_overrides,
            "lang=de,sw", "trainer.max_steps=5", "trainer.cpu_threads=1"]
    listed = cli([*args, "hydra.sweeper.dry_run=true"])
    assert listed.returncode == 0, listed.stderr[-2000:]
    jobs = [sweep / line.split(" -> ")[1].strip() for line in listed.stdout.splitlines() if " -> " in line]
    assert len(jobs) == 2, listed.stdout
    for job in jobs:  # what a running sweep's jobs have written
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "config.yaml").write_text("lang: de\n")
        (job / "sparsenlp.log").write_text("training\n")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, *map(str, jobs)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = _snapshot(sweep)
        result = cli(args)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "0 ran, 0 skipped (complete), 2 left to the process still running them" in result.stdout
        after = _snapshot(sweep)
        # the sweep's own files (multirun.yaml, its job index) are rewritten by every launch into the folder
        in_jobs = {k: v for k, v in after.items() if "/" in k}
        assert in_jobs == before, "a held job's files were written"
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=1"]], ids=["basic", "joblib"])
def test_a_job_another_launch_takes_while_the_sweep_runs_is_left_to_it_and_the_rest_run(tmp_path, tiny_overrides,
                                                                                         launcher):
    """Two launches of one sweep: the folder of a later job is taken by another process after this launch's
    check. That job is left to it (nothing of it written, its log untouched), the sweep's other jobs run, and the
    end-of-sweep line says so; no failure."""
    sweep = tmp_path / "sweep"
    args = ["-m", *launcher, f"hydra.sweep.dir={sweep}", *tiny_overrides, "lang=de,sw,yo", "trainer.max_steps=60",
            "trainer.cpu_threads=1"]
    listed = cli([*args, "hydra.sweeper.dry_run=true"])
    folders = {line.split(" -> ")[1].split("-")[0]: sweep / line.split(" -> ")[1].strip()
               for line in listed.stdout.splitlines() if " -> " in line}
    assert set(folders) == {"de", "sw", "yo"}, listed.stdout
    taken = folders["sw"]
    (taken / ".hydra").mkdir(parents=True)
    (taken / "sparsenlp.log").write_text("training\n")
    out_file, err_file = (tmp_path / "stdout").open("w+"), (tmp_path / "stderr").open("w+")
    launch = subprocess.Popen([sys.executable, "-m", "sparsenlp", *args], cwd=REPO, stdout=out_file, stderr=err_file,
                              text=True, start_new_session=True)
    holder = None
    try:  # once the first job trains, another process takes the second job's folder
        deadline = time.monotonic() + 300
        while not ((folders["de"] / "sparsenlp.log").is_file()
                   and "features:" in (folders["de"] / "sparsenlp.log").read_text()):
            assert launch.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr").read_text()[-2000:]
            time.sleep(0.05)
        holder = subprocess.Popen([sys.executable, "-c", HOLD, str(taken), str(tmp_path / "unused")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert holder.stdout.readline().strip() == "held"
        before = _snapshot(taken)
        launch.wait(timeout=600)
        stdout, stderr = (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()
        assert launch.returncode == 0, stderr[-3000:]
        assert "2 ran, 0 skipped (complete), 1 left to the process still running them" in stdout, stdout[-2000:]
        assert _snapshot(taken) == before
        assert (folders["yo"] / "results.json").is_file() and (folders["de"] / "results.json").is_file()
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGKILL)


# --- a job asked to stop ------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1, signal.SIGINT], ids=["TERM", "USR1", "INT"])
def test_a_stop_signal_between_checkpoints_loses_no_step(tmp_path, tiny_overrides, reference, sig):
    """No periodic checkpoint at all: the one written on the signal is where the relaunch resumes, and it ends
    bit-identical to the uninterrupted run."""
    out = tmp_path / "run"
    args = _job(tiny_overrides, out)
    proc = _start(args)
    try:
        _wait_for(proc, lambda: _training(out), "training started")
        proc.send_signal(sig)  # the job only (kill <pid>; Ctrl-C reaches the job the same way)
        _, stderr = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + sig, stderr[-3000:]
    assert "Traceback" not in stderr
    step = _checkpoint_step(out)
    assert step is not None and 20 <= step < 300
    name = "Ctrl-C (SIGINT)" if sig == signal.SIGINT else signal.Signals(sig).name
    assert stderr.strip().splitlines()[-1] == (f"sparsenlp: stopped by {name} at step {step} of 300; kept: its "
                                               f"checkpoint {checkpoint_path(out)} (relaunch the same command to "
                                               "resume from it)")
    assert not (out / "results.json").exists() and not (out / "predictions").exists()

    again = cli(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _record(out)["training"]["resumed_from_step"] == step
    assert_same_result(reference, out)


def test_a_stop_before_training_keeps_nothing(tmp_path, tiny_overrides, monkeypatch):
    """A real SIGINT while the data is read: the job stops at once and removes what it wrote."""
    import sparsenlp.train as train

    real = train.load_sentences

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "load_sentences", interrupted)
    out = tmp_path / "run"
    threads = torch.get_num_threads()
    try:
        with pytest.raises(stop.JobStopped) as info:
            train.run(compose_run([*tiny_overrides, "lang=sw"], out))
    finally:
        torch.set_num_threads(threads)
    assert info.value.code == 130 and info.value.detail == "; kept: nothing"
    assert not out.exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers are put back


@pytest.mark.slow
def test_ctrl_c_before_any_job_is_one_line(tmp_path, tiny_overrides):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "sparsenlp", *tiny_overrides, f"hydra.run.dir={out}"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # importing torch and the framework
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines() == [stderr.strip()] and stderr.startswith("sparsenlp: interrupted (Ctrl-C)")
    assert not out.exists()
