"""W&B tracking against real wandb in offline mode, checked by reading the run's .wandb log back."""
from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.conf import HydraConf
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sparsenlp.errors import SparseNLPError
from sparsenlp.tracking.wandb import WandbTracker, build_tracker, read_offline_run

CONF = Path(__file__).resolve().parents[1] / "conf"

# A small results.json (schema in tracking/records.py) with hand-picked numbers.
RESULTS = {
    "schema_version": 1, "status": "complete",
    "dev": {"precision": 0.5, "recall": 0.5, "f1": 0.55, "sentences": 10, "per_type": {}},
    "training": {"steps": 4, "best_step": 2, "best_dev_f1": 0.55},
    "test": {
        "de": {"clean": {"f1": 0.8}, "char_noise@0.1": {"f1": 0.6}},
        "af": {"clean": {"f1": 0.6}, "char_noise@0.1": {"f1": 0.5}},
    },
    "robustness": {
        "de": {"char_noise@0.1": {"f1": 0.6, "gap": 0.2, "gap_ratio": 0.25}},
        "af": {"char_noise@0.1": {"f1": 0.5, "gap": 0.1, "gap_ratio": 1 / 6}},
    },
    "sparsity": {
        "method": "global_magnitude", "target": 0.5, "achieved": 0.4995,
        "per_tensor": {"encoder.layer.0.attention.self.query.weight": {"target": 0.5, "achieved": 0.49, "numel": 100},
                       "encoder.layer.0.output.dense.weight": {"target": 0.5, "achieved": 0.51, "numel": 100}},
        "trace": [{"step": 2, "target": 0.25, "achieved": 0.25}, {"step": 4, "target": 0.5, "achieved": 0.4995}],
    },
    "timings": {"total_seconds": 12.5},
}


@pytest.fixture(autouse=True)
def wandb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep wandb's settings, caches and artifact staging inside the test's tmp dir."""
    home = tmp_path / "wandb-home"
    for var in ("WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(home / var.lower()))
    for var in ("WANDB_MODE", "WANDB_DIR", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_RUN_GROUP", "WANDB_TAGS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    return home


@pytest.fixture
def hydra_multirun(tmp_path: Path):
    """Pretend to be job 3 of a Hydra --multirun sweep over multirun/paper."""
    hydra_cfg = OmegaConf.create({"hydra": OmegaConf.structured(HydraConf)})
    hydra_cfg.hydra.mode = RunMode.MULTIRUN
    hydra_cfg.hydra.sweep.dir = str(tmp_path / "multirun" / "paper")
    hydra_cfg.hydra.overrides.task = ["lang=de", "logger.mode=offline", "pruning.sparsity=0.5", "seed=7"]
    before = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(hydra_cfg)
    yield
    HydraConfig.instance().cfg = before


def make_cfg(logger: str = "wandb", lang: object = ("de", "af"), **logger_overrides: object) -> DictConfig:
    """The run config's shape, with the real logger and languages groups and one interpolation."""
    cfg = OmegaConf.create({
        "lang": list(lang) if isinstance(lang, tuple) else lang, "seed": 7,
        "languages": OmegaConf.load(CONF / "languages" / "xtreme40.yaml"),
        "pruning": {"method": "global_magnitude", "sparsity": 0.5},
        "schedule": {"name": "cubic", "end_step": "${trainer.max_steps}"},
        "trainer": {"max_steps": 4, "lr": 3e-5},
        "logger": OmegaConf.load(CONF / "logger" / f"{logger}.yaml"),
    })
    fast = {"system_metrics": False, "init_timeout": 30, "tags": ["extra"]} if logger == "wandb" else {}
    cfg.logger = OmegaConf.merge(cfg.logger, fast, logger_overrides)
    return cfg


def test_offline_run_records_config_tags_history_and_final_metrics(tmp_path: Path) -> None:
    out = tmp_path / "job"
    tracker = build_tracker(make_cfg(), out)
    assert tracker.start()
    tracker.on_log(None, 1, {"train/loss": 2.0, "train/lr": 1e-5})
    tracker.on_log(None, 2, {"train/loss": 1.5, "sparsity/target": 0.25, "sparsity/achieved": 0.25})
    tracker.on_evaluate(None, 2, {"dev/f1": 0.55, "dev/precision": 0.5})
    tracker.log_final(RESULTS)
    tracker.finish()
    tracker.finish()  # idempotent

    run = read_offline_run(out)
    assert run["config"]["seed"] == 7
    assert run["config"]["schedule"]["end_step"] == 4  # resolved interpolation, not "${trainer.max_steps}"
    assert run["config"]["logger"]["mode"] == "offline"
    # de: 20000 train sentences >= 20000 -> high; af: 5000 -> low (conf/languages/xtreme40.yaml).
    assert run["config"]["derived"] == {"lang": "de+af", "tier": "high+low", "script": "Latin",
                                        "family": "Indo-European"}
    assert run["tags"] == ["lang:de", "lang:af", "tier:high", "tier:low", "method:global_magnitude",
                           "schedule:cubic", "sparsity:0.5", "seed:7", "extra"]
    assert run["group"] == "single-runs"
    assert run["name"] == "de+af-global_magnitude-s0.5-seed7"
    assert run["job_type"] == "train"
    assert run["project"] == "sparsenlp"
    assert run["exit_code"] == 0

    steps = {row["_step"]: row for row in run["history"]}
    assert steps[1]["train/loss"] == 2.0
    assert steps[2]["train/loss"] == 1.5 and steps[2]["dev/f1"] == 0.55 and steps[2]["sparsity/target"] == 0.25
    # The final metrics get a row of their own, x = the run's target sparsity.
    assert steps[3]["sparsity/target"] == 0.5 and steps[3]["test/f1"] == pytest.approx(0.7)

    summary = run["summary"]
    assert summary["test/f1"] == pytest.approx((0.8 + 0.6) / 2)
    assert summary["test/de/clean/f1"] == 0.8
    assert summary["test/af/char_noise_0_1/f1"] == 0.5
    assert summary["robustness/de/char_noise_0_1/gap"] == 0.2
    assert summary["robustness/af/char_noise_0_1/gap_ratio"] == pytest.approx(1 / 6)
    assert summary["robustness/gap"] == pytest.approx((0.2 + 0.1) / 2)
    assert summary["sparsity/target"] == 0.5 and summary["sparsity/achieved"] == 0.4995
    assert summary["dev/f1"] == 0.55 and summary["dev/best_step"] == 2

    defined = {m.get("glob_name") or m.get("name"): m for m in run["metrics"]}
    assert defined["test/*"]["step_metric"] == "sparsity/target"
    assert defined["robustness/*"]["step_metric"] == "sparsity/target"

    table = json.loads(next(out.rglob("per_tensor_*.table.json")).read_text())
    per_tensor = RESULTS["sparsity"]["per_tensor"]
    assert table["columns"] == ["tensor", "target", "achieved", "numel"]
    assert table["data"] == [[name, t["target"], t["achieved"], t["numel"]] for name, t in per_tensor.items()]


def test_exception_inside_context_manager_finishes_run_as_failed(tmp_path: Path, hydra_multirun: None) -> None:
    out = tmp_path / "job"
    with pytest.raises(RuntimeError, match="boom"):
        with build_tracker(make_cfg(lang="de"), out) as tracker:
            tracker.on_log(None, 1, {"train/loss": 2.0})
            raise RuntimeError("boom")
    tracker.finish()  # still safe after the context manager finished it

    run = read_offline_run(out)
    assert run["exit_code"] == 1
    assert run["group"] == "multirun/paper"  # the sweep dir's last two parts
    assert run["name"] == "lang=de,pruning.sparsity=0.5,seed=7"  # the job's overrides, logger.* left out


def test_disabled_mode_creates_no_files_and_never_imports_wandb(tmp_path: Path, wandb_home: Path) -> None:
    out = tmp_path / "job"
    out.mkdir()
    with build_tracker(make_cfg(logger="none"), out) as tracker:
        assert tracker.run is None
        tracker.on_log(None, 1, {"train/loss": 1.0})
        tracker.log_final(RESULTS)
    assert list(out.iterdir()) == [] and not wandb_home.exists()

    script = ("import sys; from pathlib import Path; from omegaconf import OmegaConf; "
              "from sparsenlp.tracking.wandb import build_tracker; "
              "t = build_tracker(OmegaConf.create({'logger': {'name': 'none', 'mode': 'disabled'}}), Path('.')); "
              "print(t.start(), 'wandb' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_unreachable_server_warns_and_the_run_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)  # a dummy: the server is never reached
    tracker = build_tracker(make_cfg(mode="online", init_timeout=1), tmp_path / "job")

    with caplog.at_level(logging.WARNING, logger="sparsenlp.tracking.wandb"):
        assert tracker.start() is False
    assert "W&B init failed" in caplog.text
    tracker.on_log(None, 1, {"train/loss": 1.0})
    tracker.log_final(RESULTS)
    tracker.finish(exit_code=1)
    tracker.finish()


def test_unknown_mode_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(SparseNLPError, match="logger.mode='ofline'"):
        build_tracker(make_cfg(mode="ofline"), tmp_path)


def test_tracker_is_a_trainer_callback() -> None:
    from sparsenlp.training.callbacks import Callback

    assert issubclass(WandbTracker, Callback)
