"""``sparsenlp-report``: a sweep directory → tidy table, significance vs dense, PIEs with their noise floor,
figures and a Markdown summary.

The CLI only parses arguments, prints notes and calls :mod:`sparsenlp.analysis.sweep_report`, which
computes everything before anything is written (bad input leaves no partial report); the analysis itself
lives in ``collect``, ``sweep_comparison``, ``stats``, ``pie_floor``, ``figures`` and ``summary``, which a
notebook uses directly. The analysis modules are imported inside :func:`main`, so that Ctrl-C at any point
after the interpreter started ends with one line (status 130), not a traceback from the middle of an import.
"""
from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from sparsenlp.errors import SparseNLPError
from sparsenlp.io import DISK_ERRNOS, unwritable

if TYPE_CHECKING:
    from sparsenlp.analysis.sweep_report import Options

COMMANDS = ("table", "pie", "dashboard", "sync", "status")
# The report was written, but some results.json could not be used (named in the report): a script that
# publishes a report must notice, a researcher reading it must see which runs are missing.
EXIT_SKIPPED = 3


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def check_output(out: Path) -> None:
    """Before any work: the report can be written to ``out`` (SparseNLPError naming the folder and the fix)."""
    from sparsenlp.analysis import sweep_report

    sweep_report.check_report_folder(out)
    problem = unwritable(out)
    if problem is not None:
        raise SparseNLPError(f"cannot write the report to {out} ({problem}); choose a writable folder with --out")


def run_table(sweep_dir: Path, out: Path, options: Options) -> list[str]:
    """``sparsenlp-report table``: runs.csv/.parquet, significance.csv, pie.csv, pie_examples.csv, figures,
    summary.md; returns the records it had to skip."""
    from sparsenlp.analysis import sweep_report

    check_output(out)
    report = sweep_report.analyse(sweep_dir, options)
    for note in report.notes:
        _note(note)
    sweep_report.write(report, out)
    print(f"{len(report.table)} rows ({report.table['run_dir'].nunique()} runs), "
          f"{len(report.comparison.significance)} comparisons with dense, {len(report.figures)} figures → {out}")
    return report.skipped


def run_pie(sweep_dir: Path, out: Path, options: Options) -> list[str]:
    """``sparsenlp-report pie``: pie.csv, pie_examples.csv, pie.md, figures/pie_vs_sparsity.png; returns the
    records it had to skip."""
    from sparsenlp.analysis import sweep_report

    check_output(out)
    report = sweep_report.analyse(sweep_dir, options, draw={"pie_vs_sparsity"})
    for note in report.notes:
        _note(note)
    if report.comparison.pie.empty:
        raise SparseNLPError(
            f"no sparse run in {sweep_dir} has dense runs of the same language, model, regime and condition to be "
            "compared with (see the notes above); run dense and sparse configurations of each language")
    sweep_report.write_pie(report, out)
    print(f"{len(report.comparison.pie)} PIE rows → {out}")
    return report.skipped


def _positive(value: str) -> int:
    """``--jobs``: a whole number of worker processes, at least 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of worker processes (1 or more)")
    return number


def _parser() -> argparse.ArgumentParser:
    from sparsenlp.analysis import status, wandb_commands

    parser = argparse.ArgumentParser(
        prog="sparsenlp-report",
        description="Collect a sweep's results.json files into one tidy table, compare every sparse arm with its "
                    "dense baseline per language (ΔF1 with a 95% t-interval over seeds and sentences, p-values "
                    "corrected across languages, PIEs with a noise floor, ΔF1 against the languages' facts in a "
                    "mixed model) and draw the study's figures.",
        epilog="`sparsenlp-report SWEEP_DIR` is `sparsenlp-report table SWEEP_DIR`, which computes the PIEs too "
               "(pie.csv); `pie` writes only the PIE outputs, for chosen conditions. "
               "Outputs go to SWEEP_DIR/report/ unless --out says otherwise, a folder the report replaces whole "
               "(an interrupted report leaves the previous one). Exit status: 0 report written from every job; "
               f"{EXIT_SKIPPED} report written but some results.json or prediction files were unusable, or some job "
               "folders have no results.json (all named in the report); 1 nothing written; 130 interrupted.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{table,pie,dashboard,sync,status}", required=True)
    table = commands.add_parser(
        "table", help="runs.csv/.parquet, significance.csv, pie.csv, pie_examples.csv, covariates.csv, figures/*.png, "
                      "summary.md",
        description="Tidy table, significance vs dense per language × arm × sparsity × condition, PIE rates with "
                    "their noise floor, figures (ΔF1 vs dense absolute and relative, language × sparsity heatmap, "
                    "F1 per tier / script / family, robustness per perturbation, PIEs, covariates) and summary.md.")
    pie = commands.add_parser(
        "pie", help="PIEs (Hooker et al. 2019) with their dense-vs-dense noise floor: pie.csv, pie_examples.csv, "
                    "pie.md",
        description="Per language × condition × arm × sparsity: PIE rate (sentence and token level) next to the "
                    "rate between two dense populations of the same sizes, and the excess with its interval.")
    for sub in (table, pie):
        sub.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR",
                         help="a sweep's output dir, searched recursively for results.json")
        sub.add_argument("--out", type=Path, help="output dir (default: SWEEP_DIR/report)")
        sub.add_argument("--jobs", type=_positive, default=1, metavar="N",
                         help="worker processes for the comparisons, one language at a time (default: 1)")
        sub.add_argument("--allow-unreplicated", action="store_true",
                         help="give comparisons with one seed on a side verdicts and count them (their interval "
                              "ignores seed variation; by default they are marked unreplicated and not counted)")
        sub.add_argument("--correction", choices=("holm", "bh"), default="holm",
                         help="multiple-comparison correction across languages: Holm (family-wise error, "
                              "default) or Benjamini-Hochberg (false discovery rate)")
    table.add_argument("--no-pie", action="store_true",
                       help="skip the PIEs (pie.csv and the PIE figure)")
    pie.add_argument("--examples", type=int, default=5, metavar="N", help="PIE examples per cell (default: 5)")
    pie.add_argument("--condition", action="append", metavar="COND", dest="conditions",
                     help="only this test condition, e.g. clean or char_noise@0.1 (repeatable; default: all)")
    table.add_argument("--wandb", action="store_true",
                       help="also log the report as one W&B run (job_type analysis) in the sweep's group")
    table.add_argument("--wandb-mode", choices=wandb_commands.MODES,
                       help="mode of that run (default: the mode the sweep's runs used)")
    dashboard = commands.add_parser(
        "dashboard", help="the study's W&B workspace and report (wandb-workspaces), saved or --dry-run",
        description="A saved workspace filtered to the sweep's W&B group and a report with the study's sections; "
                    "panels plot only keys the sweep's runs log.")
    dashboard.add_argument("--dry-run", action="store_true",
                           help="no network: write the specification to OUT/dashboard.json")
    sync = commands.add_parser("sync", help="upload the sweep's offline W&B runs (wandb sync), skipping synced ones",
                               description="Uploads every offline W&B run below SWEEP_DIR that is not synced yet.")
    sync.add_argument("--dry-run", action="store_true", help="only list what would be uploaded")
    for sub in (dashboard, sync):
        sub.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR", help="a sweep's output dir")
    dashboard.add_argument("--out", type=Path, help="report dir (default: SWEEP_DIR/report)")
    for sub in (table, dashboard):
        wandb_commands.add_target_options(sub)
    state = commands.add_parser(
        "status", help="where a sweep stands: done, running, failed (with the error line), pending, throughput, ETA",
        description="Reads the sweep's job list (jobs.json) and its job folders (records, job locks, failure.json, "
                    "logs); works while the sweep runs, from any machine that sees the sweep folder.")
    state.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR", help="the sweep's hydra.sweep.dir")
    state.add_argument("--list", action="append", choices=status.STATES, dest="states", metavar="STATE",
                       help=f"list the jobs in this state ({', '.join(status.STATES)}; repeatable; default: failed "
                            "and running)")
    state.add_argument("--all", action="store_true", help=f"list every job of a listed state (default: {status.SHOWN})")
    state.add_argument("--json", action="store_true", help="print the status as JSON, every job with its state")
    state.add_argument("--stale-after", type=float, default=status.STALE_AFTER_S / 60, metavar="MIN",
                       help="a job locked on another host counts as stopped when its folder has not changed for MIN "
                            "minutes (default: %(default)g)")
    sync.add_argument("--entity", help="upload to this W&B entity instead of each run's own")
    sync.add_argument("--project", help="upload to this W&B project instead of each run's own")
    return parser


def _one_line_on_ctrl_c(main: Callable[[Sequence[str] | None], int]) -> Callable[[Sequence[str] | None], int]:
    """Ctrl-C is one line and status 130; the command itself (``argv`` None) exits at once (``cli.exit_now``)."""

    @functools.wraps(main)
    def interruptible(argv: Sequence[str] | None = None) -> int:
        try:
            return main(argv)
        except KeyboardInterrupt:
            print("sparsenlp: interrupted (Ctrl-C); nothing was written (a report written before is unchanged)",
                  file=sys.stderr)
            if argv is None:  # the command, not a caller in the same process (a notebook, a test)
                from sparsenlp.cli import exit_now

                exit_now(130)
            return 130

    return interruptible


@_one_line_on_ctrl_c
def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``sparsenlp-report``; returns the exit status."""
    from sparsenlp.analysis import status, wandb_commands
    from sparsenlp.analysis.sweep_report import Options

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] not in (*COMMANDS, "-h", "--help"):
        args.insert(0, "table")
    ns = _parser().parse_args(args)
    logging.basicConfig(format="%(levelname)s: %(message)s")
    out = getattr(ns, "out", None) or ns.sweep_dir / "report"
    skipped: list[str] = []
    try:
        if ns.command == "status":
            report = status.status(ns.sweep_dir, stale_after=ns.stale_after * 60)
            print(status.as_json(report) if ns.json else
                  status.render(report, tuple(ns.states or ("failed", "running")), None if ns.all else status.SHOWN))
        elif ns.command == "dashboard":
            wandb_commands.run_dashboard(ns.sweep_dir, out, ns.entity, ns.project, ns.group, ns.dry_run)
        elif ns.command == "sync":
            wandb_commands.run_sync(ns.sweep_dir, ns.entity, ns.project, ns.dry_run)
        else:
            options = Options(jobs=ns.jobs, correction=ns.correction, allow_unreplicated=ns.allow_unreplicated)
            if ns.command == "pie":
                skipped = run_pie(ns.sweep_dir, out, replace(options, n_examples=ns.examples,
                                                             conditions=ns.conditions))
            else:
                target = ns.wandb and wandb_commands.prepare_summary_run(ns.sweep_dir, ns.entity, ns.project,
                                                                         ns.group)
                skipped = run_table(ns.sweep_dir, out, replace(options, pie=not ns.no_pie))
                if target:
                    wandb_commands.run_summary_run(target, out, ns.wandb_mode)
    except SparseNLPError as exc:
        print(exc, file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        print(f"sparsenlp error: cannot write the report to {out} ({exc.strerror}: {exc.filename}); free space "
              "there or choose another folder with --out (a report written there before is unchanged)",
              file=sys.stderr)
        return 1
    if skipped:
        _note(f"{len(skipped)} records or files skipped (named in the report's 'Skipped records'); exit status "
              f"{EXIT_SKIPPED}")
        return EXIT_SKIPPED
    return 0


if __name__ == "__main__":
    sys.exit(main())
