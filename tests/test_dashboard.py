"""W&B dashboards built from code, checked against a real 2×2 offline sweep read back from disk.

The references are independent of the code under test: what wandb itself recorded in each run's
``.wandb`` file (``wandb leet inspect``) and the ``wandb-workspaces`` objects parsed back from the
written specification.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws
from wandb_workspaces import expr

from sparsenlp.analysis import report
from sparsenlp.analysis.dashboard import from_specification
from sparsenlp.analysis.dashboard_sections import ANALYSIS, TRAIN, check_keys, study_sections
from sparsenlp.errors import SparseNLPError
from sparsenlp.tracking import records
from sparsenlp.tracking.schema import RunRecord
from sparsenlp.tracking.sweep_runs import run_group, sweep_runs
from sparsenlp.tracking.sync import plan
from sparsenlp.tracking.wandb import history_keys
from tests.helpers import cli, sweep_overrides
from tests.records import make_record
from tests.wandb_offline import read_offline_run

GRID = ["lang=de,sw", "pruning=dense,global_magnitude",
        "+perturbation.members.typo={perturbation: char_noise, severities: [0.1, 0.3]}"]
SECTIONS = {"F1 vs sparsity by tier", "F1 vs sparsity by script", "F1 vs sparsity by family",
            "ΔF1 vs dense per language", "Perturbed F1 per perturbation vs sparsity", "PIE rate",
            "Per-layer sparsity", "Global vs layer-wise"}
slow = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_overrides) -> Path:
    """lang=de,sw × pruning=dense,global_magnitude with a two-severity perturbation, offline W&B runs."""
    sweep = tmp_path_factory.mktemp("dashboard") / "grid"
    result = cli(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}",
                  *sweep_overrides(tiny_overrides), *GRID])
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep


@pytest.fixture(scope="module")
def analysed(sweep: Path) -> Path:
    """The sweep's report logged as its analysis run (``--wandb``); returns the report folder."""
    assert report.main([str(sweep), "--wandb", "--no-pie"]) == 0
    assert (sweep / "report" / "significance.csv").is_file()
    return sweep / "report"


def _jobs(sweep: Path) -> list[tuple[Path, RunRecord]]:
    return [(p.parent, records.read(p)) for p in sorted(sweep.glob("*/results.json"))]


def _scalar_keys(run: dict) -> set[str]:
    """The keys a run logged, as a panel names them (a Table or Image logs ``key.<field>`` entries)."""
    rows = [*run["history"], run["summary"]]
    return {key.split(".")[0] for row in rows for key in row if not key.startswith("_")}


def _leaves(filters: str) -> set[tuple[str, str, object]]:
    """A filter expression as (backend key, op, value) leaves, parsed by wandb-workspaces itself."""
    tree = expr.expr_to_filters(filters)
    nodes = tree.filters if tree.filters else [tree]
    return {(leaf.key.name, leaf.op, leaf.value) for leaf in nodes}


def _panel_keys(panel: object) -> set[str]:
    name = lambda m: m if isinstance(m, str) else m.name  # noqa: E731 - a Metric or a plain key
    if isinstance(panel, wr.LinePlot):
        return {name(panel.x), *(name(y) for y in panel.y)}
    if isinstance(panel, wr.MediaBrowser):
        return set(panel.media_keys)
    if isinstance(panel, wr.WeavePanelSummaryTable):
        return {panel.table_name}
    assert isinstance(panel, wr.MarkdownPanel), f"unexpected panel {panel!r}"
    return set()


@slow
def test_offline_runs_log_language_agnostic_keys_arm_fields_tags_and_short_names(sweep: Path) -> None:
    jobs = _jobs(sweep)
    assert sorted((r.arm.train_langs[0], r.arm.method) for _, r in jobs) == [
        ("de", "dense"), ("de", "global_magnitude"), ("sw", "dense"), ("sw", "global_magnitude")]
    for job_dir, record in jobs:
        run = read_offline_run(job_dir)
        lang, arm, facts = record.arm.train_langs[0], record.arm, record.languages[record.arm.train_langs[0]]
        dense = arm.method == "dense"
        assert run["name"] == (f"{lang}-dense-seed42" if dense else f"{lang}-global-s0.5-seed42")
        assert run["config"]["arm"] == arm.model_dump()
        assert {k: run["config"]["arm"][k] for k in ("model", "regime", "method", "schedule",
                                                    "embedding_sparsity", "sparsity", "seed")} == {
            "model": "tiny", "regime": "per_language", "method": arm.method, "schedule": "none" if dense else "oneshot",
            "embedding_sparsity": 0.0, "sparsity": 0.0 if dense else 0.5, "seed": 42}
        assert run["config"]["lang_info"] == {"lang": lang, "tier": facts.tier, "script": facts.script,
                                              "family": facts.family}
        assert {f"lang:{lang}", f"tier:{facts.tier}", f"method:{arm.method}", "model:tiny", "regime:per_language",
                f"sparsity:{0 if dense else 0.5}", "embedding_sparsity:0", "seed:42"} <= set(run["tags"])

        keys = _scalar_keys(run)
        assert not any(f"/{lang}/" in key for key in keys)  # one test language: no key names it
        history = {key.split(".")[0] for row in run["history"] for key in row if not key.startswith("_")}
        assert history_keys(record) == history - {"sparsity/per_tensor", "sparsity/trace"}  # what panels are checked against
        summary, test = run["summary"], record.test[lang]
        assert summary["test/f1"] == pytest.approx(test["clean"].f1)
        for severity in ("0_1", "0_3"):  # one key per perturbation kind and severity
            assert summary[f"test/typo_{severity}/f1"] == pytest.approx(test[f"typo@{severity.replace('_', '.')}"].f1)
        final = next(row for row in run["history"] if "test/f1" in row)
        assert final["sparsity/target"] == arm.sparsity
        layers = {key for key in keys if key.startswith("sparsity/layer_")}
        if dense:
            assert not layers
        else:  # achieved sparsity of encoder layer i over the record's own per-tensor counts
            for i in range(2):
                tensors = [t for name, t in record.pruning.per_tensor.items() if f"layer.{i}." in name]
                assert summary[f"sparsity/layer_{i}"] == pytest.approx(
                    sum(t.pruned for t in tensors) / sum(t.numel for t in tensors))
            assert layers == {"sparsity/layer_0", "sparsity/layer_1"}


@slow
def test_wandb_flag_logs_one_analysis_run_with_tables_figures_and_the_report_artifact(sweep: Path,
                                                                                       analysed: Path) -> None:
    run = read_offline_run(sweep / "wandb")
    assert run["job_type"] == "analysis" and run["name"] == "analysis" and run["exit_code"] == 0
    assert run["group"] == read_offline_run(_jobs(sweep)[0][0])["group"]
    assert run["project"] == "sparsenlp"

    for name in ("runs", "significance"):
        csv = pd.read_csv(analysed / f"{name}.csv")
        assert run["summary"][f"tables/{name}._type"] == "table-file"
        table = json.loads(next((sweep / "wandb").rglob(f"media/table/tables/{name}_*.table.json")).read_text())
        assert table["columns"] == list(csv.columns) and len(table["data"]) == len(csv)
    figures = {p.stem for p in (analysed / "figures").glob("*.png")}
    assert figures and {f"figures/{stem}._type" for stem in figures} <= set(run["summary"])
    assert all(run["summary"][f"figures/{stem}._type"] == "image-file" for stem in figures)

    (artifact,) = [a for a in run["artifacts"] if a["type"] == "report"]
    paths = {entry["path"] for entry in artifact["manifest"]["contents"]}
    assert artifact["name"].startswith("report-")
    assert {"runs.csv", "runs.parquet", "summary.md", "significance.csv", *(f"figures/{s}.png" for s in figures),
            "tables/runs.table.json", "tables/significance.table.json"} <= paths


@slow
def test_dashboard_dry_run_parses_back_plots_logged_keys_and_filters_to_the_sweep_group(sweep: Path,
                                                                                          analysed: Path) -> None:
    assert report.main(["dashboard", str(sweep), "--dry-run"]) == 0
    spec = json.loads((analysed / "dashboard.json").read_text())
    built = from_specification(spec)
    assert isinstance(built.workspace, ws.Workspace) and isinstance(built.report, wr.Report)

    train_runs = [read_offline_run(job_dir) for job_dir, _ in _jobs(sweep)]
    (group,) = {run["group"] for run in train_runs}
    assert group == str(sweep)  # launched with an absolute sweep dir outside the launch folder
    logged = {TRAIN: set().union(*map(_scalar_keys, train_runs)), ANALYSIS: _scalar_keys(read_offline_run(sweep / "wandb"))}

    assert _leaves(built.workspace.runset_settings.filters) == {("group", "=", group)}
    assert {s.name for s in built.workspace.sections} == SECTIONS
    plotted = []
    for section in built.workspace.sections:
        for panel in section.panels:
            keys = _panel_keys(panel)
            assert keys <= logged[TRAIN] or keys <= logged[ANALYSIS], (section.name, keys - logged[TRAIN])
            plotted.append(keys)
    assert {"sparsity/target", "test/typo_0_1/f1", "test/typo_0_3/f1"} in plotted
    assert {"sparsity/target", "sparsity/layer_0", "sparsity/layer_1"} in plotted
    assert {"tables/significance"} in plotted and any("figures/delta_vs_dense" in keys for keys in plotted)

    grids = [b for b in built.report.blocks if isinstance(b, wr.PanelGrid)]
    assert {b.text for b in built.report.blocks if isinstance(b, wr.H2)} == SECTIONS
    assert len(grids) == 7  # every section but PIE (--no-pie: no PIE table) has data
    for grid in grids:
        (runset,) = grid.runsets
        leaves = _leaves(runset.filters)
        (job_type,) = [value for key, _, value in leaves if key == "jobType"]
        assert leaves == {("group", "=", group), ("jobType", "=", job_type)}
        for panel in grid.panels:
            assert _panel_keys(panel) <= logged[job_type]


@slow
def test_sync_dry_run_lists_unsynced_offline_runs_and_skips_synced_ones(sweep: Path, analysed: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    files = sorted(sweep.rglob("offline-run-*/run-*.wandb"))
    assert len(files) == 5  # four jobs and the analysis run
    marker = files[0].with_suffix(".wandb.synced")  # what `wandb sync` leaves beside an uploaded run
    marker.touch()
    try:
        assert report.main(["sync", str(sweep), "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "would upload 4 offline run(s) into 4 W&B run(s), skip 1 already synced" in out
        assert str(files[0].parent) not in out and all(str(f.parent) in out for f in files[1:])
        for f in files[1:]:
            f.with_suffix(".wandb.synced").touch()
        assert report.main(["sync", str(sweep)]) == 0  # nothing left: wandb is not called
        assert "nothing to upload: all 5 offline run(s) are synced already" in capsys.readouterr().out
    finally:
        for f in files:
            f.with_suffix(".wandb.synced").unlink(missing_ok=True)
    assert len(plan(sweep).pending) == 5


@slow
def test_saving_without_an_entity_is_refused_before_anything_is_written(sweep: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    assert report.main(["dashboard", str(sweep), "--out", str(tmp_path / "out")]) == 1
    assert "pass --entity E --project P" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_panel_key_no_run_logs_is_an_error_naming_it() -> None:
    keys = {"sparsity/target", "test/f1", "sparsity/layer_0"}
    sections = study_sections(keys, [], set())
    check_keys(sections, {TRAIN: keys, ANALYSIS: set()}, "multirun/x")
    with pytest.raises(SparseNLPError, match="plots 'test/f1', which no train run of multirun/x logs"):
        check_keys(sections, {TRAIN: keys - {"test/f1"}, ANALYSIS: set()}, "multirun/x")


def test_wandb_flag_on_a_sweep_without_wandb_runs_fails_before_writing_a_report(tmp_path: Path,
                                                                                capsys: pytest.CaptureFixture) -> None:
    records.write(tmp_path / "0", make_record(config={"logger": {"name": "none", "mode": "disabled"}}), {})
    assert report.main([str(tmp_path), "--wandb", "--no-pie"]) == 1
    assert "logged to W&B" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def test_missing_sweep_dir_and_sweep_without_offline_runs_are_errors(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    assert report.main(["dashboard", str(tmp_path / "nope"), "--dry-run"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert report.main(["sync", str(tmp_path)]) == 1
    assert "no offline W&B run under" in capsys.readouterr().err


def test_group_of_a_default_sweep_dir_is_its_folder_relative_to_the_launch_folder(tmp_path: Path) -> None:
    """Hydra saves the default ``multirun/${now:...}`` unresolved; the record holds the resolved folder."""
    job = tmp_path / "launch" / "multirun" / "2026-11-26" / "10-00-00" / "0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "hydra.yaml").write_text(
        "hydra:\n  sweep:\n    dir: multirun/${now:%Y-%m-%d}/${now:%H-%M-%S}\n"
        f"  runtime:\n    cwd: {tmp_path / 'launch'}\n")
    base = make_record()
    record = make_record(run={**base.run.model_dump(), "sweep_dir": str(job.parent)})
    assert run_group(job, record) == "multirun/2026-11-26/10-00-00"
    (job / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  sweep:\n    dir: ../elsewhere/x\n  runtime:\n    cwd: {tmp_path}\n")
    assert run_group(job, record) == "../elsewhere/x"  # as given, as the tracker did
    assert run_group(job, make_record(config={"logger": {"group": "mine"}})) == "mine"
    assert sweep_runs(tmp_path, [(job, record)], group="g").groups == ("g",)
