"""Every config value is validated: a bad value for any key of any config class fails on one line naming the
key, before any data is read; a key that cannot be wrong says why (``Free``); every key has help."""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator

import pytest

from sparsenlp.config import MemberConfig, RunConfig
from sparsenlp.errors import SparseNLPError
from sparsenlp.options import Check, Each, Free, OneOf, Range, help_of
from sparsenlp.pruning.methods import methods
from tests.helpers import compose_settings

# where a nested class lives in a composed config, and what makes it present
NESTED_AT = {"ArchitectureConfig": ("model.architecture", ["model=tiny"]),
             "Language": ("languages.langs.de", []),
             "MemberConfig": ("perturbation.members.char_noise", ["perturbation=suite"])}


def _classes(cls: type, prefix: str, select: list[str]) -> Iterator[tuple[type, str, list[str]]]:
    """(config class, its key prefix, overrides that select it) for every class reachable from ``cls``."""
    yield cls, prefix, select
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kinds = [hints[f.name], *typing.get_args(hints[f.name])]
        for kind in kinds + [arg for k in kinds for arg in typing.get_args(k)]:
            if dataclasses.is_dataclass(kind) and kind.__name__ in NESTED_AT:
                where, needs = NESTED_AT[kind.__name__]
                yield from _classes(kind, f"{where}.", [*select, *needs])
            elif dataclasses.is_dataclass(kind) and not kind.__name__.endswith("PruningConfig"):
                yield from _classes(kind, f"{prefix}{f.name}.", select)


def config_classes() -> list[tuple[type, str, list[str]]]:
    """The run config's classes, every method's config and the robustness suite's members (typed per member)."""
    found = list(_classes(RunConfig, "", []))
    for name, method in methods().items():
        found += list(_classes(method.config, "pruning.", [f"pruning={name}"]))
    where, needs = NESTED_AT["MemberConfig"]
    return [*found, (MemberConfig, f"{where}.", needs)]


def _fields() -> list[tuple[str, Check | None, str, list[str]]]:
    seen, rows = set(), []
    for cls, prefix, select in config_classes():
        for f in dataclasses.fields(cls):
            key = f"{prefix}{f.name}"
            if (key, tuple(select)) in seen or f.name == "method":
                continue
            seen.add((key, tuple(select)))
            rows.append((key, f.metadata.get("check"), f.metadata.get("help", ""), select))
    return rows


FIELDS = _fields()
CHECKED = [row for row in FIELDS if not isinstance(row[1], Free)]


def _override(value: object) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list):
        return "[" + ",".join(_override(v) for v in value) + "]"
    return repr(value)


@pytest.mark.parametrize("key,check,help_text,select", FIELDS, ids=[f"{r[0]}|{' '.join(r[3])}" for r in FIELDS])
def test_every_key_has_help_and_a_check_or_a_reason_for_none(key, check, help_text, select):
    assert help_text, f"{key} has no help"
    assert isinstance(check, Check), f"{key} declares no check"
    if isinstance(check, Free):
        assert check.reason, f"{key} is free-form without saying why"


@pytest.mark.parametrize("key,check,help_text,select", CHECKED, ids=[f"{r[0]}|{' '.join(r[3])}" for r in CHECKED])
def test_a_bad_value_of_every_key_fails_on_one_line_naming_it(key, check, help_text, select, tmp_path):
    bad = check.bad_example()
    assert check.problem(bad), f"the check of {key} accepts its own bad example {bad!r}"
    with pytest.raises(SparseNLPError) as error:
        compose_settings([*select, f"{key}={_override(bad)}"], tmp_path)
    message = str(error.value)
    assert key.split(".")[-1] in message and "\n" not in message, message


def test_the_keys_the_issue_named_are_refused():
    for override, key in (("languages.langs.de.train_size=-5", "languages.langs.de.train_size=-5"),
                          ("model.architecture.num_hidden_layers=0", "model.architecture.num_hidden_layers=0"),
                          ("logger.init_timeout=-3", "logger.init_timeout=-3.0"),
                          ("trainer.warmup_steps=-4", "trainer.warmup_steps=-4")):
        with pytest.raises(SparseNLPError, match=key.replace(".", r"\.")):
            compose_settings(["model=tiny", override])


@pytest.mark.parametrize("check,good,bad", [
    (OneOf(("a", "b")), "a", "c"), (Range(0.0, 1.0, open_high=True), 0.0, 1.0), (Range(low=1, integer=True), 1, 1.5),
    (Each(Range(0.0, 1.0), non_empty=True), [0.5], []), (Each(OneOf(("x",))), ["x"], ["y"]),
])
def test_checks_accept_and_refuse_by_hand(check, good, bad):
    assert check.problem(good) is None and check.problem(bad)


def test_help_comes_from_the_config_classes():
    from sparsenlp.config import TrainerConfig

    assert "warm-up" in help_of(TrainerConfig, "warmup_ratio")


def test_help_topics_are_every_option_or_the_language_table_and_nothing_else():
    import subprocess
    import sys

    def help_of_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sparsenlp", "--help", *args], capture_output=True, text=True)

    assert "trainer.max_steps" in help_of_cli().stdout
    table = help_of_cli("languages")
    assert table.returncode == 0 and "Afrikaans" in table.stdout and "trainer.max_steps" not in table.stdout
    typo = help_of_cli("language")
    assert typo.returncode == 1 and typo.stdout == ""
    assert typo.stderr.strip() == ("sparsenlp error: --help language: no such help topic; use --help (every option) "
                                   "or --help languages (the language table)")


def test_report_workers_are_one_or_more():
    from sparsenlp.analysis import report

    with pytest.raises(SystemExit) as stopped:
        report.main(["/nonexistent", "--jobs", "0"])
    assert stopped.value.code == 2
