"""The W&B side of ``sparsenlp-report``: ``dashboard``, ``sync`` and ``table --wandb``.

Each function reads the sweep, checks everything it can before touching W&B or the disk, then acts;
``report.py`` only parses arguments and calls these. Imports of wandb and wandb-workspaces stay inside,
so ``sparsenlp-report table`` never loads them.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from sparsenlp.analysis import collect
from sparsenlp.tracking.sweep_runs import SweepRuns, sweep_runs

MODES = ("offline", "online")


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """--entity/--project/--group: where the sweep's runs are in W&B, when it is not what their records say."""
    parser.add_argument("--entity", help="W&B entity (user or team); default: the runs' logger.entity")
    parser.add_argument("--project", help="W&B project; default: the runs' logger.project")
    parser.add_argument("--group", help="W&B group of the sweep's runs; default: the group each run was given")


def load_sweep_runs(sweep_dir: Path, entity: str | None, project: str | None, group: str | None) -> SweepRuns:
    loaded, _ = collect.load_records(sweep_dir)
    return sweep_runs(sweep_dir, loaded, group=group, entity=entity, project=project)


def run_dashboard(sweep_dir: Path, out: Path, entity: str | None, project: str | None, group: str | None,
                  dry_run: bool) -> None:
    """``sparsenlp-report dashboard``: the W&B workspace and report of a sweep."""
    from sparsenlp.analysis.dashboard import dashboard

    print(dashboard(load_sweep_runs(sweep_dir, entity, project, group), out, dry_run))


def run_sync(sweep_dir: Path, entity: str | None, project: str | None, dry_run: bool) -> None:
    """``sparsenlp-report sync``: upload the sweep's offline W&B runs."""
    from sparsenlp.tracking.sync import sync

    print(sync(sweep_dir, entity, project, dry_run))


def prepare_summary_run(sweep_dir: Path, entity: str | None, project: str | None, group: str | None) -> SweepRuns:
    """``table --wandb``, before the report is written: where the analysis run goes (errors come first)."""
    from sparsenlp.tracking.summary_run import check_target

    runs = load_sweep_runs(sweep_dir, entity, project, group)
    check_target(runs)
    return runs


def run_summary_run(runs: SweepRuns, out: Path, mode: str | None) -> None:
    """``table --wandb``, after the report is written: log it as the sweep's analysis run."""
    from sparsenlp.tracking.summary_run import log_summary_run

    mode = mode or runs.mode
    where = log_summary_run(runs, out, mode)
    print(f"analysis run → {where}" + ("" if mode == "online" else f"; upload it with sparsenlp-report sync {runs.sweep_dir}"))
