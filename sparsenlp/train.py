"""The Hydra entry point: compose → build (data, model, pruner) → fit → evaluate → record.

``sparsenlp-train [overrides]`` runs one job; ``sparsenlp-train -m ...`` sweeps through Hydra's
launcher (basic, joblib, submitit, ray). Every mistake in the config is found before data is loaded and
reported on one line; the local record is written before anything is sent to W&B.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import hydra
import torch
from hydra._internal import utils as hydra_utils
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from omegaconf import DictConfig, OmegaConf

from sparsenlp import jobdir, joblog, jobstart, parentwatch, rundir, runlock
from sparsenlp.arm import build_arm
from sparsenlp.config import CONFIG_PATH, RunConfig, one_line, settings
from sparsenlp.data.datamodule import NERData, corpus_key, encode_all, load_sentences
from sparsenlp.data.facts import data_info
from sparsenlp.data.wikiann import LABELS
from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.quantize import score_quantized
from sparsenlp.evaluation.robustness import RobustnessSuite
from sparsenlp.identity import config_hash
from sparsenlp.inputs import absolute_root, require_inputs
from sparsenlp.io import DISK_ERRNOS, atomic_folder
from sparsenlp.models import build_model, build_tokenizer
from sparsenlp.pruning.methods import Context
from sparsenlp.sweep_jobs import per_job_method_keys
from sparsenlp.tracking import failure, records
from sparsenlp.tracking.records import QUANTIZED_PREDICTIONS
from sparsenlp.tracking.schema import (
    Arm,
    DataInfo,
    Language,
    ModelInfo,
    RunInfo,
    RunRecord,
    TrainingInfo,
)
from sparsenlp.tracking.wandb import WandbTracker, build_tracker
from sparsenlp.training import stop
from sparsenlp.training.checkpoint import checkpoint_path
from sparsenlp.training.device import seed_everything
from sparsenlp.training.post_training import (
    DenseStore,
    fit_dense,
    recover,
)
from sparsenlp.training.trainer import Trainer

log = logging.getLogger("sparsenlp")
# conf/hydra/launcher/*.yaml spell out every field of the launcher plugins' configs under the plugins'
# own names, so Hydra's (deprecated) schema matching is harmless; its warning would only be noise.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/\S+' is validated against ConfigStore schema",
                        category=UserWarning)
# every process that runs a job imports this module (the task function is unpickled from it), so Hydra's writes
# into a job folder wait for the job's lock and identity there too (sparsenlp/jobstart.py)
jobstart.install()


@dataclass
class Job:
    """A job whose config is checked and whose inputs are built: everything ``run`` needs to fit and score."""

    settings: RunConfig
    config: dict[str, Any]  # the resolved config, as the record and W&B keep it
    out: Path
    arm: Arm
    data: NERData
    data_info: DataInfo  # what was read and how it was encoded (cache hits: a sweep encodes each language once)
    tokenizer: Any
    trainer: Trainer
    pruner: Any  # the method's pruner (a trainer callback with pruning_report()); None for the dense arm
    suite: RobustnessSuite
    tracker: WandbTracker
    timings: dict[str, float] = field(default_factory=dict)


def _say_left_out(settings: RunConfig) -> None:
    """`all` without some languages' local data: said once at launch (by the study sweeper in a sweep, whose jobs
    keep it to their debug log; here for a single run). The record's arm lists the languages actually used."""
    if settings.left_out:
        alone = not HydraConfig.initialized() or str(HydraConfig.get().mode) != "RunMode.MULTIRUN"
        used = len(settings.languages.codes()) - len(settings.left_out)
        log.log(logging.WARNING if alone else logging.DEBUG, "`all`: no data under %s for %s; this run uses the %d "
                "languages that have it", settings.data.root, " ".join(settings.left_out), used)


def build_job(cfg: DictConfig, out: Path | None = None) -> Job:
    """Check the config, then build data, tokenizer, model, trainer, pruner, robustness suite and tracker.

    Everything that can fail on bad input fails here, before a single training step: the config first
    (in the user's keys, before any data is read), then the data (missing files, malformed lines, entity
    pools), the model and the schedule's fit to the run's length.
    """
    s = absolute_root(settings(cfg))
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    out = Path(s.output_dir) if out is None else out
    require_inputs(s)
    # the job's first lines once its config and inputs are checked: a mistake above is the only line printed
    log.info("start → %s", out)
    if s.trainer.cpu_threads:
        torch.set_num_threads(int(s.trainer.cpu_threads))
    log.info("torch runs on %d CPU threads (trainer.cpu_threads=%s)", torch.get_num_threads(), s.trainer.cpu_threads)
    _say_left_out(s)
    cache_dir = Path(s.data.cache_dir).expanduser() if s.data.cache_dir else None
    if cache_dir is not None and cache_dir.exists() and not cache_dir.is_dir():
        raise SparseNLPError(f"data.cache_dir={cache_dir} is a file, not a folder; point data.cache_dir at a folder "
                             "(it is created if missing), or data.cache_dir=null to run without a cache")
    timings: dict[str, float] = {}

    t = time.perf_counter()
    suite = RobustnessSuite(s.perturbation, s.eval_langs)
    data = load_sentences(s.data, s.train_langs, s.eval_langs)
    if not any(tag != "O" for sentence in data.dev.sentences for tag in sentence.tags):
        raise SparseNLPError(f"the dev set of lang={','.join(s.train_langs)} ({len(data.dev.sentences)} sentences) has "
                             "no entity, so dev F1 cannot select a model; raise data.dev_limit or fix its dev file")
    tokenizer = build_tokenizer(s.model, data.train_corpus, corpus_key(s.data, s.train_langs), cache_dir)
    cache = encode_all(data, s.data, tokenizer)
    suite.prepare(data, s.data, s.languages, tokenizer)  # entity pools: missing entity types fail here
    timings["data_seconds"] = time.perf_counter() - t

    t = time.perf_counter()
    seed_everything(s.seed)  # once: model initialisation, dropout and everything after draw from here
    model = build_model(s.model, tokenizer, LABELS)
    trainer = Trainer(model, data.train, data.dev, LABELS, s.trainer, seed=s.seed,
                      pad_id=int(tokenizer.pad_token_id), output_dir=out, identity=config_hash(config))
    pruner = None if s.method.is_dense(s.pruning) else s.method.build(
        s.pruning, Context(trainer.model, s.schedule, trainer.total_steps, s.seed))
    arm = build_arm(s, getattr(model, "config", None))
    tracker = build_tracker(s, arm, out, config)
    timings["model_seconds"] = time.perf_counter() - t
    return Job(s, config, out, arm, data, data_info(data, s.data, tokenizer, cache), tokenizer, trainer, pruner, suite,
               tracker, timings)


def _run_info(job: Job, started: datetime) -> RunInfo:
    overrides: list[str] = []
    sweep_dir, job_num = None, None
    if HydraConfig.initialized():
        hc = HydraConfig.get()
        overrides = list(hc.overrides.task)
        if str(hc.mode) == "RunMode.MULTIRUN":
            sweep_dir, job_num = str(Path(hc.sweep.dir).resolve()), int(hc.job.num)
    return RunInfo(eval_langs=job.settings.eval_langs, output_dir=str(job.out), started_at=started.isoformat(),
                   finished_at=datetime.now(timezone.utc).isoformat(), git_revision=records.git_revision(),
                   overrides=overrides, sweep_dir=sweep_dir, job_num=job_num)


def _languages(job: Job) -> dict[str, Language]:
    """Facts of every test language, its tier, and whether the run trained on it (else: zero-shot transfer)."""
    languages = job.settings.languages
    return {lang: Language(**dataclasses.asdict(languages.facts(lang)), tier=languages.tier(lang),
                           transfer=lang not in job.settings.train_langs)
            for lang in job.settings.eval_langs}


def _fit(job: Job, tracker: WandbTracker) -> TrainingInfo:
    """Fine-tune (and prune) the job's model. A pruner that prunes during fine-tuning is a trainer callback; a
    one-shot method prunes the fine-tuned dense model (reused from ``trainer.model_store`` when it is there),
    then, with ``pruning.recovery_steps``, recovers with its masks fixed. With a store, the dense arm's model
    is trained once and reused by every job that needs it."""
    s, trainer, pruner = job.settings, job.trainer, job.pruner
    store = DenseStore(s.trainer.model_store)
    if pruner is not None and s.method.post_training:
        trainer.add_callback(tracker)
        training, dense = fit_dense(trainer, job.config, store)
        pruner.prune(trainer.model, job.data, s.data, job.tokenizer, s.eval_langs[0], dense, s.languages.codes())
        recover(pruner, trainer.model, job.data, LABELS, s.trainer, s.seed, int(job.tokenizer.pad_token_id),
                (tracker,))
        return training
    if pruner is not None:
        trainer.add_callback(pruner)
    trainer.add_callback(tracker)
    return fit_dense(trainer, job.config, store)[0] if pruner is None and store.folder else trainer.fit()


def run(cfg: DictConfig) -> RunRecord:
    """One job. Returns its record (also written to ``output_dir/results.json``)."""
    started = datetime.now(timezone.utc)
    t_start = time.perf_counter()
    out = Path(str(cfg.output_dir))
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    if cfg.skip_completed and records.is_complete(out, config):
        log.info("skipping: %s already holds a complete record of this config", out)
        done = records.load(out)
        assert done is not None
        return done
    records.refuse_other(out, config)
    with stop.handled():
        try:
            jobdir.claim(out, config)  # normally done before Hydra wrote here (sparsenlp/jobstart.py); a no-op then
            return _fit_and_record(cfg, out, started, t_start)
        except jobdir.ForeignFolder:
            raise  # another config's folder: nothing in it is this job's to remove
        except stop.JobStopped as stopped:
            stopped.detail += f"; kept: {jobdir.discard_partial(out)}"
            log.warning("stopped by %s%s", stopped.name, stopped.detail)
            stopped.pass_on()  # submitit's requeue on its time-limit signal, after the checkpoint
            raise
        except SparseNLPError:
            jobdir.discard_partial(out)
            raise
        except OSError as exc:
            if exc.errno not in DISK_ERRNOS:
                raise
            kept = jobdir.discard_partial(out)
            raise _disk_fault(exc, cfg, out, kept) from None


def _disk_fault(exc: OSError, cfg: DictConfig, out: Path, kept: str) -> SparseNLPError:
    """A full disk, a quota or missing permissions, on one line naming the path, the fix and what was kept."""
    path = Path(exc.filename) if exc.filename else out
    cache = Path(str(cfg.data.cache_dir)).expanduser().absolute() if cfg.data.cache_dir else None
    if cache is not None and path.absolute().is_relative_to(cache):
        fix = ("free space there or make it writable, or choose another cache with data.cache_dir=/path/to/folder "
               "(or data.cache_dir=null)")
    elif path.absolute().is_relative_to(out.absolute()):
        fix = "free space there and relaunch, or choose another output folder (hydra.run.dir / hydra.sweep.dir)"
    else:
        fix = "free space or fix the permissions there"
    return SparseNLPError(f"{exc.strerror or exc}: {path}; {fix} (kept: {kept})")


def _fit_and_record(cfg: DictConfig, out: Path, started: datetime, t_start: float) -> RunRecord:
    """Build, fit, evaluate and record one job (``run`` handles what a stop or failure leaves)."""
    job = build_job(cfg, out)
    trainer, data, timings = job.trainer, job.data, job.timings

    with job.tracker as tracker:
        with stop.deferred():  # a stop signal while training: checkpoint at the next step boundary, then stop
            training = _fit(job, tracker)
        timings["train_seconds"] = training.train_seconds

        t = time.perf_counter()
        dev_metrics, _ = trainer.evaluate(data.dev)
        test, robustness, predictions = job.suite.evaluate(trainer, data)
        timings["eval_seconds"] = time.perf_counter() - t
        quantization = None
        if job.settings.quantization.name != "none":
            t = time.perf_counter()
            quantization, int8_rows = score_quantized(trainer.model, job.suite, data, LABELS, trainer.eval_batch_size,
                                                      int(job.tokenizer.pad_token_id), trainer.metrics_mode,
                                                      job.settings.trainer.cpu_threads)
            predictions.update({f"{QUANTIZED_PREDICTIONS}/{name}": rows for name, rows in int8_rows.items()})
            timings["quantization_seconds"] = time.perf_counter() - t
        timings["total_seconds"] = time.perf_counter() - t_start

        record = RunRecord(
            arm=job.arm,
            config=job.config,
            run=_run_info(job, started),
            data=job.data_info,
            model=ModelInfo(name=job.settings.model.name, name_or_path=job.settings.model.name_or_path,
                            parameters=sum(p.numel() for p in trainer.model.parameters())),
            languages=_languages(job),
            training=training,
            dev=dev_metrics,
            test=test,
            robustness=robustness,
            robustness_not_applicable=job.suite.not_applicable,
            entity_pools=job.suite.pool_report(),
            pruning=None if job.pruner is None else job.pruner.pruning_report(),
            quantization=quantization,
            timings=timings,
            versions=records.versions(),
        )
        if job.settings.trainer.save_model:  # before the record, which says that everything is on disk
            with atomic_folder(out / "model") as folder:
                trainer.model.save_pretrained(folder)
                job.tokenizer.save_pretrained(folder)
        records.write(out, record, predictions)
        tracker.log_final(record)

    if not job.settings.trainer.keep_checkpoint:
        checkpoint_path(out).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the folder, if it held only the checkpoint
            checkpoint_path(out).parent.rmdir()
    test_f1 = {lang: None if m["clean"].f1 is None else round(m["clean"].f1, 4) for lang, m in test.items()}
    log.info("done in %.0f s: test F1 %s → %s", time.perf_counter() - t_start, test_f1, out / records.RESULTS)
    return record


@hydra.main(config_path=CONFIG_PATH, config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> float:
    parentwatch.exit_with_launcher()  # a joblib worker ends with the sweep's main process
    out = Path(str(cfg.output_dir))
    held = jobstart.left_to_another(out)
    if held is not None:  # another launch runs this job: its result says so, and the sweep goes on
        raise held
    with joblog.console(out):  # [name] tags in a sweep, one-line errors
        with runlock.job_lock(out):  # one live process per job folder
            with failure.kept(out, enabled=joblog.in_sweep()):  # failure.json for `sparsenlp-report status`
                record = run(cfg)
    # what Hydra's sweepers (e.g. Optuna) optimise: dev F1 of the selected model, never test
    return float(record.dev.f1)


def _register_sweeper() -> None:
    """Hydra finds plugins by scanning the hydra_plugins package, which an editable install hides from it, so
    the study sweeper and the SLURM launcher are registered directly; after the scan, which re-executes the
    modules it visits (their base classes and the launcher's config schema among them)."""
    plugins = Plugins.instance()
    from hydra_plugins import sparsenlp_slurm_launcher  # after the scan (docstring)
    from hydra_plugins.sparsenlp_study_sweeper.study_sweeper import StudySweeper

    plugins.register(StudySweeper)
    sparsenlp_slurm_launcher.register()  # without the `launchers` extra there is no SLURM launcher to register


def _run_and_report(func: Callable[[], Any]) -> Any:
    """Hydra's ``run_and_report``, except that configuration mistakes and sparsenlp's own errors are one line
    (Hydra prints several, with advice to append a misspelt key and to set HYDRA_FULL_ERROR)."""
    try:
        return func()
    except Exception as exc:  # noqa: BLE001 - anything else goes to Hydra's own report, unchanged
        error = None if os.environ.get("HYDRA_FULL_ERROR") == "1" else one_line(exc)
        if error is None:
            return _hydra_run_and_report(functools.partial(_reraise, exc))
        sys.stderr.write(f"{error}\n")
        sys.exit(1)


def _reraise(exc: BaseException) -> Any:
    raise exc


_hydra_run_and_report = hydra_utils.run_and_report


def main() -> None:
    """Console script ``sparsenlp-train`` (and ``python -m sparsenlp``)."""
    _register_sweeper()
    parentwatch.mark_launcher()
    sys.argv[1:] = per_job_method_keys(sys.argv[1:])
    sys.argv += rundir.callback_override(sys.argv[1:])  # an unwritable output folder: one line, not a traceback
    hydra_utils.run_and_report = _run_and_report
    _hydra_main()


if __name__ == "__main__":
    main()
