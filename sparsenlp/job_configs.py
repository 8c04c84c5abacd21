"""Every job of a sweep composed and checked in milliseconds, exactly as the job will compose and check itself.

Hydra composes a job from the sweep's config and the job's overrides in about 0.1 s, which is minutes for a
3,567-job study. Here Hydra composes once per distinct choice of config groups and other structural overrides
(``pruning=dense``, ``+key=...``): the job's *base*. The job's remaining overrides are plain ``key=value``
assignments, which Hydra applies to the composed config one after another
(``ConfigLoaderImpl._apply_overrides_to_config``). They are applied the same way here, but each top-level entry of
the config (``lang``, ``seed``, ``trainer``, ``pruning``, ...) is typed and checked
(:func:`sparsenlp.config.entry_settings`) and turned into its canonical text (:func:`sparsenlp.identity.entry_text`)
once per distinct set of the overrides that reach it: its own, and those of the entries it interpolates
(``trainer.lr: ${model.lr}``). A job is its entries put together (:func:`sparsenlp.config.assemble`): the run config
and config hash the job itself computes, for a fraction of a millisecond.
"""
from __future__ import annotations

import copy
import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Optional

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import Container, DictConfig, ListConfig, OmegaConf, open_dict

from sparsenlp.config import RunConfig, assemble, entry_settings, one_line
from sparsenlp.errors import SparseNLPError
from sparsenlp.identity import entry_text, hash_entries

Compose = Callable[[list[str]], DictConfig]  # overrides -> the config Hydra composes for them (hydra node included)
OUTPUT_DIR = "output_dir"  # set per job by Hydra at launch; volatile, so a placeholder here
PLACEHOLDER = "<set at launch>"
# resolvers whose value does not depend on other config entries (hydra: is resolved against the base's own
# Hydra config)
_FREE_RESOLVERS = {"oc.env", "oc.decode", "oc.create", "now", "hydra"}
_INNERMOST = re.compile(r"\$\{([^${}]*)\}")


@dataclass
class JobConfig:
    """One job, as composed and checked: its run config and config hash, or the one-line problem."""

    overrides: list[str]
    settings: Optional[RunConfig] = None
    digest: Optional[str] = None
    problem: Optional[str] = None


@dataclass
class _Base:
    task: DictConfig  # the composed config without its hydra node
    full: DictConfig  # with it: what ${hydra:...} resolves against
    deps: dict[str, frozenset[str]]  # entry -> the entries whose overrides reach it (itself included)


@dataclass(frozen=True)
class _Entry:
    text: Optional[str]  # identity.entry_text
    value: Any  # config.entry_settings


class JobConfigs:
    """Composes and checks jobs given as override lists; ``compose`` is Hydra's composition of a sweep job
    (the sweeper passes ``config_loader.load_sweep_config``)."""

    def __init__(self, compose: Compose) -> None:
        self._compose = compose
        self._parser = OverridesParser.create()
        self._parsed: dict[str, Override] = {}
        self._bases: dict[tuple[str, ...], _Base | str] = {}
        self._applied: dict[tuple[tuple[str, ...], tuple[str, ...]], DictConfig | str] = {}
        self._entries: dict[tuple[tuple[str, ...], str, tuple[str, ...]], _Entry | str] = {}
        self._groups: Optional[frozenset[str]] = None

    def job(self, overrides: list[str]) -> JobConfig:
        """The job's run config and hash, or why it cannot run (one line with the fix)."""
        try:
            base_key, values = self._split(overrides)
        except Exception as exc:  # noqa: BLE001 - an override Hydra cannot parse: its one-line message
            return JobConfig(list(overrides), problem=_line(exc))
        base = self._base(base_key)
        if isinstance(base, str):
            return JobConfig(list(overrides), problem=base)
        entries: dict[str, _Entry] = {}
        for key, reach in base.deps.items():
            entry = self._entry(base_key, base, key, tuple(o for o in values if _top(o) in reach))
            if isinstance(entry, str):
                return JobConfig(list(overrides), problem=entry)
            entries[key] = entry
        try:
            run = assemble({key: entry.value for key, entry in entries.items()})
        except Exception as exc:  # noqa: BLE001 - a check across groups: its one-line message
            return JobConfig(list(overrides), problem=_line(exc))
        digest = hash_entries((key, entry.text) for key, entry in entries.items())
        return JobConfig(list(overrides), settings=run, digest=digest)

    # ------------------------------------------------------------------ overrides
    def _split(self, overrides: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(what Hydra composes: group choices and anything structural, in order; plain value assignments).
        Hydra, too, composes the defaults first and applies value assignments afterwards, in order."""
        groups = self._group_names()
        plain = [self._is_plain(self._parse(o), groups) for o in overrides]
        return (tuple(o for o, p in zip(overrides, plain) if not p), tuple(o for o, p in zip(overrides, plain) if p))

    def _parse(self, override: str) -> Override:
        if override not in self._parsed:
            self._parsed[override] = self._parser.parse_override(override)
        return self._parsed[override]

    def _group_names(self) -> frozenset[str]:
        """The config groups of the primary config's defaults (an override of one is a group choice)."""
        if self._groups is None:
            base = self._base(())
            full = base.full if isinstance(base, _Base) else self._compose([])
            self._groups = frozenset(str(k) for k in full.hydra.runtime.choices.keys())
        return self._groups

    @staticmethod
    def _is_plain(o: Override, groups: frozenset[str]) -> bool:
        """``key=value`` on an existing key, with a value that is no interpolation: applied per entry."""
        if o.is_hydra_override() or o.is_add() or o.is_force_add() or o.is_delete() or o.package is not None:
            return False
        if o.key_or_group in groups or o.is_sweep_override():
            return False
        return "${" not in str(o.value())

    # ------------------------------------------------------------------ composition
    def _base(self, key: tuple[str, ...]) -> _Base | str:
        if key not in self._bases:
            try:
                full = self._compose(list(key))
            except Exception as exc:  # noqa: BLE001 - a composition error: its one-line message
                self._bases[key] = _line(exc)
            else:
                task = copy.deepcopy(full)
                with open_dict(task):
                    del task["hydra"]
                    task[OUTPUT_DIR] = PLACEHOLDER
                self._bases[key] = _Base(task, full, _dependencies(task))
        return self._bases[key]

    def _apply(self, base_key: tuple[str, ...], base: _Base, values: tuple[str, ...]) -> DictConfig | str:
        """The base config with ``values`` applied as Hydra applies them."""
        if not values:
            return base.task
        key = (base_key, values)
        if key not in self._applied:
            cfg = copy.deepcopy(base.task)
            try:
                ConfigLoaderImpl._apply_overrides_to_config([self._parse(o) for o in values], cfg)
            except Exception as exc:  # noqa: BLE001 - what Hydra would report for this job
                self._applied[key] = _line(exc)
            else:
                self._applied[key] = cfg
        return self._applied[key]

    def _entry(self, base_key: tuple[str, ...], base: _Base, name: str, values: tuple[str, ...]) -> _Entry | str:
        key = (base_key, name, values)
        if key not in self._entries:
            cfg = self._apply(base_key, base, values)
            if isinstance(cfg, str):
                self._entries[key] = cfg
            else:
                with _hydra_config(base.full):
                    try:
                        node = cfg._get_node(name)
                        plain = OmegaConf.to_container(node, resolve=True) if isinstance(node, Container) else cfg[name]
                        self._entries[key] = _Entry(entry_text(name, plain), entry_settings(cfg, name))
                    except Exception as exc:  # noqa: BLE001 - the entry's check: its one-line message
                        self._entries[key] = _line(exc)
        return self._entries[key]


def _top(override: str) -> str:
    return override.partition("=")[0].split(".")[0]


def _line(exc: BaseException) -> str:
    """A problem as the one line the job would print."""
    error = one_line(exc)
    if error is not None:
        return error.message
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _references(text: str) -> Optional[set[str]]:
    """The top-level entries an interpolation string reads; None when it cannot be told (read as: all)."""
    found: set[str] = set()
    while True:
        match = _INNERMOST.search(text)
        if match is None:
            return found
        inner = match.group(1).strip()
        if ":" in inner:
            if inner.split(":", 1)[0].strip() not in _FREE_RESOLVERS:
                return None
        elif inner.startswith(".."):
            return None
        elif inner and not inner.startswith("."):
            found.add(re.split(r"[.\[]", inner, maxsplit=1)[0])
        text = text[:match.start()] + "_" + text[match.end():]


def _interpolations(node: Any) -> Iterator[str]:
    if node._is_interpolation():
        yield str(node._value())
        return
    if isinstance(node, DictConfig) and not node._is_none() and not node._is_missing():
        for key in node.keys():
            yield from _interpolations(node._get_node(key))
    elif isinstance(node, ListConfig) and not node._is_none() and not node._is_missing():
        for i in range(len(node)):
            yield from _interpolations(node._get_node(i))


def _dependencies(task: DictConfig) -> dict[str, frozenset[str]]:
    """For each top-level entry, the entries whose overrides can change it: itself and, transitively, every entry
    it interpolates (all of them when an interpolation cannot be followed)."""
    names = [str(k) for k in task.keys()]
    direct: dict[str, set[str]] = {}
    for name in names:
        reads: set[str] = {name}
        for text in _interpolations(task._get_node(name)):
            refs = _references(text)
            reads |= set(names) if refs is None else refs & set(names)
        direct[name] = reads
    closed: dict[str, frozenset[str]] = {}
    for name in names:
        seen, todo = set(), [name]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(direct.get(current, ()))
        closed[name] = frozenset(seen)
    return closed


@contextlib.contextmanager
def _hydra_config(full: DictConfig) -> Iterator[None]:
    """``${hydra:...}`` resolves against the job's own Hydra config, as it does in the job."""
    instance = HydraConfig.instance()
    previous = instance.cfg
    instance.set_config(full)
    try:
        yield
    finally:
        instance.cfg = previous


__all__ = ["JobConfig", "JobConfigs", "SparseNLPError"]
