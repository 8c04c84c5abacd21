"""Checking a whole study before launch: the study sweeper's fast composition vs Hydra composing every job.

The grid is ``experiment=paper`` over the 39 local languages (3,480 jobs). ``sparsenlp.sweep_plan.plan`` composes
and checks every job through ``sparsenlp.job_configs.JobConfigs`` (Hydra once per group choice) and checks its
inputs; the peer is what Hydra's own sweeper does before a launch (``validate_batch_is_legal``: compose every job)
plus the typed check and config hash each job computes, timed on every ``--sample``-th job and scaled to the grid.
Both run in this process; the printed ratio compares them per job.

    python bench/sweep_check.py [--sample 50]
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import REPO, environment_lines, markdown_table  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the mBERT of experiment=paper comes from the local cache, or not at all

from hydra import compose, initialize_config_module  # noqa: E402
from omegaconf import OmegaConf, open_dict  # noqa: E402

from sparsenlp.config import CONFIG_MODULE, LanguagesConfig, settings  # noqa: E402
from sparsenlp.identity import config_hash  # noqa: E402
from sparsenlp.job_configs import PLACEHOLDER, JobConfigs  # noqa: E402
from sparsenlp.sweep_jobs import reduce_job  # noqa: E402
from sparsenlp.sweep_plan import plan  # noqa: E402

WIKIANN = REPO.parent / "shared" / "data" / "wikiann"
BASE = ["experiment=paper", "languages=local39", f"data.root={WIKIANN}"]


def grid() -> list[list[str]]:
    """The paper's grid as the study sweeper enumerates it (each dense baseline once)."""
    languages = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(LanguagesConfig),
                                                    OmegaConf.load(REPO / "conf" / "languages" / "xtreme40.yaml")))
    langs = [c for c in languages.codes() if (WIKIANN / c).is_dir()] + ["all"]
    seen: dict[tuple[str, ...], None] = {}
    for lang, method, sparsity, emb, seed in itertools.product(
            langs, ("dense", "global_magnitude", "layerwise_magnitude"), (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98),
            ("false", "true"), (1, 2, 3)):
        job = [f"lang={lang}", f"pruning={method}", f"pruning.sparsity={sparsity}",
               f"pruning.prune_embeddings={emb}", f"seed={seed}", *BASE]
        seen.setdefault(tuple(reduce_job(job, "global_magnitude")), None)
    return [list(job) for job in seen]


def hydra_job(composed) -> str:
    with open_dict(composed):
        del composed["hydra"]
        composed.output_dir = PLACEHOLDER
    settings(composed)
    return config_hash(OmegaConf.to_container(composed, resolve=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=50, help="time Hydra on every N-th job (default: 50)")
    args = parser.parse_args()
    jobs = grid()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        def composed(overrides: list[str]):
            return compose("config", overrides=overrides, return_hydra_config=True)

        started = time.perf_counter()
        checked = plan(jobs, JobConfigs(composed).job)
        fast = time.perf_counter() - started
        sample = jobs[::args.sample]
        started = time.perf_counter()
        digests = [hydra_job(composed(job)) for job in sample]
        slow = (time.perf_counter() - started) / len(sample)
    by_overrides = {job.overrides: job.digest for job in checked.jobs}
    agree = sum(by_overrides.get(tuple(job)) == digest for job, digest in zip(sample, digests))
    rows = [["jobs checked", f"{checked.total:,} ({len(checked.jobs):,} valid, {len(checked.invalid)} invalid)"],
            ["study sweeper (sweep_plan.plan)", f"{fast:.1f} s ({fast / checked.total * 1e3:.2f} ms a job)"],
            [f"Hydra per job (every {args.sample}th, {len(sample)} jobs)",
             f"{slow * 1e3:.0f} ms a job: {slow * checked.total:.0f} s for the grid"],
            ["ratio", f"{slow * checked.total / fast:.0f}x"],
            ["same config hash as Hydra's", f"{agree}/{len(sample)}"]]
    print(markdown_table(["", "result"], rows))
    print("\n".join(environment_lines(("hydra-core", "omegaconf"))))


if __name__ == "__main__":
    main()
