"""``sparsenlp-report`` end to end on a study-sized synthetic sweep written to disk like a real one.

The sweep: the 40 XTREME languages with their real WikiANN test-set sizes (``../shared/data/wikiann/README.md``;
Thai: 10,000 sentences), per-language mBERT runs of 2 methods (global and layer-wise magnitude, cubic
schedule) × 7 sparsities (0.5–0.98) × 3 seeds = 1,680 sparse records, plus 3 dense seeds per language
(120 records), each with per-sentence predictions of its whole clean test set and a known effect per
language (:mod:`sparsenlp.analysis.synthetic`). Every job is written through ``sparsenlp.tracking.records.write``
(``results.json`` a valid ``RunRecord``, ``predictions/test.jsonl`` and its ``.npz`` companion), under
``SWEEP/<job_num>/`` as a Hydra multirun lays it out, so reading it costs what a real sweep costs.

Building the sweep is timed apart (it is not part of a report) and done once: a later call reuses a complete
sweep directory. The report is then run as a user runs it, ``sparsenlp-report SWEEP --jobs N`` in a fresh
process, and its wall time printed with the machine it ran on.

    python bench/report.py [--sweep DIR] [--jobs 2] [--build-jobs 2] [--langs de,sw] [--max-sentences N]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import REPO, environment_lines, markdown_table  # noqa: E402

DEFAULT_SWEEP = Path("/tmp/sparsenlp-bench-report-sweep")
WIKIANN = REPO.parent / "shared" / "data" / "wikiann"
COMPLETE = ".complete"  # written last: the sweep directory is whole


def base_configs() -> dict[str, dict]:
    """The resolved config of a paper-study job per method (patched per job): records of realistic size."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from sparsenlp.config import CONFIG_MODULE

    out = {}
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        for method in ("dense", "global_magnitude", "layerwise_magnitude"):
            overrides = ["experiment=paper", "lang=de", "seed=0", "logger=none", f"pruning={method}",
                         f"data.root={WIKIANN}", "output_dir=multirun/paper/0"]
            out[method] = OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)
    return out


def build_language(index: int, sweep: Path, max_sentences: int | None, configs: dict) -> tuple[int, int]:
    """Every job of one language: its synthetic runs (sparsenlp.analysis.synthetic), each written by records.write."""
    from sparsenlp.analysis.synthetic import sweep_language, write_run, xtreme40

    lang = xtreme40(WIKIANN)[index]
    cells = sweep_language(lang, max_sentences=max_sentences)
    jobs = [("dense", 0.0, cells[0].dense)] + [(c.arm.split("·")[0], c.sparsity, c.sparse) for c in cells]
    job, rows = index * 1000, 0
    for method, sparsity, runs in jobs:
        for seed, run in enumerate(runs):
            config = json.loads(json.dumps(configs[method]))
            config.update(lang=lang.code, seed=seed, output_dir=str(sweep / str(job)))
            overrides = [f"lang={lang.code}", f"pruning={method}", f"seed={seed}"]
            if method != "dense":
                config["pruning"]["sparsity"] = sparsity
                overrides.append(f"pruning.sparsity={sparsity}")
            write_run(sweep / str(job), run, [lang.code], method=method, sparsity=sparsity, seed=seed, config=config,
                      overrides=overrides)
            job, rows = job + 1, rows + len(run)
    return job - index * 1000, rows


def build(sweep: Path, langs: list[int], jobs: int, max_sentences: int | None) -> None:
    shutil.rmtree(sweep, ignore_errors=True)
    sweep.mkdir(parents=True)
    configs = base_configs()
    work = partial(build_language, sweep=sweep, max_sentences=max_sentences, configs=configs)
    start = time.perf_counter()
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = list(pool.map(work, langs))
    (sweep / COMPLETE).write_text(json.dumps({"languages": len(langs), "max_sentences": max_sentences,
                                              "rows": sum(d[1] for d in done)}))
    print(f"built {sum(d[0] for d in done):,} records, {sum(d[1] for d in done):,} prediction rows in "
          f"{time.perf_counter() - start:.0f} s (not part of a report)\n", file=sys.stderr)


def run_measured(command: list[str]) -> tuple[subprocess.CompletedProcess, float, float, float]:
    """(result, wall s, CPU s of the process and its workers, peak MiB of their summed resident memory)."""
    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # the sparsenlp of this checkout, whatever an editable install points at
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    watched, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            tree = [watched, *watched.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.2)
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr), wall, cpu, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sweep", type=Path, default=DEFAULT_SWEEP, help=f"sweep dir (default: {DEFAULT_SWEEP})")
    parser.add_argument("--jobs", type=int, default=2, help="sparsenlp-report --jobs (default: 2)")
    parser.add_argument("--build-jobs", type=int, default=2, help="processes building the sweep")
    parser.add_argument("--langs", default=None, help="comma-separated codes (default: all 40)")
    parser.add_argument("--max-sentences", type=int, default=None, help="cap test sets (default: real sizes)")
    parser.add_argument("--rebuild", action="store_true", help="build the sweep even if it is complete")
    args = parser.parse_args()
    from sparsenlp.analysis.synthetic import xtreme40

    languages = xtreme40(WIKIANN)
    chosen = [k for k, lang in enumerate(languages) if not args.langs or lang.code in args.langs.split(",")]
    wanted = {"languages": len(chosen), "max_sentences": args.max_sentences}
    marker = args.sweep / COMPLETE
    if args.rebuild or not marker.is_file() or {k: v for k, v in json.loads(marker.read_text()).items()
                                                 if k in wanted} != wanted:
        build(args.sweep, chosen, args.build_jobs, args.max_sentences)
    shutil.rmtree(args.sweep / "report", ignore_errors=True)
    results = sorted(args.sweep.rglob("results.json"))
    rows = json.loads(marker.read_text())["rows"]

    script = Path(sys.executable).with_name("sparsenlp-report")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "sparsenlp.analysis.report"]
    command += [str(args.sweep), "--jobs", str(args.jobs)]
    done, wall, cpu, peak = run_measured(command)
    if done.returncode != 0:
        sys.exit(f"sparsenlp-report failed ({done.returncode}):\n{done.stderr}")
    report = args.sweep / "report"
    print(f"## `sparsenlp-report` on a synthetic sweep: {len(chosen)} languages × 2 methods × 7 sparsities × "
          f"3 seeds + 3 dense seeds per language\n")
    print(markdown_table(
        ["records", "prediction rows (clean)", "--jobs", "wall s", "CPU s (report and its workers)",
         "peak memory, MiB (RSS summed over its processes)"],
        [[f"{len(results):,}", f"{rows:,}", args.jobs, f"{wall:.1f}", f"{cpu:.1f}", f"{peak:.0f}"]]))
    print(f"\nwrote {', '.join(sorted(p.name for p in report.iterdir()))} "
          f"({len(list((report / 'figures').glob('*.png')))} figures); stdout: {done.stdout.strip()}\n")
    print("\n".join(environment_lines(("numpy", "scipy", "statsmodels", "pandas", "matplotlib"))))


if __name__ == "__main__":
    main()
