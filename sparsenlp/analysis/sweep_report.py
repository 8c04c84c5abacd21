"""A sweep directory → every table, figure and Markdown page of its report, in memory, then on disk.

:func:`analyse` reads the records, compares every sparse arm with its dense baseline per language
(:mod:`sparsenlp.analysis.sweep_comparison`), draws the figures and renders the Markdown; only then do
:func:`write` and :func:`write_pie` touch the output folder, so bad input leaves no partial report.
``sparsenlp-report`` is a thin command line over these two steps, and a notebook can use the pieces.

Files (``write``): ``runs.csv``/``runs.parquet`` (one row per run × test language × condition,
:data:`sparsenlp.analysis.collect.COLUMNS`), ``significance.csv`` (one row per language × arm ×
sparsity × condition: ΔF1 vs dense with its interval, p-value, adjusted p-value, the correction and the
verdict, then the arm's dimensions, the language's facts and what its runs trained on), ``pie.csv`` (one
row per comparison × PIE level: rate, noise floor, excess with its interval, ``too_small``),
``pie_examples.csv``, ``covariates.csv`` (ΔF1 against the languages' facts, one mixed model per arm ×
condition × sparsity: :mod:`sparsenlp.analysis.covariates`), ``strength.csv``
(:mod:`sparsenlp.analysis.strength`: each condition's measured strength per language next to the dense gap,
and the conditions that did not apply), ``calibration.csv`` (the one-shot arms' comparisons split by calibration
data: language × calibration language per method and target), ``figures/*.png`` and ``summary.md``.

A report folder is replaced whole (:func:`sparsenlp.io.atomic_folder`): the new report is written into a
temporary sibling, next to the files of the old folder that this command does not make (a ``pie`` run keeps
the table's files, both keep ``dashboard.json``), and swapped into place in one step. An interrupted write
(Ctrl-C, a kill, a full disk) leaves the previous report as it was, never new tables next to an old summary.
A folder holding anything but report files is refused, so ``--out`` never replaces a user's own files.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import pandas as pd

from sparsenlp.analysis import collect, covariates, figures, provenance, strength, summary
from sparsenlp.analysis.sweep_comparison import SweepComparison, baseline_runs, compare_sweep
from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.pie import LEVELS
from sparsenlp.io import atomic_folder, remove_stale_partials, write_text

FIGURES = "figures"
TABLES = ("pie.csv", "pie_examples.csv", "covariates.csv", "strength.csv", "calibration.csv")
# every file a report folder may hold: what `table`, `pie` and `dashboard --dry-run` write, and nothing else
REPORT_FILES = frozenset({"runs.csv", "runs.parquet", "significance.csv", *TABLES, "summary.md", "pie.md",
                          "dashboard.json"})
PIE_FIGURE = PurePath(FIGURES, "pie_vs_sparsity.png")
PIE_FILES = frozenset({PurePath("pie.csv"), PurePath("pie_examples.csv"), PurePath("pie.md"), PIE_FIGURE})


@dataclass(frozen=True)
class Options:
    """How a report is computed: worker processes, correction and level, PIEs or not, examples per comparison,
    test conditions (None: all), whether comparisons with one seed on a side get verdicts, and the test
    conditions of the covariate models."""

    jobs: int = 1
    correction: str = "holm"
    alpha: float = 0.05
    pie: bool = True
    n_examples: int = 5
    conditions: Sequence[str] | None = None
    allow_unreplicated: bool = False
    covariate_conditions: Sequence[str] | None = ("clean",)


@dataclass
class SweepReport:
    """Everything a report writes, computed: the tables, rendered figures (PNG bytes) and Markdown pages."""

    sweep_dir: Path
    table: pd.DataFrame
    comparison: SweepComparison
    runs: pd.DataFrame  # what the figures draw: each arm with its own dense baseline at sparsity 0
    robustness: pd.DataFrame | None
    covariates: pd.DataFrame
    figures: dict[str, bytes]
    summary: str
    pie_page: str
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    strength: pd.DataFrame = field(default_factory=pd.DataFrame)


def _robustness(runs: pd.DataFrame) -> pd.DataFrame | None:
    if not (runs["condition"] != "clean").any():
        return None
    try:
        return figures.robustness_table(runs)
    except ValueError:  # perturbed conditions without a clean counterpart
        return None


def _drawn(made: tuple[dict, list[str]]) -> tuple[dict[str, bytes], list[str]]:
    return figures.png_bytes(made[0]), made[1]


def analyse(sweep_dir: str | Path, options: Options = Options(), draw: bool | Collection[str] = True) -> SweepReport:
    """The whole report of a sweep; ``draw``: every figure (True), none (False), or just the named ones.

    The figures of the runs table are drawn in a thread while the comparisons run in worker processes
    (the parent only waits for them), so drawing and comparing overlap."""
    sweep_dir = Path(sweep_dir)
    only = None if draw is True else draw
    loaded, skipped = collect.load_records(sweep_dir)
    table = collect.table_from_records(loaded)
    runs = baseline_runs(table)
    with ThreadPoolExecutor(1) as drawing:
        early = drawing.submit(lambda: _drawn(figures.run_figures(runs, only)) if draw and not runs.empty else ({}, []))
        comparison = compare_sweep(table, jobs=options.jobs, correction=options.correction, alpha=options.alpha,
                                   pie_levels=LEVELS if options.pie else (),
                                   n_examples=options.n_examples if options.pie else 0, conditions=options.conditions,
                                   allow_unreplicated=options.allow_unreplicated)
        from_runs, run_notes = early.result()
    notes = list(comparison.notes) + collect.missing_metrics(loaded)
    skipped = skipped + comparison.skipped
    if not options.pie:
        notes.append("PIEs not computed (--no-pie)")
    covariate_rows = pd.DataFrame(columns=list(covariates.COLUMNS))
    if not comparison.significance.empty:
        covariate_rows, covariate_notes = covariates.covariate_table(
            runs, comparison.significance, options.covariate_conditions, options.correction,
            options.allow_unreplicated)
        notes += [f"covariate model {note}" for note in covariate_notes]
    drawn: dict[str, bytes] = {}
    if draw and not comparison.significance.empty:
        sig = comparison.significance.rename(columns={"lang_name": "name"})
        drawn, figure_notes = _drawn(figures.comparison_figures(sig, comparison.pie if options.pie else None,
                                                                covariate_rows, only))
        notes += figure_notes
    elif draw:
        notes.append("no comparison figure drawn: the sweep has no sparse run next to a dense run of the same cell")
    drawn.update(from_runs)  # the runs' own figures need no dense comparison
    notes += run_notes
    robust = _robustness(runs)
    seeds = provenance.seeds_per_comparison(comparison.index)
    opening = provenance.markdown(provenance.provenance(sweep_dir, loaded), seeds)
    pie = comparison.pie if options.pie else None
    strength_rows, strength_page = strength.report(table, loaded)
    page = summary.summary_markdown(str(sweep_dir), opening, comparison.significance, robust, pie, covariate_rows,
                                    list(drawn), notes, skipped, options.alpha,
                                    None if options.pie else "Not computed (`--no-pie`).", options.allow_unreplicated,
                                    strength_page)
    pie_page = summary.pie_markdown(str(sweep_dir), comparison.pie, comparison.examples, notes)
    return SweepReport(sweep_dir, table, comparison, runs, robust, covariate_rows, drawn, page, pie_page, notes,
                       skipped, strength_rows)


def _write_figures(report: SweepReport, out: Path, names: Sequence[str]) -> None:
    for name in names:
        path = out / FIGURES / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(report.figures[name])


def _write_tables(report: SweepReport, out: Path, names: Sequence[str]) -> None:
    """The named optional tables when they have rows (none otherwise: ``--no-pie``, no covariate model)."""
    frames = {"pie.csv": report.comparison.pie, "pie_examples.csv": report.comparison.examples,
              "covariates.csv": report.covariates, "strength.csv": report.strength,
              "calibration.csv": figures.calibration_matrix(report.comparison.significance)}
    for name, frame in ((name, frames[name]) for name in names):
        if not frame.empty:
            frame.to_csv(out / name, index=False)


def check_report_folder(out: Path) -> None:
    """``out`` may be replaced by a report: it does not exist, or holds only report files (SparseNLPError)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise SparseNLPError(f"--out {out} is a file; choose a folder for the report with --out")
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        report_file = (str(rel) in REPORT_FILES or rel == PurePath(FIGURES)
                       or (rel.parent == PurePath(FIGURES) and rel.suffix == ".png"))
        if not report_file:
            raise SparseNLPError(f"--out {out} holds {path}, which is not part of a report, and a report replaces its "
                                 "folder whole; choose a new or empty folder with --out")


@contextmanager
def _replacing(out: Path, made_here: Callable[[PurePath], bool]) -> Iterator[Path]:
    """A temporary sibling of ``out`` that replaces it whole when the block succeeds; it starts with the files of
    ``out`` that this command does not make (``made_here`` is False), hard-linked (never rewritten in place)."""
    check_report_folder(out)
    remove_stale_partials(out)
    with atomic_folder(out) as tmp:
        for path in sorted(out.rglob("*")) if out.is_dir() else ():
            rel = path.relative_to(out)
            if path.is_file() and not made_here(rel):
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(path, tmp / rel)
                except OSError:  # a file system without hard links
                    shutil.copy2(path, tmp / rel)
        yield tmp


def write(report: SweepReport, out: str | Path) -> list[Path]:
    """runs.csv/.parquet, significance.csv, strength.csv, pie.csv, pie_examples.csv, covariates.csv, figures/*.png,
    summary.md, replacing the folder whole. An earlier report's tables, figures and ``pie.md`` are not kept, so none
    outlives its data; ``dashboard.json`` is."""
    out = Path(out)
    with _replacing(out, lambda rel: str(rel) != "dashboard.json") as tmp:
        report.table.to_csv(tmp / "runs.csv", index=False)
        report.table.to_parquet(tmp / "runs.parquet", index=False)
        report.comparison.significance.to_csv(tmp / "significance.csv", index=False)
        _write_tables(report, tmp, TABLES)
        _write_figures(report, tmp, list(report.figures))
        write_text(tmp / "summary.md", report.summary)
    return sorted(p for p in out.rglob("*") if p.is_file())


def write_pie(report: SweepReport, out: str | Path) -> list[Path]:
    """``sparsenlp-report pie``: pie.csv, pie_examples.csv, pie.md and figures/pie_vs_sparsity.png, in a folder
    replaced whole that keeps the other files of an earlier report there."""
    out = Path(out)
    with _replacing(out, lambda rel: rel in PIE_FILES) as tmp:
        _write_tables(report, tmp, ("pie.csv", "pie_examples.csv"))
        write_text(tmp / "pie.md", report.pie_page)
        _write_figures(report, tmp, [n for n in report.figures if n == PIE_FIGURE.stem])
    return [out / "pie.csv", out / "pie_examples.csv", out / "pie.md"]
