"""What Hydra and OmegaConf raise while composing a config, as one line naming the key and the fix.

Hydra's own messages run to 5-10 lines and advise appending a misspelt key with ``+`` (which then fails
differently); here every composition error becomes a :class:`SparseNLPError` that names the key, suggests the
nearest valid one, and, for a ``pruning.<key>`` that only other methods read, names those methods.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from typing import Any, Iterator

from hydra.errors import (
    ConfigCompositionException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf.errors import OmegaConfBaseException, ValidationError

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.methods import PruningConfig, methods


def _fields(cls: type, prefix: str) -> Iterator[str]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        yield key
        kind = hints.get(f.name)
        for candidate in (kind, *typing.get_args(kind)):
            if dataclasses.is_dataclass(candidate):
                yield from _fields(candidate, f"{key}.")


def known_keys(root: type) -> list[str]:
    """Every dotted key of the run config ``root``, with the keys of every pruning method."""
    keys = [k for k in _fields(root, "") if not k.startswith("pruning.")]
    keys += sorted({k for method in methods().values() for k in _fields(method.config, "pruning.")})
    return keys


def unknown_key(key: str, owner: Any, root: type, added: bool = False) -> SparseNLPError:
    """``key`` is not a key of ``owner`` (the config class that would hold it): the nearest valid keys, or the
    methods that read it."""
    plus = "+" if added else ""
    if key.startswith("pruning.") and isinstance(owner, type) and issubclass(owner, PruningConfig):
        name = key.split(".")[1]
        readers = [m.name for m in methods().values() if name in {f.name for f in dataclasses.fields(m.config)}]
        current = next((m.name for m in methods().values() if m.config is owner), None)
        if readers and current:
            return SparseNLPError(f"{plus}{key} has no effect with pruning={current}; it is read by "
                                  f"pruning={', pruning='.join(readers)} (choose one of them, or drop it)")
    close = difflib.get_close_matches(key, known_keys(root), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else "sparsenlp-train --help lists every key"
    return SparseNLPError(f"{plus}{key} is not a config key; {hint}")


def explain(exc: BaseException, root: type) -> SparseNLPError | None:
    """One line for a composition error of the run config ``root``; None for anything else."""
    if isinstance(exc, SparseNLPError):
        return exc
    cause = exc.__cause__ if isinstance(exc.__cause__, OmegaConfBaseException) else exc
    if isinstance(exc, MissingConfigException):
        group, _, option = (exc.missing_cfg_file or "").partition("/")
        options = ", ".join(exc.options or [])
        if option:
            plugin = (" (a method from a plugin package is an option once that package is installed in this "
                      "environment: pip install it)" if group == "pruning" else "")
            return SparseNLPError(f"{group}={option} is not an option; choose one of: {options}{plugin}")
        return SparseNLPError(str(exc).splitlines()[0])
    if isinstance(exc, OverrideParseException):
        first = str(exc).splitlines()[0]
        return SparseNLPError(f"{first}; write overrides as key=value (quote values with spaces or brackets)")
    if isinstance(cause, ValidationError) and getattr(cause, "full_key", None):
        value = re.search(r"Value '(.*?)'", str(cause))
        expected = re.search(r"converted to (\w+)", str(cause))
        what = f"is not a valid {expected.group(1).lower()}" if expected else str(cause).splitlines()[0]
        return SparseNLPError(f"{cause.full_key}={value.group(1) if value else '?'} {what}")
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None) and \
            isinstance(exc, ConfigCompositionException) and "Could not override" in str(exc):
        return unknown_key(str(cause.full_key), getattr(cause, "object_type", None), root)
    if isinstance(exc, (ConfigCompositionException, OmegaConfBaseException)):
        return SparseNLPError(str(exc).splitlines()[0])
    return None
