"""Typed configs: one dataclass per config group, registered in Hydra's ConfigStore.

The dataclasses are the single place for defaults, types and allowed values; the YAML files in
``conf/`` (shipped as ``pkg://sparsenlp.conf``) only select and override. Hydra rejects unknown keys
and wrong types while composing; ``settings(cfg)`` then builds the dataclasses, whose ``__post_init__``
checks every value in the user's own keys, before any data is loaded.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, List

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from sparsenlp.config.data import DataConfig
from sparsenlp.config.languages import LanguageEntry, LanguagesConfig
from sparsenlp.config.logger import LoggerConfig
from sparsenlp.config.model import ArchitectureConfig, ModelConfig
from sparsenlp.config.perturbation import MemberConfig, PerturbationConfig
from sparsenlp.config.pruning import MOVEMENT, PruningConfig
from sparsenlp.config.quantization import QuantizationConfig
from sparsenlp.config.schedule import ScheduleConfig
from sparsenlp.config.trainer import TrainerConfig
from sparsenlp.errors import SparseNLPError

CONFIG_MODULE = "sparsenlp.conf"  # the conf/ folder, inside the installed package
CONFIG_PATH = f"pkg://{CONFIG_MODULE}"
SCHEMA = "sparsenlp_schema"

__all__ = [
    "ArchitectureConfig", "DataConfig", "LanguageEntry", "LanguagesConfig", "LoggerConfig", "MemberConfig",
    "ModelConfig", "PerturbationConfig", "PruningConfig", "QuantizationConfig", "RunConfig", "ScheduleConfig",
    "TrainerConfig",
    "settings",
]


@dataclass
class RunConfig:
    """One job: fine-tune `model` for NER on `lang` while pruning it, evaluate on `eval_lang`, record."""

    # a WikiANN language code, a list of codes ([de,fr]: one model on the concatenated training sets) or
    # `all` (every language of `languages`)
    lang: Any = "en"
    # test languages: null = the training languages; a code, a list or `all`. Languages not trained on are
    # zero-shot transfer and marked so in the record
    eval_lang: Any = None
    seed: int = 42
    output_dir: str = "${hydra:runtime.output_dir}"  # where this run's record goes
    skip_completed: bool = True  # a relaunched sweep skips jobs whose results.json is complete for this config
    model: ModelConfig = MISSING
    data: DataConfig = MISSING
    languages: LanguagesConfig = MISSING
    pruning: PruningConfig = MISSING
    schedule: ScheduleConfig = MISSING
    perturbation: PerturbationConfig = MISSING
    quantization: QuantizationConfig = MISSING
    trainer: TrainerConfig = MISSING
    logger: LoggerConfig = MISSING

    def __post_init__(self) -> None:
        self.train_langs  # noqa: B018 - resolves and checks the codes now, before any data is read
        self.eval_langs  # noqa: B018
        if not self.pruning.is_dense and self.pruning.method != "structured_heads":
            if self.schedule.initial_sparsity > float(self.pruning.sparsity or 0.0):
                raise SparseNLPError(
                    f"schedule.initial_sparsity={self.schedule.initial_sparsity} exceeds pruning.sparsity="
                    f"{self.pruning.sparsity}; lower it"
                )
        if self.pruning.method == MOVEMENT and self.schedule.start == 0.0:
            raise SparseNLPError("pruning=movement ranks weights by how fine-tuning moves them, so it cannot prune "
                                 "before training; start the schedule later, e.g. schedule.start=0.1")

    @property
    def train_langs(self) -> List[str]:
        from sparsenlp.data.languages import resolve_langs

        return resolve_langs(_plain(self.lang), self.languages, key="lang")

    @property
    def eval_langs(self) -> List[str]:
        from sparsenlp.data.languages import resolve_langs

        if self.eval_lang is None:
            return self.train_langs
        return resolve_langs(_plain(self.eval_lang), self.languages, key="eval_lang")


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def settings(cfg: DictConfig) -> RunConfig:
    """The typed, validated run config (raises SparseNLPError naming the key and the fix)."""
    _reject_unknown_keys(cfg)
    built = OmegaConf.to_object(cfg)
    if not isinstance(built, RunConfig):
        raise SparseNLPError("the config does not follow sparsenlp's schema; compose it from sparsenlp's conf/")
    return built


def _reject_unknown_keys(node: DictConfig, path: str = "") -> None:
    """Hydra rejects a misspelt key, but a `+key=value` override is added to a typed node anyway (and
    OmegaConf would keep it as a stray attribute): refuse it, as Hydra does without the `+`."""
    schema = OmegaConf.get_type(node)
    if dataclasses.is_dataclass(schema):
        known = {f.name for f in dataclasses.fields(schema)}
        for key in node.keys():
            if key not in known:
                where = f"{path}{key}"
                raise SparseNLPError(
                    f"Key '{key}' not in '{schema.__name__}' (override +{where}=...); check the spelling, "
                    f"{path.rstrip('.') or 'the top level'} has: {', '.join(sorted(known))}"
                )
    for key in node.keys():
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            _reject_unknown_keys(child, f"{path}{key}.")


def register() -> None:
    """Put the schema into Hydra's ConfigStore (conf/config.yaml lists it first in its defaults)."""
    ConfigStore.instance().store(name=SCHEMA, node=RunConfig)


register()
