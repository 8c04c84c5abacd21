"""A compact fine-tuning loop for token classification.

Why our own loop and not HF's Trainer: pruning must act *inside* the step (masks re-applied right
after every optimizer step, see ``Callback.on_step_end``), model selection must follow one rule for
every arm of a comparison (``trainer.selection``, ``trainer.select_after``: a share of training, so a
dense run keeps the same eligible evaluations as the pruned runs it is compared with, all at their final
sparsity), and resumable checkpoints must carry the masks. Everything else
is the standard recipe: AdamW (no decay on biases/LayerNorm), linear warm-up and decay, gradient
clipping, dynamic padding, bf16 autocast on CUDA, dev evaluation every N steps or per epoch.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from sparsenlp.config.schedule import step_at
from sparsenlp.config.trainer import TrainerConfig
from sparsenlp.errors import SparseNLPError
from sparsenlp.data.batching import collate, train_batches
from sparsenlp.data.datamodule import Split
from sparsenlp.evaluation.metrics import ner_metrics
from sparsenlp.evaluation.predict import autocast_context, predict_tags
from sparsenlp.tracking.schema import DevEntry, LossEntry, Metrics, SelectionInfo, TrainingInfo
from sparsenlp.training.callbacks import Callback
from sparsenlp.training import stop
from sparsenlp.training.checkpoint import DamagedCheckpoint, checkpoint_path, load_checkpoint, save_checkpoint
from sparsenlp.training.device import resolve_amp_dtype, resolve_device, rng_state, set_rng_state

log = logging.getLogger(__name__)


def _optimizer(model: torch.nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, **fast_adamw_options(device))


def fast_adamw_options(device: torch.device) -> dict[str, bool]:
    """The fused AdamW kernel (CUDA; CPU since torch 2.4) is several times faster than ``foreach``:
    on CPU it took a MiniLM step's optimizer update from ~130 ms to ~21 ms (bench/vs_hf.py)."""
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    if device.type == "cuda" or (device.type == "cpu" and (major, minor) >= (2, 4)):
        return {"fused": True}
    return {"foreach": True}


def _linear_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Trainer:
    """Fits ``model`` on ``train``, selects on ``dev``; callbacks hook into the loop (pruning, tracking)."""

    def __init__(self, model: torch.nn.Module, train: Split, dev: Split, labels: Sequence[str],
                 cfg: TrainerConfig, seed: int, pad_id: int, output_dir: Path | None = None,
                 identity: str | None = None) -> None:
        if train.features is None or dev.features is None:
            raise ValueError("encode the splits before training")
        self.cfg = cfg
        self.train, self.dev, self.labels = train, dev, list(labels)
        self.seed, self.pad_id, self.metrics_mode = seed, pad_id, cfg.metrics_mode
        self.output_dir = output_dir
        self.identity = identity  # the job's config hash: its checkpoints carry it, a resume requires it
        self.device = resolve_device(cfg.device)
        self.amp_dtype = resolve_amp_dtype(cfg.precision, self.device)
        self.batch_size = cfg.batch_size
        self.eval_batch_size = cfg.eval_batch_size or 2 * self.batch_size
        self.accumulation = cfg.gradient_accumulation_steps
        self.batches_per_epoch = math.ceil(len(train.features) / self.batch_size)
        self.steps_per_epoch = max(1, math.ceil(self.batches_per_epoch / self.accumulation))
        by_epochs = max(1, math.ceil(cfg.epochs * self.steps_per_epoch))
        self.total_steps = cfg.max_steps or max(by_epochs, cfg.min_steps)
        # what set the run's length, for the record: the epochs, the min_steps floor (an ablation), or max_steps
        self.length_by = ("max_steps" if cfg.max_steps else "min_steps" if cfg.min_steps > by_epochs else "epochs")
        self.eligible_steps = self._eligible_steps()
        self.model = model.to(self.device)
        self.callbacks: list[Callback] = []
        self.optimizer: torch.optim.Optimizer | None = None  # created in fit(), after on_train_begin
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.dev_history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ hooks
    def add_callback(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Any component may log through the trainer; callbacks (e.g. W&B) receive it."""
        for cb in self.callbacks:
            cb.on_log(self, step, metrics)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, split: Split) -> tuple[Metrics, list[list[str]]]:
        assert split.features is not None
        pred = predict_tags(self.model, split.features, split.sentences, self.labels, self.eval_batch_size,
                            self.device, self.amp_dtype, self.pad_id)
        gold = [list(s.tags) for s in split.sentences]
        return ner_metrics(gold, pred, self.metrics_mode), pred

    def _eval_steps(self) -> set[int]:
        every = self.cfg.eval_every
        if every == "epoch":
            points = {min(self.total_steps, e * self.steps_per_epoch)
                      for e in range(1, math.ceil(self.total_steps / self.steps_per_epoch) + 1)}
        else:
            points = set(range(int(every), self.total_steps + 1, int(every)))
        return points | {self.total_steps}

    def _eligible_steps(self) -> list[int]:
        """The dev evaluations model selection may keep: the last (``final``), or those from ``select_after`` of
        training on (``best``). A function of the run's length alone, the same for every arm of a comparison."""
        if self.cfg.selection == "final":
            return [self.total_steps]
        first = step_at(self.cfg.select_after, self.total_steps)
        return sorted(step for step in self._eval_steps() if step >= first)

    def _check_eligible(self) -> None:
        """A callback (the pruner) may veto selecting a model (before its final sparsity); the rule must never
        make such a step eligible, or the arms of a comparison would select among different evaluations."""
        vetoed = [step for step in self.eligible_steps if not all(cb.allows_checkpoint(step) for cb in self.callbacks)]
        if vetoed:
            raise SparseNLPError(
                f"trainer.select_after={self.cfg.select_after:g} makes the dev evaluation at step {vetoed[0]} of "
                f"{self.total_steps} eligible before pruning reaches its final sparsity; set trainer.select_after to "
                "at least schedule.end (and the same for the dense runs it is compared with)"
            )

    # ------------------------------------------------------------------ loop
    def fit(self) -> TrainingInfo:
        """Train (resuming from the last checkpoint when there is one) and restore the selected checkpoint. The
        caller seeds the run once, before the model is built (``train.build_job``)."""
        cfg = self.cfg
        self.model.train()
        # before the optimizer exists: structured pruning replaces parameter tensors here. On resume the
        # same (deterministic) step-0 work recreates the shapes the checkpoint was saved with.
        for cb in self.callbacks:
            cb.on_train_begin(self)
        self._check_eligible()
        optimizer = _optimizer(self.model, cfg.lr, cfg.weight_decay, self.device)
        self.optimizer = optimizer
        warmup = cfg.warmup_steps if cfg.warmup_steps is not None else round(cfg.warmup_ratio * self.total_steps)
        scheduler = _linear_schedule(optimizer, warmup, self.total_steps)
        eval_steps = self._eval_steps()
        ckpt_every = cfg.checkpoint_every
        ckpt_path = checkpoint_path(self.output_dir) if self.output_dir is not None else None
        best: dict[str, Any] = {"f1": None, "step": None, "state": None}
        clip = cfg.max_grad_norm
        group = cfg.group_by_length
        log_every = cfg.log_every
        progress = tqdm(total=self.total_steps, desc="train", disable=not cfg.progress or None,
                        dynamic_ncols=True, leave=False)
        seen_windows = seen_tokens = 0
        train_seconds = 0.0
        batch_in_epoch, epoch = 0, 0
        resumed_from = None
        # the running loss stays on the device and is read back only when logged: no per-batch GPU sync
        running_loss, running_n = torch.zeros((), device=self.device), 0

        state = self._resume(ckpt_path, optimizer, scheduler) if cfg.resume else None
        if state is not None:
            self.step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
            self.history, self.dev_history = state["history"], state["dev_history"]
            best = state["best"]
            seen_windows, seen_tokens, train_seconds = state["seen_windows"], state["seen_tokens"], state["train_seconds"]
            set_rng_state(state["rng"])
            if "running_loss" in state:  # the batches since the last log entry count towards the next one
                running_loss, running_n = state["running_loss"].to(self.device), state["running_n"]
            resumed_from = self.step
            progress.update(self.step)
            log.info("resumed from %s at step %d", ckpt_path, self.step)

        tick = time.perf_counter()
        while self.step < self.total_steps:
            batches = train_batches(self.train.features, self.batch_size, self.seed, epoch, group)
            while batch_in_epoch < len(batches) and self.step < self.total_steps:
                group_batches = batches[batch_in_epoch:batch_in_epoch + self.accumulation]
                batch_in_epoch += len(group_batches)
                n_real = sum(len(b) for b in group_batches)
                for indices in group_batches:
                    batch = collate(self.train.features, indices, self.pad_id)
                    seen_tokens += int(self.train.features.lengths()[indices].sum())
                    batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                    with autocast_context(self.device, self.amp_dtype):
                        loss = self.model(**batch).loss
                    (loss * (len(indices) / n_real)).backward()
                    running_loss += loss.detach() * len(indices)
                    running_n += len(indices)
                    seen_windows += len(indices)
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
                for cb in self.callbacks:
                    cb.on_before_optimizer_step(self, self.step)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                self.step += 1
                for cb in self.callbacks:
                    cb.on_step_end(self, self.step)
                progress.update(1)

                if self.step % log_every == 0 or self.step == self.total_steps:
                    entry = {"step": self.step, "loss": float(running_loss) / max(1, running_n),
                             "lr": scheduler.get_last_lr()[0], "epoch": self.step / self.steps_per_epoch}
                    self.history.append(entry)
                    progress.set_postfix(loss=f"{entry['loss']:.4f}")
                    log.info("step %d/%d: loss %.4f, lr %.2e", self.step, self.total_steps, entry["loss"], entry["lr"])
                    self.log_metrics({"train/loss": entry["loss"], "train/lr": entry["lr"],
                                      "train/epoch": entry["epoch"]}, self.step)
                    running_loss, running_n = torch.zeros((), device=self.device), 0

                if self.step in eval_steps:
                    train_seconds += time.perf_counter() - tick
                    self._evaluate_and_select(best)
                    tick = time.perf_counter()
                # a stop signal (stop.deferred) is obeyed here, at a step boundary, after a checkpoint
                signum = stop.requested()
                if ckpt_path is not None and ((ckpt_every and self.step % ckpt_every == 0) or signum is not None):
                    train_seconds += time.perf_counter() - tick
                    save_checkpoint(ckpt_path, identity=self.identity, model=self.model, optimizer=optimizer,
                                    scheduler=scheduler,
                                    callbacks=self.callbacks, step=self.step, epoch=epoch,
                                    batch_in_epoch=batch_in_epoch, history=self.history,
                                    dev_history=self.dev_history, best=best, seen_windows=seen_windows,
                                    seen_tokens=seen_tokens, train_seconds=train_seconds, rng=rng_state(),
                                    running_loss=running_loss.detach().cpu(), running_n=running_n)
                    tick = time.perf_counter()
                if signum is not None:
                    progress.close()
                    stop.stop(signum, f" at step {self.step} of {self.total_steps}")
            if batch_in_epoch >= len(batches):
                epoch, batch_in_epoch = epoch + 1, 0
        train_seconds += time.perf_counter() - tick
        progress.close()

        for cb in self.callbacks:
            cb.on_train_end(self)
        if best["state"] is not None:
            self.model.load_state_dict(best["state"])
            log.info("restored best dev checkpoint (step %d, dev F1 %.4f)", best["step"], best["f1"])
        return TrainingInfo(
            steps=self.step, steps_per_epoch=self.steps_per_epoch, epochs=self.step / self.steps_per_epoch,
            length_by=self.length_by, selection=self._selection_info(best), train_seconds=train_seconds,
            sentences_per_second=seen_windows / max(train_seconds, 1e-9),
            tokens_per_second=seen_tokens / max(train_seconds, 1e-9), device=self.device.type,
            precision=str(self.amp_dtype or "fp32").replace("torch.", ""), resumed_from_step=resumed_from,
            history=[LossEntry(**entry) for entry in self.history],
            dev_history=[DevEntry(**entry) for entry in self.dev_history],
        )

    def _selection_info(self, best: dict[str, Any]) -> SelectionInfo:
        best_rule = self.cfg.selection == "best"
        return SelectionInfo(rule=self.cfg.selection, after=self.cfg.select_after if best_rule else None,
                             eligible_steps=self.eligible_steps, candidates=len(self.eligible_steps),
                             step=best["step"], dev_f1=best["f1"])
    def _resume(self, path: Path | None, optimizer: torch.optim.Optimizer, scheduler: Any) -> dict[str, Any] | None:
        """The loop state of this job's checkpoint, restored into model, optimizer, scheduler and callbacks; None
        without one. A damaged checkpoint is reported, deleted and trained again from step 0 (same config and
        seed: the same result); one of another config stops the job (SparseNLPError)."""
        if path is None or not path.is_file():
            return None
        try:
            return load_checkpoint(path, self.identity, self.model, optimizer, scheduler, self.callbacks)
        except DamagedCheckpoint as exc:
            log.warning("damaged checkpoint %s (%s): deleting it and training from step 0", exc.path, exc.reason)
            path.unlink(missing_ok=True)
            return None

    def _evaluate_and_select(self, best: dict[str, Any]) -> None:
        metrics, _ = self.evaluate(self.dev)
        eligible = self.step in self.eligible_steps
        self.dev_history.append({"step": self.step, "f1": metrics.f1, "precision": metrics.precision,
                                 "recall": metrics.recall, "eligible": eligible})
        for cb in self.callbacks:
            cb.on_evaluate(self, self.step, {"dev/f1": metrics.f1, "dev/precision": metrics.precision,
                                             "dev/recall": metrics.recall})
        log.info("step %d: dev F1 %.4f%s", self.step, metrics.f1, "" if eligible else " (not eligible for selection)")
        if eligible and (best["f1"] is None or metrics.f1 > best["f1"]):
            best["f1"], best["step"] = metrics.f1, self.step
            best["state"] = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
