"""Sweeps through real Hydra launchers, offline W&B runs read back from disk, skip-on-relaunch and resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sparsenlp.tracking.wandb import read_offline_run
from tests.conftest import REPO
from tests.helpers import cli

pytestmark = pytest.mark.slow

GRID = ["lang=de,sw", "pruning.sparsity=0.0,0.5"]


def _sweep_overrides(tiny_overrides: list[str]) -> list[str]:
    return [o for o in tiny_overrides if not o.startswith("logger=")] + [
        "pruning=global_magnitude", "schedule=oneshot", "trainer.max_steps=10", "trainer.eval_every=10",
        "data.train_limit=200", "data.dev_limit=50", "data.test_limit=50", "logger=wandb", "logger.mode=offline",
        "logger.system_metrics=false", "trainer.cpu_threads=1",
    ]


def _records(sweep: Path) -> dict[tuple[str, float], dict]:
    found = {}
    for path in sorted(sweep.glob("*/results.json")):
        record = json.loads(path.read_text())
        found[(record["config"]["lang"], record["config"]["pruning"]["sparsity"])] = record
    return found


@pytest.fixture(scope="module")
def joblib_sweep(tmp_path_factory, tiny_overrides):
    sweep = tmp_path_factory.mktemp("sweep") / "grid"
    args = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}",
            *_sweep_overrides(tiny_overrides), *GRID]
    result = cli(args)
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep, args


def test_joblib_multirun_writes_four_complete_records(joblib_sweep):
    sweep, _ = joblib_sweep
    records = _records(sweep)
    assert sorted(records) == [("de", 0.0), ("de", 0.5), ("sw", 0.0), ("sw", 0.5)]
    for (lang, sparsity), record in records.items():
        assert record["status"] == "complete" and record["run"]["sweep_dir"] == str(sweep.resolve())
        if sparsity == 0.0:
            assert record["sparsity"] is None
        else:
            assert record["sparsity"]["achieved"] == pytest.approx(0.5, abs=1e-3)


def test_offline_wandb_runs_carry_config_tags_and_test_f1(joblib_sweep):
    sweep, _ = joblib_sweep
    for job_dir in sorted(p.parent for p in sweep.glob("*/results.json")):
        record = json.loads((job_dir / "results.json").read_text())
        run = read_offline_run(job_dir)
        lang, sparsity = record["config"]["lang"], record["config"]["pruning"]["sparsity"]
        assert run["config"]["lang"] == lang and run["config"]["pruning"]["sparsity"] == sparsity
        assert run["config"]["data"]["root"] == record["config"]["data"]["root"]  # resolved, not interpolated
        tier = "high" if lang == "de" else "low"
        assert {f"lang:{lang}", f"tier:{tier}", "method:global_magnitude", "schedule:oneshot",
                f"sparsity:{sparsity}"} <= set(run["tags"])
        assert run["group"] == "/".join(sweep.parts[-2:]) and run["job_type"] == "train"
        assert f"lang={lang}" in run["name"] and f"pruning.sparsity={sparsity}" in run["name"]
        assert "data.root" not in run["name"] and "cpu_threads" not in run["name"]  # where, not what
        assert run["summary"]["test/f1"] == pytest.approx(record["test"][lang]["clean"]["f1"])
        assert run["exit_code"] == 0


def test_relaunch_skips_complete_jobs_and_reruns_a_deleted_one(joblib_sweep):
    sweep, args = joblib_sweep
    stamps = {p: p.stat().st_mtime_ns for p in sweep.glob("*/results.json")}
    again = cli(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in sweep.glob("*/results.json")} == stamps  # nothing ran again

    victim = sorted(stamps)[1]
    victim.unlink()
    third = cli(args)
    assert third.returncode == 0, third.stderr[-3000:]
    after = {p: p.stat().st_mtime_ns for p in sweep.glob("*/results.json")}
    assert victim in after
    assert {p for p in after if after[p] != stamps.get(p)} == {victim}


def test_submitit_local_launcher_runs_a_two_job_sweep(tmp_path, tiny_overrides):
    sweep = tmp_path / "submitit"
    result = cli(["-m", "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}", "hydra.launcher.timeout_min=10",
                  *[o for o in _sweep_overrides(tiny_overrides) if not o.startswith("logger")], "logger=none",
                  "lang=sw", "pruning.sparsity=0.0,0.5"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(_records(sweep)) == [("sw", 0.0), ("sw", 0.5)]
    assert list((sweep / ".submitit").iterdir())  # the jobs really went through submitit


def _train_cmd(out: Path, tiny_overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "sparsenlp", *tiny_overrides, "lang=sw", "pruning=global_magnitude",
            "schedule=cubic", "pruning.sparsity=0.6", "schedule.start_step=5", "schedule.end_step=40",
            "schedule.frequency=5", "trainer.max_steps=60", "trainer.eval_every=20", "trainer.checkpoint_every=10",
            "trainer.save_model=true", "trainer.cpu_threads=1", "data.train_limit=400", f"hydra.run.dir={out}",
            # a loss entry every 7 steps: every checkpoint (10, 20, ...) falls between two entries
            "trainer.log_every=7"]


def test_killed_run_resumes_to_the_same_result(tmp_path, tiny_overrides):
    reference = tmp_path / "uninterrupted"
    ok = subprocess.run(_train_cmd(reference, tiny_overrides), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr[-3000:]

    resumed = tmp_path / "resumed"
    proc = subprocess.Popen(_train_cmd(resumed, tiny_overrides), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoint = resumed / "checkpoints" / "last.pt"
    deadline = time.time() + 300
    while time.time() < deadline:
        if checkpoint.is_file() and torch.load(checkpoint, weights_only=False)["step"] >= 30:
            break
        if proc.poll() is not None:
            pytest.fail("the run finished before it could be interrupted; raise max_steps")
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (resumed / "results.json").exists()

    again = subprocess.run(_train_cmd(resumed, tiny_overrides), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    a = json.loads((reference / "results.json").read_text())
    b = json.loads((resumed / "results.json").read_text())
    assert b["training"]["resumed_from_step"] >= 30 and a["training"]["resumed_from_step"] is None
    assert b["test"] == a["test"] and b["dev"] == a["dev"]
    # the logged training curve too: the loss entry after the resume averages the same batches
    assert b["training"]["history"] == a["training"]["history"]
    assert b["training"]["dev_history"] == a["training"]["dev_history"]
    assert b["sparsity"]["per_tensor"] == a["sparsity"]["per_tensor"] and b["sparsity"]["trace"] == a["sparsity"]["trace"]
    weights_a, weights_b = load_file(reference / "model" / "model.safetensors"), load_file(resumed / "model" / "model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)  # same zeros, same values, bit for bit
