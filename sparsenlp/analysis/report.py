"""``sparsenlp-report``: a sweep directory → tidy table, figures and Markdown summaries.

The CLI only parses arguments, renders Markdown and writes files; the analysis lives in
``collect`` (DataFrames), ``pie_report`` (PIEs) and ``plots`` (figures), which a notebook uses directly.
Everything is computed before anything is written, so bad input leaves no partial report behind.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from sparsenlp.analysis import collect, plots, wandb_commands
from sparsenlp.analysis.pie_report import PieReport, pie_report
from sparsenlp.errors import SparseNLPError

COMMANDS = ("table", "pie", "dashboard", "sync")
# The report was written, but some results.json could not be used (named in the report): a script that
# publishes a report must notice, a researcher reading it must see which runs are missing.
EXIT_SKIPPED = 3
Skipped = Sequence[str]  # "path: why" per results.json left out (collect.load_records)
PIE_COLUMNS = ("lang", "tier", "condition", "model", "regime", "arm", "level", "n_dense", "n_sparse",
               "n_units", "n_pie", "fraction", "f1_dense_pie", "f1_dense_non_pie", "f1_sparse_pie",
               "f1_sparse_non_pie")


def markdown_table(df: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub Markdown table; missing values show as '–'."""
    return df.to_markdown(index=False, floatfmt=f".{digits}f", missingval="–") + "\n"


def skipped_markdown(skipped: Skipped) -> list[str]:
    """A section naming every results.json the report had to leave out, and why."""
    if not skipped:
        return []
    return [f"\n## Skipped records\n\n{len(skipped)} results.json could not be used and are missing from every "
            "table and figure below:\n\n", *(f"- {note}\n" for note in skipped), "\n"]


def summary_markdown(sweep_dir: Path, table: pd.DataFrame, relative: pd.DataFrame, figures: Sequence[str],
                     notes: Sequence[str], pies: PieReport | None, skipped: Skipped = ()) -> str:
    runs = table["run_dir"].nunique()
    arms = sorted(set(table["arm"]))
    parts = [
        f"# sparsenlp report: `{sweep_dir}`\n\n",
        f"{runs} complete runs; {table['lang'].nunique()} test languages "
        f"({', '.join(sorted(table['lang'].unique()))}); arms: {', '.join(arms)}; "
        f"conditions: {', '.join(sorted(table['condition'].unique()))}. "
        "Means are over seeds first, then over languages.\n\n", *skipped_markdown(skipped),
        "## Test F1 (clean), mean over seeds\n\n", markdown_table(collect.f1_summary(table)),
    ]
    if not relative.empty:
        tiers = collect.tier_summary(relative)
        parts += ["\n## Change in F1 relative to dense, mean over the languages of each tier\n\n",
                  markdown_table(tiers[tiers["condition"] == "clean"].drop(columns="condition")),
                  "\nEvery condition: `runs.csv`; per language: `collect.relative_to_dense`.\n"]
    gaps = collect.gap_summary(table)
    if not gaps.empty:
        parts += ["\n## Robustness gap (clean F1 − perturbed F1), mean over languages\n\n", markdown_table(gaps)]
    if pies is not None and not pies.table.empty:
        keys = ["condition", "level", "model", "regime", "arm", "tier"]
        pie_means = pies.table.groupby(keys)["fraction"].mean().reset_index()
        parts += ["\n## PIE fraction (clean), mean over languages; every condition: `sparsenlp-report pie`\n\n",
                  markdown_table(pie_means)]
    parts += ["\n## Figures\n\n", *(f"- [{name}](figures/{name}.png)\n" for name in figures)]
    if notes:
        parts += ["\n## Notes\n\n", *(f"- {note}\n" for note in notes)]
    return "".join(parts)


def pie_markdown(sweep_dir: Path, pies: PieReport, skipped: Skipped = ()) -> str:
    table = pies.table[[c for c in PIE_COLUMNS if c in pies.table]]
    parts = [
        f"# Pruning Identified Exemplars: `{sweep_dir}`\n\n",
        "A sentence (token) is a PIE when the modal prediction of the sparse runs differs from that of the "
        "dense runs (Hooker et al. 2019). `fraction`: PIE share of sentences (tokens); `f1_<population>_<subset>`: "
        "mean F1 of that population's runs on the PIE / non-PIE sentences.\n\n",
        *skipped_markdown(skipped), markdown_table(table),
    ]
    if not pies.examples.empty:
        conditions = set(pies.examples["condition"])
        shown = "clean" if "clean" in conditions else sorted(conditions)[0]
        examples = pies.examples[pies.examples["condition"] == shown]
        parts += [f"\n## PIE examples ({shown}, sentence level; every condition in `pie_examples.csv`)\n\n",
                  markdown_table(examples[["lang", "model", "regime", "arm", "id", "tokens", "gold",
                                           "dense", "sparse"]])]
    if pies.skipped:
        parts += ["\n## Skipped cells\n\n", *(f"- {note}\n" for note in pies.skipped)]
    return "".join(parts)


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def run_table(sweep_dir: Path, out: Path, with_pie: bool, jobs: int) -> Skipped:
    """``sparsenlp-report table``: runs.csv, runs.parquet, figures/*.png, summary.md; returns the skipped records."""
    loaded, skipped = collect.load_records(sweep_dir)
    table = collect.table_from_records(loaded)
    relative = collect.relative_to_dense(table)
    # the figure shows the clean test set; every condition (and pie.csv) is the `pie` command's job
    pies = pie_report(table, conditions=["clean"], jobs=jobs) if with_pie else None
    figures, notes = plots.study_figures(table, relative, pies.table if pies else None)
    notes += pies.skipped if pies else ["PIE skipped (--no-pie)"]
    for note in notes:
        _note(note)

    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "runs.csv", index=False)
    table.to_parquet(out / "runs.parquet", index=False)
    plots.save(figures, out / "figures")
    summary = summary_markdown(sweep_dir, table, relative, list(figures), notes, pies, skipped)
    (out / "summary.md").write_text(summary, encoding="utf-8")
    print(f"{len(table)} rows ({table['run_dir'].nunique()} runs) and {len(figures)} figures → {out}")
    return skipped


def run_pie(sweep_dir: Path, out: Path, conditions: Sequence[str] | None, n_examples: int, jobs: int) -> Skipped:
    """``sparsenlp-report pie``: pie.csv, pie_examples.csv, pie.md, figures/pie_rate.png; returns the skipped records."""
    loaded, skipped = collect.load_records(sweep_dir)
    table = collect.table_from_records(loaded)
    pies = pie_report(table, conditions=conditions, n_examples=n_examples, jobs=jobs)
    for note in pies.skipped:
        _note(note)
    if pies.table.empty:
        raise SparseNLPError(
            f"no PIE population in {sweep_dir} has a counterpart, both with ≥2 seeds (see the notes above); "
            "run dense (sparsity 0) and sparse configurations of each language with several seeds, e.g. seed=1,2,3"
        )
    figure = plots.pie_rate(pies.table) if "clean" in set(pies.table["condition"]) else None
    out.mkdir(parents=True, exist_ok=True)
    pies.table.to_csv(out / "pie.csv", index=False)
    pies.examples.to_csv(out / "pie_examples.csv", index=False)
    (out / "pie.md").write_text(pie_markdown(sweep_dir, pies, skipped), encoding="utf-8")
    if figure is not None:
        plots.save({"pie_rate": figure}, out / "figures")
    print(f"{len(pies.table)} PIE rows, {len(pies.skipped)} cell(s) skipped → {out}")
    return skipped


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparsenlp-report",
        description="Collect a sweep's results.json files into one tidy table and draw the study's figures.",
        epilog="`sparsenlp-report SWEEP_DIR` is `sparsenlp-report table SWEEP_DIR`. "
               "Outputs go to SWEEP_DIR/report/ unless --out says otherwise. Exit status: 0 report written from "
               f"every results.json; {EXIT_SKIPPED} report written but some results.json were unusable (named in "
               "the report); 1 nothing written.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{table,pie,dashboard,sync}", required=True)
    table = commands.add_parser(
        "table", help="runs.csv/.parquet (one row per run × test language × condition), figures/*.png, summary.md",
        description="Tidy table, figures (F1 vs sparsity per language and tier, change relative to dense, "
                    "robustness gap, global vs layer-wise, PIE rate) and summary.md.")
    pie = commands.add_parser(
        "pie", help="PIEs (Hooker et al. 2019) of dense vs sparse populations of seeds: pie.csv, pie.md",
        description="Per language × condition × method × sparsity: PIE fraction (sentence and token level) "
                    "and F1 on PIE / non-PIE sentences; needs ≥2 seeds per population.")
    for sub in (table, pie):
        sub.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR",
                         help="a sweep's output dir, searched recursively for results.json")
        sub.add_argument("--out", type=Path, help="output dir (default: SWEEP_DIR/report)")
        sub.add_argument("--jobs", type=int, default=1, metavar="N",
                         help="processes for the PIE computation (seconds per cell on a 10k-sentence test set)")
    table.add_argument("--no-pie", action="store_true",
                       help="skip the PIE rate figure (it reads every run's clean predictions)")
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
    sync.add_argument("--entity", help="upload to this W&B entity instead of each run's own")
    sync.add_argument("--project", help="upload to this W&B project instead of each run's own")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``sparsenlp-report``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] not in (*COMMANDS, "-h", "--help"):
        args.insert(0, "table")
    ns = _parser().parse_args(args)
    logging.basicConfig(format="%(levelname)s: %(message)s")
    out = getattr(ns, "out", None) or ns.sweep_dir / "report"
    skipped: Skipped = ()
    try:
        if ns.command == "pie":
            skipped = run_pie(ns.sweep_dir, out, ns.conditions, ns.examples, ns.jobs)
        elif ns.command == "dashboard":
            wandb_commands.run_dashboard(ns.sweep_dir, out, ns.entity, ns.project, ns.group, ns.dry_run)
        elif ns.command == "sync":
            wandb_commands.run_sync(ns.sweep_dir, ns.entity, ns.project, ns.dry_run)
        else:
            target = ns.wandb and wandb_commands.prepare_summary_run(ns.sweep_dir, ns.entity, ns.project, ns.group)
            skipped = run_table(ns.sweep_dir, out, not ns.no_pie, ns.jobs)
            if target:
                wandb_commands.run_summary_run(target, out, ns.wandb_mode)
    except SparseNLPError as exc:
        print(exc, file=sys.stderr)
        return 1
    if skipped:
        _note(f"{len(skipped)} results.json skipped (named in the report); exit status {EXIT_SKIPPED}")
        return EXIT_SKIPPED
    return 0


if __name__ == "__main__":
    sys.exit(main())
