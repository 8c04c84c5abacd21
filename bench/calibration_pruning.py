"""One-shot pruning from calibration data at mBERT scale: Wanda and SparseGPT against the magnitude control.

An mBERT-shaped BertForTokenClassification (12 layers, hidden 768, 12 heads, FFN 3072: BertConfig's
defaults, random init; a small vocabulary, since embeddings are not pruned) is pruned in one shot, all 72
encoder Linear weights, layer by layer, from 128 calibration sequences of 128 tokens (random ids, no
padding), unstructured 50% and 2:4. Every row prunes a fresh copy of the same dense model in this
process; the ratio column divides by the magnitude control of the same target (the data-free peer: no
forward pass). Peak memory is this process's resident memory sampled every 10 ms while the method
runs, and its growth over the resident memory before it (the dense model is already loaded), the
largest over the repeats; times are the fastest of ``--repeats`` runs (each on a fresh copy), since
other processes on a shared machine only ever slow a run down.

Goals (2-core CPU): Wanda < 60 s, SparseGPT < 600 s.

    python bench/calibration_pruning.py [--sequences 128] [--length 128] [--batch-size 16] [--repeats 3]
                                        [--methods wanda,sparsegpt] [--threads N] [--device cpu|cuda]
                                        [--tiny] [--json FILE]
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch
from transformers import BertConfig, BertForTokenClassification

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    TINY_ARCHITECTURE, Clock, RssPeak, environment_lines, markdown_table, parse_with_run_options,
)

from sparsenlp.pruning.calibration import MAGNITUDE, SPARSEGPT, WANDA, one_shot_prune  # noqa: E402
from sparsenlp.pruning.grouped import Target  # noqa: E402
from sparsenlp.pruning.semi_structured import is_nm_sparse  # noqa: E402

GOALS = {WANDA: 60.0, SPARSEGPT: 600.0}  # seconds on the 2-core CPU
TARGETS = {"50%": Target(sparsity=0.5), "2:4": Target(n=2, m=4)}
VOCAB = 1000


def dense_model(tiny: bool, device: str) -> BertForTokenClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCAB, num_labels=7, **(TINY_ARCHITECTURE if tiny else {}))
    return BertForTokenClassification(config).to(device).eval()


def calibration(sequences: int, length: int, batch_size: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, VOCAB, (sequences, length), generator=g)
    return [{"input_ids": ids[i:i + batch_size], "attention_mask": torch.ones_like(ids[i:i + batch_size])}
            for i in range(0, sequences, batch_size)]


def measure(dense: torch.nn.Module, method: str, target: Target, batches: list, repeats: int) -> dict[str, object]:
    """The fastest of ``repeats`` runs, each on a fresh copy of ``dense``; memory: the largest of the runs."""
    runs = []
    for _ in range(repeats):
        model = copy.deepcopy(dense)
        clock = Clock()
        if next(model.parameters()).is_cuda:
            torch.cuda.reset_peak_memory_stats()
        with RssPeak() as memory, clock.timing():
            result = one_shot_prune(model, method, target, batches if method != MAGNITUDE else ())
        if target.is_nm:
            assert all(is_nm_sparse(p, target.n, target.m) for p in result.masks.values())  # type: ignore[arg-type]
        cuda = torch.cuda.max_memory_allocated() / 2**20 if next(model.parameters()).is_cuda else None
        runs.append({"method": method, "wall": clock.wall, "cpu": clock.cpu, "peak_mib": memory.peak_mib,
                     "growth_mib": memory.growth_mib, "cuda_peak_mib": cuda, "achieved": result.report.achieved,
                     "seconds": result.report.seconds.model_dump(), "tokens": result.report.calibration_tokens})
        del model, result
    best = dict(min(runs, key=lambda run: run["wall"]))
    for key in ("peak_mib", "growth_mib"):
        best[key] = max(run[key] for run in runs)
    best["walls"] = [run["wall"] for run in runs]
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=128)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; the fastest is reported")
    parser.add_argument("--methods", default=f"{WANDA},{SPARSEGPT}", help="comma-separated; the magnitude peer always runs")
    args = parse_with_run_options(parser)
    methods = [MAGNITUDE, *(m for m in (WANDA, SPARSEGPT) if m in args.methods.split(","))]
    dense = dense_model(args.tiny, args.device)
    batches = calibration(args.sequences, args.length, args.batch_size)
    shape = "tiny BERT (2 × 128, FFN 512)" if args.tiny else "mBERT-shaped encoder (12 × 768, 12 heads, FFN 3072)"
    print(f"{shape}, {args.sequences} calibration sequences × {args.length} tokens in batches of "
          f"{args.batch_size}, {args.device}, {torch.get_num_threads()} threads, fastest of {args.repeats}\n")
    rows, results = [], []
    for label, target in TARGETS.items():
        peer = measure(dense, MAGNITUDE, target, [], args.repeats)
        for method in methods:
            result = peer if method == MAGNITUDE else measure(dense, method, target, batches, args.repeats)
            result["target"] = label
            results.append(result)
            phases = result["seconds"]
            goal = None if args.tiny else GOALS.get(method)
            walls = ", ".join(f"{w:.1f}" for w in result["walls"])
            print(f"{method} {label}: {walls} s wall", file=sys.stderr, flush=True)
            rows.append([
                method, label, f"{result['wall']:.2f}", f"{result['cpu']:.1f}",
                f"{result['wall'] / peer['wall']:.0f}×" if method != MAGNITUDE else "1×",
                " / ".join(f"{phases[k]:.1f}" for k in ("capture", "statistics", "prune", "propagate")),
                f"{result['peak_mib']:,.0f}", f"{result['growth_mib']:,.0f}",
                *([f"{result['cuda_peak_mib']:,.0f}"] if args.device == "cuda" else []),
                f"{result['achieved']:.4f}",
                "—" if goal is None else (f"< {goal:.0f} s: " + ("met" if result["wall"] < goal else "MISSED")),
            ])
    headers = ["method", "target", "wall s (fastest)", "CPU s", "vs magnitude", "capture / statistics / prune / propagate s",
               "peak RSS MiB", "RSS growth MiB", *(["CUDA peak MiB"] if args.device == "cuda" else []),
               "achieved", "goal"]
    print(markdown_table(headers, rows))
    print("\n" + "\n".join(environment_lines()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
