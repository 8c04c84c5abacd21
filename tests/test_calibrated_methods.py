"""Wanda and SparseGPT as pruning methods of runs: one shot on the dense run's fine-tuned model (trained once,
reused through trainer.model_store), calibrated on the evaluated language, a code, a mix or nothing, recorded as
arm fields, and compared with dense language by calibration language in the report."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from sparsenlp.analysis.sweep_report import Options, analyse, write
from sparsenlp.arm import build_arm
from sparsenlp.data.wikiann import read_wikiann_file
from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.semi_structured import is_nm_sparse
from sparsenlp.train import build_job, run
from tests.helpers import cli, compose_run, compose_settings

SHORT = ["lang=sw", "trainer.max_steps=20", "trainer.eval_every=10", "data.train_limit=300", "perturbation=none"]


@pytest.mark.parametrize("overrides,message", [
    (["pruning=wanda", "pruning.target=1.5"], "pruning.target='1.5' is not valid (e.g. 0.5 or 2:4)"),
    (["pruning=wanda", "pruning.target=4:4"], "pruning.target=4:4 keeps N of every M weights"),
    (["pruning=wanda", "pruning.target=half"], "pruning.target='half' is not valid (e.g. 0.5 or 2:4)"),
    (["pruning=sparsegpt", "schedule=cubic"], "pruning=sparsegpt does not run under schedule=cubic"),
    (["pruning=wanda", "pruning.calibration.lang=English"], "pruning.calibration.lang='English' is not valid"),
    (["pruning=wanda", "pruning.calibration.sentences=0"], "pruning.calibration.sentences=0 must be >= 1"),
    (["pruning=wanda", "pruning.recovery_steps=-1"], "pruning.recovery_steps=-1 must be >= 0"),
])
def test_bad_one_shot_configs_fail_on_one_line(overrides, message):
    with pytest.raises(SparseNLPError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compose_settings(overrides)


def test_the_arm_names_method_target_and_calibration():
    s = compose_settings(["pruning=wanda", "pruning.target=2:4", "pruning.calibration.lang=en",
                          "pruning.recovery_steps=50"])
    arm = build_arm(s)
    assert (arm.method, arm.criterion, arm.scope, arm.structure, arm.sparsity) == ("wanda", "wanda", "group", "2:4", 0.5)
    assert (arm.calibration, arm.recovery_steps, arm.schedule) == ("en", 50, "none")
    assert arm.label() == "wanda[group](2:4)·cal=en@0.5+rec50"
    control = build_arm(compose_settings(["pruning=sparsegpt", "pruning.target=0.7", "pruning.calibration.lang=none"]))
    assert (control.criterion, control.scope, control.label()) == ("magnitude", "block",
                                                                   "sparsegpt:magnitude[block]·cal=none@0.7")
    assert build_arm(compose_settings(["pruning=wanda", "pruning.target=0"])).method == "dense"


def test_calibrating_on_self_needs_one_test_language(tmp_path, tiny_overrides):
    with pytest.raises(SparseNLPError, match="calibration.lang=self prunes one model per evaluated language"):
        build_job(compose_run([*tiny_overrides, "lang=[sw,yo]", "pruning=wanda"], tmp_path / "joint"))
    with pytest.raises(SparseNLPError, match="calibration.lang=xx is not a language"):
        build_job(compose_run([*tiny_overrides, "lang=sw", "pruning=wanda", "pruning.calibration.lang=xx"],
                              tmp_path / "xx"))
    nowhere = [*[o for o in tiny_overrides if not o.startswith("data.root=")], f"data.root={tmp_path / 'nowhere'}"]
    with pytest.raises(SparseNLPError, match="calibration.lang=xx is not a language"):  # before any data is read
        build_job(compose_run([*nowhere, "lang=sw", "pruning=wanda", "pruning.calibration.lang=xx"], tmp_path / "x2"))


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory, tiny_overrides):
    """dense, wanda (self, none, mix) and sparsegpt 2:4 (en, 5 recovery steps) on sw, one dense model store."""
    root = tmp_path_factory.mktemp("calibrated")
    common = [*tiny_overrides, *SHORT, f"trainer.model_store={root / 'store'}", "trainer.save_model=true"]
    arms = {"wanda-self": ["pruning=wanda"], "wanda-none": ["pruning=wanda", "pruning.calibration.lang=none"],
            "dense": ["pruning=dense"], "wanda-mix": ["pruning=wanda", "pruning.calibration.lang=mix",
                                                      "pruning.calibration.sentences=78"],
            "sparsegpt-en": ["pruning=sparsegpt", "pruning.target=2:4", "pruning.calibration.lang=en",
                             "pruning.recovery_steps=5"]}
    threads = torch.get_num_threads()
    try:
        records = {name: run(compose_run([*common, *extra], root / name)) for name, extra in arms.items()}
    finally:
        torch.set_num_threads(threads)
    return root, records


@pytest.mark.slow
def test_the_dense_model_is_trained_once_and_reused(calibrated):
    root, records = calibrated
    dense = records["dense"]
    sources = {name: r.method_report().dense for name, r in records.items() if name != "dense"}
    assert len({s.identity for s in sources.values()}) == 1  # every one-shot arm prunes the same fine-tuned model
    assert not sources["wanda-self"].reused and all(s.reused for n, s in sources.items() if n != "wanda-self")
    assert dense.training.reused_from == str(root / "store" / sources["wanda-self"].identity)
    assert dense.training == records["wanda-self"].training.model_copy(update={"reused_from": dense.training.reused_from})
    stored = load_file(root / "store" / sources["wanda-self"].identity / "model.safetensors")
    saved = load_file(root / "dense" / "model" / "model.safetensors")
    assert all(torch.equal(stored[k], saved[k]) for k in saved)  # the dense arm's record is of that model


@pytest.mark.slow
def test_one_shot_masks_hit_the_target_in_every_row_and_group(calibrated):
    root, records = calibrated
    for name in ("wanda-self", "wanda-none", "wanda-mix"):
        pruning = records[name].pruning
        assert pruning.achieved == 0.5 and all(t.achieved == 0.5 for t in pruning.per_tensor.values()), name
    weights = load_file(root / "wanda-self" / "model" / "model.safetensors")
    for tensor in records["wanda-self"].pruning.per_tensor:
        rows = (weights[tensor] == 0).sum(dim=1)
        assert (rows == weights[tensor].shape[1] // 2).all(), tensor  # Wanda's comparison group: each output row
    weights = load_file(root / "sparsegpt-en" / "model" / "model.safetensors")
    for tensor in records["sparsegpt-en"].pruning.per_tensor:  # 2:4 after the recovery fine-tune: zeros kept
        assert is_nm_sparse(weights[tensor], 2, 4), tensor
    report = records["sparsegpt-en"].method_report()
    assert report.one_shot.structure == "2:4" and report.recovery_steps == 5
    # the recovery fine-tune is recorded beside the dense fine-tune (the training section), not mixed into it
    assert report.recovery.steps == 5 and report.recovery.history and report.recovery.history[-1]["step"] == 5
    assert [e["step"] for e in report.recovery.dev_history] == [5]
    assert report.recovery.dev_f1 == report.recovery.dev_history[-1]["f1"]
    assert records["sparsegpt-en"].training.steps != 5 and records["wanda-self"].method_report().recovery is None


@pytest.mark.slow
def test_calibration_sentences_come_from_training_data_only(calibrated, wikiann_root):
    _, records = calibrated
    seed = records["wanda-self"].arm.seed

    def drawn(lang: str, k: int) -> list[list[str]]:  # the documented draw, written out independently
        train = read_wikiann_file(wikiann_root / lang / "train", lang, 300)
        order = np.random.default_rng([seed, *lang.encode("utf-8")]).permutation(len(train))[:k]
        return [list(train[i].tokens) for i in order]

    def sha(sentences: list[list[str]]) -> str:
        payload = json.dumps(sentences, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    own = records["wanda-self"].method_report().calibration
    assert (own.langs, own.sentences, own.sha256) == (["sw"], 128, sha(drawn("sw", 128)))
    english = records["sparsegpt-en"].method_report().calibration
    assert (english.langs, english.sha256) == (["en"], sha(drawn("en", 128)))
    none = records["wanda-none"].method_report().calibration
    assert (none.sentences, none.sha256, records["wanda-none"].arm.criterion) == (0, None, "magnitude")
    mix = records["wanda-mix"].method_report().calibration
    assert len(mix.langs) == 39 and set(mix.per_lang.values()) == {2} and "th" not in mix.langs  # local data: 39


@pytest.mark.slow
def test_the_report_compares_each_calibration_language_with_dense(calibrated):
    root, _ = calibrated
    out = root / "report"
    write(analyse(root, Options(pie=False)), out)
    matrix = (out / "calibration.csv").read_text()
    rows = [line.split(",") for line in matrix.splitlines()]
    header = rows[0]
    cells = {(r[header.index("panel")], r[header.index("calibration")]) for r in rows[1:]}
    arm = "tiny/per_language/"
    assert cells == {(f"{arm}wanda[row]·cal=*@0.5", "self"), (f"{arm}wanda[row]·cal=*@0.5", "mix"),
                     (f"{arm}wanda[row]·cal=*@0.5", "none"),  # the control beside the calibrations it controls
                     (f"{arm}sparsegpt[group](2:4)·cal=*+rec5@0.5", "en")}
    assert (out / "figures" / "calibration_heatmap.png").is_file()


def test_the_calibration_experiment_lists_its_jobs(tmp_path):
    result = cli(["-m", "experiment=calibration", "hydra.sweeper.dry_run=true", f"hydra.sweep.dir={tmp_path}"])
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = [line for line in result.stdout.splitlines() if line.startswith("lang=")]
    assert len(jobs) == (1 + 2 * 4 * 4) * 40 * 3
    dense = [j for j in jobs if "pruning=dense" in j]
    assert dense == jobs[:len(dense)]  # listed first: the one-shot jobs of a language and seed find their model
    assert len(dense) == 40 * 3 and not any("pruning.calibration" in j or "pruning.target" in j for j in dense)
    assert not any(Path(tmp_path).rglob("results.json"))
