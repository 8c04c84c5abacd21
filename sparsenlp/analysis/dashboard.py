"""``sparsenlp-report dashboard``: the study's W&B workspace and report, built with ``wandb-workspaces``.

The sections (``dashboard_sections``) become a saved workspace filtered to the sweep's group, with one
panel grouping per chart, and a report whose run sets also split lines by pruning method and
embeddings. Both are the library's own objects; ``--dry-run`` writes their specification (the library's
models, as JSON) without any network, :func:`from_specification` parses it back, and otherwise
``save()`` uploads them. Report run sets name no project, so they read the report's own project.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws
from wandb_workspaces import expr
from wandb_workspaces.reports.v2 import internal as report_model
from wandb_workspaces.workspaces import internal as workspace_model

from sparsenlp import io
from sparsenlp.analysis.dashboard_sections import (
    ANALYSIS,
    SPARSITY,
    TRAIN,
    Chart,
    Section,
    check_keys,
    study_sections,
)
from sparsenlp.errors import SparseNLPError
from sparsenlp.tracking.summary_run import report_files
from sparsenlp.tracking.sweep_runs import SweepRuns

SPEC_FILE = "dashboard.json"


@dataclass
class Dashboard:
    workspace: ws.Workspace
    report: wr.Report


def group_filter(groups: tuple[str, ...], job_type: str | None = None) -> list[expr.FilterExpr]:
    """Runs of the sweep's group(s), optionally of one job type."""
    group = expr.Metric("Group")
    by_group = group == groups[0] if len(groups) == 1 else group.isin(list(groups))
    return [by_group] + ([expr.Metric("JobType") == job_type] if job_type else [])


def _panel(chart: Chart, in_workspace: bool) -> Any:
    if chart.kind == "table":
        return wr.WeavePanelSummaryTable(table_name=chart.keys[0], layout=wr.Layout(w=24, h=12))
    if chart.kind == "media":
        return wr.MediaBrowser(title=chart.title, media_keys=list(chart.keys), layout=wr.Layout(w=24, h=12))
    # Workspace: the panel groups by its own key. Report: the run set's grouping makes the lines.
    by = wr.Config(chart.by) if in_workspace and chart.by else None
    return wr.LinePlot(title=chart.title, x=SPARSITY, y=list(chart.keys), groupby=by, groupby_aggfunc="mean",
                       groupby_rangefunc="stderr", aggregate=True, title_x="target sparsity")


def build(sections: list[Section], runs: SweepRuns, entity: str, project: str) -> Dashboard:
    """The workspace and report of ``sections`` for the runs of ``runs`` in ``entity/project``."""
    group = " + ".join(runs.groups)
    workspace = ws.Workspace(
        entity=entity, project=project, name=f"sparsenlp: {group}",
        sections=[ws.Section(name=s.title, is_open=True,
                             panels=[wr.MarkdownPanel(markdown=s.text), *(_panel(c, True) for c in s.charts)])
                  for s in sections],
        runset_settings=ws.RunsetSettings(filters=group_filter(runs.groups)))
    blocks: list[Any] = [wr.TableOfContents(), wr.P(
        f"{runs.runs} runs of `{runs.sweep_dir}` (W&B group {group}) and the sweep's analysis run. "
        "Built by `sparsenlp-report dashboard`; rebuild it rather than editing panels by hand.")]
    for s in sections:
        blocks += [wr.H2(s.title), wr.MarkdownBlock(text=s.text)]
        if s.charts:
            runset = wr.Runset(name=f"{s.source} runs", filters=group_filter(runs.groups, s.source),
                               groupby=[f"config.{key}" for key in s.by])
            blocks.append(wr.PanelGrid(runsets=[runset], panels=[_panel(c, False) for c in s.charts]))
    report = wr.Report(entity=entity, project=project, title=f"sparsenlp: {group}"[:128], width="fluid",
                       description="F1 vs sparsity per language group, ΔF1 vs dense, robustness, PIEs, per-layer "
                                   "sparsity", blocks=blocks)
    return Dashboard(workspace, report)


def specification(dashboard: Dashboard) -> dict[str, Any]:
    """The library's own serialisation of both: what ``save()`` would send (report: its view spec)."""
    dump = {"mode": "json", "by_alias": True, "exclude_none": True}
    return {"workspace": dashboard.workspace._to_model().model_dump(**dump),
            "report": dashboard.report._to_model().model_dump(**dump)}


def from_specification(spec: dict[str, Any]) -> Dashboard:
    """Parse a :func:`specification` back into ``wandb-workspaces`` objects (as ``from_url`` does)."""
    return Dashboard(ws.Workspace._from_model(workspace_model.View.model_validate(spec["workspace"])),
                     wr.Report._from_model(report_model.ReportViewspec.model_validate(spec["report"])))


def dashboard(runs: SweepRuns, report_dir: Path, dry_run: bool) -> str:
    """Build (and unless ``dry_run`` save) the sweep's dashboard; returns what to tell the user.

    The panels of the analysis sections are those of the tables and figures in ``report_dir``, which
    ``sparsenlp-report SWEEP_DIR --wandb`` logs; nothing is written or saved when a check fails."""
    analysis_keys = report_files(report_dir).run_keys()
    sections = study_sections(runs.keys, runs.conditions, analysis_keys)
    check_keys(sections, {TRAIN: runs.keys, ANALYSIS: analysis_keys}, runs.sweep_dir)
    if not dry_run and not (runs.entity and runs.project):
        raise SparseNLPError("saving a dashboard needs the W&B entity and project the runs were synced to; "
                             "pass --entity E --project P (or --dry-run to write the specification only)")
    built = build(sections, runs, runs.entity or "", runs.project or "")
    if dry_run:
        path = report_dir / SPEC_FILE
        io.write_json(path, {"entity": runs.entity, "project": runs.project, "groups": list(runs.groups),
                             **specification(built)})
        return f"dashboard specification ({len(sections)} sections) → {path}"
    saved = []
    try:
        saved.append(f"workspace: {built.workspace.save().url}")
        saved.append(f"report: {built.report.save().url}")
    except Exception as error:  # noqa: BLE001 - network, login and permission errors have one fix
        raise SparseNLPError(f"saving the dashboard to {runs.entity}/{runs.project} failed ({type(error).__name__}: "
                             f"{error}); run `wandb login`, check --entity/--project and rerun"
                             + (f" (already saved: {saved[0]})" if saved else "")) from error
    return "\n".join(saved)
