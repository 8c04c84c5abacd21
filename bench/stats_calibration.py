"""How often the significance test rejects: under the null (sparse runs drawn exactly like dense ones) and
under a small effect, for the two-level bootstrap and for a bootstrap over sentences only.

Each replication draws a fresh synthetic test set and fresh dense and sparse seeds (``tests/synthetic.py``),
with seed-to-seed variation (each run's miss rate jittered by ``--jitter``), and computes the p-value of
:func:`sparsenlp.analysis.stats.compare` with both resampling schemes. At level 0.05 a calibrated test
rejects 5% of null replications; more means it calls seed noise an effect.

    python bench/stats_calibration.py [--reps 200] [--sentences 1000] [--seeds 3] [--jitter 0.01] [--effect 0.03]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import environment_lines, markdown_table  # noqa: E402

from sparsenlp.analysis.stats import Cell, compare  # noqa: E402
from tests.synthetic import make_test_set, predict  # noqa: E402

SCHEMES = {"two-level (seeds and sentences)": ("seeds", "sentences"), "sentences only": ("sentences",)}


def p_values(rep: int, n: int, k: int, jitter: float, effect: float, n_boot: int) -> dict[str, float]:
    sentences = make_test_set(np.random.default_rng(rep), n)

    def run(seed: int, extra: float) -> list[dict]:
        rng = np.random.default_rng([rep, seed])
        return predict(rng, sentences, "de", float(np.clip(0.2 + extra + rng.normal(0, jitter), 0, 1)), 0.04, 0.05)

    cell = [Cell("de", "arm", 0.9, "clean", [run(s, 0.0) for s in range(k)], [run(100 + s, effect) for s in range(k)])]
    return {name: float(compare(cell, n_boot=n_boot, seed=rep, resample=levels)["p_value"].iloc[0])
            for name, levels in SCHEMES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per population")
    parser.add_argument("--jitter", type=float, default=0.01, help="sd of each run's entity miss rate")
    parser.add_argument("--effect", type=float, default=0.03, help="extra share of entities the sparse runs miss")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    for label, effect in (("null (sparse drawn like dense)", 0.0), (f"sparse miss {args.effect:g} more entities",
                                                                     args.effect)):
        p = [p_values(rep, args.sentences, args.seeds, args.jitter, effect, args.n_boot) for rep in range(args.reps)]
        rows += [[label, name, f"{np.mean([q[name] < 0.05 for q in p]):.3f}"] for name in SCHEMES]
    print(f"## Rejection rate at 0.05: {args.reps} replications each, {args.sentences} sentences, "
          f"{args.seeds} + {args.seeds} seeds, miss-rate jitter sd {args.jitter}, B = {args.n_boot}\n")
    print(markdown_table(["data", "resampling", "rejection rate"], rows))
    print(f"\n{time.perf_counter() - start:.0f} s\n")
    print("\n".join(environment_lines(("numpy", "scipy", "statsmodels", "pandas"))))


if __name__ == "__main__":
    main()
