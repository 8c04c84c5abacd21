"""``sparsenlp-report``: a sweep directory → tidy table, significance vs dense, PIEs with their noise floor,
figures and a Markdown summary.

The CLI only parses arguments, prints notes and calls :mod:`sparsenlp.analysis.sweep_report`, which
computes everything before anything is written (bad input leaves no partial report); the analysis itself
lives in ``collect``, ``sweep_comparison``, ``stats``, ``pie_floor``, ``figures`` and ``summary``, which a
notebook uses directly.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from sparsenlp.analysis import sweep_report
from sparsenlp.analysis.sweep_report import Options
from sparsenlp.errors import SparseNLPError

COMMANDS = ("table", "pie")


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def run_table(sweep_dir: Path, out: Path, options: Options) -> None:
    """``sparsenlp-report table``: runs.csv/.parquet, significance.csv, pie.csv, pie_examples.csv, figures,
    summary.md."""
    report = sweep_report.analyse(sweep_dir, options)
    for note in report.notes:
        _note(note)
    sweep_report.write(report, out)
    print(f"{len(report.table)} rows ({report.table['run_dir'].nunique()} runs), "
          f"{len(report.comparison.significance)} comparisons with dense, {len(report.figures)} figures → {out}")


def run_pie(sweep_dir: Path, out: Path, options: Options) -> None:
    """``sparsenlp-report pie``: pie.csv, pie_examples.csv, pie.md, figures/pie_vs_sparsity.png."""
    report = sweep_report.analyse(sweep_dir, options, draw={"pie_vs_sparsity"})
    for note in report.notes:
        _note(note)
    if report.comparison.pie.empty:
        raise SparseNLPError(
            f"no sparse run in {sweep_dir} has dense runs of the same language, model, regime and condition to be "
            "compared with (see the notes above); run dense and sparse configurations of each language")
    sweep_report.write_pie(report, out)
    print(f"{len(report.comparison.pie)} PIE rows → {out}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparsenlp-report",
        description="Collect a sweep's results.json files into one tidy table, compare every sparse arm with its "
                    "dense baseline per language (ΔF1 with a 95% CI over seeds and sentences, paired p-values "
                    "corrected across languages, PIEs with a noise floor) and draw the study's figures.",
        epilog="`sparsenlp-report SWEEP_DIR` is `sparsenlp-report table SWEEP_DIR`, which computes the PIEs too "
               "(pie.csv); `pie` writes only the PIE outputs, for chosen conditions. "
               "Outputs go to SWEEP_DIR/report/ unless --out says otherwise.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{table,pie}", required=True)
    table = commands.add_parser(
        "table", help="runs.csv/.parquet, significance.csv, pie.csv, pie_examples.csv, figures/*.png, summary.md",
        description="Tidy table, significance vs dense per language × arm × sparsity × condition, PIE rates with "
                    "their noise floor, figures (ΔF1 vs dense absolute and relative, language × sparsity heatmap, "
                    "F1 per tier / script / family, robustness per perturbation, PIEs) and summary.md.")
    pie = commands.add_parser(
        "pie", help="PIEs (Hooker et al. 2019) with their dense-vs-dense noise floor: pie.csv, pie_examples.csv, "
                    "pie.md",
        description="Per language × condition × arm × sparsity: PIE rate (sentence and token level) next to the "
                    "rate between two dense populations of the same sizes, and the excess with its interval.")
    for sub in (table, pie):
        sub.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR",
                         help="a sweep's output dir, searched recursively for results.json")
        sub.add_argument("--out", type=Path, help="output dir (default: SWEEP_DIR/report)")
        sub.add_argument("--jobs", type=int, default=1, metavar="N",
                         help="worker processes for the comparisons, one language at a time (default: 1)")
        sub.add_argument("--n-boot", type=int, default=2000, metavar="B",
                         help="bootstrap replicates of every comparison (default: 2000)")
        sub.add_argument("--correction", choices=("holm", "bh"), default="holm",
                         help="multiple-comparison correction across languages: Holm (family-wise error, "
                              "default) or Benjamini-Hochberg (false discovery rate)")
    table.add_argument("--no-pie", action="store_true",
                       help="skip the PIEs (pie.csv and the PIE figure)")
    pie.add_argument("--examples", type=int, default=5, metavar="N", help="PIE examples per cell (default: 5)")
    pie.add_argument("--condition", action="append", metavar="COND", dest="conditions",
                     help="only this test condition, e.g. clean or char_noise@0.1 (repeatable; default: all)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``sparsenlp-report``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] not in (*COMMANDS, "-h", "--help"):
        args.insert(0, "table")
    ns = _parser().parse_args(args)
    logging.basicConfig(format="%(levelname)s: %(message)s")
    out = ns.out or ns.sweep_dir / "report"
    options = Options(jobs=ns.jobs, n_boot=ns.n_boot, correction=ns.correction)
    try:
        if ns.command == "pie":
            run_pie(ns.sweep_dir, out, replace(options, n_examples=ns.examples, conditions=ns.conditions))
        else:
            run_table(ns.sweep_dir, out, replace(options, pie=not ns.no_pie))
    except SparseNLPError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
