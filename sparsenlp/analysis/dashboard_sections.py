"""The study's W&B dashboard as data: sections of charts, each naming the keys it plots and whose runs log them.

Kept apart from the ``wandb_workspaces`` objects (``dashboard.py``) so that what is shown, and the check
that every plotted key is logged, read as plain data. Charts are built from the keys the sweep's runs
log (:class:`~sparsenlp.tracking.sweep_runs.SweepRuns`) and the analysis run logs
(:func:`~sparsenlp.tracking.summary_run.report_files`); a section without data says how to get it.
"""
from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass
from typing import Literal

from sparsenlp.errors import SparseNLPError
from sparsenlp.tracking.wandb import safe

SPARSITY = "sparsity/target"  # the x of every line chart: the final metrics are logged against it
F1 = "test/f1"
TRAIN, ANALYSIS = "train", "analysis"  # job types: whose keys a section plots
# one line per value: a language fact joined with the arm minus its sparsity (config.panel, written by the
# tracker), so no line pools two arms (methods, schedules, embeddings, models, regimes, quantization, protocols)
LAYER_PREFIX = "sparsity/layer_"
FIXES = {TRAIN: "rerun those runs with this version of sparsenlp (its tracker logs the key)",
         ANALYSIS: "run sparsenlp-report {sweep_dir} --wandb to log the analysis"}


@dataclass(frozen=True)
class Chart:
    """One panel: a line chart of ``keys`` against :data:`SPARSITY`, an analysis table or its figures."""

    title: str
    kind: Literal["line", "table", "media"]
    keys: tuple[str, ...]
    by: str | None = None  # workspace: config key with one line per value (mean ± stderr of the runs)

    def needs(self) -> tuple[str, ...]:
        return (SPARSITY, *self.keys) if self.kind == "line" else self.keys


@dataclass(frozen=True)
class Section:
    """A heading, a paragraph saying what the charts show, and the charts."""

    title: str
    text: str
    source: str  # TRAIN or ANALYSIS
    charts: tuple[Chart, ...]
    by: tuple[str, ...] = ()  # report: config keys grouping its run set, one line per combination


def _by_language(key: str) -> Section:
    """F1 vs sparsity, one line per value of a language fact (tier, script, family)."""
    return Section(
        f"F1 vs sparsity by {key}",
        f"Clean test F1 (`{F1}`) against the target sparsity (`{SPARSITY}`; dense runs at 0), one line per "
        f"{key} and arm (`config.panel.{key}`: the {key} with the model, regime and pruning setting), mean ± "
        f"standard error over its languages and seeds; lines never pool two arms.",
        TRAIN, (Chart(f"Test F1 vs target sparsity by {key}", "line", (F1,), by=f"panel.{key}"),),
        by=(f"panel.{key}",))


def _perturbed(conditions: Iterable[str]) -> Section:
    kinds: dict[str, list[str]] = {}
    for condition in sorted(conditions):
        kinds.setdefault(condition.rpartition("@")[0], []).append(f"test/{safe(condition)}/f1")
    text = ("Test F1 on each perturbed test set against the target sparsity, one chart per perturbation and one "
            "line per severity (`test/<perturbation>_<severity>/f1`), tier and arm (`config.panel.tier`)." if kinds else
            "No run of this sweep scored a perturbed test set: rerun it with perturbation=suite.")
    charts = tuple(Chart(f"Perturbed F1 vs target sparsity: {kind}", "line", tuple(keys), by="panel.tier")
                   for kind, keys in kinds.items())
    return Section("Perturbed F1 per perturbation vs sparsity", text, TRAIN, charts, by=("panel.tier",))


def _layers(train_keys: Set[str]) -> Section:
    layers = sorted((k for k in train_keys if k.startswith(LAYER_PREFIX)), key=lambda k: int(k[len(LAYER_PREFIX):]))
    layers += [k for k in ("sparsity/embeddings",) if k in train_keys]
    text = ("Achieved sparsity of each encoder layer (`sparsity/layer_<i>`, `sparsity/embeddings` when pruned) against "
            "the target sparsity, one line per arm (`config.panel.arm`): layer-wise pruning keeps every layer at the "
            "target, global pruning lets layers differ." if layers else
            "No run of this sweep pruned unstructured weights, so no per-layer sparsity was logged.")
    charts = (Chart("Achieved sparsity per layer vs target", "line", tuple(layers), by="panel.arm"),) if layers else ()
    return Section("Per-layer sparsity", text, TRAIN, charts, by=("panel.arm",))


def _analysis(title: str, text: str, table: str, figure_prefix: str, logged: Set[str]) -> Section:
    """A section drawn from the analysis run: its table and figures, or how to log them."""
    figures = tuple(sorted(k for k in logged if k.startswith(f"figures/{figure_prefix}")))
    charts = ((Chart(f"{table} (analysis run)", "table", (table,)),) if table in logged else ()) + (
        (Chart(f"{title} figures (analysis run)", "media", figures),) if figures else ())
    how = (f"Open `{table}` in the analysis run (job_type `analysis`, same group) or its `report` artifact."
           if charts else "Not logged yet: run `sparsenlp-report SWEEP_DIR --wandb` (and `sparsenlp-report pie` "
                          "before it for PIEs), then rebuild this dashboard.")
    return Section(title, f"{text} {how}", ANALYSIS, charts)


def study_sections(train_keys: Set[str], conditions: Iterable[str], analysis_keys: Set[str]) -> list[Section]:
    """The study's sections, in the order of its questions."""
    return [
        *(_by_language(key) for key in ("tier", "script", "family")),
        _analysis("ΔF1 vs dense per language",
                  "F1 of each sparse arm minus F1 of the dense runs of the same model, regime, training languages, "
                  "test language and condition (means over seeds), with its significance, computed by "
                  "sparsenlp-report.", "tables/significance", "delta", analysis_keys),
        _perturbed(conditions),
        _analysis("PIE rate",
                  "Share of test sentences whose modal prediction differs between the sparse and the dense "
                  "population of seeds (Pruning Identified Exemplars), per language, arm and condition.",
                  "tables/pie", "pie", analysis_keys),
        _layers(train_keys),
        Section("Global vs layer-wise",
                f"Clean test F1 (`{F1}`) against the target sparsity, one line per arm (`config.panel.arm`: global and "
                "layer-wise side by side; dense at 0), mean ± standard error over languages and seeds.",
                TRAIN, (Chart("Test F1 vs target sparsity by pruning scope", "line", (F1,), by="panel.arm"),),
                by=("panel.arm",)),
    ]


def check_keys(sections: Iterable[Section], logged: dict[str, Set[str]], sweep_dir: object) -> None:
    """Every key a chart plots is logged by a run of its source; else one error naming the key."""
    for section in sections:
        for chart in section.charts:
            for key in chart.needs():
                if key not in logged[section.source]:
                    raise SparseNLPError(
                        f"dashboard panel {chart.title!r} plots {key!r}, which no {section.source} run of {sweep_dir} "
                        f"logs; {FIXES[section.source].format(sweep_dir=sweep_dir)}")
