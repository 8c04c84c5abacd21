"""Config fields that carry their own help text and their own check.

Every key of every config group is declared once, in a dataclass, with :func:`option`: its default, a
one-line description (what ``sparsenlp-train --help`` prints) and a :class:`Check` of the values it accepts.
:class:`Group` validates a whole group when it is built, naming the full key (``trainer.warmup_steps=-4``)
in a one-line error; nested dataclasses (``model.architecture``, ``languages.langs.de``) and mappings of them
are checked with their own paths. Checks that involve several keys are a group's ``check(path)`` method.

A value that cannot be wrong (a free-text W&B note) says so with :class:`Free` and the reason, so that "every
value is validated" is a statement a test can verify field by field (``Check.bad_example``).
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from omegaconf import MISSING

from sparsenlp.errors import SparseNLPError


class Check:
    """What values a key accepts: ``problem(value)`` says why a value is refused (None: accepted)."""

    def problem(self, value: Any) -> str | None:
        raise NotImplementedError

    def bad_example(self) -> Any:
        """A value of the key's type that this check refuses (the tests feed it to every key)."""
        raise NotImplementedError

    def describe(self) -> str:
        """The accepted values, for --help."""
        return ""


@dataclass(frozen=True)
class OneOf(Check):
    values: tuple[Any, ...]

    def problem(self, value: Any) -> str | None:
        return None if value in self.values else f"is not one of {', '.join(map(str, self.values))}"

    def bad_example(self) -> Any:
        return "no-such-" + str(self.values[0])

    def describe(self) -> str:
        return " | ".join(map(str, self.values))


@dataclass(frozen=True)
class Range(Check):
    """A number in [low, high] (``open_low`` / ``open_high`` exclude the end); ``integer`` for counts."""

    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False
    integer: bool = False

    def problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) \
                or (self.integer and not isinstance(value, int)):
            return f"is not {'an integer' if self.integer else 'a number'}"
        too_low = value <= self.low if self.open_low else value < self.low
        too_high = value >= self.high if self.open_high else value > self.high
        return f"must be {self.describe()}" if too_low or too_high else None

    def bad_example(self) -> Any:
        value = self.low - 1 if math.isfinite(self.low) else self.high + 1
        return int(value) if self.integer else float(value)

    def describe(self) -> str:
        low, high = _number(self.low, self.integer), _number(self.high, self.integer)
        if not math.isfinite(self.high):
            return f"{'>' if self.open_low else '>='} {low}"
        if not math.isfinite(self.low):
            return f"{'<' if self.open_high else '<='} {high}"
        return f"in {'(' if self.open_low else '['}{low}, {high}{')' if self.open_high else ']'}"


def _number(value: float, integer: bool) -> str:
    return str(int(value)) if integer and math.isfinite(value) else f"{value:g}"


def at_least(low: float) -> Range:
    return Range(low=low, integer=True)


POSITIVE = Range(low=0.0, open_low=True)
NON_NEGATIVE = Range(low=0.0)
FRACTION = Range(0.0, 1.0)


@dataclass(frozen=True)
class Pattern(Check):
    """A string matching ``regex`` (full match); ``example`` is shown in the error."""

    regex: str
    example: str

    def problem(self, value: Any) -> str | None:
        ok = isinstance(value, str) and re.fullmatch(self.regex, value) is not None
        return None if ok else f"is not valid (e.g. {self.example})"

    def bad_example(self) -> Any:
        return "?not valid?"

    def describe(self) -> str:
        return f"e.g. {self.example}"


@dataclass(frozen=True)
class Free(Check):
    """Any value of the key's type is meaningful (a name, a note); ``reason`` says why nothing is checked."""

    reason: str

    def problem(self, value: Any) -> str | None:
        return None

    def bad_example(self) -> Any:
        return None


@dataclass(frozen=True)
class Each(Check):
    """Every item of a list passes ``item`` (and the list is not empty when ``non_empty``)."""

    item: Check
    non_empty: bool = False

    def problem(self, value: Any) -> str | None:
        if self.non_empty and not value:
            return "is empty; give at least one value"
        for index, entry in enumerate(value or ()):
            problem = self.item.problem(entry)
            if problem:
                return f"item {index} ({entry!r}) {problem}"
        return None

    def bad_example(self) -> Any:
        return [] if self.non_empty else [self.item.bad_example()]

    def describe(self) -> str:
        return f"a list of {self.item.describe() or 'values'}"


def option(default: Any = MISSING, help: str = "", check: Check | None = None, *,
           factory: Any = None, nested: bool = False) -> Any:
    """A config field with its description and check. ``factory`` for mutable defaults; ``nested`` for a
    field holding a dataclass or a mapping of dataclasses (checked with their own fields' checks)."""
    metadata = {"help": help, "check": check, "nested": nested}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def help_of(cls: type, name: str) -> str:
    return next((f.metadata.get("help", "") for f in dataclasses.fields(cls) if f.name == name), "")


def validate(node: Any, path: str) -> None:
    """Check every field of the dataclass ``node`` (``path``: its key prefix, e.g. ``trainer.``), then nested
    nodes, then the node's own cross-key ``check(path)``; raise SparseNLPError naming the first bad key."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        key = f"{path}{f.name}"
        check = f.metadata.get("check")
        if check is not None and value is not None and value is not MISSING:
            problem = check.problem(value)
            if problem:
                raise SparseNLPError(f"{key}={value!r} {problem}")
        if f.metadata.get("nested") and value is not None:
            if isinstance(value, Mapping):
                for name, child in value.items():
                    if dataclasses.is_dataclass(child):
                        validate(child, f"{key}.{name}.")
            elif dataclasses.is_dataclass(value):
                validate(value, f"{key}.")
    own = getattr(node, "check", None)
    if callable(own):
        own(path)


class Group:
    """Base of a config group's dataclass: checked as a whole when it is built, under its key ``KEY``."""

    KEY: ClassVar[str] = ""

    def __post_init__(self) -> None:
        validate(self, f"{self.KEY}." if self.KEY else "")

    def check(self, path: str) -> None:
        """Checks that involve several keys of the group (``path`` names the group, e.g. ``trainer.``)."""
