"""What a job reads, checked before it reads anything: the Hugging Face Hub when a component comes from it, and
the local WikiANN files of every language it trains or tests on.

A job runs :func:`require_inputs` first (``train.build_job``); the study sweeper runs it for every job of a sweep
before the first one starts, so a language without files or an unreachable Hub is reported at launch, not when
the job's turn comes hours later.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import hydra.utils
from huggingface_hub import try_to_load_from_cache

from sparsenlp import hub
from sparsenlp.config import RunConfig
from sparsenlp.config.schedule import EXPONENTS
from sparsenlp.data.wikiann import local_split
from sparsenlp.errors import SparseNLPError
from sparsenlp.models import is_hub_id
from sparsenlp.pruning.schedules import Schedule

TRAIN_SPLITS = ("train", "dev")  # a training language's splits (dev selects the model)
TEST_SPLITS = ("test",)


def absolute_root(settings: RunConfig) -> RunConfig:
    """``data.root`` and ``trainer.model_store`` relative to where the user launched, even when a launcher runs
    jobs elsewhere."""
    data, trainer = settings.data, settings.trainer
    if data.root is not None:
        data = dataclasses.replace(data, root=hydra.utils.to_absolute_path(data.root))
    if trainer.model_store is not None:
        trainer = dataclasses.replace(trainer, model_store=hydra.utils.to_absolute_path(trainer.model_store))
    return dataclasses.replace(settings, data=data, trainer=trainer)


def require_hub(settings: RunConfig) -> None:
    """Fail within seconds, before anything is read, when a component needs the unreachable Hub."""
    if settings.data.resolved_source == "hub":
        hub.require("WikiANN (data.source=hub)", "point data.root at local WikiANN files "
                    "(<lang>/train|dev|test) or use data.source=local", data=True)
    for what, spec in (("model", settings.model.name_or_path), ("tokenizer", settings.model.tokenizer)):
        if is_hub_id(spec):
            hub.require(f"the {what} '{spec}'", "use model=minilm or model=tiny, or set model.name_or_path to a "
                        "local folder")


def require_local_data(settings: RunConfig) -> None:
    """Every split the job reads from local files exists (``settings.data.root`` absolute)."""
    if settings.data.resolved_source != "local":
        return
    root = Path(str(settings.data.root))
    needed = {lang: TRAIN_SPLITS for lang in settings.train_langs}
    for lang in settings.eval_langs:
        needed[lang] = needed.get(lang, ()) + TEST_SPLITS
    for lang, splits in needed.items():
        key = "lang" if lang in settings.train_langs else "eval_lang"
        if getattr(settings, key) == "all" and root.is_dir() and not (root / lang).is_dir():
            raise SparseNLPError(f"{key}=all includes '{lang}', which has no WikiANN folder under {root}; choose a "
                                 f"`languages` option without it (e.g. languages=local39) or add "
                                 f"{root / lang}/{{train,dev,test}}")
        for split in splits:
            local_split(root, lang, split)


FILES = {"model": ("config.json",), "tokenizer": ("tokenizer.json", "tokenizer_config.json", "vocab.txt")}


def require_model_files(settings: RunConfig) -> None:
    """A model or tokenizer from a local folder has the files ``from_pretrained`` reads; one from the Hub, with
    ``HF_HUB_OFFLINE=1``, is in the local Hugging Face cache (offline, that is the only place it can come from)."""
    for what, spec in (("model", settings.model.name_or_path), ("tokenizer", settings.model.tokenizer)):
        if spec is None or spec.startswith("pkg://"):
            continue
        key = "model.name_or_path" if what == "model" else "model.tokenizer"
        if is_hub_id(spec):
            if hub.offline() and not any(isinstance(try_to_load_from_cache(spec, name), str) for name in FILES[what]):
                raise SparseNLPError(f"HF_HUB_OFFLINE=1, and the {what} '{spec}' is not in the local Hugging Face "
                                     f"cache; download it once where the Hub is reachable (or unset HF_HUB_OFFLINE); "
                                     f"offline? use model=minilm or model=tiny, or set {key} to a local folder")
            continue
        folder = Path(spec).expanduser()
        if folder.is_dir() and not any((folder / name).is_file() for name in FILES[what]):
            raise SparseNLPError(f"{key}={spec} is a folder without a {what} ({' or '.join(FILES[what])}); point it at "
                                 f"a folder saved with save_pretrained")


def require_schedule_fits(settings: RunConfig) -> None:
    """With ``trainer.max_steps`` set, a run has at most that many optimizer steps: a schedule that cannot place
    its mask updates in them fails now, as the job would after building data and model."""
    if settings.trainer.max_steps is not None and settings.schedule.name in EXPONENTS:
        Schedule.for_run(settings.schedule, 0.5, settings.trainer.max_steps)  # where updates fall, not how much


def require_logger_dir(settings: RunConfig) -> None:
    """``logger.dir``, where W&B writes its run, can be written (W&B would otherwise fall back to a temporary
    folder with a warning, where ``sparsenlp-report sync`` never finds the run). Checked without creating it."""
    logger = settings.logger
    if logger.name == "none" or logger.mode == "disabled" or not logger.dir:
        return
    folder = Path(hydra.utils.to_absolute_path(str(logger.dir))).expanduser()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        what = "is a file" if not existing.is_dir() else "cannot be written"
        raise SparseNLPError(f"logger.dir={logger.dir}: {existing} {what}; point logger.dir at a writable folder, or "
                             "logger.dir=null to keep W&B's files in the run folder")


def require_inputs(settings: RunConfig) -> None:
    """:func:`require_hub`, the method's own language checks, :func:`require_model_files`,
    :func:`require_local_data`, :func:`require_schedule_fits` and :func:`require_logger_dir`; SparseNLPError
    naming what is missing and the fix."""
    require_hub(settings)
    settings.method.check_languages(settings.pruning, settings.train_langs, settings.eval_langs,
                                    set(settings.languages.langs))
    require_model_files(settings)
    require_local_data(settings)
    require_schedule_fits(settings)
    require_logger_dir(settings)
