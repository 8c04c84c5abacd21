"""Installable anywhere: the wheel carries its configs (pkg://sparsenlp.conf) and its sweeper, and runs from
an unrelated folder with no clone in sight."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """The wheel built from this checkout, installed (not editable) into a fresh folder; the environment that
    puts that folder first."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(root / "dist"), str(REPO)], check=True, capture_output=True, text=True)
    wheel = next((root / "dist").glob("sparsenlp-*.whl"))
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True)
    env = {**os.environ, "PYTHONPATH": str(site), "HYDRA_FULL_ERROR": "1"}
    return {"site": str(site), "elsewhere": str(root / "elsewhere"), **{f"env:{k}": v for k, v in env.items()}}


def _env(installed: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("env:"): v for k, v in installed.items() if k.startswith("env:")}


def _run(installed: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    cwd = Path(installed["elsewhere"])
    cwd.mkdir(exist_ok=True)
    script = Path(installed["site"]) / "bin" / "sparsenlp-train"
    return subprocess.run([sys.executable, str(script), *args], cwd=cwd, env=_env(installed), capture_output=True,
                          text=True, timeout=600)


def test_the_wheel_holds_the_configs_and_is_what_runs(installed):
    probe = subprocess.run([sys.executable, "-c", "import sparsenlp, sparsenlp.conf as c; "
                            "print(sparsenlp.__file__); print(c.__file__)"], cwd=installed["site"],
                           env=_env(installed), capture_output=True, text=True, check=True)
    code, conf = probe.stdout.split()
    assert code.startswith(installed["site"]) and conf.startswith(installed["site"])
    yamls = {p.relative_to(Path(conf).parent).as_posix() for p in Path(conf).parent.rglob("*.yaml")}
    shipped = {p.relative_to(REPO / "conf").as_posix() for p in (REPO / "conf").rglob("*.yaml")}
    assert yamls == shipped and "hydra/launcher/submitit_slurm.yaml" in yamls


def test_cfg_job_from_an_unrelated_folder(installed):
    result = _run(installed, "--cfg", "job", "model=tiny", "lang=sw")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "name: tiny" in result.stdout and "lang: sw" in result.stdout


def test_a_tiny_job_from_an_unrelated_folder(installed, wikiann_root, tmp_path):
    out = tmp_path / "run"
    result = _run(installed, "model=tiny", f"data.root={wikiann_root}", "lang=sw", "data.train_limit=100",
                  "data.dev_limit=20", "data.test_limit=20", "trainer.max_steps=4", "trainer.eval_every=4",
                  "trainer.progress=false", "logger=none", f"data.cache_dir={tmp_path / 'cache'}",
                  f"hydra.run.dir={out}")
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((out / "results.json").read_text())
    assert record["arm"]["model"] == "tiny" and record["training"]["steps"] == 4
    assert record["versions"]["sparsenlp"] is not None


def test_the_study_sweeper_is_found_from_the_wheel(installed, wikiann_root):
    result = _run(installed, "-m", "experiment=smoke", "hydra.sweeper.dry_run=true", f"data.root={wikiann_root}")
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = [line.split()[:2] for line in result.stdout.splitlines() if line.startswith("lang=")]
    assert jobs == [["lang=de", "pruning=dense"], ["lang=de", "pruning=global_magnitude"],
                    ["lang=sw", "pruning=dense"], ["lang=sw", "pruning=global_magnitude"]]
