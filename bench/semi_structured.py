"""2:4 semi-structured sparse inference vs dense, on an mBERT-shaped token classifier (CUDA, Ampere or newer).

An mBERT-shaped ``BertForTokenClassification`` (12 layers, hidden 768, FFN 3072, mBERT's 119,547-WordPiece
vocabulary, from ../shared/data/mbert-tokenizer/config.json; random weights: no checkpoint is reachable
offline) has every encoder Linear pruned one-shot to 2:4 by ``SemiStructuredPruner`` (every group of 4
consecutive input weights keeps its 2 largest |w|), then runs in fp16 inference mode:
- dense: the masked weights as ordinary dense tensors (the zeros are multiplied like any weight);
- 2:4: the same weights after ``to_semi_structured_`` (``torch.sparse.to_sparse_semi_structured``:
  cuSPARSELt, or CUTLASS where cuSPARSELt is missing), i.e. NVIDIA's sparse tensor cores
  (Mishra et al. 2021, "Accelerating Sparse Deep Neural Networks").
Timed: the whole forward pass on a batch of random token ids, and the two FFN Linears alone on the same
number of tokens (median of ``torch.utils.benchmark`` blocked runs). The logits of both are compared.
On a CPU (or an older GPU) there are no 2:4 kernels: the dense masked timing is printed and the 2:4 column
says why.

    python bench/semi_structured.py [--device cuda|cpu] [--tiny] [--batch-size 32] [--seq-len 128]
                                    [--dtype fp16|bf16] [--min-run-time 1.0] [--json FILE]
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch
from torch.utils import benchmark

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment_lines, markdown_table, mbert_shaped  # noqa: E402

from sparsenlp.data.wikiann import LABELS  # noqa: E402
from sparsenlp.errors import SparseNLPError  # noqa: E402
from sparsenlp.pruning.schedules import Schedule  # noqa: E402
from sparsenlp.pruning.semi_structured import (  # noqa: E402
    SemiStructuredPruner,
    is_nm_sparse,
    semi_structured_available,
    to_semi_structured_,
)

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def median_seconds(fn, min_run_time: float) -> float:
    """Median seconds per call (torch.utils.benchmark synchronises CUDA and picks the repeat count)."""
    return benchmark.Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median


def convert(model: torch.nn.Module, names: list[str]) -> tuple[torch.nn.Module, str]:
    """2:4 copy of ``model``; falls back to the CUTLASS kernels where cuSPARSELt is unavailable."""
    from torch.sparse import SparseSemiStructuredTensor

    errors = []
    for force_cutlass in (False, True):
        SparseSemiStructuredTensor._FORCE_CUTLASS = force_cutlass
        sparse = copy.deepcopy(model)
        try:
            to_semi_structured_(sparse, names)
        except SparseNLPError as exc:
            errors.append(str(exc))
            continue
        weight = dict(sparse.named_parameters())[names[0]]
        return sparse, str(getattr(type(weight), "BACKEND", type(weight).__name__))
    raise RuntimeError("; ".join(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    parser.add_argument("--tiny", action="store_true", help="2 layers, hidden 128, FFN 512 (a smoke run)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--dtype", default="fp16", choices=sorted(DTYPES), help="on CUDA; the CPU runs fp32")
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds of measurement per timing")
    parser.add_argument("--json", type=Path, default=None, help="also write the headline numbers here")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda but no CUDA device is available; use --device cpu")
    dtype = DTYPES[args.dtype] if device.type == "cuda" else torch.float32

    torch.manual_seed(0)
    model, tokenizer = mbert_shaped(len(LABELS), args.tiny)
    pruner = SemiStructuredPruner(model, "global", None, Schedule("oneshot", 0.5, (0,), 100), n=2, m=4)
    pruner.on_train_begin(None)
    names = list(pruner.masks.params)
    assert all(is_nm_sparse(p, 2, 4) for p in pruner.masks.params.values())
    model = model.to(device=device, dtype=dtype).eval()
    config = model.config
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, len(tokenizer), (args.batch_size, args.seq_len), generator=g).to(device)
    tokens = args.batch_size * args.seq_len
    layer = model.bert.encoder.layer[0]
    ffn = {"FFN in (Linear {} → {})".format(config.hidden_size, config.intermediate_size): "intermediate.dense",
           "FFN out (Linear {} → {})".format(config.intermediate_size, config.hidden_size): "output.dense"}
    activations = {"intermediate.dense": torch.randn(tokens, config.hidden_size, generator=g),
                   "output.dense": torch.randn(tokens, config.intermediate_size, generator=g)}
    activations = {k: v.to(device=device, dtype=dtype) for k, v in activations.items()}

    def module(m: torch.nn.Module, path: str) -> torch.nn.Module:
        return m.get_submodule(path)

    with torch.inference_mode():
        dense_logits = model(input_ids=ids).logits.float()
        dense_s = {"model": median_seconds(lambda: model(input_ids=ids), args.min_run_time)}
        for label, path in ffn.items():
            linear, x = module(layer, path), activations[path]
            dense_s[label] = median_seconds(lambda linear=linear, x=x: linear(x), args.min_run_time)

    usable, why = semi_structured_available(device)
    sparse_s: dict[str, float] = {}
    backend, max_diff, agreement = None, None, None
    if usable:
        try:
            sparse_model, backend = convert(model, names)
        except RuntimeError as exc:
            usable, why = False, f"conversion failed: {exc}"
    if usable:
        sparse_layer = sparse_model.bert.encoder.layer[0]
        with torch.inference_mode():
            sparse_logits = sparse_model(input_ids=ids).logits.float()
            sparse_s["model"] = median_seconds(lambda: sparse_model(input_ids=ids), args.min_run_time)
            for label, path in ffn.items():
                linear, x = module(sparse_layer, path), activations[path]
                sparse_s[label] = median_seconds(lambda linear=linear, x=x: linear(x), args.min_run_time)
        max_diff = float((sparse_logits - dense_logits).abs().max())
        agreement = float((sparse_logits.argmax(-1) == dense_logits.argmax(-1)).float().mean())

    rows = []
    for key in ["model", *ffn]:
        what = f"whole forward pass, {args.batch_size} × {args.seq_len} tokens" if key == "model" else \
            f"{key}, {tokens} tokens"
        sparse = sparse_s.get(key)
        rows.append([what, f"{dense_s[key] * 1000:.3f}", f"{sparse * 1000:.3f}" if sparse else f"n/a ({why})",
                     f"{dense_s[key] / sparse:.2f}×" if sparse else "—"])
    shape = "tiny (2 × 128, FFN 512)" if args.tiny else "12 × 768, FFN 3072"
    precision = str(dtype).replace("torch.", "")
    print(f"## 2:4 semi-structured vs dense inference — mBERT-shaped ({shape}, mBERT vocabulary, random weights), "
          f"{args.device}, {precision}\n")
    print(markdown_table(["what", "dense, masked (ms)", "2:4 semi-structured (ms)", "speed-up"], rows))
    print(f"\n{len(names)} encoder Linears pruned one-shot to 2:4 (sparsity {pruner.masks.sparsity():.2f} of "
          f"{pruner.masks.num_prunable:,} weights); embeddings and classifier dense. Times: median of "
          f"torch.utils.benchmark blocked runs (≥ {args.min_run_time} s each).")
    if usable:
        print(f"Kernels: {backend}. Logits, 2:4 vs dense masked: max |Δ| = {max_diff:.4g}, argmax agreement "
              f"{agreement:.4%}.")
    print("\n" + "\n".join(environment_lines()))
    if args.json is not None:
        args.json.write_text(json.dumps({
            "device": args.device, "dtype": precision, "available": usable, "reason": why or None,
            "backend": backend, "max_abs_diff": max_diff, "argmax_agreement": agreement,
            "dense_ms": {k: v * 1000 for k, v in dense_s.items()},
            "sparse_ms": {k: v * 1000 for k, v in sparse_s.items()},
            "speedup": {k: dense_s[k] / v for k, v in sparse_s.items()},
        }, indent=2))


if __name__ == "__main__":
    main()
