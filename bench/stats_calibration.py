"""Do the report's tests keep their promise? False-positive rate, 95% CI coverage and power of the ΔF1 test, and
how often the PIE excess flags a language, on sweeps whose truth is known exactly.

Every cell of the grid — seeds per side (1, 3, 5) × seed spread (none, moderate, dominant) × truth (null:
sparse runs drawn like dense ones; a 2-point loss, ΔF1 = −0.02 exactly) — draws ``--langs`` languages with
the real WikiANN test-set sizes (the 40 XTREME languages' in turn: 100 to 10,000 sentences), each with its
own error level, and dense and sparse runs of it (:mod:`sparsenlp.analysis.known_truth`). Each language is
compared exactly as the report compares it: ΔF1 by :func:`sparsenlp.analysis.stats.f1_contrast`, the PIE
excess (sentence level) by :func:`sparsenlp.analysis.pie_floor.disagreement` and
:func:`sparsenlp.analysis.crossed.contrast`. More rows check the sides differing, as pruning may make them:
one side's seeds spreading 4× as much as the other's (either way), one side's not at all, 3 sparse against 5
dense seeds; and 2 seeds a side (accepted by the ΔF1 test, ``too_small`` for PIEs).

Target for every cell with ≥ 3 seeds per side, whatever the spreads: p < 0.05 in 3–7% of null languages
(at most 7% where the spreads differ: a conservative test keeps its promise), 95% intervals covering the truth
in 93–97% of languages (null and effect; at least 93% where the spreads differ), PIE excess flagged (interval
above 0) in ≤ 7% of null languages with equal spreads (seeds that spread differently disagree differently
with the dense mode: a real PIE excess, not a null).

    python bench/stats_calibration.py [--langs 1000] [--seed 0]
"""
from __future__ import annotations

import argparse
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, environment_lines, markdown_table  # noqa: E402

from sparsenlp.analysis import known_truth  # noqa: E402
from sparsenlp.analysis.crossed import contrast  # noqa: E402
from sparsenlp.analysis.pie_floor import MIN_DENSE_SEEDS, disagreement  # noqa: E402
from sparsenlp.analysis.stats import f1_contrast  # noqa: E402
from sparsenlp.analysis.synthetic import xtreme40  # noqa: E402

WIKIANN = REPO.parent / "shared" / "data" / "wikiann"
LOSS = -0.02


@dataclass(frozen=True)
class Setting:
    dense_seeds: int
    sparse_seeds: int
    dense_spread: str
    sparse_spread: str
    delta: float  # the planted ΔF1 (0: null)

    @property
    def checked(self) -> bool:
        """Cells the targets apply to: ≥ 3 seeds a side."""
        return min(self.dense_seeds, self.sparse_seeds) >= 3

    @property
    def equal(self) -> bool:
        return self.dense_spread == self.sparse_spread


def run_cell(setting: Setting, sizes: list[int], seed: int) -> dict[str, float]:
    rng = np.random.default_rng([seed, setting.dense_seeds, setting.sparse_seeds, int(1000 * -setting.delta),
                                 zlib.crc32((setting.dense_spread + setting.sparse_spread).encode())])
    sd_dense, sd_sparse = known_truth.SPREADS[setting.dense_spread], known_truth.SPREADS[setting.sparse_spread]
    rejected, covered, flagged, pie_rejected, widths = [], [], [], [], []
    for n in sizes:
        language = known_truth.draw_language(rng, n)
        theta = rng.normal(known_truth.BASE_ERROR, 0.5)
        theta_sparse = (known_truth.shift_for(theta, sd_sparse, setting.delta, sd_dense)
                        if setting.delta or not setting.equal else theta)
        truth = known_truth.population_f1(theta_sparse, sd_sparse) - known_truth.population_f1(theta, sd_dense)
        dense = known_truth.draw_runs(rng, language, theta, setting.dense_seeds, sd_dense)
        sparse = known_truth.draw_runs(rng, language, theta_sparse, setting.sparse_seeds, sd_sparse)
        delta = f1_contrast((dense.tp, dense.pred), (sparse.tp, sparse.pred), language.gold)
        rejected.append(delta.p_value < 0.05)
        covered.append(delta.ci_low <= truth <= delta.ci_high)
        widths.append(delta.ci_high - delta.ci_low)
        if setting.dense_seeds >= MIN_DENSE_SEEDS:
            excess = contrast(list(disagreement(dense.codes, sparse.codes)), (1.0, -1.0))
            flagged.append(excess.ci_low > 0)
            pie_rejected.append(excess.p_value < 0.05)
    return {"rejected": float(np.mean(rejected)), "covered": float(np.mean(covered)),
            "width": float(np.median(widths)), "flagged": float(np.mean(flagged)) if flagged else float("nan"),
            "pie_rejected": float(np.mean(pie_rejected)) if pie_rejected else float("nan")}


def grid() -> list[Setting]:
    cells = [Setting(k, k, spread, spread, delta) for k in (3, 5, 1) for spread in known_truth.SPREADS
             for delta in (0.0, LOSS)]
    cells += [Setting(2, 2, spread, spread, delta) for spread in ("moderate", "dominant") for delta in (0.0, LOSS)]
    for dense, sparse in (("moderate", "dominant"), ("dominant", "moderate"), ("none", "dominant")):
        cells += [Setting(3, 3, dense, sparse, delta) for delta in (0.0, LOSS)]
    cells += [Setting(5, 3, "moderate", "dominant", delta) for delta in (0.0, LOSS)]
    return cells


def verdict(setting: Setting, result: dict[str, float]) -> str:
    if not setting.checked:
        return "–"
    low_rate, high_cover = (0.03, 0.97) if setting.equal else (0.0, 1.0)
    ok = 0.93 <= result["covered"] <= high_cover
    if setting.delta == 0:
        ok = ok and low_rate <= result["rejected"] <= 0.07
        # seeds that spread differently disagree differently with the dense mode: a PIE excess then, not a null
        ok = ok and (not setting.equal or result["flagged"] <= 0.07)
    return "met" if ok else "**missed**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--langs", type=int, default=1000, help="languages per cell (≥ 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tests = [lang.test_sentences for lang in xtreme40(WIKIANN)]
    sizes = [tests[i % len(tests)] for i in range(args.langs)]
    start = time.perf_counter()
    rows = []
    for setting in grid():
        result = run_cell(setting, sizes, args.seed)
        seeds = (f"{setting.sparse_seeds}" if setting.sparse_seeds == setting.dense_seeds
                 else f"{setting.sparse_seeds} sparse, {setting.dense_seeds} dense")
        spread = (setting.sparse_spread if setting.sparse_spread == setting.dense_spread
                  else f"sparse {setting.sparse_spread}, dense {setting.dense_spread}")
        truth = "null" if setting.delta == 0 else f"ΔF1 = {setting.delta:+.2f}"
        power = "false positives (p < 0.05)" if truth == "null" else "p < 0.05"
        pie = ("PIE excess flagged (power)" if setting.delta else "PIE excess flagged" if setting.equal
               else "flagged; not a PIE null: the spreads differ")
        rows.append([seeds, spread, truth, f"{result['rejected']:.1%} ({power})", f"{result['covered']:.1%}",
                     f"{result['width']:.4f}", f"{result['flagged']:.1%} ({pie})" if result["flagged"] == result["flagged"]
                     else f"– ({setting.dense_seeds} dense seeds: too_small)", verdict(setting, result)])
        print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    print(f"## Calibration: {args.langs} languages per cell, full-size WikiANN test sets "
          f"({min(sizes):,}–{max(sizes):,} sentences), seed {args.seed}\n")
    print(markdown_table(["seeds per side", "seed spread", "truth", "ΔF1 test: rejections",
                          "95% CI coverage", "median CI width", "PIE excess CI > 0 (sentence level)",
                          "target (≥ 3 seeds)"], rows))
    print(f"\n{time.perf_counter() - start:.0f} s\n")
    print("\n".join(environment_lines(("numpy", "scipy", "statsmodels", "pandas"))))


if __name__ == "__main__":
    main()
