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

from tests.conftest import REPO
from tests.helpers import cli, sweep_overrides
from tests.wandb_offline import read_offline_run

pytestmark = pytest.mark.slow

GRID = ["lang=de,sw", "pruning=dense,global_magnitude"]


def _records(sweep: Path) -> dict[tuple[str, str], dict]:
    found = {}
    for path in sorted(sweep.glob("*/results.json")):
        record = json.loads(path.read_text())
        found[(record["config"]["lang"], record["arm"]["method"])] = record
    return found


@pytest.fixture(scope="module")
def joblib_sweep(tmp_path_factory, tiny_overrides):
    sweep = tmp_path_factory.mktemp("sweep") / "grid"
    args = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}",
            *sweep_overrides(tiny_overrides), *GRID]
    result = cli(args)
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep, args


def test_joblib_multirun_writes_four_complete_records(joblib_sweep):
    sweep, _ = joblib_sweep
    records = _records(sweep)
    assert sorted(records) == [("de", "dense"), ("de", "global_magnitude"), ("sw", "dense"),
                               ("sw", "global_magnitude")]
    for (lang, method), record in records.items():
        assert record["status"] == "complete" and record["run"]["sweep_dir"] == str(sweep.resolve())
        if method == "dense":  # the sweeper dropped pruning.sparsity=0.5 from the dense jobs
            assert record["pruning"] is None and record["config"]["pruning"] == {"method": "dense"}
        else:
            assert record["pruning"]["achieved"] == pytest.approx(0.5, abs=1e-3)


def test_offline_wandb_runs_carry_config_tags_and_test_f1(joblib_sweep):
    sweep, _ = joblib_sweep
    for job_dir in sorted(p.parent for p in sweep.glob("*/results.json")):
        record = json.loads((job_dir / "results.json").read_text())
        run = read_offline_run(job_dir)
        lang, arm = record["config"]["lang"], record["arm"]
        assert run["config"]["lang"] == lang and run["config"]["arm"] == arm
        assert run["config"]["data"]["root"] == record["config"]["data"]["root"]  # resolved, not interpolated
        tier = "high" if lang == "de" else "low"
        dense = arm["method"] == "dense"
        assert {f"lang:{lang}", f"tier:{tier}", f"method:{arm['method']}",
                f"schedule:{'none' if dense else 'oneshot'}", f"sparsity:{0 if dense else 0.5}"} <= set(run["tags"])
        assert run["group"] == str(sweep) and run["job_type"] == "train"
        assert run["name"] == (f"{lang}-dense-seed42" if dense else f"{lang}-global-s0.5-seed42")
        assert run["config"]["lang_info"]["tier"] == tier
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
                  *[o for o in sweep_overrides(tiny_overrides) if not o.startswith("logger")], "logger=none",
                  "lang=sw", "pruning=dense,global_magnitude"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(_records(sweep)) == [("sw", "dense"), ("sw", "global_magnitude")]
    assert list((sweep / ".submitit").iterdir())  # the jobs really went through submitit


def _train_cmd(out: Path, tiny_overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "sparsenlp", *tiny_overrides, "lang=sw", "pruning=global_magnitude",
            "schedule=cubic", "pruning.sparsity=0.6", "schedule.start=0.1", "schedule.end=0.7",
            "schedule.updates=7", "trainer.max_steps=60", "trainer.eval_every=20", "trainer.checkpoint_every=10",
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
    assert b["pruning"]["per_tensor"] == a["pruning"]["per_tensor"] and b["pruning"]["trace"] == a["pruning"]["trace"]
    weights_a, weights_b = load_file(reference / "model" / "model.safetensors"), load_file(resumed / "model" / "model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)  # same zeros, same values, bit for bit


def _listed(stdout: str) -> list[tuple[dict[str, str], str]]:
    """The jobs a dry run lists: (overrides, folder) per line."""
    jobs = []
    for line in stdout.splitlines():
        if " -> " in line:
            overrides, folder = line.split(" -> ")
            jobs.append((dict(o.split("=", 1) for o in overrides.split()), folder))
    return jobs


def test_the_paper_sweep_enumerates_every_arm_once_and_is_checked_whole(tmp_path):
    """experiment=paper over the 39 local languages, checked and listed by the study sweeper without launching:
    (1 dense + 2 methods × 7 sparsities × 2 embedding arms) × (39 languages + the joint run) × 3 seeds, each dense
    baseline once, each job composed, validated and named by what it runs."""
    from collections import Counter

    from tests.conftest import WIKIANN

    result = cli(["-m", "experiment=paper", "hydra.sweeper.dry_run=true", f"data.root={WIKIANN}", "languages=local39",
                  f"hydra.sweep.dir={tmp_path / 'paper'}"])
    assert result.returncode == 0, result.stderr[-2000:]
    listed = _listed(result.stdout)
    jobs = [job for job, _ in listed]
    langs = {job["lang"] for job in jobs}
    assert len(langs) == 40 and "th" not in langs and "all" in langs  # 39 per-language + the joint regime
    arm = lambda job: (job["pruning"], job.get("pruning.sparsity"), job.get("pruning.prune_embeddings"))  # noqa: E731
    per_arm = Counter(arm(job) for job in jobs)
    assert per_arm[("dense", None, None)] == 40 * 3  # once per (regime, language, seed)
    assert all(job["schedule"] == "none" for job in jobs if job["pruning"] == "dense")  # not the paper's cubic
    sparse = [a for a in per_arm if a[0] != "dense"]
    assert {a[0] for a in sparse} == {"global_magnitude", "layerwise_magnitude"}
    assert {a[1] for a in sparse} == {"0.5", "0.6", "0.7", "0.8", "0.9", "0.95", "0.98"}
    assert {a[2] for a in sparse} == {"False", "True"} and len(sparse) == 2 * 7 * 2
    assert all(per_arm[a] == 40 * 3 for a in sparse)
    assert len(jobs) == len({tuple(sorted(job.items())) for job in jobs}) == (1 + 28) * 40 * 3
    folders = [folder for _, folder in listed]
    assert len(set(folders)) == len(folders)  # every job its own folder, named by what it runs
    assert folders[0].startswith("af-dense-seed1-") and any(f.startswith("39langs-global-s0.98-emb-seed3-") for f in folders)
    assert "dry run: 3,480 jobs to run, 0 repeated, 0 invalid" in result.stdout
    assert not (tmp_path / "paper").exists() or not any((tmp_path / "paper").rglob("results.json"))


def test_lang_each_leaves_out_languages_without_local_files(tmp_path):
    from tests.conftest import WIKIANN

    result = cli(["-m", "experiment=paper", "hydra.sweeper.dry_run=true", f"data.root={WIKIANN}", "lang=each",
                  "pruning=dense", "seed=1", f"hydra.sweep.dir={tmp_path / 'paper'}"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no data under" in result.stdout + result.stderr and "for th" in result.stdout + result.stderr
    assert len(_listed(result.stdout)) == 39
