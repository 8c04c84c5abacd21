"""Helpers for tests that compose configs and run jobs (in-process and as a real CLI)."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from sparsenlp.config import CONFIG_MODULE, RunConfig, one_line, settings
from sparsenlp.training.callbacks import Callback
from tests.conftest import REPO

CONF = REPO / "conf"


def compose_run(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config `sparsenlp-train <overrides>` would run, with an explicit output dir (no Hydra runtime);
    a composition error is raised as the one-line SparseNLPError the command line prints."""
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        try:
            return compose("config", overrides=[*overrides, f"output_dir={output_dir}"])
        except Exception as exc:
            error = one_line(exc)
            if error is None:
                raise
            raise error from None


def compose_settings(overrides: list[str] = (), output_dir: Path = Path("unused")) -> RunConfig:
    """The typed, validated config of `sparsenlp-train <overrides>` (model=tiny unless overridden)."""
    return settings(compose_run(["model=tiny", *overrides], output_dir))


def cli(args: list[str], cwd: Path | None = None, timeout: int = 600, prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m sparsenlp`` exactly as a user would (same console entry point), optionally under a
    wrapper command (``prefix``) or in another environment (default: this process's)."""
    env = dict(os.environ if env is None else env)
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([*prefix, sys.executable, "-m", "sparsenlp", *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """A failed CLI run that reports exactly one ``sparsenlp error:`` line containing ``fragments``, no traceback
    and no Hydra report around it ("Error executing job with overrides", "Set the environment variable")."""
    assert result.returncode != 0, result.stdout[-1500:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "Error executing job" not in result.stderr and "HYDRA_FULL_ERROR" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("sparsenlp error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert all(f in errors[0] for f in fragments), errors[0]
    return errors[0]


def assert_same_result(reference: Path, resumed: Path) -> None:
    """Two runs of one config (``trainer.save_model=true``) ended the same: metrics, the logged curves, masks and
    every weight, bit for bit."""
    import json

    import torch
    from safetensors.torch import load_file

    a, b = (json.loads((run / "results.json").read_text()) for run in (reference, resumed))
    assert b["test"] == a["test"] and b["dev"] == a["dev"]
    assert b["training"]["history"] == a["training"]["history"]
    assert b["training"]["dev_history"] == a["training"]["dev_history"]
    assert b["pruning"]["per_tensor"] == a["pruning"]["per_tensor"] and b["pruning"]["trace"] == a["pruning"]["trace"]
    weights_a, weights_b = (load_file(run / "model" / "model.safetensors") for run in (reference, resumed))
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)  # same masks, same values


def sweep_overrides(tiny_overrides: list[str]) -> list[str]:
    """A tiny sweep job logging offline to W&B, one CPU thread a job."""
    return [o for o in tiny_overrides if not o.startswith("logger=")] + [
        "pruning.sparsity=0.5", "schedule=oneshot", "trainer.max_steps=10", "trainer.eval_every=10",
        "data.train_limit=200", "data.dev_limit=50", "data.test_limit=50", "logger=wandb", "logger.mode=offline",
        "logger.system_metrics=false", "trainer.cpu_threads=1",
    ]


class ZeroWatcher(Callback):
    """A trainer callback added after the pruner (callbacks run in order): after every optimizer step the
    pruned weights are exactly 0 and no pruned weight regrows (monotone masks)."""

    def __init__(self, pruner) -> None:
        self.pruner, self.previous, self.checked = pruner, None, 0

    def on_step_end(self, trainer, step: int) -> None:
        import torch

        masks = {n: m.clone() for n, m in self.pruner.masks.masks.items()}
        for name, param in self.pruner.masks.params.items():
            assert torch.count_nonzero(param.detach()[~masks[name]]) == 0, f"step {step}: pruned weights of {name}"
        if self.previous is not None:
            for name, mask in masks.items():
                assert not (mask & ~self.previous[name]).any(), f"step {step}: {name} regrew a pruned weight"
        self.previous, self.checked = masks, self.checked + 1
