"""Imports run downward only: no module imports a module of a higher layer, and the project's imports,
including those inside functions (which defer an expensive library, never hide a cycle), form no cycle.

The layers, bottom first: foundations (errors, files, config fields); what needs nothing of the framework (text
perturbations, the Hub probe, the pruning-method declarations); the typed configs; the record's types; what a
run builds from configs (data, models, pruners, trainer, evaluation); tracking; and what drives runs and reads
their records (the entry point, sweeps, analysis, Hydra plugins).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

LAYERS: tuple[tuple[str, ...], ...] = (
    ("sparsenlp.errors", "sparsenlp.io", "sparsenlp.options", "sparsenlp.__init__", "sparsenlp.languages",
     "sparsenlp.identity"),
    ("sparsenlp.perturb", "sparsenlp.hub", "sparsenlp.pruning.methods"),
    ("sparsenlp.config",),
    ("sparsenlp.tracking.schema",),
    ("sparsenlp.data", "sparsenlp.models", "sparsenlp.tokenizer_cache", "sparsenlp.pruning", "sparsenlp.training",
     "sparsenlp.evaluation", "sparsenlp.inputs"),
    ("sparsenlp.tracking", "sparsenlp.arm"),
    ("sparsenlp.cli", "sparsenlp.train", "sparsenlp.rundir", "sparsenlp.runlock", "sparsenlp.jobdir",
     "sparsenlp.jobstart", "sparsenlp.parentwatch", "sparsenlp.sweep_jobs", "sparsenlp.job_configs",
     "sparsenlp.sweep_plan", "sparsenlp.joblog", "sparsenlp.analysis", "sparsenlp.__main__", "sparsenlp.conf",
     "hydra_plugins"),
)
PROJECT = ("sparsenlp", "hydra_plugins")


def layer(module: str) -> int:
    """The layer of ``module``: that of the longest listed prefix (a package's own ``__init__`` is listed as
    ``<package>.__init__``, so that it is not the prefix of every module in it)."""
    module = f"{module}.__init__" if module in PROJECT else module
    matches = [(len(prefix), i) for i, names in enumerate(LAYERS) for prefix in names
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is in no layer; add it to LAYERS"
    return max(matches)[1]


def modules() -> dict[str, Path]:
    found = {}
    for root in PROJECT:
        for path in (REPO / root).rglob("*.py"):
            if ".venv" in path.parts:
                continue
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    found["sparsenlp.conf"] = REPO / "conf" / "__init__.py"  # sparsenlp/conf is a link to conf/, not walked
    return found


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, known: set[str], typing_only: bool = True) -> list[str]:
    """The project modules the file imports, anywhere in it (``from pkg import mod`` counts as ``pkg.mod``);
    ``typing_only=False`` leaves out those under ``if TYPE_CHECKING:``, which never run."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = set() if typing_only else {id(n) for block in ast.walk(tree) if _type_checking(block)
                                         for n in ast.walk(block)}
    found: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.extend(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                         for a in node.names)
    return [name for name in found if name.split(".")[0] in PROJECT]


ALL = modules()
GRAPH = {module: set(imports(path, set(ALL))) - {module} for module, path in ALL.items()}
RUNTIME = {module: set(imports(path, set(ALL), typing_only=False)) - {module} for module, path in ALL.items()}


@pytest.mark.parametrize("module", sorted(ALL))
def test_imports_run_downward(module):
    mine = layer(module)
    for imported in GRAPH[module]:
        assert layer(imported) <= mine, f"{module} (layer {mine}) imports {imported} (layer {layer(imported)})"


def test_no_import_cycle():
    """A package importing its modules is not a cycle; any other path back to a module at run time is."""
    def parents(module: str) -> set[str]:
        return {module.rsplit(".", i)[0] for i in range(1, module.count(".") + 1)}

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [m for m in RUNTIME[start] if m in RUNTIME]
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(m for m in RUNTIME[module] if m in RUNTIME and m not in parents(module))
        return seen

    cycles = [m for m in RUNTIME if m in reachable(m)]
    assert not cycles, f"import cycles through {sorted(cycles)}"


def test_the_layer_table_names_only_modules_that_exist():
    for names in LAYERS:
        for prefix in names:
            name = prefix.removesuffix(".__init__")
            assert any(m == name or m.startswith(name + ".") for m in ALL), prefix


def test_an_upward_import_is_caught(tmp_path):
    """The check itself: a config module importing the trainer would be reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from sparsenlp.training.trainer import Trainer\n")
    imported = imports(bad, set(ALL))
    assert imported == ["sparsenlp.training.trainer"] and layer(imported[0]) > layer("sparsenlp.config.data")
