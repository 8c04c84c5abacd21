"""The Hydra entry point: compose → build (data, model, pruner) → fit → evaluate → record.

``sparsenlp-train [overrides]`` runs one job; ``sparsenlp-train -m ...`` sweeps through Hydra's
launcher (basic, joblib, submitit, ray). Every mistake in the config is found before training starts
and reported on one line; the local record is written before anything is sent to W&B.
"""
from __future__ import annotations

import logging
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from sparsenlp import parentwatch, rundir, runlock
from sparsenlp.data.datamodule import NERData, corpus_key, encode_all, load_sentences
from sparsenlp.data.languages import resolve_langs
from sparsenlp.data.wikiann import LABELS
from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.robustness import RobustnessSuite, build_suite
from sparsenlp.models import build_model, build_tokenizer
from sparsenlp.pruning.engine import MagnitudePruner, build_pruner
from sparsenlp.pruning.structured import StructuredPruner
from sparsenlp.tracking import records
from sparsenlp.tracking.wandb import WandbTracker, build_tracker
from sparsenlp.training.device import seed_everything
from sparsenlp.training.trainer import Trainer, TrainResult

log = logging.getLogger("sparsenlp")
# conf/hydra/launcher/*.yaml spell out every field of the launcher plugins' configs under the plugins'
# own names, so Hydra's (deprecated) schema matching is harmless; its warning would only be noise.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/\S+' is validated against ConfigStore schema",
                        category=UserWarning)
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def _run_info(cfg: DictConfig, langs: list[str], started: datetime) -> dict[str, Any]:
    from hydra.core.hydra_config import HydraConfig

    info: dict[str, Any] = {"langs": langs, "seed": int(cfg.seed), "output_dir": str(cfg.output_dir),
                            "started_at": started.isoformat(), "finished_at": None,
                            "git_revision": records.git_revision(), "overrides": [], "sweep_dir": None,
                            "job_num": None}
    if HydraConfig.initialized():
        hc = HydraConfig.get()
        info["overrides"] = list(hc.overrides.task)
        if str(hc.mode) == "RunMode.MULTIRUN":
            info["sweep_dir"] = str(Path(hc.sweep.dir).resolve())
            info["job_num"] = int(hc.job.num)
    return info


def _training_record(result: TrainResult, trainer: Trainer) -> dict[str, Any]:
    return {
        "steps": result.steps, "epochs": result.epochs, "best_step": result.best_step,
        "best_dev_f1": result.best_dev_f1, "train_seconds": result.train_seconds,
        "sentences_per_second": result.sentences_per_second, "tokens_per_second": result.tokens_per_second,
        "device": trainer.device.type, "precision": str(trainer.amp_dtype or "fp32").replace("torch.", ""),
        "resumed_from_step": result.resumed_from_step, "history": result.history, "dev_history": result.dev_history,
    }


@dataclass
class Prepared:
    """Everything a job needs once the config has been checked and the inputs built."""

    langs: list[str]
    data: NERData
    tokenizer: Any
    model: torch.nn.Module
    trainer: Trainer
    pruner: MagnitudePruner | StructuredPruner | None
    suite: RobustnessSuite
    tracker: WandbTracker
    feature_cache: dict[str, int]  # cache hits / misses: a sweep should encode each language once
    timings: dict[str, float] = field(default_factory=dict)


def _prepare(cfg: DictConfig, out: Path) -> Prepared:
    """Everything that can fail on bad input happens here, before a single training step."""
    timings: dict[str, float] = {}
    langs = resolve_langs(OmegaConf.to_object(cfg.lang) if OmegaConf.is_list(cfg.lang) else str(cfg.lang),
                          cfg.languages)
    data_cfg = OmegaConf.to_container(cfg.data, resolve=True)
    if data_cfg.get("root") is not None:
        data_cfg["root"] = hydra.utils.to_absolute_path(str(data_cfg["root"]))
    suite = build_suite(cfg.perturbation, langs)  # names, severities, parameters
    tracker = build_tracker(cfg, out)  # logger.mode

    t = time.perf_counter()
    data = load_sentences(data_cfg, langs)
    cache_dir = Path(str(data_cfg["cache_dir"])).expanduser() if data_cfg.get("cache_dir") else None
    tokenizer = build_tokenizer(cfg.model, data.train_corpus, corpus_key(data_cfg, langs), cache_dir)
    cache = encode_all(data, data_cfg, tokenizer)
    suite.prepare(data, data_cfg, cfg.languages, tokenizer)  # entity pools: missing entity types fail here
    timings["data_seconds"] = time.perf_counter() - t

    t = time.perf_counter()
    seed_everything(int(cfg.seed))
    model = build_model(cfg.model, tokenizer, LABELS)
    trainer = Trainer(model, data.train, data.dev, LABELS, cfg.trainer, seed=int(cfg.seed),
                      pad_id=int(tokenizer.pad_token_id), output_dir=out,
                      metrics_mode=cfg.trainer.get("metrics_mode"))
    pruner = build_pruner(cfg.pruning, cfg.schedule, trainer.model, trainer.total_steps)
    timings["model_seconds"] = time.perf_counter() - t
    return Prepared(langs, data, tokenizer, model, trainer, pruner, suite, tracker,
                    {"hits": cache.hits, "misses": cache.misses}, timings)


def run(cfg: DictConfig) -> dict[str, Any]:
    """One job. Returns its record (also written to ``output_dir/results.json``)."""
    started = datetime.now(timezone.utc)
    t_start = time.perf_counter()
    out = Path(str(cfg.output_dir))
    config = OmegaConf.to_container(cfg, resolve=True)
    if cfg.get("skip_completed", True) and records.is_complete(out, config):
        log.info("skipping: %s already holds a complete record of this config", out)
        return records.load(out) or {}
    if cfg.trainer.get("cpu_threads"):
        torch.set_num_threads(int(cfg.trainer.cpu_threads))

    try:
        job = _prepare(cfg, out)
    except SparseNLPError:
        records.discard_run_dir(out)
        raise
    trainer, data, timings = job.trainer, job.data, job.timings

    with job.tracker as tracker:
        if job.pruner is not None:
            trainer.add_callback(job.pruner)
        trainer.add_callback(tracker)
        result = trainer.fit()
        timings["train_seconds"] = result.train_seconds

        t = time.perf_counter()
        dev_metrics, _ = trainer.evaluate(data.dev)
        test, robustness, predictions = job.suite.evaluate(trainer, data)
        timings["eval_seconds"] = time.perf_counter() - t
        timings["total_seconds"] = time.perf_counter() - t_start

        info = _run_info(cfg, job.langs, started)
        info["finished_at"] = datetime.now(timezone.utc).isoformat()
        record = {
            "config": config,
            "run": info,
            "data": {"train_sentences": len(data.train.sentences), "dev_sentences": len(data.dev.sentences),
                     "test_sentences": {lang: len(split.sentences) for lang, split in data.test.items()},
                     "train_windows": len(data.train.features), "max_length": int(cfg.data.max_length),
                     "feature_cache": job.feature_cache},
            "model": {"name": str(cfg.model.name), "name_or_path": cfg.model.get("name_or_path"),
                      "parameters": sum(p.numel() for p in trainer.model.parameters())},
            "training": _training_record(result, trainer),
            "dev": dev_metrics,
            "test": test,
            "robustness": robustness,
            "robustness_skipped": job.suite.skipped,
            **(job.pruner.results_section() if job.pruner is not None else {"sparsity": None}),
            "timings": timings,
            "versions": records.versions(),
        }
        records.write(out, record, predictions)
        tracker.log_final(record)

    if cfg.trainer.get("save_model"):
        trainer.model.save_pretrained(out / "model")
        job.tokenizer.save_pretrained(out / "model")
    if not cfg.trainer.get("keep_checkpoint"):
        (out / "checkpoints" / "last.pt").unlink(missing_ok=True)
    test_f1 = {lang: round(conds["clean"]["f1"], 4) for lang, conds in test.items()}
    log.info("done: test F1 %s → %s", test_f1, out / records.RESULTS)
    return record


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> float:
    parentwatch.exit_with_launcher()  # a joblib worker ends with the sweep's main process
    with runlock.job_lock(Path(str(cfg.output_dir))):  # one live process per job folder
        record = run(cfg)
    # what Hydra's sweepers (e.g. Optuna) optimise: dev F1 of the selected model, never test
    return float(record.get("dev", {}).get("f1", 0.0))


def main() -> None:
    """Console script ``sparsenlp-train`` (and ``python -m sparsenlp``)."""
    parentwatch.mark_launcher()
    sys.argv += rundir.callback_override(sys.argv[1:])  # an unwritable output folder: one line, not a traceback
    _hydra_main()


if __name__ == "__main__":
    main()
