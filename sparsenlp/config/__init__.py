"""Typed configs: one dataclass per config group, registered in Hydra's ConfigStore.

The dataclasses are the single place for keys, defaults, help and allowed values (``sparsenlp.options``); the
YAML files in ``conf/`` (shipped as ``pkg://sparsenlp.conf``) only select and override. The `pruning` group has
no YAML files: each method of the method table (``sparsenlp.pruning.methods``) is a Hydra option generated from
its config class, selecting the schedule it runs under. Hydra rejects unknown keys and wrong types while
composing; ``settings(cfg)`` then builds the dataclasses, which check every value under its full key before any
data is read.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, List

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from sparsenlp.config.composition import explain, unknown_key
from sparsenlp.config.data import DataConfig
from sparsenlp.config.languages import ALL, LanguagesConfig
from sparsenlp.config.logger import LoggerConfig
from sparsenlp.config.model import ArchitectureConfig, ModelConfig
from sparsenlp.config.perturbation import MemberConfig, PerturbationConfig
from sparsenlp.config.quantization import QuantizationConfig
from sparsenlp.config.schedule import ScheduleConfig
from sparsenlp.config.trainer import TrainerConfig
from sparsenlp.errors import SparseNLPError
from sparsenlp.languages import Language
from sparsenlp.options import Free, Group, Range, option
from sparsenlp.pruning.methods import Method, PruningConfig, get, methods

CONFIG_MODULE = "sparsenlp.conf"  # the conf/ folder, inside the installed package
CONFIG_PATH = f"pkg://{CONFIG_MODULE}"
SCHEMA = "sparsenlp_schema"
METHOD_SCHEMAS = "schema/pruning"  # where each method's config class is stored (selected by pruning=<name>)
LANGS = Free("a code, a list of codes or `all`; resolved against `languages`, with the fix")
SEED = Range(0, 2**32 - 1, integer=True)
GROUP = Free("a config group: checked key by key")  # what every RNG of the run accepts (numpy's legacy seed is 32-bit)

__all__ = [
    "ArchitectureConfig", "DataConfig", "Language", "LanguagesConfig", "LoggerConfig", "MemberConfig",
    "ModelConfig", "PerturbationConfig", "PruningConfig", "QuantizationConfig", "RunConfig", "ScheduleConfig",
    "TrainerConfig", "assemble", "entry_settings", "one_line", "settings",
]


@dataclass
class RunConfig(Group):
    """One job: fine-tune `model` for NER on `lang` while pruning it, evaluate on `eval_lang`, record."""

    KEY: ClassVar[str] = ""

    lang: Any = option("en", "a WikiANN code, a list ([de,fr]: one model on the concatenated training sets) or "
                       "`all` (every language of `languages`)", LANGS)
    eval_lang: Any = option(None, "test languages: null = the training languages; a code, a list or `all` "
                            "(languages not trained on are zero-shot transfer)", LANGS)
    seed: int = option(42, "seeds every random choice of the run (data order, initialisation, random masks)", SEED)
    output_dir: str = option("${hydra:runtime.output_dir}", "where this run's record goes", Free("a folder"))
    skip_completed: bool = option(True, "a relaunched sweep skips jobs whose results.json is complete for this "
                                  "config", Free("a boolean; its type is checked by Hydra"))
    model: ModelConfig = option(MISSING, "the encoder fine-tuned, and its tokenizer (model=<option>)", GROUP)
    data: DataConfig = option(MISSING, "where WikiANN comes from and how it is cut into windows", GROUP)
    languages: LanguagesConfig = option(MISSING, "the languages that exist and their facts", GROUP)
    pruning: PruningConfig = option(MISSING, "the pruning method and its keys (pruning=<method>)", GROUP)
    schedule: ScheduleConfig = option(MISSING, "when a masked method updates its masks", GROUP)
    perturbation: PerturbationConfig = option(MISSING, "the test-time robustness suite", GROUP)
    quantization: QuantizationConfig = option(MISSING, "post-training quantization of the selected model", GROUP)
    trainer: TrainerConfig = option(MISSING, "the fine-tuning loop", GROUP)
    logger: LoggerConfig = option(MISSING, "Weights & Biases tracking (the local record is always written)", GROUP)

    def check(self, path: str) -> None:
        self.train_langs  # noqa: B018 - resolves and checks the codes now, before any data is read
        self.eval_langs  # noqa: B018
        method = self.method
        if type(self.pruning) is not method.config:
            raise SparseNLPError(f"pruning.method={self.pruning.method} is set by choosing the method: use "
                                 f"pruning={self.pruning.method}")
        method.check(self.pruning, self.schedule)
        self._check_selection()

    def _check_selection(self) -> None:
        """A pruned run may select only models at its final sparsity. The rule is a share of training, not the
        pruner's own veto, so that its dense baseline (which has no schedule) takes the same value and computes
        the same eligible steps."""
        trainer, final = self.trainer, self.schedule.final_fraction
        if self.method.is_dense(self.pruning) or trainer.selection != "best" or trainer.select_after >= final:
            return
        where = "schedule.end" if self.schedule.end is not None else "schedule.start"
        raise SparseNLPError(
            f"trainer.select_after={trainer.select_after:g} lets model selection keep a model from before {where}="
            f"{final:g}, when the final sparsity is not yet in force; set trainer.select_after={final:g} (and the "
            "same for the dense runs it is compared with) or trainer.selection=final"
        )

    @property
    def method(self) -> Method:
        """The pruning method of this run (from the method table)."""
        return get(self.pruning.method)

    @property
    def train_langs(self) -> List[str]:
        return self._resolve(self.lang, "lang")

    @property
    def eval_langs(self) -> List[str]:
        if self.eval_lang is None:
            return self.train_langs
        return self._resolve(self.eval_lang, "eval_lang")

    @property
    def left_out(self) -> List[str]:
        """The languages `all` leaves out because the local data has no folder for them (e.g. Thai offline)."""
        if ALL not in (_plain(self.lang), _plain(self.eval_lang)):
            return []
        return self.data.missing_languages(self.languages.codes())

    def _resolve(self, value: Any, key: str) -> List[str]:
        """`lang`-style values; `all` means the languages of `languages` that the data source holds."""
        value = _plain(value)
        if value != ALL:
            return self.languages.resolve(value, key=key)
        missing = set(self.left_out)
        codes = [code for code in self.languages.resolve(ALL, key=key) if code not in missing]
        if not codes:
            raise SparseNLPError(f"{key}=all: no language of `languages` has a folder under data.root="
                                 f"{self.data.root}; point data.root at the WikiANN files (<lang>/train|dev|test)")
        return codes


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def one_line(exc: BaseException) -> SparseNLPError | None:
    """A composition error of the run config as one line naming the key and the fix (None: not one)."""
    return explain(exc, RunConfig)


def settings(cfg: DictConfig) -> RunConfig:
    """The typed, validated run config (raises SparseNLPError naming the key and the fix)."""
    _reject_unknown_keys(cfg)
    built = OmegaConf.to_object(cfg)
    if not isinstance(built, RunConfig):
        raise SparseNLPError("the config does not follow sparsenlp's schema; compose it from sparsenlp's conf/")
    return built


def entry_settings(cfg: DictConfig, key: str) -> Any:
    """One top-level entry of a composed run config, typed and checked as :func:`settings` builds it (a config
    group's dataclass, or a plain value), so that a sweep checks each distinct entry once (``job_configs.py``)."""
    node = cfg._get_node(key)
    if isinstance(node, DictConfig):
        _reject_unknown_keys(node, f"{key}.")
    if isinstance(node, (DictConfig, ListConfig)) and not node._is_none() and not node._is_missing():
        return OmegaConf.to_object(node)
    return cfg[key]


def assemble(entries: dict[str, Any]) -> RunConfig:
    """The run config from its entries (:func:`entry_settings` of every key), checked across groups as
    :func:`settings` checks it; a key that is not a run config key is an error with its fix."""
    known = {f.name for f in dataclasses.fields(RunConfig)}
    for key in entries:
        if key not in known:
            raise unknown_key(key, RunConfig, RunConfig, added=True)
    return RunConfig(**entries)


def _reject_unknown_keys(node: DictConfig, path: str = "") -> None:
    """Hydra rejects a misspelt key, but a `+key=value` override is added to a typed node anyway (and
    OmegaConf would keep it as a stray attribute): refuse it, as Hydra does without the `+`."""
    schema = OmegaConf.get_type(node)
    if dataclasses.is_dataclass(schema):
        known = {f.name for f in dataclasses.fields(schema)}
        for key in node.keys():
            if key not in known:
                raise unknown_key(f"{path}{key}", schema, RunConfig, added=True)
    for key in node.keys():
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            _reject_unknown_keys(child, f"{path}{key}.")


def method_option(method: Method) -> dict[str, Any]:
    """The Hydra option ``pruning=<name>``: the method's config class, and the schedule it runs under."""
    return {"defaults": [f"/{METHOD_SCHEMAS}/{method.name}@pruning", {"override /schedule": method.schedules[0]},
                         "_self_"]}


def register() -> None:
    """Put the schema and one `pruning` option per method into Hydra's ConfigStore (conf/config.yaml lists the
    schema first in its defaults)."""
    store = ConfigStore.instance()
    store.store(name=SCHEMA, node=RunConfig)
    for name, method in methods().items():
        store.store(group=METHOD_SCHEMAS, name=name, node=method.config)
        store.store(group="pruning", name=name, package="_global_", node=method_option(method))


register()
