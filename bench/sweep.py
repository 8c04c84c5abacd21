"""The smoke grid at study width: every local WikiANN language × 4 sparsities, tiny BERT, 2 joblib workers.

Runs ``sparsenlp-train -m experiment=smoke`` over all languages in ``languages=local39`` (the 39 with files
here; Thai is missing), dense and global magnitude pruning at 0.5, 0.8, 0.9 (the study sweeper trains the
dense baseline once per language) through Hydra's joblib launcher, with a fresh
feature cache, then reads every job's record back and reports: wall time, jobs per minute, and how often
each language was encoded (feature-cache misses) — it must be once per split per language, every other
job of that language hitting the cache.

    python bench/sweep.py [--steps 50] [--workers 2] [--langs de,sw,...]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, environment_lines, markdown_table  # noqa: E402

SPARSITIES = "0.5,0.8,0.9"
JOBS_PER_LANGUAGE = 1 + len(SPARSITIES.split(","))  # dense + each sparsity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="optimizer steps per job (smoke default: 300)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--langs", default=None, help="comma-separated codes (default: all of languages=local39)")
    args = parser.parse_args()
    languages = OmegaConf.load(REPO / "conf" / "languages" / "xtreme40.yaml")
    langs = args.langs.split(",") if args.langs else [c for c in languages.langs if c != "th"]
    work = Path(tempfile.mkdtemp(prefix="sparsenlp-bench-sweep-"))
    sweep = work / "sweep"
    command = [sys.executable, "-m", "sparsenlp", "-m", "experiment=smoke", "languages=local39",
               f"data.root={REPO.parent / 'shared' / 'data' / 'wikiann'}", f"data.cache_dir={work / 'cache'}",
               f"trainer.max_steps={args.steps}", f"trainer.eval_every={args.steps}", "logger=none",
               "trainer.cpu_threads=1", "trainer.progress=false", "hydra/launcher=joblib",
               f"hydra.launcher.n_jobs={args.workers}", f"hydra.sweep.dir={sweep}",
               f"lang={','.join(langs)}", "pruning=dense,global_magnitude", f"pruning.sparsity={SPARSITIES}"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"sweep failed:\n{done.stderr[-3000:]}")

    misses: dict[str, int] = defaultdict(int)
    hits: dict[str, int] = defaultdict(int)
    jobs: dict[str, int] = defaultdict(int)
    train_seconds = 0.0
    for path in sweep.glob("*/results.json"):
        record = json.loads(path.read_text())
        lang = record["config"]["lang"]
        jobs[lang] += 1
        misses[lang] += record["data"]["feature_cache"]["misses"]
        hits[lang] += record["data"]["feature_cache"]["hits"]
        train_seconds += record["timings"]["train_seconds"]
    n_jobs = sum(jobs.values())
    expected = len(langs) * JOBS_PER_LANGUAGE
    once = [lang for lang in langs if misses[lang] == 3]  # train, dev, test encoded once each
    print(f"## Sweep: smoke grid, {len(langs)} languages × (dense + {len(SPARSITIES.split(','))} sparsities), "
          f"{args.workers} joblib workers, {args.steps} steps/job\n")
    print(markdown_table(["jobs", "wall time", "jobs/min", "sum of train time", "languages encoded exactly once",
                          "cache hits / misses"],
                         [[f"{n_jobs}/{expected}", f"{wall / 60:.1f} min", f"{n_jobs / wall * 60:.1f}",
                           f"{train_seconds / 60:.1f} min", f"{len(once)}/{len(langs)}",
                           f"{sum(hits.values())} / {sum(misses.values())}"]]))
    if len(once) != len(langs):
        print("\nencoded more than once:", {lang: misses[lang] for lang in langs if misses[lang] != 3})
    print()
    print("\n".join(environment_lines()))


if __name__ == "__main__":
    main()
