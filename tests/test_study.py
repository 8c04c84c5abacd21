"""A study grows and restarts without losing a result, through real Hydra launchers (joblib, and the basic
launcher where the test kills the sweep's own process):

- extending a sweep in every direction (seeds, languages, sparsities, methods) runs only the new jobs, each in a
  folder named by what it runs, and no record, log or W&B run of another job is touched; a changed setting is a
  new job, never a skip;
- a relaunch after a crash runs only the crashed job, which resumes from its checkpoint and its W&B run;
- a job that fails is named with its error line at the end of the sweep and by `sparsenlp-report status`;
- jobs that cannot run are listed, grouped, before anything starts.
"""
from __future__ import annotations

import json
import re
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sparsenlp.analysis import status
from sparsenlp.errors import SparseNLPError
from sparsenlp.identity import config_hash
from sparsenlp.tracking import joblist
from tests.conftest import REPO, WIKIANN
from tests.helpers import cli, sweep_overrides

pytestmark = pytest.mark.slow

JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


def _common(tiny_overrides: list[str]) -> list[str]:
    return [o for o in sweep_overrides(tiny_overrides) if not o.startswith("pruning.sparsity=")]


def _files(sweep: Path) -> dict[Path, tuple[int, bytes]]:
    """Every record, job log and W&B run file below the sweep, with its mtime and content."""
    found = [*sweep.glob("*/results.json"), *sweep.glob("*/*.log"), *sweep.glob("*/wandb/offline-run-*/*.wandb")]
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in found}


def _summary(result: subprocess.CompletedProcess) -> str:
    return result.stdout.strip().splitlines()[-1]


def test_extending_a_sweep_in_any_direction_runs_only_the_new_jobs(tmp_path, tiny_overrides):
    sweep = tmp_path / "study"
    common = ["-m", *JOBLIB, f"hydra.sweep.dir={sweep}", *_common(tiny_overrides)]
    base = {"lang": "de", "pruning": "global_magnitude", "pruning.sparsity": "0.5", "seed": "1"}
    steps = [  # (what changes, jobs that must run, jobs that must be skipped)
        ({}, 1, 0),
        ({"seed": "1,2"}, 1, 1),
        ({"lang": "de,sw"}, 1, 1),
        ({"pruning.sparsity": "0.5,0.9"}, 1, 1),
        ({"pruning": "dense,global_magnitude"}, 1, 1),
        ({"data.train_limit": "150"}, 1, 0),  # another setting: another job, never a skip
    ]
    for change, ran, skipped in steps:
        before = _files(sweep) if sweep.exists() else {}
        grid = [f"{k}={v}" for k, v in {**base, **change}.items()]
        if skipped:  # the dry run plans as the launch will run
            planned = cli([*common, *grid, "hydra.sweeper.dry_run=true"])
            assert f"dry run: {ran} jobs to run, 0 repeated, 0 invalid, {skipped} complete (skipped)" in planned.stdout
            assert sum(line.endswith(" (complete)") for line in planned.stdout.splitlines()) == skipped
        result = cli([*common, *grid])
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"{ran} ran, {skipped} skipped (complete)" in _summary(result), (change, _summary(result))
        after = _files(sweep)
        assert {p: after[p] for p in before} == before, change  # nothing of an earlier job was touched
        new_records = [p for p in after if p.name == "results.json" and p not in before]
        assert len(new_records) == ran, change
    folders = sorted(p.parent for p in sweep.glob("*/results.json"))
    assert len(folders) == 6 and not any(f.name.isdigit() for f in folders)
    for folder in folders:  # named by what it runs: the short name, then the hash of the job's own config
        record = json.loads((folder / "results.json").read_text())
        assert folder.name.endswith("-" + config_hash(record["config"]))
        assert folder.name.startswith(f"{record['config']['lang']}-{'dense' if record['arm']['method'] == 'dense' else 'global'}")
        (run,) = (folder / "wandb").glob("offline-run-*")  # one W&B run per job, named by it
        assert run.name.split("-")[-2] == config_hash(record["config"])
    listing = joblist.read(sweep)  # the latest launch's jobs
    assert listing is not None and [j.at_launch for j in listing.jobs] == [joblist.LAUNCHED]


def test_parallel_jobs_tag_their_console_lines_and_wandb_is_quiet(tmp_path, tiny_overrides):
    sweep = tmp_path / "study"
    result = cli(["-m", *JOBLIB, f"hydra.sweep.dir={sweep}", *_common(tiny_overrides), "lang=de,sw",
                  "pruning=global_magnitude", "pruning.sparsity=0.5", "trainer.log_every=5"])
    assert result.returncode == 0, result.stderr[-3000:]
    console = (result.stdout + result.stderr).splitlines()
    job_lines = [line for line in console if "[sparsenlp" in line]
    assert job_lines and all(line.startswith(("[de-global-s0.5-seed42] ", "[sw-global-s0.5-seed42] ")) for line in job_lines)
    for name in ("de-global-s0.5-seed42", "sw-global-s0.5-seed42"):
        mine = [line for line in job_lines if line.startswith(f"[{name}]")]
        assert sum("start → " in line for line in mine) == 1 and sum("done in" in line for line in mine) == 1
        assert sum("step 5/10: loss" in line for line in mine) == 1  # the loss, every trainer.log_every steps
    assert not any(line.startswith("wandb:") for line in console)  # offline W&B runs were written, silently
    assert len(list(sweep.glob("*/wandb/offline-run-*"))) == 2
    assert _summary(result).startswith(f"sweep {sweep}: 2 ran, 0 skipped (complete) in ")
    assert _summary(result).endswith(f"next: sparsenlp-report {sweep}")


def _checkpoint_step(path: Path) -> int:
    try:
        return int(torch.load(path, weights_only=False)["step"])
    except (OSError, RuntimeError, EOFError, KeyError):
        return -1


def test_a_relaunch_after_a_crash_runs_only_the_crashed_job_and_resumes_its_wandb_run(tmp_path, tiny_overrides):
    sweep = tmp_path / "study"
    args = ["-m", f"hydra.sweep.dir={sweep}", *_common(tiny_overrides), "lang=de,sw", "pruning=global_magnitude",
            "pruning.sparsity=0.5", "trainer.max_steps=60", "trainer.eval_every=30", "trainer.checkpoint_every=10"]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    proc = subprocess.Popen([sys.executable, "-m", "sparsenlp", *args], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    try:
        while True:  # the basic launcher runs de, then sw, in this process: kill it while sw trains
            assert proc.poll() is None, "the sweep ended before it could be killed; raise trainer.max_steps"
            assert time.monotonic() < deadline
            listing = joblist.read(sweep) if (sweep / joblist.JOBS).exists() else None
            if listing and _checkpoint_step(sweep / listing.jobs[1].folder / "checkpoints" / "last.pt") >= 20:
                break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    de, sw = (sweep / job.folder for job in listing.jobs)
    crashed = status.status(sweep)
    assert [job.state for job in crashed.jobs] == ["done", "failed"]
    assert "stopped without a record" in crashed.jobs[1].detail
    de_record = (de / "results.json").read_bytes()

    again = cli(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 ran, 1 skipped (complete)" in _summary(again)
    assert (de / "results.json").read_bytes() == de_record
    record = json.loads((sw / "results.json").read_text())
    assert record["training"]["resumed_from_step"] >= 20
    runs = sorted(sw.glob("wandb/offline-run-*"))
    assert len(runs) == 2 and len({run.name.rsplit("-", 2)[-2:][0] for run in runs}) == 1  # the same W&B run id
    sync = subprocess.run([sys.executable, "-m", "sparsenlp.analysis.report", "sync", str(sweep), "--dry-run"],
                          capture_output=True, text=True, cwd=REPO)
    # the killed attempt's file is uploaded with its relaunch into one W&B run, when W&B wrote it before the kill
    assert re.search(r"would upload [23] offline run\(s\) into 2 W&B run\(s\)", sync.stdout), sync.stdout + sync.stderr
    assert [job.state for job in status.status(sweep).jobs] == ["done", "done"]


def test_a_failed_job_is_named_with_its_error_at_the_end_and_by_status(tmp_path, tiny_overrides):
    data = tmp_path / "wikiann"
    for lang in ("de", "sw"):
        shutil.copytree(WIKIANN / lang, data / lang)
    train = data / "sw" / "train"
    good = train.read_text(encoding="utf-8")
    train.write_text("Nairobi\tB-LOC\textra\n" + good, encoding="utf-8")  # valid files, a bad line: found only by reading
    sweep = tmp_path / "study"
    args = ["-m", *JOBLIB, f"hydra.sweep.dir={sweep}",
            *[o for o in _common(tiny_overrides) if not o.startswith("data.root=")], f"data.root={data}",
            "lang=de,sw", "pruning=global_magnitude", "pruning.sparsity=0.5"]
    result = cli(args)
    assert result.returncode == 1
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1 and failed[0].startswith("failed: sw-global-s0.5-seed42-")
    assert "malformed line 1 in" in failed[0] and "Traceback" not in result.stderr
    assert "1 ran, 0 skipped (complete), 1 failed" in _summary(result) and "sparsenlp-report status" in _summary(result)
    report = status.status(sweep)
    assert [job.state for job in report.jobs] == ["done", "failed"]
    assert report.jobs[1].detail.startswith("malformed line 1 in")

    train.write_text(good, encoding="utf-8")  # fixed: the relaunch runs the failed job only
    again = cli(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 ran, 1 skipped (complete)" in _summary(again)
    assert [job.state for job in status.status(sweep).jobs] == ["done", "done"]
    assert not list(sweep.glob("*/failure.json"))
    # a job folder or a file given for the sweep: said so, with the folder to pass
    job = next(sweep.glob("*/results.json")).parent
    with pytest.raises(SparseNLPError, match=f"{job} is a job folder, not a sweep folder; pass the sweep folder "
                                             f"above it \\({sweep}\\)"):
        status.status(job)
    with pytest.raises(SparseNLPError, match="is a file, not a folder"):
        status.status(job / "results.json")


def test_jobs_that_cannot_run_are_listed_grouped_before_anything_starts(tmp_path, tiny_overrides):
    data = tmp_path / "wikiann"
    shutil.copytree(WIKIANN / "de", data / "de")
    sweep = tmp_path / "study"
    grid = ["lang=de,sw,yo", "pruning=global_magnitude", "pruning.sparsity=0.5,1.5"]
    common = ["-m", f"hydra.sweep.dir={sweep}", *[o for o in _common(tiny_overrides) if not o.startswith("data.root=")],
              f"data.root={data}"]
    result = cli([*common, *grid])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    err = result.stderr
    assert "5 of 6 jobs cannot run, so none was launched:" in err
    # each job's first problem (the config's before the data's), each problem once with its number of jobs
    assert err.count("3 jobs: pruning.sparsity=1.5 must be in [0, 1)") == 1
    assert err.count("1 job: no WikiANN folder for language 'sw'") == 1
    assert err.count("1 job: no WikiANN folder for language 'yo'") == 1
    assert err.count("e.g. ") == 2 + 1 + 1  # up to two examples a problem
    assert "launch the 1 valid job without them with hydra.sweeper.skip_invalid=true" in err
    assert not any(sweep.glob("*/.hydra")) and not (sweep / joblist.JOBS).exists()  # nothing started

    anyway = cli([*common, *grid, "hydra.sweeper.skip_invalid=true"])
    assert anyway.returncode == 0, anyway.stderr[-3000:]
    assert "5 of 6 jobs cannot run, are left out:" in anyway.stderr
    assert "1 ran, 0 skipped (complete), 5 invalid (not launched)" in _summary(anyway)
    listing = joblist.read(sweep)
    assert listing is not None and len(listing.jobs) == 1 and len(listing.invalid) == 5


def test_a_relaunch_leaves_a_job_that_a_live_process_still_runs(tmp_path, tiny_overrides):
    sweep = tmp_path / "study"
    args = ["-m", f"hydra.sweep.dir={sweep}", *_common(tiny_overrides), "lang=de,sw", "pruning=global_magnitude",
            "pruning.sparsity=0.5"]
    listed = cli([*args, "hydra.sweeper.dry_run=true"])
    assert listed.returncode == 0, listed.stderr[-3000:]
    folders = [line.split(" -> ")[1] for line in listed.stdout.splitlines() if " -> " in line]
    busy = sweep / folders[1]
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from sparsenlp.runlock import job_lock\nwith job_lock(Path(sys.argv[1])):\n"
                               "    print('held', flush=True); time.sleep(600)", str(busy)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"  # e.g. the same job, launched earlier, still training
        result = cli(args)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 ran, 0 skipped (complete), 1 left to the process still running them" in _summary(result)
    assert (sweep / folders[0] / "results.json").is_file() and not (busy / "results.json").exists()
