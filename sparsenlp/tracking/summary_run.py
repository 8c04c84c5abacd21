"""The sweep's analysis as one W&B run: ``sparsenlp-report SWEEP_DIR --wandb``.

The report folder's tables and figures are analysis results, not per-run metrics, so they go to one
run of their own (job_type ``analysis``) in the sweep's group, where the dashboard's ΔF1 and PIE panels
read them: each ``<name>.csv`` of :data:`TABLES` as the Table ``tables/<name>``, each
``figures/<stem>.png`` as the image ``figures/<stem>``, and the whole folder as an artifact (with the
tables again as W&B Tables, which hold up to ``Table.MAX_ARTIFACT_ROWS`` rows where a run's own table
keeps ``Table.MAX_ROWS``). Offline the run waits for ``sparsenlp-report sync``; online it uploads.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sparsenlp.errors import SparseNLPError
from sparsenlp.tracking.sweep_runs import SweepRuns
from sparsenlp.tracking.wandb import safe

log = logging.getLogger(__name__)

TABLES = ("runs", "significance", "pie")
JOB_TYPE = "analysis"
RUN_NAME = "analysis"


@dataclass(frozen=True)
class ReportFiles:
    """What a report folder gives the analysis run: tables (key -> DataFrame) and figures (key -> png)."""

    tables: dict[str, pd.DataFrame]
    figures: dict[str, Path]

    def run_keys(self) -> set[str]:
        """The keys the run itself logs: every figure and every table within W&B's row limit."""
        from wandb import Table

        small = {key for key, table in self.tables.items() if len(table) <= Table.MAX_ROWS}
        return small | set(self.figures)


def report_files(report_dir: Path) -> ReportFiles:
    """The tables and figures of ``report_dir`` (missing ones are left out: the analysis may not have run)."""
    tables = {f"tables/{name}": pd.read_csv(report_dir / f"{name}.csv")
              for name in TABLES if (report_dir / f"{name}.csv").is_file()}
    figures = {f"figures/{png.stem}": png for png in sorted((report_dir / "figures").glob("*.png"))}
    return ReportFiles(tables, figures)


def artifact_name(group: str) -> str:
    """The report artifact of a group: W&B artifact names allow letters, digits, '-', '_' and '.'."""
    return f"report-{safe(group)}"


def check_target(runs: SweepRuns) -> None:
    """The analysis run needs one group and one project to go to."""
    if len(runs.groups) != 1 or runs.project is None:
        raise SparseNLPError(f"the runs under {runs.sweep_dir} span several W&B groups or projects "
                             f"({', '.join(runs.groups)}); pass --group G and --project P")


def log_summary_run(runs: SweepRuns, report_dir: Path, mode: str) -> str:
    """Log ``report_dir`` as the sweep's analysis run; returns the run's URL (online) or folder (offline)."""
    import wandb

    check_target(runs)
    files = report_files(report_dir)
    if not files.tables and not files.figures:
        raise SparseNLPError(f"{report_dir} holds no table or figure to log; run sparsenlp-report {runs.sweep_dir} first")
    settings = wandb.Settings(x_disable_stats=True, console="off", reinit="create_new")
    try:
        run = wandb.init(project=runs.project, entity=runs.entity, group=runs.groups[0], job_type=JOB_TYPE,
                         name=RUN_NAME, mode=mode, dir=str(runs.sweep_dir), settings=settings,
                         config={"sweep_dir": str(runs.sweep_dir), "report_dir": str(report_dir), "runs": runs.runs})
    except Exception as error:  # noqa: BLE001 - any init failure has the same fix
        raise SparseNLPError(f"W&B init failed ({type(error).__name__}: {error}); run `wandb login` or pass "
                             "--wandb-mode offline and upload later with sparsenlp-report sync") from error
    with run:
        logged = files.run_keys()
        run.log({**{key: wandb.Table(dataframe=table) for key, table in files.tables.items() if key in logged},
                 **{key: wandb.Image(str(png)) for key, png in files.figures.items()}})
        artifact = wandb.Artifact(artifact_name(runs.groups[0]), type="report",
                                  description=f"sparsenlp-report of {runs.sweep_dir}")
        artifact.add_dir(str(report_dir))
        for key, table in files.tables.items():
            artifact.add(wandb.Table(dataframe=table), key)
        run.log_artifact(artifact)
        where = run.url if mode == "online" else str(Path(run.dir).parent)
    for key in sorted(set(files.tables) - logged):
        log.warning("%s has %d rows, over W&B's %d for a run's table: it is in the artifact only",
                    key, len(files.tables[key]), wandb.Table.MAX_ROWS)
    return where
