"""The method table: every pruning method, built in or from an installed package, by name.

Outside packages add a method through the entry-point group ``sparsenlp.methods`` (``name = "pkg.mod:METHOD"``,
pointing at a :class:`~sparsenlp.pruning.methods.base.Method` instance); it is then usable as
``pruning=<name>`` in runs, sweeps, records and reports, exactly like a built-in one. The config layer
registers one Hydra option per method from this table (``sparsenlp.config.register``).
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
from collections.abc import Iterable

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.methods.base import Method
from sparsenlp.pruning.methods.calibrated import SPARSEGPT, WANDA
from sparsenlp.pruning.methods.dense import DENSE
from sparsenlp.pruning.methods.magnitude import GLOBAL_MAGNITUDE, LAYERWISE_MAGNITUDE
from sparsenlp.pruning.methods.movement import MOVEMENT
from sparsenlp.pruning.methods.random import RANDOM
from sparsenlp.pruning.methods.semi_structured import SEMI_STRUCTURED
from sparsenlp.pruning.methods.structured_heads import STRUCTURED_HEADS

log = logging.getLogger(__name__)
ENTRY_POINTS = "sparsenlp.methods"
BUILT_IN: tuple[Method, ...] = (DENSE, GLOBAL_MAGNITUDE, LAYERWISE_MAGNITUDE, MOVEMENT, SEMI_STRUCTURED,
                                STRUCTURED_HEADS, RANDOM, WANDA, SPARSEGPT)
_TABLE: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to the table (a second method of the same name is refused)."""
    if not isinstance(method, Method):
        raise SparseNLPError(f"{method!r} is not a sparsenlp Method; subclass sparsenlp.pruning.methods.Method")
    known = _TABLE.get(method.name)
    if known is not None and known is not method:
        raise SparseNLPError(f"two pruning methods are named {method.name!r} ({type(known).__module__} and "
                             f"{type(method).__module__}); rename one")
    if method.config.__dataclass_fields__["method"].default != method.name:
        raise SparseNLPError(f"pruning method {method.name!r}: its config {method.config.__name__} must default "
                             f"`method` to {method.name!r}")
    _TABLE[method.name] = method
    return method


def _load_plugins(entry_points: Iterable[importlib.metadata.EntryPoint]) -> None:
    for entry in entry_points:
        try:
            method = entry.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop runs of every other method
            log.warning("pruning method %r from %s could not be loaded (%s: %s); it is not available",
                        entry.name, entry.value, type(exc).__name__, exc)
            continue
        if getattr(method, "name", None) != entry.name:
            raise SparseNLPError(f"entry point {entry.name!r} ({entry.value}) must name a Method called {entry.name!r}")
        register(method)


def methods() -> dict[str, Method]:
    """Every method by name: the built-in ones, then those of installed packages."""
    if not _TABLE:
        for method in BUILT_IN:
            register(method)
        _load_plugins(importlib.metadata.entry_points(group=ENTRY_POINTS))
    return dict(_TABLE)


def get(name: str) -> Method:
    """The method called ``name``; a one-line error listing the known ones otherwise."""
    table = methods()
    if name not in table:
        raise SparseNLPError(f"pruning method {name!r} is unknown; use one of {', '.join(table)} (or install the "
                             f"package that provides it)")
    return table[name]


def schedule_free() -> set[str]:
    """Methods that take no schedule."""
    return {name for name, method in methods().items() if "none" in method.schedules}


def keys() -> set[str]:
    """Every ``pruning.<key>`` some method reads."""
    return {f.name for method in methods().values() for f in dataclasses.fields(method.config)}
