"""One magnitude-pruning event on mBERT-shaped encoder weights: sparsenlp vs torch.nn.utils.prune.

The 72 encoder Linear weights of bert-base (12 layers x Q/K/V/attn-out 768x768, FFN 3072x768 and
768x3072 = 85M prunable weights), random init (std 0.02 as in BERT). Both sides start from the
same weights in the same process; each event covers mask selection, mask update and zeroing the
weights (sparsenlp's first event also allocates its cached float masks). Masks are compared element
by element; fp32 randn has a few exact ties and torch's topk orders tied |w| arbitrarily, so
disagreements are allowed only among weights tied with the threshold, which is reported.

    python bench/pruning.py [--sparsity 0.9] [--repeats 3] [--threads N]
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn.utils import prune

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment_lines, markdown_table  # noqa: E402

from sparsenlp.pruning.magnitude import global_masks, layerwise_masks  # noqa: E402
from sparsenlp.pruning.masks import MaskSet  # noqa: E402

HIDDEN, FFN, LAYERS = 768, 3072, 12


def encoder_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = {"query": (HIDDEN, HIDDEN), "key": (HIDDEN, HIDDEN), "value": (HIDDEN, HIDDEN),
              "attention_output": (HIDDEN, HIDDEN), "intermediate": (FFN, HIDDEN), "output": (HIDDEN, FFN)}
    return {f"layer.{i}.{name}": torch.randn(shape, generator=g) * 0.02
            for i in range(LAYERS) for name, shape in shapes.items()}


def torch_event(weights: dict[str, torch.Tensor], sparsity: float, method: str) -> tuple[float, dict]:
    mods = []
    for w in weights.values():
        mod = torch.nn.Module()
        mod.weight = torch.nn.Parameter(w.clone())
        mods.append(mod)
    start = time.perf_counter()
    if method == "global":
        prune.global_unstructured([(m, "weight") for m in mods], pruning_method=prune.L1Unstructured,
                                  amount=sparsity)
    else:
        for m in mods:
            prune.l1_unstructured(m, "weight", amount=sparsity)
    elapsed = time.perf_counter() - start
    return elapsed, {name: m.weight_mask.bool() for name, m in zip(weights, mods)}


def sparsenlp_event(weights: dict[str, torch.Tensor], sparsity: float, method: str) -> tuple[float, dict]:
    params = {name: torch.nn.Parameter(w.clone()) for name, w in weights.items()}
    masks = MaskSet(params)
    select: Callable = global_masks if method == "global" else layerwise_masks
    start = time.perf_counter()
    masks.update_(select(params, sparsity, masks.masks))
    masks.apply_()
    elapsed = time.perf_counter() - start
    return elapsed, masks.masks


def disagreements(weights: dict[str, torch.Tensor], ours: dict, ref: dict, method: str) -> tuple[int, int]:
    """Elements whose masks differ: all of them, and those whose |w| is not the threshold value
    (the largest pruned |w|); only the latter would be a real error, since topk orders ties freely."""
    groups = [[n] for n in weights] if method == "layerwise" else [list(weights)]
    total = off_threshold = 0
    for names in groups:
        pruned = torch.cat([weights[n].abs()[~ours[n]] for n in names])
        threshold = pruned.max() if pruned.numel() else -1.0
        for n in names:
            differ = ours[n] != ref[n]
            total += int(differ.sum())
            off_threshold += int((differ & (weights[n].abs() != threshold)).sum())
    return total, off_threshold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--repeats", type=int, default=3, help="events per side; the best time is reported")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    weights = encoder_weights()
    total = sum(w.numel() for w in weights.values())
    print(f"{len(weights)} tensors, {total:,} prunable weights, sparsity {args.sparsity}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, best of {args.repeats}\n")
    rows = []
    for method, reference in (("global", "global_unstructured"), ("layerwise", "l1_unstructured")):
        theirs = [torch_event(weights, args.sparsity, method) for _ in range(args.repeats)]
        ours = [sparsenlp_event(weights, args.sparsity, method) for _ in range(args.repeats)]
        t_theirs, t_ours = min(t for t, _ in theirs), min(t for t, _ in ours)
        ref, mine = theirs[0][1], ours[0][1]
        disagree, untied = disagreements(weights, mine, ref, method)
        pruned = sum(int((~m).sum()) for m in mine.values())
        rows.append([f"{method} vs `{reference}`", f"{t_theirs:.3f}", f"{t_ours:.3f}",
                     f"{t_theirs / t_ours:.1f}x", f"{pruned:,}", disagree, untied])
    print(markdown_table(["selection", "torch.nn.utils.prune (s)", "sparsenlp (s)", "speed-up", "pruned",
                          "masks disagree", "of which not tied with the threshold"], rows))
    print("\n" + "\n".join(environment_lines()))


if __name__ == "__main__":
    main()
