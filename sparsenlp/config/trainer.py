"""The `trainer` group (conf/trainer/): the fine-tuning loop (sparsenlp/training/trainer.py).

Defaults follow Hugging Face's run_ner.py recipe (AdamW, linear warm-up and decay, clipping) except where a
key's help says otherwise.

Two keys make up a run's *protocol*, which every arm of a comparison must share (``sparsenlp.arm``): how long
it trains (``epochs``, or ``max_steps``, with the optional ``min_steps`` floor) and which dev evaluation it
keeps (``selection`` among the evaluations from ``select_after`` of training on). Both are stated in units
of training, never raw steps, so a dense run computes the same eligible steps as a pruned run of the same
language without knowing its schedule.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from omegaconf import II

from sparsenlp.options import (
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    Check,
    Free,
    Group,
    OneOf,
    Pattern,
    Range,
    at_least,
    option,
)

PRECISIONS = ("auto", "fp32", "bf16")
SELECTIONS = ("best", "final")
BOOLEAN = Free("a boolean; its type is checked by Hydra")
COUNT = at_least(1)


class EpochOrSteps(Check):
    """``epoch`` or a number of optimizer steps >= 1."""

    def problem(self, value: Any) -> str | None:
        ok = value == "epoch" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
        return None if ok else "must be 'epoch' or a number of optimizer steps >= 1"

    def bad_example(self) -> Any:
        return 0

    def describe(self) -> str:
        return "epoch | steps >= 1"


@dataclass
class TrainerConfig(Group):
    KEY: ClassVar[str] = "trainer"

    device: str = option("auto", "auto: cuda when available, else cpu; or cpu / cuda / cuda:N",
                         Pattern(r"auto|cpu|cuda(:\d+)?", "cuda:0"))
    precision: str = option("auto", "auto: bf16 autocast on CUDA, fp32 on CPU; or fp32 / bf16", OneOf(PRECISIONS))
    epochs: float = option(3.0, "passes over the training set (unless max_steps is set)", POSITIVE)
    max_steps: Optional[int] = option(None, "optimizer steps; if set, overrides epochs and min_steps", COUNT)
    min_steps: int = option(0, "a floor on optimizer steps (an ablation: it gives small training sets more epochs "
                            "than large ones)", at_least(0))
    batch_size: int = option(32, "training windows per optimizer step (per accumulation step)", COUNT)
    eval_batch_size: Optional[int] = option(None, "null: 2 x batch_size", COUNT)
    gradient_accumulation_steps: int = option(1, "batches per optimizer step", COUNT)
    lr: float = option(II("model.lr"), "peak learning rate (default: the model's recommended one)", POSITIVE)
    weight_decay: float = option(0.01, "AdamW weight decay (not on biases and LayerNorm)", NON_NEGATIVE)
    warmup_ratio: float = option(0.1, "share of steps with linear warm-up (or set warmup_steps)",
                                 Range(0.0, 1.0, open_high=True))
    warmup_steps: Optional[int] = option(None, "warm-up steps (overrides warmup_ratio)", at_least(0))
    max_grad_norm: float = option(1.0, "gradient clipping norm; 0 disables clipping", NON_NEGATIVE)
    group_by_length: bool = option(True, "batch windows of similar length (less padding; order still seeded)",
                                   BOOLEAN)
    eval_every: Any = option("epoch", "dev evaluation: 'epoch' or every N optimizer steps; the last step always",
                             EpochOrSteps())
    selection: str = option("best", "the model kept: best = the eligible dev evaluation with the highest F1; "
                            "final = the model after the last step", OneOf(SELECTIONS))
    select_after: float = option(0.7, "selection=best: dev evaluations at or after this share of training are "
                                 "eligible; a pruned run's must not precede its final sparsity (schedule.end), and "
                                 "its dense baseline takes the same value", FRACTION)
    log_every: int = option(50, "optimizer steps between training-loss log lines", COUNT)
    metrics_mode: Optional[str] = option(None, "null: seqeval default (conlleval); strict: IOB2 strict spans",
                                         OneOf(("strict",)))
    checkpoint_every: Optional[int] = option(500, "optimizer steps between resumable checkpoints "
                                             "(output_dir/checkpoints/last.pt); null: none", COUNT)
    resume: bool = option(True, "continue from output_dir/checkpoints/last.pt when it exists", BOOLEAN)
    keep_checkpoint: bool = option(False, "keep last.pt after a successful run (deleted otherwise)", BOOLEAN)
    save_model: bool = option(False, "save_pretrained the selected model + tokenizer into output_dir/model", BOOLEAN)
    model_store: Optional[str] = option(None, "folder of fine-tuned dense models keyed by what trained them: a dense "
                                        "model is trained once and reused by every job that needs it (the dense "
                                        "arm, and one-shot methods such as pruning=wanda); null: no reuse",
                                        Free("a folder, created when needed"))
    cpu_threads: Optional[int] = option(None, "torch threads on CPU (null: torch's default); cores / jobs in sweeps",
                                        COUNT)
    progress: bool = option(True, "tqdm progress bar (shown only on a terminal)", BOOLEAN)

    @property
    def length(self) -> str:
        """The training-length policy, as arms name it: ``epochs=10``, ``epochs=10,min_steps=500``, ``max_steps=300``
        (the steps it gives a language follow from its training set; the record holds them)."""
        if self.max_steps is not None:
            return f"max_steps={self.max_steps}"
        return f"epochs={self.epochs:g}" + (f",min_steps={self.min_steps}" if self.min_steps else "")

    @property
    def selection_rule(self) -> str:
        """The model-selection rule, as arms name it: ``best@0.7`` (best dev F1 from 70% of training on) or
        ``final``."""
        return f"best@{self.select_after:g}" if self.selection == "best" else "final"
