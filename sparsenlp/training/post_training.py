"""Post-training pruning: the dense run's fine-tuned model, pruned in one shot from calibration data.

A one-shot method (``pruning=wanda``, ``pruning=sparsegpt``) does not prune during fine-tuning: it needs the
fine-tuned dense model of the same language, seed and training recipe, i.e. exactly what the dense arm's run
trains. :class:`DenseStore` (``trainer.model_store``) keeps such models keyed by what trained them
(``identity.training_hash``): the first job that needs one trains it (under a lock, so a second job waits instead
of training it again) and every later job loads it. Same config and seed give bit-identical weights, so a job's
result does not depend on who trained the model. Without a store the model is trained in the job.

Then :class:`OneShotPruner` draws the calibration sentences (training data only), prunes every selected encoder
Linear weight layer by layer (``sparsenlp/pruning/calibration.py``) and, with ``pruning.recovery_steps``,
fine-tunes the pruned model for that many steps with its masks fixed (re-applied after every optimizer step, so
pruned weights stay exactly 0) and keeps the final model.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout
from safetensors.torch import load_file, save_file

from sparsenlp.config.data import DataConfig
from sparsenlp.config.schedule import ScheduleConfig
from sparsenlp.data.calibration import (
    calibration_batches,
    draw_calibration,
    training_pools,
)
from sparsenlp.data.datamodule import NERData
from sparsenlp.errors import SparseNLPError
from sparsenlp.identity import training_hash
from sparsenlp.pruning.calibration import MAGNITUDE, one_shot_prune
from sparsenlp.pruning.grouped import Target
from sparsenlp.pruning.masks import MaskSet
from sparsenlp.pruning.methods import Context, Method, PruningConfig
from sparsenlp.pruning.methods.calibrated import (
    MIX,
    NONE,
    SELF,
    CalibratedReport,
    DenseSource,
    RecoveryInfo,
)
from sparsenlp.pruning.params import select_prunable
from sparsenlp.tracking.schema import PruningInfo, TensorSparsity, TrainingInfo
from sparsenlp.training.callbacks import Callback
from sparsenlp.training.trainer import Trainer

log = logging.getLogger(__name__)
WEIGHTS, TRAINING = "model.safetensors", "training.json"


def dense_counterpart(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved config of the dense arm's run that ``config`` (any run) is compared with: the same, with
    ``pruning=dense`` and the schedule a dense run composes with (``schedule=none``)."""
    dense = copy.deepcopy(config)
    dense["pruning"] = {"method": "dense"}
    dense["schedule"] = dataclasses.asdict(ScheduleConfig())
    return dense


class DenseStore:
    """Fine-tuned dense models on disk, ``<folder>/<training hash>/`` (weights and the training's record), each
    written whole (a temporary folder renamed into place) under a lock that others wait on."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = None if folder is None else Path(folder).expanduser().absolute()

    @contextlib.contextmanager
    def claim(self, identity: str) -> Iterator[Path | None]:
        """Hold ``identity``'s lock (waiting while another job trains it); yields its folder (None: no store)."""
        if self.folder is None:
            yield None
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SparseNLPError(f"cannot create trainer.model_store={self.folder} ({exc.strerror}); choose a "
                                 "writable folder or trainer.model_store=null") from None
        lock = FileLock(str(self.folder / f"{identity}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("waiting for the dense model %s, which another job is training", identity)
            lock.acquire()
        try:
            yield self.folder / identity
        finally:
            lock.release()

    @staticmethod
    def load(entry: Path | None, model: torch.nn.Module) -> TrainingInfo | None:
        """The stored training's record, with its weights loaded into ``model``; None when not stored."""
        if entry is None or not (entry / TRAINING).is_file():
            return None
        model.load_state_dict(load_file(entry / WEIGHTS, device=str(next(model.parameters()).device)))
        return TrainingInfo.model_validate_json((entry / TRAINING).read_bytes())

    @staticmethod
    def save(entry: Path | None, model: torch.nn.Module, training: TrainingInfo) -> None:
        if entry is None:
            return
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
        try:
            save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, tmp / WEIGHTS)
            (tmp / TRAINING).write_text(training.model_dump_json(), encoding="utf-8")
            os.replace(tmp, entry)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def fit_dense(trainer: Any, config: dict[str, Any], store: DenseStore) -> tuple[TrainingInfo, DenseSource]:
    """The fine-tuned dense model of ``config``'s run in ``trainer.model``: loaded from ``store``, or trained by
    ``trainer`` (and then stored). ``trainer`` must be set up to train the dense arm (no pruner among its
    callbacks), as it is for every run before its pruner is added."""
    identity = training_hash(dense_counterpart(config))
    with store.claim(identity) as entry:
        training = store.load(entry, trainer.model)
        reused = training is not None
        if training is None:
            training = trainer.fit()
            store.save(entry, trainer.model, training)
        else:
            log.info("dense model %s loaded from %s (trained once, by a job with the same training config)",
                     identity, store.folder)
            training = training.model_copy(update={"reused_from": str(entry)})
    source = DenseSource(identity=identity, reused=reused, store=None if store.folder is None else str(store.folder))
    return training, source


def readable_pools(data_cfg: DataConfig, langs: list[str]) -> dict[str, list[Any]]:
    """The training splits of ``langs`` that can be read (offline copies may lack a language: it is left out of
    the mix, and the record's calibration section lists the languages used)."""
    pools = {}
    for lang in langs:
        try:
            pools.update(training_pools(data_cfg, [lang]))
        except SparseNLPError as exc:
            log.warning("calibration.lang=mix leaves out %s: %s", lang, exc.message)
    return pools


class FixedMasks(Callback):
    """Re-applies masks after every optimizer step: pruned weights stay exactly 0 while the rest recovers."""

    def __init__(self, masks: MaskSet) -> None:
        self.masks = masks

    def on_train_begin(self, trainer: Any) -> None:
        self.masks.apply_()

    def on_step_end(self, trainer: Any, step: int) -> None:
        self.masks.apply_()


class OneShotPruner:
    """A one-shot method's pruning of one run (built by ``Calibrated.build``): ``prune`` after the dense model is
    fine-tuned, ``recovery`` for the fine-tune after it, ``pruning_report`` for the record."""

    def __init__(self, method: Method, cfg: PruningConfig, context: Context) -> None:
        self.method, self.cfg, self.seed = method, cfg, context.seed
        self.params = select_prunable(context.model, cfg.params)  # a regex matching nothing fails before training
        nm = cfg.nm()
        self.target = Target(n=nm[0], m=nm[1]) if nm else Target(sparsity=cfg.sparsity())
        for name, param in self.params.items():
            self.target.check_columns(param.shape[-1], name)
        self.masks: MaskSet | None = None
        self.report: CalibratedReport | None = None
        self.total_params = sum(p.numel() for p in context.model.parameters())

    def prune(self, model: torch.nn.Module, data: NERData, data_cfg: DataConfig, tokenizer: Any, evaluated: str,
              dense: DenseSource, study_langs: list[str]) -> None:
        """Draw the calibration sentences (training splits only) and prune ``model`` in place. ``mix`` draws an
        equal share from every language of the study (``study_langs``: ``lang=all``) that has a training split."""
        calibration = self.cfg.calibration
        pools = {lang: [s for s in data.train.sentences if s.lang == lang] for lang in data.train_langs}
        mixed = study_langs if calibration.lang == MIX else []
        needed = {evaluated if calibration.lang == SELF else calibration.lang} - {NONE, MIX}
        pools.update(training_pools(data_cfg, sorted(needed - set(pools))))
        pools.update(readable_pools(data_cfg, [lang for lang in mixed if lang not in pools]))
        sample = draw_calibration(pools, calibration.lang, evaluated, [lang for lang in mixed if pools.get(lang)],
                                  calibration.sentences, self.seed)
        batches = calibration_batches(sample.sentences, tokenizer, data_cfg.max_length)
        one_shot = MAGNITUDE if calibration.lang == NONE else self.method.name
        options = {k: getattr(self.cfg, k) for k in ("blocksize", "percdamp") if hasattr(self.cfg, k)}
        result = one_shot_prune(model, one_shot, self.target, batches, self.params, **options)
        self.masks = MaskSet(self.params)
        self.masks.update_(result.masks, monotone=False)
        self.masks.apply_()
        self.report = CalibratedReport(one_shot=result.report, calibration=sample.info, dense=dense,
                                       recovery_steps=self.cfg.recovery_steps)
        log.info("%s pruned to %.4f from %d calibration sentences (%s)", one_shot, self.masks.sparsity(),
                 sample.info.sentences, calibration.lang)

    def recovery(self) -> FixedMasks | None:
        """The callback that keeps the masks during the recovery fine-tune (None without one)."""
        assert self.masks is not None, "prune first"
        return FixedMasks(self.masks) if self.cfg.recovery_steps else None

    def pruning_report(self) -> PruningInfo:
        assert self.masks is not None and self.report is not None, "prune first"
        counts = self.masks.pruned_counts()
        pruned = sum(counts.values())
        return PruningInfo(
            target=self.target.fraction, achieved=pruned / self.masks.num_prunable, embedding_target=None,
            embedding_achieved=None, model_sparsity=pruned / self.total_params, prunable_parameters=self.masks.num_prunable,
            total_parameters=self.total_params, pruned_parameters=pruned,
            per_tensor={name: TensorSparsity(numel=mask.numel(), pruned=counts[name], target=None,
                                             achieved=counts[name] / mask.numel())
                        for name, mask in self.masks.masks.items()},
            trace=[], schedule=None, details=self.report.model_dump(),
        )


def recovery_config(trainer_cfg: Any, steps: int) -> Any:
    """The trainer config of a recovery fine-tune: ``steps`` optimizer steps from the run's learning rate decaying
    linearly to 0, no warm-up, one evaluation at the end (the final model is kept), no checkpoints."""
    return dataclasses.replace(trainer_cfg, max_steps=steps, warmup_steps=0, eval_every=steps, selection="final",
                               checkpoint_every=None, resume=False)


def recover(pruner: OneShotPruner, model: torch.nn.Module, data: NERData, labels: Any, trainer_cfg: Any, seed: int,
            pad_id: int, callbacks: tuple[Callback, ...] = ()) -> RecoveryInfo | None:
    """The recovery fine-tune of a pruned model (``pruning.recovery_steps``, masks fixed), recorded in the
    pruner's report; None without one."""
    fixed = pruner.recovery()
    if fixed is None:
        return None
    trainer = Trainer(model, data.train, data.dev, labels, recovery_config(trainer_cfg, pruner.cfg.recovery_steps),
                      seed=seed, pad_id=pad_id)
    for callback in (fixed, *callbacks):
        trainer.add_callback(callback)
    info = trainer.fit()
    assert pruner.report is not None
    pruner.report.recovery = RecoveryInfo(
        steps=info.steps, train_seconds=info.train_seconds, dev_f1=info.selection.dev_f1,
        history=[entry.model_dump() for entry in info.history],
        dev_history=[entry.model_dump() for entry in info.dev_history])
    return pruner.report.recovery
