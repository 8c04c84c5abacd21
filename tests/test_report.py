"""The cross-language report on a small real sweep: tidy table, change vs dense, figures, PIEs, CLI, notebook.

The sweep is made once per module by real in-process runs (tiny BERT, real WikiANN): de (high resource)
and sw (low resource) × {dense seeds 1 and 2, global_magnitude 0.5 seeds 1 and 2, layerwise_magnitude 0.5
seed 1} → 10 runs, each scored on the clean
test set and two perturbations. Every expectation is recomputed from the records and prediction files.
"""
from __future__ import annotations

import json
import re
import math
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest
import torch

from sparsenlp.analysis import collect, plots
from sparsenlp.analysis.pie_report import pie_report
from sparsenlp.analysis.report import main
from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.pie import find_pies, load_predictions
from sparsenlp.train import run
from tests.conftest import REPO
from tests.helpers import compose_run

pytestmark = pytest.mark.slow  # a sweep of ten tiny end-to-end runs (≈20 s)

LANGS = ("de", "sw")
CONDITIONS = ("clean", "char_noise@0.1", "context_drop@0.2")
# (label, pruning overrides, seed)
ARMS = (
    ("dense-s1", ["pruning=dense"], 1),
    ("dense-s2", ["pruning=dense"], 2),
    ("global-s1", ["pruning=global_magnitude", "pruning.sparsity=0.5"], 1),
    ("global-s2", ["pruning=global_magnitude", "pruning.sparsity=0.5"], 2),
    ("layerwise-s1", ["pruning=layerwise_magnitude", "pruning.sparsity=0.5"], 1),
)
SUITE = ["perturbation=suite", "perturbation.members.char_noise.severities=[0.1]",
         *(f"~perturbation.members.{m}" for m in
           ("lower", "upper", "strip_diacritics", "swap_seen", "swap_unseen", "swap_script", "swap_family"))]
# 40 steps at lr 2e-3: enough for the tiny model to tag some entities in both languages (F1 ≈ 0.05-0.3),
# so populations disagree on some sentences
COMMON = ["data.train_limit=300", "data.dev_limit=50", "data.test_limit=60", "trainer.max_steps=40",
          "trainer.lr=2e-3", "trainer.eval_every=40", "trainer.cpu_threads=1"]
FIGURES = {"f1_vs_sparsity_lang", "f1_vs_sparsity_tier", "delta_vs_dense", "robustness_gap",
           "global_vs_layerwise", "pie_rate"}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_overrides) -> dict:
    """SWEEP/<job_num>/ as Hydra multirun lays it out; returns the dir and each job's (lang, label)."""
    root = tmp_path_factory.mktemp("sweep")
    jobs = {}
    # one thread: on a loaded 2-core box, two torch threads per tiny run are up to 10× slower than one
    common = [*tiny_overrides, "schedule=oneshot", *SUITE, *COMMON]
    threads = torch.get_num_threads()
    try:
        for num, (lang, (label, pruning, seed)) in enumerate((lang, arm) for lang in LANGS for arm in ARMS):
            out = root / str(num)
            run(compose_run([*common, *pruning, f"lang={lang}", f"seed={seed}"], out))
            jobs[str(out)] = (lang, label)
    finally:
        torch.set_num_threads(threads)  # run() sets it process-wide
    return {"dir": root, "jobs": jobs}


@pytest.fixture(scope="module")
def table(sweep) -> pd.DataFrame:
    return collect.runs_table(sweep["dir"])


def _record(run_dir: str) -> dict:
    return json.loads((Path(run_dir) / "results.json").read_text())


def _run_dirs(sweep: dict, lang: str, *labels: str) -> list[str]:
    return sorted(d for d, (lg, lb) in sweep["jobs"].items() if lg == lang and lb in labels)


def _same(a: float, b: float | None) -> bool:
    return (b is None and math.isnan(a)) or a == pytest.approx(b, abs=1e-12)


# --- tidy table ------------------------------------------------------------------------------------------


def test_one_row_per_run_language_condition(sweep, table):
    expected = {(d, lang, c) for d, (lang, _) in sweep["jobs"].items() for c in CONDITIONS}
    assert len(table) == len(expected) == 30
    assert set(zip(table["run_dir"], table["lang"], table["condition"])) == expected
    assert set(collect.COLUMNS) <= set(table.columns)
    assert {"run_dir", "arm", "setting", "lang", "tier", "script", "family", "train_size", "transfer", "model",
            "regime", "method", "scope", "structure", "schedule", "embeddings", "target_sparsity", "quantization",
            "achieved_sparsity", "seed", "condition", "perturbation", "severity", "precision", "recall", "f1",
            "f1_PER", "f1_ORG", "f1_LOC", "gap", "gap_ratio", "dev_f1", "train_seconds", "steps",
            "train_sentences"} <= set(table.columns)


def test_values_equal_the_records(table):
    for row in table.itertuples():
        rec = _record(row.run_dir)
        metrics = rec["test"][row.lang][row.condition]
        assert (row.precision, row.recall, row.f1) == (metrics["precision"], metrics["recall"], metrics["f1"])
        for etype in ("PER", "ORG", "LOC"):
            assert _same(getattr(row, f"f1_{etype}"), metrics["per_type"].get(etype, {}).get("f1"))
        gap = rec["robustness"].get(row.lang, {}).get(row.condition, {})
        assert _same(row.gap, gap.get("gap")) and _same(row.gap_ratio, gap.get("gap_ratio"))
        if row.condition != "clean":  # gap = clean F1 − perturbed F1 of the same run and language
            assert row.gap == pytest.approx(rec["test"][row.lang]["clean"]["f1"] - row.f1)
        assert row.dev_f1 == rec["dev"]["f1"] and row.seed == rec["run"]["seed"] == rec["config"]["seed"]
        assert row.steps == rec["training"]["steps"] == 40
        assert row.train_seconds == rec["training"]["train_seconds"]
        assert row.train_sentences == rec["data"]["train_sentences"]
        assert row.model == rec["model"]["name"] == "tiny"
    noise = table[table["condition"] == "char_noise@0.1"]
    assert set(noise["perturbation"]) == {"char_noise"} and set(noise["severity"]) == {0.1}
    assert set(table.loc[table["condition"] == "clean", "severity"]) == {0.0}


def test_language_facts_follow_the_languages_config(table):
    for row in table.drop_duplicates("lang").itertuples():
        languages = _record(row.run_dir)["config"]["languages"]
        entry = languages["langs"][row.lang]
        assert row.tier == ("high" if entry["train_size"] >= languages["tier_min_train_sentences"] else "low")
        assert (row.script, row.family, row.lang_name) == (entry["script"], entry["family"], entry["name"])
        assert row.train_size == entry["train_size"] and not row.transfer
    assert dict(zip(table["lang"], table["tier"])) == {"de": "high", "sw": "low"}


def test_dense_and_sparse_classification(sweep, table):
    runs = table.drop_duplicates("run_dir").set_index("run_dir")
    for run_dir, (lang, label) in sweep["jobs"].items():
        row, rec = runs.loc[run_dir], _record(run_dir)
        assert row.method == rec["config"]["pruning"]["method"] == rec["arm"]["method"]
        if label.startswith("dense"):
            assert rec["pruning"] is None
            assert (row.method, row.arm, row.target_sparsity, row.achieved_sparsity) == ("dense", "dense", 0.0, 0.0)
        else:
            assert row.method == label.split("-")[0] + "_magnitude"
            assert row.schedule == "oneshot" and row.arm == f"{row.method}·oneshot@0.5"
            assert row.target_sparsity == rec["pruning"]["target"] == 0.5
            assert row.achieved_sparsity == rec["pruning"]["achieved"] == pytest.approx(0.5, abs=1e-3)


def test_change_relative_to_dense_equals_hand_computation(sweep, table):
    rel = collect.relative_to_dense(table)
    assert len(rel) == len(LANGS) * len(CONDITIONS) * 2  # two sparse arms
    for lang in LANGS:
        for condition in CONDITIONS:
            def f1s(*labels):
                return [_record(d)["test"][lang][condition]["f1"] for d in _run_dirs(sweep, lang, *labels)]

            dense = sum(f1s("dense-s1", "dense-s2")) / 2
            for method, labels in (("global_magnitude", ("global-s1", "global-s2")),
                                   ("layerwise_magnitude", ("layerwise-s1",))):
                sparse = f1s(*labels)
                got = rel[(rel["lang"] == lang) & (rel["condition"] == condition) & (rel["method"] == method)]
                assert len(got) == 1
                got = got.iloc[0]
                assert got["delta_f1"] == pytest.approx(sum(sparse) / len(sparse) - dense, abs=1e-12)
                assert (got["n_sparse"], got["n_dense"], got["tier"]) == (len(sparse), 2, table.query(
                    "lang == @lang")["tier"].iloc[0])


# --- figures -----------------------------------------------------------------------------------------------


def _data_lines(ax) -> dict[str, list]:
    return {line.get_label(): list(line.get_ydata()) for line in ax.lines if not line.get_label().startswith("_")}


def test_f1_figure_lines_are_seed_means_per_language(sweep, table):
    fig = plots.f1_vs_sparsity(table, by="lang")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["global_magnitude·oneshot", "layerwise_magnitude·oneshot"]
    lines = _data_lines(axes[0])
    assert set(lines) == set(LANGS)
    for lang in LANGS:
        def clean(*labels):
            return sum(_record(d)["test"][lang]["clean"]["f1"] for d in _run_dirs(sweep, lang, *labels)) / 2

        assert lines[lang] == pytest.approx([clean("dense-s1", "dense-s2"), clean("global-s1", "global-s2")])
    tier = plots.f1_vs_sparsity(table, by="tier")
    assert set(_data_lines(tier.axes[0])) == {"high", "low"}


def test_other_figures_have_one_panel_per_arm_or_condition(table):
    rel = collect.relative_to_dense(table)
    delta = plots.delta_vs_dense(rel)
    assert set(_data_lines(delta.axes[0])) == {"de", "sw", "high mean", "low mean"}
    gap = plots.robustness_gap(table)
    assert [ax.get_title() for ax in gap.axes if ax.get_visible()] == ["char_noise@0.1", "context_drop@0.2"]
    assert len(_data_lines(gap.axes[0])) == 4  # 2 tiers × 2 arms
    paired = plots.method_comparison(table)
    assert sum(len(c.get_offsets()) for c in paired.axes[0].collections) == len(LANGS)  # one point per lang


# --- CLI -----------------------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sparsenlp.analysis.report", *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO)


def test_report_writes_table_figures_and_summary(sweep, table, tmp_path, capsys):
    out = tmp_path / "report"
    assert main([str(sweep["dir"]), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("PIE skipped") == len(LANGS)  # clean test set only; layerwise has one seed
    assert "condition=clean method=layerwise_magnitude" in err and "found 2 dense and 1 sparse" in err
    assert "Skipped records" not in (out / "summary.md").read_text()
    pd.testing.assert_frame_equal(pd.read_csv(out / "runs.csv"), table, check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"), table)
    assert {p.stem for p in (out / "figures").glob("*.png")} == FIGURES
    for png in (out / "figures").glob("*.png"):
        image = matplotlib.image.imread(png)
        assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0  # a drawn, non-blank image
    summary = (out / "summary.md").read_text()
    assert "10 complete runs" in summary
    assert re.search(r"\|\s*high\s*\|\s*de\s*\|", summary) and re.search(r"\|\s*low\s*\|\s*sw\s*\|", summary)
    assert "## PIE fraction" in summary and not (out / "pie.csv").exists()  # pie.csv: the `pie` command


def test_default_output_dir_and_help(sweep, tmp_path, capsys):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep["dir"] / "0", copy / "0")
    assert main([str(copy), "--no-pie"]) == 0
    assert (copy / "report" / "runs.csv").is_file() and (copy / "report" / "summary.md").is_file()
    assert len(pd.read_csv(copy / "report" / "runs.csv")) == len(CONDITIONS)
    with pytest.raises(SystemExit) as help_exit:
        main(["--help"])
    assert help_exit.value.code == 0
    assert "{table,pie}" in capsys.readouterr().out


def test_bad_sweep_dir_is_one_line_error_and_writes_nothing(tmp_path, capsys):
    missing = _cli(str(tmp_path / "nope"))  # the real process: exit status and stderr
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [missing.stderr.strip()]
    assert missing.stderr.startswith("sparsenlp error:") and "does not exist" in missing.stderr
    (tmp_path / "broken" / "0").mkdir(parents=True)
    (tmp_path / "broken" / "0" / "results.json").write_text('{"status": "comp')
    assert main([str(tmp_path / "broken")]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("sparsenlp error: no complete results.json")
    assert not (tmp_path / "broken" / "report").exists()


def test_corrupt_and_incomplete_records_are_skipped_with_a_warning(sweep, tmp_path, caplog):
    shutil.copytree(sweep["dir"] / "0", tmp_path / "0")
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "results.json").write_text("{not json")
    partial = _record(str(sweep["dir"] / "1"))
    del partial["test"]
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "results.json").write_text(json.dumps(partial))
    with caplog.at_level("WARNING", logger="sparsenlp"):
        got = collect.runs_table(tmp_path)
    assert set(got["run_dir"]) == {str(tmp_path / "0")} and len(got) == len(CONDITIONS)
    skipped = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(skipped) == 2 and "1/results.json" in skipped[0] and "2/results.json" in skipped[1]
    assert "test: Field required" in skipped[1]  # the record names what it lacks


# --- PIEs ----------------------------------------------------------------------------------------------------


def _modal_of_two(a: list[str], b: list[str]) -> tuple:
    """The modal prediction of two runs by pie.py's documented rule: a tie goes to the smallest label."""
    return min(tuple(a), tuple(b))


@pytest.mark.parametrize("condition", ["clean", "context_drop@0.2"])
def test_pie_fraction_equals_find_pies_on_the_prediction_files(sweep, table, condition):
    report = pie_report(table)
    name = "test.jsonl" if condition == "clean" else f"test.{condition}.jsonl"
    for lang in LANGS:
        def runs(*labels):
            return [[r for r in load_predictions(Path(d) / "predictions" / name) if r["lang"] == lang]
                    for d in _run_dirs(sweep, lang, *labels)]

        dense, sparse = runs("dense-s1", "dense-s2"), runs("global-s1", "global-s2")
        rows = report.table[(report.table["lang"] == lang) & (report.table["condition"] == condition)]
        assert set(rows["method"]) == {"global_magnitude"} and set(rows["n_dense"]) == set(rows["n_sparse"]) == {2}
        for level in ("sentence", "token"):
            row = rows[rows["level"] == level].iloc[0]
            ref = find_pies(dense, sparse, level)
            assert (row["fraction"], row["n_pie"], row["n_units"]) == (ref.fraction, ref.n_pie, ref.n_units)
            assert row["f1_sparse_pie"] == pytest.approx(ref.f1_sparse_pie, nan_ok=True)
        # independent of pie.py: sentence-level PIEs by hand
        by_hand = [_modal_of_two(d0["pred"], d1["pred"]) != _modal_of_two(s0["pred"], s1["pred"])
                   for d0, d1, s0, s1 in zip(*dense, *sparse)]
        assert len(by_hand) == 60
        assert rows[rows["level"] == "sentence"]["fraction"].iloc[0] == sum(by_hand) / len(by_hand)


def test_pie_in_parallel_and_for_chosen_conditions_gives_the_same_rows(table):
    serial = pie_report(table)
    pd.testing.assert_frame_equal(pie_report(table, jobs=2).table, serial.table)
    clean = pie_report(table, conditions=["clean"]).table
    pd.testing.assert_frame_equal(clean, serial.table[serial.table["condition"] == "clean"].reset_index(drop=True))
    with pytest.raises(SparseNLPError, match=r"test condition\(s\) \['typo@0.1'\] not in the sweep"):
        pie_report(table, conditions=["typo@0.1"])


def test_pie_cli_writes_outputs_and_notes_cells_with_one_seed(sweep, tmp_path, capsys):
    assert main(["pie", str(sweep["dir"]), "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    pies = pd.read_csv(tmp_path / "pie.csv")
    assert len(pies) == len(LANGS) * len(CONDITIONS) * 2  # global arm × sentence/token level
    assert err.count("PIE skipped") == len(LANGS) * len(CONDITIONS)
    assert "needs ≥2 seeds per population, found 2 dense and 1 sparse" in err
    assert (tmp_path / "figures" / "pie_rate.png").stat().st_size > 0
    assert "Skipped cells" in (tmp_path / "pie.md").read_text()


def test_pie_without_any_population_of_two_seeds_fails_on_one_line(sweep, tmp_path, capsys):
    for src in _run_dirs(sweep, "de", "dense-s1", "global-s1", "global-s2"):
        shutil.copytree(src, tmp_path / "sweep" / Path(src).name)
    assert main(["pie", str(tmp_path / "sweep")]) == 1
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("sparsenlp error: no PIE population") and "≥2 seeds" in last
    assert "found 1 dense and 2 sparse" in err
    assert not (tmp_path / "sweep" / "report").exists()
    assert main([str(tmp_path / "sweep")]) == 0  # the table report still works, with the note
    assert "found 1 dense and 2 sparse" in capsys.readouterr().err


# --- notebook ------------------------------------------------------------------------------------------------


def test_notebook_runs_on_the_sweep(sweep, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = REPO / "notebooks" / "analysis.ipynb"
    monkeypatch.setenv("SPARSENLP_SWEEP_DIR", str(sweep["dir"]))
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                      for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "10 runs" in outputs
    assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_rows_carry_the_records_arm_whatever_the_method():
    """Structured and embedding arms are arms of their own, never dense and never merged with their siblings."""
    from tests.records import make_record

    base = make_record()
    structured = make_record(arm={**base.arm.model_dump(), "method": "structured_heads", "criterion": "l1",
                                  "scope": "layerwise", "schedule": "none", "sparsity": 0.25,
                                  "structure": "heads=0.5,ffn=0"})
    emb = make_record(arm={**base.arm.model_dump(), "embeddings": True})
    control = make_record(arm={**structured.arm.model_dump(), "criterion": "random"})
    rows = collect.table_from_records([(Path("a"), base), (Path("b"), structured), (Path("c"), emb),
                                       (Path("d"), control)])
    arms = rows.drop_duplicates("run_dir").set_index("run_dir")["arm"].to_dict()
    assert arms == {"a": "global_magnitude·cubic@0.5", "b": "structured_heads:l1[layerwise](heads=0.5,ffn=0)·none@0.25",
                    "c": "global_magnitude·cubic@0.5+emb",
                    "d": "structured_heads:random[layerwise](heads=0.5,ffn=0)·none@0.25"}
    assert rows.groupby(list(collect.ARM), dropna=False).ngroups == 4
