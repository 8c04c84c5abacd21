"""Bad input: one-line error naming problem and fix, non-zero exit, nothing left on disk, before training."""
from __future__ import annotations

import json
import shutil

import pytest

from sparsenlp.errors import SparseNLPError
from sparsenlp.train import run
from tests.helpers import assert_one_line_error, cli, compose_run


def _copy_lang(wikiann_root, dest, lang="sw"):
    shutil.copytree(wikiann_root / lang, dest / lang)
    for f in (dest / lang).iterdir():
        f.chmod(0o644)
    return dest


CLI_CASES = {
    "unknown language": (["lang=xx"], "unknown language code 'xx'"),
    "sparsity out of range": (["pruning=global_magnitude", "pruning.sparsity=1.0"], "sparsity"),
    "unknown perturbation": (["perturbation=suite", "+perturbation.members.typo={perturbation: typoz, severities: [0.1]}"],
                             "perturbation.members.typo.perturbation='typoz' is not one of char_noise"),
    "severity not a number": (["perturbation=suite", "perturbation.members.context_drop.severities=[high]"],
                              "perturbation.members.context_drop.severities[0]: Value 'high'"),
    "sparsity with pruning=dense": (["pruning.sparsity=0.5"], "no effect with pruning=dense"),
    "misspelt key added with +": (["+trainer.lrr=1"], "+trainer.lrr is not a config key; did you mean trainer.lr?"),
    "misspelt key": (["trainer.max_step=10"], "trainer.max_step is not a config key; did you mean trainer.max_steps?"),
    "misspelt key without +": (["trainer.lrr=1"], "trainer.lrr is not a config key; did you mean trainer.lr?"),
    "more updates than steps": (["pruning=global_magnitude", "schedule=cubic", "schedule.updates=50",
                                 "trainer.max_steps=20"],
                                "train longer (trainer.epochs or trainer.max_steps) or lower schedule.updates"),
    "schedule without masks": (["pruning=dense", "schedule=cubic"], "pruning=dense does not run under schedule=cubic"),
    "seed below 0": (["seed=-5"], "seed=-5 must be in [0, 4294967295]"),
    "seed too large": (["seed=99999999999999999999"], "seed=99999999999999999999 must be in [0, 4294967295]"),
    "missing model path": (["model=minilm", "model.name_or_path=/no/such/model"], "model path /no/such/model does not exist"),
    "regex matches nothing": (["pruning=global_magnitude", "pruning.params=[transformer\\.h\\.\\d+]"], "matches no parameter"),
}


FOUND_ON_THE_MODEL = {"regex matches nothing"}  # parameter names exist once the model is built


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_reports_one_line_and_leaves_nothing(case, tmp_path, tiny_overrides):
    extra, message = CLI_CASES[case]
    out = tmp_path / "run"
    result = cli([*tiny_overrides, *extra, f"hydra.run.dir={out}"])
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("sparsenlp error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-1500:]
    if case not in FOUND_ON_THE_MODEL:  # no start line naming a folder that is not kept
        assert "start → " not in result.stdout + result.stderr
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))


def test_non_utf8_byte_names_file_line_and_fix_and_leaves_nothing(tmp_path, tiny_overrides, wikiann_root):
    root = _copy_lang(wikiann_root, tmp_path / "data")
    train = root / "sw" / "train"
    lines = train.read_bytes().split(b"\n")
    lines[6] = lines[6][:3] + "é".encode("latin-1") + lines[6][3:]  # a Latin-1 byte in a UTF-8 file
    train.write_bytes(b"\n".join(lines))
    out = tmp_path / "run"
    result = cli([*tiny_overrides, "lang=sw", f"data.root={root}", f"hydra.run.dir={out}"])
    assert_one_line_error(result, f"line 7 of {train} is not UTF-8 (byte 0xe9 at column 4)", "re-encode")
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))


def test_unknown_config_option_names_the_options(tmp_path):
    result = cli(["model=gpt9", f"hydra.run.dir={tmp_path / 'run'}"])
    assert_one_line_error(result, "model=gpt9 is not an option; choose one of: mbert, minilm, tiny, xlmr")
    result = cli(["pruning=taylorr", f"hydra.run.dir={tmp_path / 'p'}"])
    assert_one_line_error(result, "pruning=taylorr is not an option", "global_magnitude",
                          "a method from a plugin package is an option once that package is installed")
    assert "HYDRA_FULL_ERROR" not in result.stderr and not (tmp_path / "run").exists()


def _fails(overrides, tmp_path, match):
    cfg = compose_run(overrides, tmp_path / "out")
    with pytest.raises(SparseNLPError, match=match):
        run(cfg)
    assert not (tmp_path / "out" / "results.json").exists()


def test_missing_data_root(tiny_overrides, tmp_path):
    _fails([*tiny_overrides, f"data.root={tmp_path / 'nowhere'}"], tmp_path, "does not exist")


def test_missing_split(tiny_overrides, wikiann_root, tmp_path):
    root = _copy_lang(wikiann_root, tmp_path / "data")
    (root / "sw" / "dev").unlink()
    _fails([*tiny_overrides, "lang=sw", f"data.root={root}"], tmp_path, r"split not found: .*sw/dev")


def test_malformed_line_names_file_and_line(tiny_overrides, wikiann_root, tmp_path):
    root = _copy_lang(wikiann_root, tmp_path / "data")
    lines = (root / "sw" / "train").read_text(encoding="utf-8").splitlines()
    lines[4] = "Nairobi B-CITY"
    (root / "sw" / "train").write_text("\n".join(lines), encoding="utf-8")
    _fails([*tiny_overrides, "lang=sw", f"data.root={root}"], tmp_path, r"malformed line 5 in .*sw/train")


def test_hub_unreachable_model(tiny_overrides, tmp_path):
    _fails([*tiny_overrides, "model=mbert"], tmp_path, "offline\\? use model=minilm or model=tiny")


@pytest.mark.parametrize("overrides,pattern", [
    (["schedule=cubic", "schedule.start=0.5", "schedule.end=0.2"], "schedule.end=0.2 must be a fraction of "
                                                                   "training after schedule.start=0.5"),
    (["schedule=cubic", "schedule.updates=0"], "schedule.updates=0 must be >= 1"),
    (["schedule=cubic", "schedule.updates=40"], "too few for schedule.updates=40"),
    (["pruning.sparsity=-0.1"], "sparsity"),
])
def test_bad_schedule_and_sparsity(overrides, pattern, tiny_overrides, tmp_path):
    _fails([*tiny_overrides, "pruning=global_magnitude", *overrides], tmp_path, pattern)


def test_severity_out_of_range(tiny_overrides, tmp_path):
    _fails([*tiny_overrides, "perturbation=suite", "perturbation.members.char_noise.severities=[1.5]"], tmp_path,
           r"perturbation.members.char_noise.severities=\[1.5\] item 0 \(1.5\) must be in \[0, 1\]")


def test_entity_swap_pool_missing_a_type(tiny_overrides, wikiann_root, tmp_path):
    root = _copy_lang(wikiann_root, tmp_path / "data")
    train = (root / "sw" / "train").read_text(encoding="utf-8")
    (root / "sw" / "train").write_text(train.replace("B-ORG", "O").replace("I-ORG", "O"), encoding="utf-8")
    _fails([*tiny_overrides, "lang=sw", f"data.root={root}", "data.train_limit=null", "perturbation=suite",
            "~perturbation.members.swap_script", "~perturbation.members.swap_family",
            "~perturbation.members.swap_unseen", "+perturbation.members.swap_seen.required=true"], tmp_path,
           "swap_seen does not apply to lang=sw: .*entity pool for lang=sw .* has no ORG entities")


def test_config_errors_are_found_before_any_data_is_read(tiny_overrides, tmp_path):
    """A bad value must fail at once, not after the data is loaded and a tokenizer trained: with data.root
    pointing nowhere, a config error is what gets reported."""
    _fails([*tiny_overrides, f"data.root={tmp_path / 'nowhere'}", "pruning=global_magnitude",
            "schedule=cubic", "schedule.end=0.05"], tmp_path, "schedule.end=0.05")


def test_unreachable_hub_fails_within_seconds(tiny_overrides, tmp_path, monkeypatch):
    """data.source=hub without network: one probe with a short timeout, then the hint (no 30 s of retries)."""
    import socket
    import time

    from sparsenlp import hub

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    hub._probe.cache_clear()
    start = time.monotonic()
    overrides = [o for o in tiny_overrides if not o.startswith("data.root")] + ["data.source=hub"]
    _fails(overrides, tmp_path, r"WikiANN \(data.source=hub\) comes from the Hugging Face Hub, which is unreachable.*"
           r"point data.root at local WikiANN files")
    assert time.monotonic() - start < hub.PROBE_TIMEOUT_S + 5


def test_a_record_of_another_config_is_never_overwritten(tiny_overrides, tmp_path):
    """A run pointed at a folder that holds another config's complete record refuses, on one line, and keeps it."""
    from sparsenlp.tracking import records
    from tests.records import make_record

    out = tmp_path / "run"
    records.write(out, make_record(), {})
    before = (out / records.RESULTS).read_bytes()
    result = cli([*tiny_overrides, "lang=sw", f"hydra.run.dir={out}"])
    assert_one_line_error(result, f"job folder {out} belongs to another config", "hydra.run.dir=")
    assert (out / records.RESULTS).read_bytes() == before


def test_lang_all_without_files_for_some_languages_uses_those_that_have_them(tiny_overrides, wikiann_root, tmp_path):
    """Offline, `all` means the languages with local files: said once, and the record's arm lists them."""
    root = _copy_lang(wikiann_root, tmp_path / "wikiann")
    result = cli([*[o for o in tiny_overrides if not o.startswith("data.root=")], f"data.root={root}", "lang=all",
                  f"hydra.run.dir={tmp_path / 'run'}"])
    assert result.returncode == 0, result.stderr[-2000:]
    said = [line for line in (result.stdout + result.stderr).splitlines() if "no data under" in line]
    assert len(said) == 1 and "this run uses the 1 languages that have it" in said[0]
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["arm"]["train_langs"] == ["sw"]


def test_a_dev_set_without_entities_fails_before_training(tiny_overrides, wikiann_root, tmp_path):
    """Dev F1 selects the model: without a gold entity it does not exist, so the run stops (not selected on 0)."""
    import re

    root = _copy_lang(wikiann_root, tmp_path / "data")
    dev = root / "sw" / "dev"
    dev.write_text(re.sub(r"\t[BI]-[A-Z]+", "\tO", dev.read_text(encoding="utf-8")), encoding="utf-8")
    _fails([*tiny_overrides, "lang=sw", f"data.root={root}"], tmp_path,
           r"the dev set of lang=sw \(100 sentences\) has no entity, so dev F1 cannot select a model")


# --- what the check before launch finds, for a whole sweep ------------------------------------------------------


def _planned(tmp_path, *overrides: str, env=None):
    import os

    return cli(["-m", *overrides, "hydra.sweeper.dry_run=true", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
               env={**os.environ, **(env or {})})


def _invalid(result, fragment: str) -> None:
    """The sweep's one job listed as unable to run, with ``fragment`` as its problem, and nothing launched."""
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "sparsenlp error: 1 of 1 jobs cannot run, so none was launched" in result.stderr
    assert fragment in result.stderr, result.stderr[-2000:]


def test_a_schedule_that_max_steps_cannot_hold_is_invalid_before_launch(tiny_overrides, tmp_path):
    result = _planned(tmp_path, *tiny_overrides, "lang=sw", "pruning=global_magnitude", "pruning.sparsity=0.5",
                      "schedule=cubic", "trainer.max_steps=10")
    _invalid(result, "training has 10 optimizer steps, too few for schedule.updates=10")
    assert not (tmp_path / "sweep").exists()


def test_a_model_folder_without_a_model_is_invalid_before_launch(tiny_overrides, tmp_path):
    empty = tmp_path / "model"
    empty.mkdir()
    result = _planned(tmp_path, *tiny_overrides, "lang=sw", "model=minilm", f"model.name_or_path={empty}")
    _invalid(result, f"model.name_or_path={empty} is a folder without a model (config.json)")


def test_a_hub_model_missing_from_the_offline_cache_is_invalid_before_launch(tiny_overrides, tmp_path):
    result = _planned(tmp_path, *tiny_overrides, "lang=sw", "model=mbert",
                      env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home"),
                           "HF_HUB_CACHE": str(tmp_path / "hf-home" / "hub")})
    _invalid(result, "HF_HUB_OFFLINE=1, and the model 'bert-base-multilingual-cased' is not in the local Hugging "
                     "Face cache")
