"""Sweeps through Ray for real: ``hydra/launcher=ray`` joins a local Ray cluster that the test starts
(``ray start --head``, as on a real head node) and runs a two-job sweep to complete records."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparsenlp.tracking import joblist
from tests.helpers import cli

pytestmark = pytest.mark.slow
RAY = Path(sys.executable).with_name("ray")  # the CLI of this environment's ray


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require_ray() -> None:
    if importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None or not RAY.is_file():
        pytest.skip("the ray extra is not installed: pip install -e '.[ray]'")


@pytest.fixture
def ray_env() -> dict[str, str]:
    """Ray turns token authentication on for the clusters it starts (the token lives in ~/.ray/auth_token);
    its CLI and drivers use the token only when told to."""
    return {**os.environ, "RAY_AUTH_MODE": "token"}


@pytest.fixture
def ray_temp_dir() -> Iterator[Path]:
    """Ray's run-time files (logs, sockets, the address of the last cluster started) in a folder of the test's
    own: short, for Ray's unix sockets, and removed afterwards, so no later ``ray.init()`` on this machine
    tries to join a cluster that is gone."""
    folder = Path(tempfile.mkdtemp(prefix="ray-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _start_head(ray_env: dict[str, str], temp_dir: Path, log: Path) -> tuple[subprocess.Popen, str] | None:
    """A ``ray start --head --block`` process and its address once ``ray status`` answers there; None if it
    exited first (a port taken between choosing and binding it, for one)."""
    address = f"127.0.0.1:{_free_port()}"
    with log.open("ab") as out:
        head = subprocess.Popen([str(RAY), "start", "--head", "--block", f"--port={address.split(':')[1]}",
                                 "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
                                 f"--temp-dir={temp_dir}"], env=ray_env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 180
    while subprocess.run([str(RAY), "status", f"--address={address}"], env=ray_env,
                         capture_output=True).returncode != 0:
        if head.poll() is not None:
            return None
        if time.monotonic() > deadline:
            _stop(head)
            pytest.fail("the Ray head did not come up within 3 minutes")
        time.sleep(1)
    return head, address


def _stop(head: subprocess.Popen) -> None:
    head.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
    try:
        head.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()


@pytest.fixture
def ray_head(ray_env, ray_temp_dir, tmp_path) -> Iterator[str]:
    """The address of a one-node Ray cluster (2 CPUs). The ``ray`` process runs with ``--block`` in its own
    process group, so stopping it never touches another Ray on the machine. A head that exits while starting is
    started again, up to three times, on another port; its output is in the failure message."""
    _require_ray()
    log = tmp_path / "ray-head.log"
    for _ in range(3):
        started = _start_head(ray_env, ray_temp_dir, log)
        if started is not None:
            break
    else:
        pytest.fail(f"ray start --head exited three times; its output:\n{log.read_text(errors='replace')[-3000:]}")
    head, address = started
    try:
        yield address
    finally:
        _stop(head)


def _sweep(sweep: Path, ray_init: list[str], tiny_overrides: list[str], env: dict[str, str]):
    return cli(["-m", "hydra/launcher=ray", *ray_init, f"hydra.sweep.dir={sweep}", *tiny_overrides,
                "trainer.max_steps=10", "trainer.eval_every=10", "trainer.cpu_threads=1", "pruning=global_magnitude",
                "pruning=dense,global_magnitude", "pruning.sparsity=0.5", "lang=sw"], env=env)


def test_ray_launcher_runs_a_two_job_sweep_on_a_running_cluster(ray_head, ray_env, tmp_path, tiny_overrides):
    _check(_sweep(tmp_path / "sweep", [f"hydra.launcher.ray.init.address={ray_head}"], tiny_overrides, ray_env),
           tmp_path / "sweep")


def test_ray_launcher_runs_a_two_job_sweep_on_a_ray_it_starts(ray_env, ray_temp_dir, tmp_path, tiny_overrides):
    _require_ray()
    ray_init = ["hydra.launcher.ray.init.address=local", f"+hydra.launcher.ray.init._temp_dir={ray_temp_dir}"]
    _check(_sweep(tmp_path / "sweep", ray_init, tiny_overrides, ray_env), tmp_path / "sweep")


def _check(result: subprocess.CompletedProcess, sweep: Path) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Ray Launcher is launching 2 jobs" in output and "(_run_job pid=" in output  # Ray tasks ran them
    listing = joblist.read(sweep)
    assert listing is not None and len(listing.jobs) == 2
    records = [json.loads((sweep / job.folder / "results.json").read_text()) for job in listing.jobs]
    assert [r["arm"]["method"] for r in records] == ["dense", "global_magnitude"]
    assert all(r["status"] == "complete" and r["run"]["sweep_dir"] == str(sweep.resolve()) for r in records)
    assert records[1]["pruning"]["achieved"] == pytest.approx(0.5, abs=1e-3)
