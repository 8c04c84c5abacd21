"""The report's statistics on a study-sized synthetic sweep: significance table + PIE noise floor.

Builds, one language at a time and in memory, the sweep of the study: the 40 XTREME languages with
their real WikiANN test-set sizes (``../shared/data/wikiann/README.md``; Thai: 10,000 sentences), 2
sparse arms × 7 sparsities × 3 seeds + dense, per-sentence predictions with a known effect per language
(:mod:`sparsenlp.analysis.synthetic`). It times :func:`sparsenlp.analysis.dense_comparison.compare_to_dense`
over all of it (ΔF1 with its seeds × sentences t-interval, p-values, Holm across languages, PIE rates with
noise floor and excess intervals), and within that the extraction of span counts and sequence codes from the
rows.
Generating the predictions is timed apart: a report reads them from files instead.

    python bench/report_stats.py [--dense-seeds 3] [--conditions clean,char_noise@0.1]
                                 [--max-sentences N] [--langs de,sw] [--figures DIR] [--jobs N]

``--jobs N`` (N > 1) runs the languages in N worker processes instead, as
:func:`~sparsenlp.analysis.dense_comparison.compare_languages` does: each worker generates one
language's predictions (where a report's worker would read them) and compares them, timing both.

``--figures DIR`` also renders the report's statistical figures from the sweep into DIR, next to the
tables they draw (runs.csv, significance.csv, pie.csv); not timed.
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import REPO, Clock, environment_lines, markdown_table, peak_rss_mib  # noqa: E402

from sparsenlp.analysis import encode  # noqa: E402
from sparsenlp.analysis.dense_comparison import compare_to_dense  # noqa: E402
from sparsenlp.analysis.stats import adjust, verdict_summary  # noqa: E402
from sparsenlp.analysis.synthetic import ARMS, SPARSITIES, runs_table, sweep_language, xtreme40  # noqa: E402

WIKIANN = REPO.parent / "shared" / "data" / "wikiann"


def timed_language(code: str, **kwargs):
    """In a worker: one language's synthetic cells, then their comparison, each timed (wall, CPU)."""
    lang = next(lang for lang in xtreme40(WIKIANN) if lang.code == code)
    generated, compared = Clock(), Clock()
    with generated.timing():
        cells = sweep_language(lang, **kwargs)
    with compared.timing():
        part = compare_to_dense(cells, correction=None)
    return part, (generated.wall, generated.cpu), (compared.wall, compared.cpu)


def parallel(args, languages, conditions) -> None:
    """Each language generated and compared in one of ``args.jobs`` worker processes (largest first), as
    :func:`compare_languages` does; the parent adjusts the p-values of the whole sweep."""
    codes = [lang.code for lang in sorted(languages, key=lambda lang: -lang.test_sentences * lang.mean_tokens)]
    work = partial(timed_language, seeds=args.seeds, dense_seeds=args.dense_seeds,
                   conditions=conditions, max_sentences=args.max_sentences)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(pool.map(work, codes))
    wall = time.perf_counter() - start
    start = time.perf_counter()
    table = adjust(pd.concat([p.significance for p, _, _ in parts], ignore_index=True))
    adjusting = time.perf_counter() - start
    generation = [g for _, g, _ in parts]
    analysis = [a for _, _, a in parts]
    print(f"## Report statistics in {args.jobs} worker processes, one language at a time: {len(languages)} languages, "
          f"{len(table)} cells\n")
    print(markdown_table(
        ["step", "wall s, summed over workers", "CPU s, summed over workers", "wall s per worker (sum / jobs)"],
        [["significance table + PIE noise floor (`compare_to_dense` per language)",
          f"{sum(a[0] for a in analysis):.1f}", f"{sum(a[1] for a in analysis):.1f}",
          f"{sum(a[0] for a in analysis) / args.jobs:.1f}"],
         ["generating the synthetic predictions (not part of a report)", f"{sum(g[0] for g in generation):.1f}",
          f"{sum(g[1] for g in generation):.1f}", f"{sum(g[0] for g in generation) / args.jobs:.1f}"]]))
    print(f"\nwhole pool (generation + analysis, worker start-up included): {wall:.1f} s wall; "
          f"Holm adjustment of the {len(table)} rows in the parent: {adjusting:.2f} s\n")
    print("\n".join(environment_lines(("numpy", "scipy", "statsmodels", "pandas"))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per sparse arm")
    parser.add_argument("--dense-seeds", type=int, default=3)
    parser.add_argument("--conditions", default="clean",
                        help="comma-separated; perturbations: sparsenlp/analysis/synthetic.py")
    parser.add_argument("--max-sentences", type=int, default=None, help="cap test sets (default: real sizes)")
    parser.add_argument("--langs", default=None, help="comma-separated codes (default: all 40)")
    parser.add_argument("--figures", type=Path, default=None, help="render the statistical figures into DIR")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes, one language at a time")
    args = parser.parse_args()
    languages = xtreme40(WIKIANN)
    if args.langs:
        languages = [lang for lang in languages if lang.code in args.langs.split(",")]
    conditions = args.conditions.split(",")
    if args.jobs > 1:
        parallel(args, languages, conditions)
        return

    generation, encoding = Clock(), Clock()
    encode.TestSet.encode = encoding.wrap(encode.TestSet.encode)
    make = generation.wrap(sweep_language)
    counts = {"sentences": 0, "runs": 0, "cells": 0}
    f1_rows: list[pd.DataFrame] = []

    def cells():
        for lang in languages:
            part = make(lang, args.seeds, args.dense_seeds, conditions=conditions, max_sentences=args.max_sentences)
            counts["sentences"] += len(part[0].dense[0])
            counts["cells"] += len(part)
            counts["runs"] += len({id(r) for c in part for r in (*c.dense, *c.sparse)})
            if args.figures:
                f1_rows.append(generation.wrap(runs_table)(part, [lang]))
            yield from part

    whole = Clock()
    with whole.timing():
        result = compare_to_dense(cells())
    analysis = whole.wall - generation.wall
    analysis_cpu = whole.cpu - generation.cpu
    sig, pie = result.significance, result.pie

    print(f"## Report statistics on a synthetic sweep: {len(languages)} languages × {len(ARMS)} arms × "
          f"{len(SPARSITIES)} sparsities × {args.seeds} seeds + {args.dense_seeds} dense seeds, "
          f"conditions {', '.join(conditions)}\n")
    print(f"{counts['cells']:,} cells, {counts['runs']:,} runs, {counts['sentences']:,} test sentences per condition "
          f"(every run of a language tags all of its sentences)\n")
    print(markdown_table(
        ["step", "wall s", "CPU s"],
        [["significance table + PIE noise floor (`compare_to_dense`, all of it)", f"{analysis:.1f}",
          f"{analysis_cpu:.1f}"],
         ["… of which span counts and codes from prediction rows (`TestSet.encode`)", f"{encoding.wall:.1f}",
          f"{encoding.cpu:.1f}"],
         ["… of which statistics, PIE floors, correction", f"{analysis - encoding.wall:.1f}",
          f"{analysis_cpu - encoding.cpu:.1f}"],
         ["generating the synthetic predictions (not part of a report)", f"{generation.wall:.1f}",
          f"{generation.cpu:.1f}"]]))
    print(f"\npeak RSS {peak_rss_mib():.0f} MiB\n")
    clean = verdict_summary(sig[sig["condition"] == conditions[0]],
                            {lang.code: lang.tier for lang in languages})
    print(markdown_table(["arm", "sparsity", "tier", "better", "worse", "indistinguishable", "mean ΔF1", "sd ΔF1"],
                         [[r.arm, f"{r.sparsity:g}", r.tier, r.better, r.worse, r.indistinguishable,
                           f"{r.delta_f1_mean:+.3f}", f"{r.delta_f1_std:.3f}"]
                          for r in clean.itertuples() if r.tier == "all"]))
    small = pie.groupby("level")["too_small"].mean()
    flagged = pie[~pie["too_small"]].groupby("level").apply(lambda g: (g["excess_ci_low"] > 0).mean())
    print(f"\nPIE rows flagged too_small: {', '.join(f'{k} {v:.0%}' for k, v in small.items())}; "
          f"excess interval above 0: {', '.join(f'{k} {v:.0%}' for k, v in flagged.items())}\n")
    print("\n".join(environment_lines(("numpy", "scipy", "statsmodels", "pandas"))))

    if args.figures:
        render(args.figures, pd.concat(f1_rows, ignore_index=True), sig, pie, languages)


def render(out: Path, runs: pd.DataFrame, sig: pd.DataFrame, pie: pd.DataFrame, languages) -> None:
    from sparsenlp.analysis import covariates, figures

    facts = pd.DataFrame([{"lang": lang.code, "tier": lang.tier, "script": lang.script, "family": lang.family,
                           "train_size": lang.train_size, "name": lang.name} for lang in languages])
    sig = sig.merge(facts, on="lang")
    pie = pie.merge(facts, on="lang")
    model, notes = covariates.covariate_table(runs, sig)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in (("runs", runs), ("significance", sig), ("pie", pie), ("covariates", model)):
        table.to_csv(out / f"{name}.csv", index=False)  # the data behind the figures
    made, more = figures.statistical_figures(runs, sig, pie, model)
    notes += more
    for note in notes:
        print(f"note: {note}")
    for name, fig in made.items():
        fig.savefig(out / f"{name}.png", dpi=110)
    print(f"\n{len(made)} figures → {out}")


if __name__ == "__main__":
    main()
