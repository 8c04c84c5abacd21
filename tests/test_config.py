"""Hydra composition: every option of every config group composes and resolves; overrides reach the run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from sparsenlp.config import CONFIG_MODULE, settings
from tests.conftest import REPO
from tests.helpers import cli, compose_run

GROUPS = ["model", "data", "languages", "pruning", "schedule", "perturbation", "quantization", "trainer", "logger",
          "experiment"]


def _options(group: str) -> list[str]:
    """What `group=<option>` accepts: YAML files and ConfigStore entries (every pruning method is one)."""
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return sorted(GlobalHydra.instance().config_loader().get_group_options(group))


def test_design_groups_exist():
    for group, expected in {"model": {"mbert", "xlmr", "minilm", "tiny"},
                            "pruning": {"dense", "global_magnitude", "layerwise_magnitude", "structured_heads",
                                        "movement", "semi_structured", "random"},
                            "schedule": {"none", "oneshot", "cubic", "linear"}, "perturbation": {"none", "suite"},
                            "quantization": {"none", "dynamic_int8"},
                            "logger": {"wandb", "none"}, "experiment": {"paper", "smoke", "transfer"},
                            "hydra/launcher": {"joblib", "submitit_local", "submitit_slurm", "ray", "basic"}}.items():
        assert expected <= set(_options(group)), group


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in _options(g)])
def test_every_option_composes_and_validates(group, option, tmp_path):
    # every pruning method selects the schedule it runs under; a schedule needs a method that has masks
    needs = ["pruning=global_magnitude"] if group == "schedule" and option != "none" else []
    cfg = compose_run([f"{group}={option}", *needs], tmp_path)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["output_dir"] == str(tmp_path)
    if group != "experiment":
        assert resolved[group], f"{group}={option} composed to an empty node"
    settings(cfg)  # the typed config accepts every shipped option


@pytest.mark.parametrize("launcher", sorted(p.stem for p in (REPO / "conf" / "hydra" / "launcher").glob("*.yaml")))
def test_launcher_configs_name_the_plugin_class(launcher):
    """Composed as `sparsenlp-train` composes them (it registers sparsenlp's SLURM launcher and its options)."""
    result = cli([f"hydra/launcher={launcher}", "--cfg", "hydra", "-p", "hydra.launcher"], cwd=Path("/"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert OmegaConf.create(result.stdout)._target_.startswith("hydra_plugins.")


def test_defaults_are_the_study_defaults(tmp_path):
    s = settings(compose_run([], tmp_path))
    assert s.model.name_or_path == "bert-base-multilingual-cased" and s.data.resolved_source == "hub"
    assert s.logger.mode == "offline" and s.pruning.method == "dense"
    assert s.trainer.lr == s.model.lr  # each model recommends its LR
    assert s.eval_langs == s.train_langs == ["en"]


def test_the_dataclasses_are_the_single_place_for_defaults(tmp_path):
    """YAML files only select and override: every default lives in sparsenlp/config/ (so the two can never
    disagree, as cfg.get(key, default) once did)."""
    from sparsenlp.config import TrainerConfig

    s = settings(compose_run([], tmp_path))
    assert s.trainer == TrainerConfig(lr=s.model.lr)  # conf/trainer/default.yaml sets nothing else
    text = (REPO / "conf" / "trainer" / "default.yaml").read_text()
    assert "group_by_length" not in text and "warmup_ratio" not in text


def test_data_source_follows_intent(tmp_path):
    assert settings(compose_run(["data.root=/somewhere"], tmp_path)).data.resolved_source == "local"
    assert settings(compose_run(["data.source=hub", "data.root=/x"], tmp_path)).data.resolved_source == "hub"


@pytest.mark.parametrize("override,message", [
    ("+trainer.lrr=1", "+trainer.lrr is not a config key; did you mean trainer.lr?"),
    ("trainer.lrr=1", "trainer.lrr is not a config key; did you mean trainer.lr?"),
    ("+loger.mode=offline", "+loger is not a config key; did you mean logger?"),
    ("trainer.lr=fast", "trainer.lr=fast is not a valid float"),
])
def test_unknown_keys_and_wrong_types_fail_before_anything_runs(override, message, tmp_path):
    result = cli([override, f"hydra.run.dir={tmp_path / 'run'}"])
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


def test_cfg_job_prints_the_composed_config():
    result = cli(["--cfg", "job", "model=tiny", "lang=sw", "trainer.lr=0.002"], cwd=Path("/"))  # pkg://
    assert result.returncode == 0, result.stderr
    printed = OmegaConf.create(result.stdout)
    assert printed.model.name == "tiny" and printed.lang == "sw" and printed.trainer.lr == 0.002


@pytest.mark.slow
def test_cli_overrides_reach_the_record(tmp_path, tiny_overrides):
    out = tmp_path / "run"
    result = cli([*tiny_overrides, "lang=sw", "seed=11", "trainer.lr=0.002", "trainer.max_steps=12",
                  "trainer.eval_every=6", "data.max_length=64", f"hydra.run.dir={out}"])
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((out / "results.json").read_text())
    assert record["config"]["seed"] == 11 and record["config"]["trainer"]["lr"] == 0.002
    assert record["training"]["steps"] == 12 and record["data"]["max_length"] == 64
    assert record["arm"]["train_langs"] == ["sw"] and "trainer.lr=0.002" in record["run"]["overrides"]
    assert record["training"]["history"][-1]["lr"] == 0.0  # linear decay to zero at the last step
