"""The `trainer` group (conf/trainer/): the fine-tuning loop (sparsenlp/training/trainer.py).

Defaults follow Hugging Face's run_ner.py recipe (AdamW, linear warm-up and decay, clipping) except where
a comment says otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import II

from sparsenlp.errors import SparseNLPError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
METRICS_MODES = (None, "strict")


@dataclass
class TrainerConfig:
    device: str = "auto"  # auto: cuda when available, else cpu; or cpu / cuda / cuda:1
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU; or fp32 / bf16
    epochs: float = 3.0
    max_steps: Optional[int] = None  # if set, overrides epochs and min_steps
    # a floor on optimizer steps: small training sets still get enough steps for every mask update of the
    # schedule and for recovery after it (otherwise a 100-sentence language is effectively pruned one-shot)
    min_steps: int = 0
    batch_size: int = 32
    eval_batch_size: Optional[int] = None  # null: 2 × batch_size
    gradient_accumulation_steps: int = 1
    lr: float = II("model.lr")  # each model config recommends one (5e-5 pretrained, 1e-3 tiny)
    weight_decay: float = 0.01  # not applied to biases and LayerNorm
    warmup_ratio: float = 0.1  # share of total steps with linear warm-up (or set warmup_steps)
    warmup_steps: Optional[int] = None
    max_grad_norm: float = 1.0  # 0 disables clipping
    group_by_length: bool = True  # batch windows of similar length (less padding; order still seeded)
    eval_every: Any = "epoch"  # 'epoch' or a number of optimizer steps; the last step is always evaluated
    log_every: int = 50  # optimizer steps between training-loss logs
    metrics_mode: Optional[str] = None  # null: seqeval default (conlleval); strict: IOB2 strict spans
    # optimizer steps between resumable checkpoints (output_dir/checkpoints/last.pt), so a preempted or
    # requeued job resumes instead of starting over; null: none
    checkpoint_every: Optional[int] = 500
    resume: bool = True  # continue from output_dir/checkpoints/last.pt when it exists
    keep_checkpoint: bool = False  # keep last.pt after a successful run (deleted otherwise)
    save_model: bool = False  # save_pretrained the selected model + tokenizer into output_dir/model
    cpu_threads: Optional[int] = None  # torch threads on CPU (null: torch's default); cores / jobs in sweeps
    progress: bool = True  # tqdm progress bar (shown only on a terminal)

    def __post_init__(self) -> None:
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise SparseNLPError(f"trainer.device={self.device!r} is unknown; use auto, cpu, cuda or cuda:N")
        if self.precision not in PRECISIONS:
            raise SparseNLPError(f"trainer.precision={self.precision!r} is unknown; use {', '.join(PRECISIONS)}")
        if self.metrics_mode not in METRICS_MODES:
            raise SparseNLPError(f"trainer.metrics_mode={self.metrics_mode!r} is unknown; use null or strict")
        positive = {"batch_size": self.batch_size, "gradient_accumulation_steps": self.gradient_accumulation_steps,
                    "log_every": self.log_every, "eval_batch_size": self.eval_batch_size or 1,
                    "max_steps": 1 if self.max_steps is None else self.max_steps,
                    "checkpoint_every": self.checkpoint_every or 1, "cpu_threads": self.cpu_threads or 1}
        for name, value in positive.items():
            if value < 1:
                raise SparseNLPError(f"trainer.{name}={value} must be at least 1")
        if self.max_steps is None and not self.epochs > 0:
            raise SparseNLPError(f"trainer.epochs={self.epochs} must be positive (or set trainer.max_steps)")
        if self.min_steps < 0:
            raise SparseNLPError(f"trainer.min_steps={self.min_steps} must be 0 or more")
        if not self.lr > 0 or self.weight_decay < 0 or self.max_grad_norm < 0:
            raise SparseNLPError("trainer.lr must be positive; trainer.weight_decay and max_grad_norm not negative")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise SparseNLPError(f"trainer.warmup_ratio={self.warmup_ratio} must be in [0, 1)")
        if self.eval_every != "epoch" and not (isinstance(self.eval_every, int) and self.eval_every >= 1):
            raise SparseNLPError(f"trainer.eval_every={self.eval_every!r} must be 'epoch' or a number of steps ≥ 1")
