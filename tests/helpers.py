"""Helpers for tests that compose configs and run jobs (in-process and as a real CLI)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from sparsenlp.config import CONFIG_MODULE, RunConfig, settings
from tests.conftest import REPO

CONF = REPO / "conf"


def compose_run(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config `sparsenlp-train <overrides>` would run, with an explicit output dir (no Hydra runtime)."""
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose("config", overrides=[*overrides, f"output_dir={output_dir}"])


def compose_settings(overrides: list[str] = (), output_dir: Path = Path("unused")) -> RunConfig:
    """The typed, validated config of `sparsenlp-train <overrides>` (model=tiny unless overridden)."""
    return settings(compose_run(["model=tiny", *overrides], output_dir))


def cli(args: list[str], cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m sparsenlp`` exactly as a user would (same console entry point)."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    env.pop("HYDRA_FULL_ERROR")
    return subprocess.run([sys.executable, "-m", "sparsenlp", *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def sweep_overrides(tiny_overrides: list[str]) -> list[str]:
    """A tiny sweep job logging offline to W&B, one CPU thread a job."""
    return [o for o in tiny_overrides if not o.startswith("logger=")] + [
        "pruning.sparsity=0.5", "schedule=oneshot", "trainer.max_steps=10", "trainer.eval_every=10",
        "data.train_limit=200", "data.dev_limit=50", "data.test_limit=50", "logger=wandb", "logger.mode=offline",
        "logger.system_metrics=false", "trainer.cpu_threads=1",
    ]
