"""Sweeps through SLURM for real: a one-node cluster started by the tests (tests/slurm.py) runs a
``hydra/launcher=submitit_slurm`` sweep to complete records; a study larger than the cluster's MaxArraySize goes in
as several arrays from a launch that returns at once (followed with ``sparsenlp-report status``), each job granted
a GPU and reading its model and data from a shared folder offline; a job requeued mid-training (``scontrol
requeue``) resumes from its checkpoint to exactly the result of an uninterrupted run; stopped between checkpoints
(``scontrol requeue``, the time limit's signal), it checkpoints where it is and loses no step."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO
from sparsenlp.analysis import status
from sparsenlp.tracking import joblist
from tests.conftest import MBERT_TOKENIZER
from tests.helpers import assert_same_result, cli
from tests.slurm import MAX_ARRAY_SIZE, PARTITION, SlurmCluster, slurm_cluster  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow

# one CPU and 1 GB per job: the node is this machine (the launcher's defaults ask for a GPU and 32 GB)
LAUNCHER = ["hydra/launcher=submitit_slurm", f"hydra.launcher.partition={PARTITION}", "hydra.launcher.gpus_per_node=null",
            "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10"]


def _job_dirs(sweep: Path) -> list[Path]:
    """The sweep's job folders (named by what they run), in the order of its job list."""
    listing = joblist.read(sweep)
    assert listing is not None, f"no job list in {sweep}"
    return [sweep / job.folder for job in listing.jobs]


def _job_ids(sweep: Path) -> list[str]:
    """The SLURM ids of a sweep's jobs (<array>_<task>, or <job> for a one-job sweep), from submitit's folders."""
    folder = sweep / ".submitit"
    return sorted(p.parent.name for p in folder.glob("*/*_submitted.pkl")) if folder.is_dir() else []


# states in which SLURM may still change what sacct says of a job
UNSETTLED = {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "REQUEUED", "RESIZING", "SUSPENDED"}


def _states(cluster: SlurmCluster, job_id: str, settle_s: float = 60.0) -> list[str]:
    """Every state sacct recorded for the job, oldest first (-D: a requeued job's earlier runs too), once the
    latest has settled: submitit returns as soon as the job has written its result, while the job's process
    is still exiting, and accounting records the end a moment later."""
    deadline = time.monotonic() + settle_s
    while True:
        out = cluster.run("sacct", "-D", "-X", "-n", "--parsable2", "-o", "JobID,State", "-j", job_id).stdout
        states = [line.split("|")[1] for line in out.splitlines() if line.split("|")[0] == job_id]
        if (states and states[-1] not in UNSETTLED) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def test_submitit_slurm_sweep_completes_every_record(slurm_cluster, tmp_path, tiny_overrides):
    sweep = tmp_path / "sweep"
    result = cli(["-m", *LAUNCHER, f"hydra.sweep.dir={sweep}", *tiny_overrides, "trainer.max_steps=10",
                  "trainer.eval_every=10", "trainer.cpu_threads=1", "pruning=global_magnitude",
                  "pruning.sparsity=0.5", "lang=de,sw"], env=slurm_cluster.env)
    assert result.returncode == 0, result.stderr[-3000:] + slurm_cluster.logs()
    records = [json.loads((job / "results.json").read_text()) for job in _job_dirs(sweep)]
    assert [r["config"]["lang"] for r in records] == ["de", "sw"]
    assert all(r["status"] == "complete" and r["pruning"]["achieved"] == pytest.approx(0.5, abs=1e-3) for r in records)
    jobs = _job_ids(sweep)
    assert len(jobs) == 2  # one array task per sweep point, and sacct knows them
    assert {job: _states(slurm_cluster, job) for job in jobs} == {job: ["COMPLETED"] for job in jobs}


def _small_mbert(folder: Path) -> Path:
    """A model folder as a cluster keeps mBERT on its shared file system (weights, config, tokenizer), small: mBERT's
    real tokenizer over a 2-layer BERT with random weights."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(MBERT_TOKENIZER))
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _alloc_tres(cluster: SlurmCluster, job_id: str) -> str:
    out = cluster.run("sacct", "-X", "-n", "--parsable2", "-o", "JobID,AllocTRES", "-j", job_id).stdout
    return next(line.split("|")[1] for line in out.splitlines() if line.split("|")[0] == job_id)


def test_a_study_goes_in_as_arrays_below_max_array_size_from_a_launch_that_returns_at_once(
        slurm_cluster, tmp_path, tiny_overrides):
    """4 jobs on a cluster whose MaxArraySize is 3 (one array would be refused): the launch submits two arrays and
    returns before any job ends; `sparsenlp-report status` follows them to the end; each job was granted one GPU,
    read mBERT's folder and WikiANN from the shared file system with the Hub off, and left SLURM's log and its own.
    A relaunch submits nothing."""
    shared = tmp_path / "shared"
    model = _small_mbert(shared / "models" / "bert-base-multilingual-cased")
    sweep = shared / "multirun" / "study"
    args = ["-m", *[o for o in LAUNCHER if "gpus_per_node" not in o], "hydra.launcher.gpus_per_node=1",
            "hydra.launcher.wait=false", f"hydra.sweep.dir={sweep}",
            *[o for o in tiny_overrides if not o.startswith("model=")], "model=mbert", f"model.name_or_path={model}",
            "trainer.max_steps=10", "trainer.eval_every=10", "trainer.cpu_threads=1", "lang=de,sw",
            "pruning=dense,global_magnitude", "pruning.sparsity=0.5"]
    env = {**slurm_cluster.env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    launch = cli(args, env=env)
    assert launch.returncode == 0, launch.stderr[-3000:] + slurm_cluster.logs()
    right_after = status.status(sweep)
    assert right_after.count("done") < 4  # the launch returned while jobs were still queued or running
    summary = launch.stdout.strip().splitlines()[-1]
    assert "4 submitted" in summary and f"sparsenlp-report status {sweep}" in summary, summary

    deadline = time.monotonic() + 600
    while (now := status.status(sweep)).count("done") < 4:
        assert now.count("failed") == 0, status.render(now) + slurm_cluster.logs()
        assert time.monotonic() < deadline, status.render(now)
        time.sleep(2)
    assert now.jobs_per_hour and now.eta_hours == 0

    jobs = _job_ids(sweep)
    arrays = sorted({job.split("_")[0] for job in jobs})
    assert len(jobs) == 4 and len(arrays) == 2 and MAX_ARRAY_SIZE == 3  # 3 + 1: each array below MaxArraySize
    assert all({"gres/gpu=1"} <= set(_alloc_tres(slurm_cluster, job).split(",")) for job in jobs)
    for job in jobs:  # SLURM's stdout of each task, where the launcher says it goes
        assert (sweep / ".submitit" / job / f"{job}_0_log.out").is_file()
    for job_dir in _job_dirs(sweep):
        record = json.loads((job_dir / "results.json").read_text())
        assert record["config"]["model"]["name_or_path"] == str(model) and record["status"] == "complete"
        assert "start → " in (job_dir / "sparsenlp.log").read_text()  # each job's own log, in its folder

    again = cli(args, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 ran, 4 skipped (complete)" in again.stdout.strip().splitlines()[-1]
    assert _job_ids(sweep) == jobs  # nothing submitted


def _train_overrides(tiny_overrides: list[str]) -> list[str]:
    return [*tiny_overrides, "lang=sw", "pruning=global_magnitude", "schedule=cubic", "pruning.sparsity=0.6",
            "schedule.start=0.02", "schedule.end=0.34", "schedule.updates=19", "trainer.max_steps=300",
            "trainer.eval_every=100", "trainer.checkpoint_every=5", "trainer.log_every=7", "trainer.save_model=true",
            "trainer.cpu_threads=1"]


def _stopped_sweep(cluster: SlurmCluster, tmp_path: Path, overrides: list[str], ready: Callable[[Path], bool],
                   stop: Callable[[str], None]) -> tuple[Path, Path, str]:
    """An uninterrupted run of ``overrides`` and the same job as a one-job SLURM sweep, stopped with ``stop(job id)``
    once ``ready(job folder)`` and left to finish; returns the two run folders and the job id."""
    reference = tmp_path / "uninterrupted"
    ok = cli([*overrides, f"hydra.run.dir={reference}"])
    assert ok.returncode == 0, ok.stderr[-3000:]
    sweep = tmp_path / "sweep"
    main = subprocess.Popen([sys.executable, "-m", "sparsenlp", "-m", *LAUNCHER, f"hydra.sweep.dir={sweep}",
                             *overrides], cwd=REPO, env=cluster.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    job_dir = None
    try:
        while not (job_dir is not None and ready(job_dir)):
            if job_dir is None and (sweep / joblist.JOBS).is_file():
                (job_dir,) = _job_dirs(sweep)
            if main.poll() is not None:
                pytest.fail(f"the sweep ended before its job could be stopped:\n{main.stdout.read()[-3000:]}")
            time.sleep(0.2)
        (job,) = _job_ids(sweep)
        stop(job)
        output, _ = main.communicate(timeout=600)
    finally:
        if main.poll() is None:
            main.kill()
    assert main.returncode == 0, output[-3000:] + cluster.logs()
    assert _states(cluster, job) == ["REQUEUED", "COMPLETED"]
    return reference, job_dir, job


def test_requeued_job_resumes_to_the_result_of_an_uninterrupted_run(slurm_cluster, tmp_path, tiny_overrides):
    def checkpointed(job: Path) -> bool:
        checkpoint = job / "checkpoints" / "last.pt"
        return checkpoint.is_file() and torch.load(checkpoint, weights_only=False)["step"] >= 5

    # SLURM stops the job and queues it again
    reference, job, _ = _stopped_sweep(slurm_cluster, tmp_path, _train_overrides(tiny_overrides), checkpointed,
                                       lambda job_id: slurm_cluster.run("scontrol", "requeue", job_id))
    a = json.loads((reference / "results.json").read_text())
    b = json.loads((job / "results.json").read_text())
    assert a["training"]["resumed_from_step"] is None and b["training"]["resumed_from_step"] >= 5
    # the requeue's SIGTERM: the first run checkpointed where it was and released its lock on the way out
    assert "stopped by SIGTERM at step" in (job / "sparsenlp.log").read_text()
    assert_same_result(reference, job)


# --- a stop signal between checkpoints -----------------------------------------------------------------------------


def _no_checkpoint_overrides(tiny_overrides: list[str]) -> list[str]:
    """The requeue test's job without any periodic checkpoint, and a dev evaluation (a log line) every 20 steps."""
    replaced = {"trainer.checkpoint_every": "null", "trainer.eval_every": "20"}
    return [o for o in _train_overrides(tiny_overrides) if o.split("=", 1)[0] not in replaced] + [
        f"{key}={value}" for key, value in replaced.items()]


@pytest.mark.parametrize("how", ["scontrol requeue", "time-limit signal"])
def test_a_job_stopped_between_checkpoints_resumes_at_the_step_where_it_stopped(slurm_cluster, tmp_path,
                                                                                tiny_overrides, how):
    """``scontrol requeue`` sends SIGTERM (SIGKILL KillWait = 2 s later); the time limit's signal is what
    ``signal_delay_s`` asks SLURM for (submitit's SIGUSR2), after which submitit requeues the job itself. Either
    way the job writes a checkpoint at the step it is in and exits; the requeued job resumes at that very step
    (there is no other checkpoint) and ends bit-identical to an uninterrupted run."""

    def training(job: Path) -> bool:
        return (job / "sparsenlp.log").is_file() and "step 20: dev F1" in (job / "sparsenlp.log").read_text()

    def stop(job_id: str) -> None:
        if how == "scontrol requeue":
            slurm_cluster.run("scontrol", "requeue", job_id)
        else:
            slurm_cluster.run("scancel", "--signal=USR2", job_id)

    reference, job, _ = _stopped_sweep(slurm_cluster, tmp_path, _no_checkpoint_overrides(tiny_overrides), training,
                                       stop)
    text = (job / "sparsenlp.log").read_text()
    signame = "SIGTERM" if how == "scontrol requeue" else "SIGUSR2"
    stopped = re.search(rf"stopped by {signame} at step (\d+) of 300; kept: its checkpoint", text)
    assert stopped, text[-3000:]
    resumed = json.loads((job / "results.json").read_text())["training"]["resumed_from_step"]
    assert resumed == int(stopped.group(1)) >= 20
    assert_same_result(reference, job)
