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
from omegaconf import OmegaConf

from sparsenlp.errors import SparseNLPError
from sparsenlp.tracking.wandb import WandbTracker, build_tracker, history_keys
from tests.helpers import compose_settings
from tests.records import make_record
from tests.wandb_offline import read_offline_run

RECORD = make_record()  # de+af, global magnitude 0.5, seed 7, hand-picked F1s


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
def hydra_multirun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Pretend to be a job of a Hydra --multirun sweep over multirun/paper, launched from tmp_path."""
    monkeypatch.chdir(tmp_path)
    hydra_cfg = OmegaConf.create({"hydra": OmegaConf.structured(HydraConf)})
    hydra_cfg.hydra.mode = RunMode.MULTIRUN
    hydra_cfg.hydra.sweep.dir = str(tmp_path / "multirun" / "paper")
    hydra_cfg.hydra.overrides.task = ["lang=de", "logger.mode=offline", "pruning.sparsity=0.5", "seed=7"]
    before = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(hydra_cfg)
    yield
    HydraConfig.instance().cfg = before


def tracker(out: Path, logger: str = "wandb", *overrides: str) -> WandbTracker:
    fast = ["logger.system_metrics=false", "logger.init_timeout=30", "logger.tags=[extra]"] if logger == "wandb" else []
    settings = compose_settings([f"logger={logger}", "lang=[de,af]", "seed=7", "pruning=global_magnitude",
                                 "schedule=cubic", *fast, *overrides])
    return build_tracker(settings, RECORD.arm, out, {"lang": ["de", "af"], "seed": 7, "schedule": {"end": 0.7}})


def test_offline_run_records_config_arm_tags_history_and_final_metrics(tmp_path: Path) -> None:
    out = tmp_path / "job"
    t = tracker(out)
    assert t.start()
    t.on_log(None, 1, {"train/loss": 2.0, "train/lr": 1e-5})
    t.on_log(None, 2, {"train/loss": 1.5, "sparsity/target": 0.25, "sparsity/achieved": 0.25})
    t.on_evaluate(None, 2, {"dev/f1": 0.55, "dev/precision": 0.5})
    t.log_final(RECORD)
    t.finish()
    t.finish()  # idempotent

    run = read_offline_run(out)
    assert run["config"]["seed"] == 7 and run["config"]["schedule"]["end"] == 0.7
    assert run["config"]["arm"] == RECORD.arm.model_dump()
    # de: 20000 train sentences >= 20000 -> high; af: 5000 -> low (conf/languages/xtreme40.yaml).
    assert run["config"]["lang_info"] == {"lang": "de+af", "tier": "high+low", "script": "Latin",
                                          "family": "Indo-European"}
    assert run["tags"] == ["lang:de", "lang:af", "tier:high", "tier:low", "model:tiny", "regime:joint",
                           "method:global_magnitude", "criterion:magnitude", "scope:global", "schedule:cubic",
                           "sparsity:0.5", "embedding_sparsity:0", "quantization:none", "selection:best@0.7",
                           "length:max_steps=4", "seed:7", "extra"]
    assert run["group"] == "single-runs" and run["name"] == "de+af-global-s0.5-seed7"
    assert run["job_type"] == "train" and run["project"] == "sparsenlp" and run["exit_code"] == 0

    steps = {row["_step"]: row for row in run["history"]}
    assert steps[1]["train/loss"] == 2.0
    assert steps[2]["train/loss"] == 1.5 and steps[2]["dev/f1"] == 0.55 and steps[2]["sparsity/target"] == 0.25
    # The final metrics get a row of their own, x = the run's target sparsity.
    assert steps[3]["sparsity/target"] == 0.5 and steps[3]["test/f1"] == pytest.approx(0.7)

    summary = run["summary"]
    # language-agnostic keys: the mean over the two test languages; per-language keys as well
    assert summary["test/f1"] == pytest.approx((0.8 + 0.6) / 2)
    assert summary["test/char_noise_0_1/f1"] == pytest.approx((0.6 + 0.5) / 2)
    assert summary["test/de/clean/f1"] == 0.8 and summary["test/af/char_noise_0_1/f1"] == 0.5
    assert summary["robustness/char_noise_0_1/gap"] == pytest.approx((0.2 + 0.1) / 2)
    assert summary["robustness/char_noise_0_1/gap_ratio"] == pytest.approx((0.25 + 1 / 6) / 2)
    assert summary["sparsity/target"] == 0.5 and summary["sparsity/achieved"] == 0.5
    # per encoder layer: pruned over prunable weights of its tensors (49 + 51 of 100 + 100)
    assert summary["sparsity/layer_0"] == pytest.approx(0.5) and steps[3]["sparsity/layer_0"] == pytest.approx(0.5)
    assert summary["dev/f1"] == 0.55 and summary["dev/selected_step"] == 4

    defined = {m.get("glob_name") or m.get("name"): m for m in run["metrics"]}
    assert defined["test/*"]["step_metric"] == "sparsity/target"
    assert defined["robustness/*"]["step_metric"] == "sparsity/target"

    table = json.loads(next(out.rglob("per_tensor_*.table.json")).read_text())
    per_tensor = RECORD.pruning.per_tensor
    assert table["columns"] == ["tensor", "target", "achieved", "numel"]
    assert table["data"] == [[name, t.target, t.achieved, t.numel] for name, t in per_tensor.items()]
    languages = json.loads(next(out.rglob("per_language_*.table.json")).read_text())
    assert ["af", "char_noise@0.1", 0.5, False] in languages["data"] and len(languages["data"]) == 4


def test_history_keys_of_a_record_are_the_keys_its_run_logged(tmp_path: Path) -> None:
    """What the dashboard checks panels against, derived from the record, equals what W&B recorded when the
    trainer's hooks fire as they do for this record's history (loss, dev and pruning rows)."""
    t = tracker(tmp_path / "job")
    assert t.start()
    t.on_log(None, 2, {"train/loss": 2.0, "train/lr": 1e-3, "train/epoch": 1.0})
    t.on_log(None, 2, {"sparsity/target": 0.25, "sparsity/achieved": 0.25})
    t.on_evaluate(None, 4, {"dev/f1": 0.55, "dev/precision": 0.5, "dev/recall": 0.6})
    t.log_final(RECORD)
    t.finish()

    run = read_offline_run(tmp_path / "job")
    logged = {key for row in run["history"] for key in row if not key.startswith("_")}
    tables = {"sparsity/per_tensor", "sparsity/trace", "test/per_language"}
    scalars = {key for key in logged if key.split(".")[0] not in tables}
    assert history_keys(RECORD) == scalars
    assert history_keys(make_record(config={"logger": {"name": "none", "mode": "disabled"}})) == set()


def test_exception_inside_context_manager_finishes_run_as_failed(tmp_path: Path, hydra_multirun: None) -> None:
    out = tmp_path / "job"
    with pytest.raises(RuntimeError, match="boom"):
        with tracker(out) as t:
            t.on_log(None, 1, {"train/loss": 2.0})
            raise RuntimeError("boom")
    t.finish()  # still safe after the context manager finished it

    run = read_offline_run(out)
    assert run["exit_code"] == 1
    assert run["group"] == "multirun/paper"  # the sweep folder as launched: two sweeps never share a group


def test_disabled_mode_creates_no_files_and_never_imports_wandb(tmp_path: Path, wandb_home: Path) -> None:
    out = tmp_path / "job"
    out.mkdir()
    with tracker(out, "none") as t:
        assert t.run is None
        t.on_log(None, 1, {"train/loss": 1.0})
        t.log_final(RECORD)
    assert list(out.iterdir()) == [] and not wandb_home.exists()

    script = ("import sys; from pathlib import Path; from tests.helpers import compose_settings; "
              "from tests.records import make_record; from sparsenlp.tracking.wandb import build_tracker; "
              "t = build_tracker(compose_settings(['logger=none']), make_record().arm, Path('.'), {}); "
              "print(t.start(), 'wandb' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.split()[-2:] == ["False", "False"]


def test_unreachable_server_warns_and_the_run_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)  # a dummy: the server is never reached
    t = tracker(tmp_path / "job", "wandb", "logger.mode=online", "logger.init_timeout=1")

    with caplog.at_level(logging.WARNING, logger="sparsenlp.tracking.wandb"):
        assert t.start() is False
    assert "W&B init failed" in caplog.text
    t.on_log(None, 1, {"train/loss": 1.0})
    t.log_final(RECORD)
    t.finish(exit_code=1)
    t.finish()


def test_unknown_mode_is_a_config_error_before_anything_runs() -> None:
    with pytest.raises(SparseNLPError, match="logger.mode='ofline' is not one of online, offline, disabled"):
        compose_settings(["logger.mode=ofline"])


def test_tracker_is_a_trainer_callback() -> None:
    from sparsenlp.training.callbacks import Callback

    assert issubclass(WandbTracker, Callback)


def test_a_quantized_models_scores_get_keys_of_their_own() -> None:
    from sparsenlp.tracking.wandb import final_metrics

    int8 = {lang: {c: m.model_copy(update={"f1": m.f1 - 0.1}) for c, m in conds.items()}
            for lang, conds in RECORD.test.items()}
    quantized = make_record(quantization={
        "method": "dynamic_int8", "modules": ["Linear"], "dtype": "qint8", "engine": "x86", "cpu_threads": 1,
        "fp32_bytes": 400, "int8_bytes": 100, "size_ratio": 0.25, "fp32_seconds": 2.0, "int8_seconds": 1.0,
        "speedup": 2.0, "per_language": {lang: {"f1_change": -0.1, "token_agreement": 0.9, "fp32_seconds": 1.0,
                                                "int8_seconds": 0.5} for lang in RECORD.test},
        "test": {lang: {c: m.model_dump() for c, m in conds.items()} for lang, conds in int8.items()},
        "robustness": {}})
    row = final_metrics(quantized)
    assert row["test/f1"] == pytest.approx((0.8 + 0.6) / 2)  # the fp32 model, as without quantization
    assert row["int8/test/f1"] == pytest.approx((0.7 + 0.5) / 2)
    assert row["int8/test/char_noise_0_1/f1"] == pytest.approx((0.5 + 0.4) / 2)
    assert row["int8/size_ratio"] == 0.25 and row["int8/speedup"] == 2.0


def test_a_condition_that_does_not_apply_to_a_language_is_left_out_of_the_mean_never_counted_as_0() -> None:
    from sparsenlp.tracking.wandb import final_metrics

    record = make_record(
        test={"de": RECORD.test["de"], "af": {"clean": RECORD.test["af"]["clean"]}},
        robustness={"de": RECORD.robustness["de"], "af": {}},
        robustness_not_applicable={"af": {"char_noise@0.1": "char_noise: changes 1.0% of the test sentences"}})
    row = final_metrics(record)
    assert row["test/char_noise_0_1/f1"] == 0.6 and row["robustness/char_noise_0_1/gap"] == pytest.approx(0.2)
    assert "test/af/char_noise_0_1/f1" not in row and row["test/f1"] == pytest.approx((0.8 + 0.6) / 2)


def test_panel_groups_never_pool_two_arms() -> None:
    from sparsenlp.tracking.wandb import panel_groups

    info = {"lang": "sw", "tier": "low", "script": "Latin", "family": "Niger-Congo"}
    emb = RECORD.arm.model_copy(update={"embedding_sparsity": 0.5})
    dense = RECORD.arm.model_copy(update={"method": "dense", "criterion": "none", "scope": "none", "schedule": "none",
                                          "sparsity": 0.0})
    groups = [panel_groups(arm, info) for arm in (RECORD.arm, RECORD.arm.model_copy(update={"sparsity": 0.9}),
                                                  emb, dense)]
    assert groups[0]["tier"] == "low · tiny/joint · global_magnitude·cubic · best@0.7; max_steps=4"
    assert groups[0] == groups[1]  # sparsity is the x axis: one line
    assert len({g["tier"] for g in groups[1:]}) == 3 and groups[2]["arm"] == "tiny/joint · global_magnitude·cubic+emb · best@0.7; max_steps=4"
