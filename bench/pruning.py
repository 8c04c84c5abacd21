"""One magnitude-pruning event on mBERT-shaped encoder weights: sparsenlp vs torch.nn.utils.prune.

The 72 encoder Linear weights of bert-base (12 layers x Q/K/V/attn-out 768x768, FFN 3072x768 and
768x3072 = 85M prunable weights), random init (std 0.02 as in BERT). Both sides start from the
same weights in the same process; each event covers mask selection, mask update and zeroing the
weights (sparsenlp's first event also allocates its cached float masks). Masks are compared element
by element; fp32 randn has a few exact ties and torch's topk orders tied |w| arbitrarily, so
disagreements are allowed only among weights tied with the threshold, which is reported.

The last row times a one-shot 2:4 (N:M) event over the same weights (every group of 4 consecutive
input weights keeps its 2 largest |w|); torch.nn.utils.prune has no N:M method, so it has no peer.

    python bench/pruning.py [--sparsity 0.9] [--repeats 3] [--threads N] [--device cpu|cuda] [--tiny]
                            [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn.utils import prune

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment_lines, markdown_table, parse_with_run_options  # noqa: E402

from sparsenlp.pruning.magnitude import global_masks, layerwise_masks  # noqa: E402
from sparsenlp.pruning.masks import MaskSet  # noqa: E402
from sparsenlp.pruning.semi_structured import gradual_nm_masks, is_nm_sparse  # noqa: E402

HIDDEN, FFN, LAYERS = 768, 3072, 12
TINY = (128, 512, 2)  # --tiny: hidden, FFN, layers


def encoder_weights(seed: int = 0, device: str = "cpu", tiny: bool = False) -> dict[str, torch.Tensor]:
    hidden, ffn, layers = TINY if tiny else (HIDDEN, FFN, LAYERS)
    g = torch.Generator().manual_seed(seed)
    shapes = {"query": (hidden, hidden), "key": (hidden, hidden), "value": (hidden, hidden),
              "attention_output": (hidden, hidden), "intermediate": (ffn, hidden), "output": (hidden, ffn)}
    return {f"layer.{i}.{name}": (torch.randn(shape, generator=g) * 0.02).to(device)
            for i in range(layers) for name, shape in shapes.items()}


def _sync(weights: dict[str, torch.Tensor]) -> None:
    if next(iter(weights.values())).is_cuda:
        torch.cuda.synchronize()


def torch_event(weights: dict[str, torch.Tensor], sparsity: float, method: str) -> tuple[float, dict]:
    mods = []
    for w in weights.values():
        mod = torch.nn.Module()
        mod.weight = torch.nn.Parameter(w.clone())
        mods.append(mod)
    _sync(weights)
    start = time.perf_counter()
    if method == "global":
        prune.global_unstructured([(m, "weight") for m in mods], pruning_method=prune.L1Unstructured,
                                  amount=sparsity)
    else:
        for m in mods:
            prune.l1_unstructured(m, "weight", amount=sparsity)
    _sync(weights)
    elapsed = time.perf_counter() - start
    return elapsed, {name: m.weight_mask.bool() for name, m in zip(weights, mods)}


def sparsenlp_event(weights: dict[str, torch.Tensor], sparsity: float, method: str) -> tuple[float, dict]:
    params = {name: torch.nn.Parameter(w.clone()) for name, w in weights.items()}
    masks = MaskSet(params)
    select: Callable = global_masks if method == "global" else layerwise_masks
    _sync(weights)
    start = time.perf_counter()
    masks.update_(select(params, sparsity, masks.masks))
    masks.apply_()
    _sync(weights)
    elapsed = time.perf_counter() - start
    return elapsed, masks.masks


def nm_event(weights: dict[str, torch.Tensor]) -> tuple[float, dict]:
    """One-shot 2:4: every group converted (the first event of a gradual run does the same work)."""
    params = {name: torch.nn.Parameter(w.clone()) for name, w in weights.items()}
    masks = MaskSet(params)
    _sync(weights)
    start = time.perf_counter()
    masks.update_(gradual_nm_masks(params, 2, 4, 1.0, masks.masks))
    masks.apply_()
    _sync(weights)
    elapsed = time.perf_counter() - start
    assert all(is_nm_sparse(p, 2, 4) for p in params.values())
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
    args = parse_with_run_options(parser)
    weights = encoder_weights(device=args.device, tiny=args.tiny)
    total = sum(w.numel() for w in weights.values())
    shape = "tiny encoder (2 × 128, FFN 512)" if args.tiny else "mBERT-shaped encoder (12 × 768, FFN 3072)"
    print(f"{shape}: {len(weights)} tensors, {total:,} prunable weights, sparsity {args.sparsity}, "
          f"{args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, best of {args.repeats}\n")
    rows, headline = [], {}
    for method, reference in (("global", "global_unstructured"), ("layerwise", "l1_unstructured")):
        theirs = [torch_event(weights, args.sparsity, method) for _ in range(args.repeats)]
        ours = [sparsenlp_event(weights, args.sparsity, method) for _ in range(args.repeats)]
        t_theirs, t_ours = min(t for t, _ in theirs), min(t for t, _ in ours)
        ref, mine = theirs[0][1], ours[0][1]
        disagree, untied = disagreements(weights, mine, ref, method)
        pruned = sum(int((~m).sum()) for m in mine.values())
        rows.append([f"{method} vs `{reference}`", f"{t_theirs:.3f}", f"{t_ours:.3f}",
                     f"{t_theirs / t_ours:.1f}x", f"{pruned:,}", disagree, untied])
        headline[method] = {"torch_seconds": t_theirs, "sparsenlp_seconds": t_ours, "speedup": t_theirs / t_ours,
                            "disagree": disagree, "untied_disagree": untied}
    nm = [nm_event(weights) for _ in range(args.repeats)]
    t_nm = min(t for t, _ in nm)
    nm_pruned = sum(int((~m).sum()) for m in nm[0][1].values())
    rows.append(["2:4 N:M, one-shot (all groups)", "—", f"{t_nm:.3f}", "—", f"{nm_pruned:,}", "—", "—"])
    headline["nm_2_4_seconds"] = t_nm
    print(markdown_table(["selection", "torch.nn.utils.prune (s)", "sparsenlp (s)", "speed-up", "pruned",
                          "masks disagree", "of which not tied with the threshold"], rows))
    print("\n" + "\n".join(environment_lines()))
    if args.json is not None:
        args.json.write_text(json.dumps({"device": args.device, "prunable": total, **headline}, indent=2))


if __name__ == "__main__":
    main()
