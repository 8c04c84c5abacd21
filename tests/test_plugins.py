"""The plugin door: a pruning method from an installed package is a method like the built-in ones.

``examples/sparsenlp-taylor`` adds first-order Taylor pruning in one file, through the ``sparsenlp.methods``
entry point. Installed (into a folder of its own, so this environment stays as it was), it is usable as
``pruning=taylor`` in runs and sweeps, its records name it, and the report compares it with dense.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.helpers import cli

EXAMPLE = REPO / "examples" / "sparsenlp-taylor"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(EXAMPLE)], check=True, capture_output=True, text=True)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")]))}


def test_the_example_method_is_one_short_file():
    sources = list(EXAMPLE.glob("*.py"))
    assert [p.name for p in sources] == ["sparsenlp_taylor.py"]
    assert len(sources[0].read_text().splitlines()) < 80


def test_an_installed_method_runs_in_a_sweep_and_a_report(plugin_env, tmp_path, tiny_overrides):
    sweep = tmp_path / "sweep"
    overrides = [o for o in tiny_overrides if not o.startswith("trainer.max_steps")]
    result = cli(["-m", *overrides, "lang=sw", "pruning=dense,taylor", "pruning.sparsity=0.5", "schedule=cubic",
                  "schedule.updates=3", "trainer.max_steps=20", f"hydra.sweep.dir={sweep}"], env=plugin_env)
    assert result.returncode == 0, result.stderr[-3000:]
    records = {json.loads(p.read_text())["arm"]["method"]: json.loads(p.read_text())
               for p in sweep.rglob("results.json")}
    assert set(records) == {"dense", "taylor"}
    taylor = records["taylor"]
    assert (taylor["arm"]["criterion"], taylor["arm"]["scope"], taylor["arm"]["sparsity"]) == ("taylor", "global", 0.5)
    assert taylor["pruning"]["achieved"] == pytest.approx(0.5, abs=1e-6)
    assert taylor["config"]["pruning"]["method"] == "taylor"

    report = subprocess.run([sys.executable, "-m", "sparsenlp.analysis.report", str(sweep), "--no-pie"],
                            capture_output=True, text=True, env=plugin_env, cwd=REPO, timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    runs = (sweep / "report" / "runs.csv").read_text()
    assert "taylor[global]·cubic@0.5" in runs  # the label names what the method leaves open: its scope


def test_an_installed_method_is_listed_with_its_keys(plugin_env):
    result = cli(["pruning=taylor", "pruning.scope=sideways", "model=tiny"], env=plugin_env)
    assert result.returncode != 0 and "pruning.scope='sideways' is not one of global, layerwise" in result.stderr
    result = cli(["pruning=taylor", "schedule=oneshot", "model=tiny"], env=plugin_env)
    assert result.returncode != 0 and "pruning=taylor needs gradients before it prunes" in result.stderr
