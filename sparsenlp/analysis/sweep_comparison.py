"""A sweep's runs → its comparisons with dense: the significance table, PIE noise floors and PIE examples.

A comparison (:class:`~sparsenlp.analysis.stats.Cell`) is one test language × condition × sparse arm ×
sparsity: the arm's runs against the dense runs of the same :data:`~sparsenlp.analysis.collect.MATCH`
cell (model, regime, training languages, quantization, protocol, test language, condition), one run per seed.

Its ``arm`` (:func:`cell_arms`) names every arm dimension except the test language and the sparsity
level: ``<model>/<regime>/<setting>``, the setting being the arm's label without its sparsity (method,
criterion, scope, structure, schedule, embeddings, quantization), ``<regime>:<training languages>``
where those are not just the test language (joint training, zero-shot transfer), and `` (<selection>;
<length>)`` when the sweep holds more than one protocol (the controls' ablations). The multiple-comparison
family (arm × sparsity × condition) therefore spans the languages of one arm and never two arms; in the
per-language regime every language has its own training language, which must not split the family.

The statistics run in worker processes, one language at a time
(:func:`~sparsenlp.analysis.dense_comparison.compare_languages`): the parent sends each worker a plan of
run directories (:class:`CellSpec`), and the worker reads the predictions itself, from each prediction
file's compact ``.npz`` companion when there is one (:mod:`sparsenlp.tracking.compact`) and from the
JSONL otherwise (runs written before companions existed). A damaged companion (a truncated file, whose zip
directory does not open) is found before the work starts and rebuilt from its JSONL where the sweep can be
written (else the JSONL is read); one that fails later, while read, is replaced by its JSONL too. A run whose
prediction file for a condition is missing or unusable is left out of that condition's comparisons and named
among the report's skipped files (exit status 3), never silently.
"""
from __future__ import annotations

import logging
import warnings
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd

from sparsenlp.analysis import stats
from sparsenlp.analysis.collect import DATA_FACTS, MATCH, language_facts
from sparsenlp.analysis.dense_comparison import compare_languages
from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.pie import LEVELS, load_predictions
from sparsenlp.tracking import compact, records
from sparsenlp.tracking.compact import CompactPredictions
from sparsenlp.tracking.schema import ARM_FIELDS, DENSE

log = logging.getLogger("sparsenlp")

CELL = ("lang", "arm", "sparsity", "condition")
# the arm's dimensions, carried into every output table next to the cell's arm name
DIMENSIONS = (*(f for f in ARM_FIELDS if f not in ("sparsity", "seed")), "setting")  # the arm but its level and seed
# the runs of one comparison side: a dense or sparse population of a cell, one run per seed
POPULATION = [*MATCH, "method", "arm", "sparsity"]


def _training(train_langs: str) -> str:
    langs = train_langs.split("+")
    if len(langs) <= 3:
        return train_langs
    return f"{len(langs)}langs#{zlib.crc32(train_langs.encode()):08x}"[:15]


def cell_arms(table: pd.DataFrame) -> pd.Series:
    """The comparison arm of every row of a runs table (see the module docstring)."""
    own = (table["regime"] == "per_language") & (table["train_langs"] == table["lang"])
    trained = table["train_langs"].map(_training)
    regime = table["regime"].where(own, table["regime"] + ":" + trained)
    arms = table["model"] + "/" + regime + "/" + table["setting"]
    protocol = table["selection"] + "; " + table["length"]
    return arms + " (" + protocol + ")" if protocol.nunique() > 1 else arms


@dataclass(frozen=True)
class CellSpec:
    """One comparison, as run directories (one per seed) that a worker loads."""

    lang: str
    arm: str
    sparsity: float
    condition: str
    quantization: str
    dense: tuple[str, ...]
    sparse: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """``cells``: each language's comparisons, languages with the most test sentences first; ``index``: one row
    per comparison (:data:`CELL`, the arm's :data:`DIMENSIONS`, seeds); ``notes``: what was left out and why."""

    cells: dict[str, tuple[CellSpec, ...]]
    index: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _opens(companion: Path) -> str | None:
    """Why ``companion``'s zip directory does not open (a truncated file), or None; reads only the directory."""
    try:
        with zipfile.ZipFile(companion):
            return None
    except (OSError, zipfile.BadZipFile) as exc:
        return str(exc)


def _prediction_problem(run_dir: str, condition: str, quantization: str, notes: list[str]) -> str | None:
    """Why a run's predictions for a condition cannot be used, or None. A truncated companion is rebuilt from its
    JSONL where the run folder can be written (else the JSONL is read), with a note."""
    path = records.predictions_path(Path(run_dir), condition, quantization)
    companion = compact.companion_path(path)
    damage = _opens(companion) if companion.is_file() else None
    if damage is None:
        return None if companion.is_file() or path.is_file() else "no prediction file"
    if not path.is_file():
        return f"{companion} is damaged ({damage}) and there is no JSONL to rebuild it from"
    try:
        rows = load_predictions(path)
    except (SparseNLPError, OSError, ValueError, KeyError, TypeError) as exc:
        return f"{companion} is damaged ({damage}) and {path.name} does not read either ({type(exc).__name__})"
    try:
        compact.write(companion, rows)
        notes.append(f"{companion} was damaged ({damage}); rebuilt from {path.name}")
    except OSError as exc:  # a sweep that cannot be written: the worker reads the JSONL instead
        notes.append(f"{companion} is damaged ({damage}) and cannot be rebuilt ({exc.strerror}); {path.name} is read "
                     "instead")
    return None


def _describe(keys: Mapping[str, object]) -> str:
    return " ".join(f"{k}={v}" for k, v in keys.items())


def _usable(table: pd.DataFrame, notes: list[str], skipped: list[str]) -> pd.DataFrame:
    """The rows whose run has a usable prediction file for the row's condition, one run per population and seed (a
    seed trained twice, e.g. a relaunched job, keeps its first run directory); a note for each seed left out, a
    skipped entry for each prediction file missing or unusable."""
    keys = list(dict.fromkeys(zip(table["run_dir"], table["condition"], table["quantization"])))
    problems = {key: _prediction_problem(*key, notes) for key in keys}
    found = [problems[key] is None for key in zip(table["run_dir"], table["condition"], table["quantization"])]
    for (run_dir, condition, quantization), problem in problems.items():
        if problem is not None:
            path = records.predictions_path(Path(run_dir), condition, quantization)
            skipped.append(f"{path}: {problem}; the run is left out of the comparisons of condition={condition}")
    table = table[found].sort_values(["seed", "run_dir"], kind="stable")
    repeated = _repeated_seed(table)
    for key, g in table[repeated].groupby(POPULATION, sort=True):
        notes.append(f"{_describe(dict(zip(POPULATION, key)))}: repeated seed(s) {sorted(set(g['seed']))} left out "
                     f"({', '.join(g['run_dir'])})")
    return table[~repeated]


def _repeated_seed(table: pd.DataFrame) -> pd.Series:
    """Rows of a seed that its population already has (a seed trained twice, e.g. a relaunched job): with the
    table sorted by seed and run directory, the first run directory is the one kept."""
    return table.duplicated([*POPULATION, "seed"])


def _seeds(seeds: pd.Series) -> str:
    return ",".join(map(str, seeds))


def plan(table: pd.DataFrame, conditions: Sequence[str] | None = None) -> Plan:
    """Every comparison of a runs table (:func:`sparsenlp.analysis.collect.runs_table`)."""
    if conditions is not None:
        unknown = sorted(set(conditions) - set(table["condition"]))
        if unknown:
            raise SparseNLPError(f"test condition(s) {unknown} not in the sweep; it has "
                                 f"{', '.join(sorted(set(table['condition'])))}")
        table = table[table["condition"].isin(list(conditions))]
    notes: list[str] = []
    skipped: list[str] = []
    table = _usable(table.assign(arm=cell_arms(table), sparsity=table["target_sparsity"]), notes, skipped)
    is_dense = table["method"] == DENSE
    dense = table[is_dense].groupby(list(MATCH), sort=False).agg(
        dense=("run_dir", tuple), dense_seeds=("seed", _seeds)).reset_index()
    sparse = table[~is_dense].groupby([*MATCH, "arm", "sparsity"], sort=True).agg(
        sparse=("run_dir", tuple), sparse_seeds=("seed", _seeds),
        **{k: (k, "first") for k in (*DIMENSIONS, *DATA_FACTS) if k not in MATCH}).reset_index()
    index = sparse.merge(dense, on=list(MATCH), how="left")
    dense_size = table[is_dense].groupby(list(MATCH), sort=False)["train_size"].first().rename("dense_train_size")
    index = index.merge(dense_size.reset_index(), on=list(MATCH), how="left")
    differs = index["dense"].notna() & (index["dense_train_size"] != index["train_size"])
    for row in index[differs].itertuples():
        notes.append(f"{_describe({k: getattr(row, k) for k in CELL})}: dense runs trained on "
                     f"{row.dense_train_size:g} sentences of {row.lang}, sparse runs on {row.train_size:g}; "
                     "not like with like (train_size is the sparse runs')")
    alone = index["dense"].isna()
    for row in index[alone].itertuples():
        notes.append(f"{_describe({k: getattr(row, k) for k in CELL})}: no dense run of the same model, regime, "
                     "training languages and quantization with predictions; not compared")
    index = index[~alone].reset_index(drop=True)
    repeated = index[index.duplicated(list(CELL), keep=False)]
    if not repeated.empty:
        row = repeated.iloc[0]
        raise SparseNLPError(f"two comparisons share the name {_describe({k: row[k] for k in CELL})}; "
                             "their arms differ only in what the name leaves out (see sweep_comparison.cell_arms)")
    cells: dict[str, list[CellSpec]] = {}
    for row in index.itertuples():
        cells.setdefault(row.lang, []).append(CellSpec(row.lang, row.arm, float(row.sparsity), row.condition,
                                                       row.quantization, row.dense, row.sparse))
    words = table.drop_duplicates("lang").set_index("lang")["test_sentences"].to_dict()
    order = sorted(cells, key=lambda lang: (-words.get(lang, 0), lang))
    frame = index[[*CELL, *DIMENSIONS, *DATA_FACTS, "dense_seeds", "sparse_seeds"]]
    return Plan({lang: tuple(cells[lang]) for lang in order}, frame, notes, skipped)


def read_predictions(run_dir: str | Path, condition: str, quantization: str = "none") -> CompactPredictions:
    """One run's predictions on one test condition: the companion ``.npz`` if there is one and it reads, else the
    JSONL (SparseNLPError naming the file if that cannot be read either)."""
    path = records.predictions_path(Path(run_dir), condition, quantization)
    companion = compact.companion_path(path)
    if companion.is_file():
        try:
            return compact.read(companion, path)
        except compact.DamagedCompanion as exc:
            if not path.is_file():
                raise
            log.warning("%s; reading %s instead", exc.message, path)
    try:
        return CompactPredictions.from_rows(load_predictions(path), path)
    except SparseNLPError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SparseNLPError(f"{path} cannot be read ({type(exc).__name__}: {str(exc)[:120]}); re-run that run, or "
                             "delete its folder to leave it out") from None


def load_cells(cells: Mapping[str, Sequence[CellSpec]], lang: str) -> list[stats.Cell]:
    """In a worker: the comparisons of one language, each run read once however many cells use it."""
    loaded: dict[tuple[str, str, str], CompactPredictions] = {}

    def runs(run_dirs: Sequence[str], spec: CellSpec) -> list[CompactPredictions]:
        out = []
        for run_dir in run_dirs:
            key = (run_dir, spec.condition, spec.quantization)
            if key not in loaded:
                predictions = read_predictions(run_dir, spec.condition, spec.quantization).select(lang)
                if len(predictions) == 0:
                    path = records.predictions_path(Path(run_dir), spec.condition, spec.quantization)
                    raise SparseNLPError(f"{path} has no sentence of {lang}, which its record lists; re-run that run")
                loaded[key] = predictions
            out.append(loaded[key])
        return out

    return [stats.Cell(s.lang, s.arm, s.sparsity, s.condition, runs(s.dense, s), runs(s.sparse, s))
            for s in cells[lang]]


@dataclass(frozen=True)
class SweepComparison:
    """The sweep's tables, each row carrying its arm's dimensions, its language's facts and what its runs
    trained on (:data:`~sparsenlp.analysis.collect.DATA_FACTS`):
    ``significance`` (:data:`sparsenlp.analysis.stats.COLUMNS`), ``pie`` (:data:`sparsenlp.analysis.pie_floor.COLUMNS`),
    ``examples`` (:data:`sparsenlp.analysis.pie_floor.EXAMPLE_COLUMNS`); ``index``: the comparisons with
    their seeds (:attr:`Plan.index`); ``notes``: what was left out, and why."""

    significance: pd.DataFrame
    pie: pd.DataFrame
    examples: pd.DataFrame
    index: pd.DataFrame
    notes: list[str]
    skipped: list[str] = field(default_factory=list)


def _described(df: pd.DataFrame, index: pd.DataFrame, facts: pd.DataFrame) -> pd.DataFrame:
    """Rows with their arm's dimensions and their language's facts (after the statistics' own columns)."""
    if df.empty:  # no comparison: the columns alone (an empty frame's dtypes would not merge)
        more = [c for c in [*index.columns, *facts.columns] if c not in df.columns]
        return pd.DataFrame(columns=[*df.columns, *dict.fromkeys(more)])
    out = df.merge(index, on=list(CELL), how="left", validate="many_to_one")
    return out.merge(facts, on="lang", how="left", validate="many_to_one")


def compare_sweep(table: pd.DataFrame, jobs: int = 1, correction: str = "holm", alpha: float = 0.05,
                  pie_levels: Sequence[str] = LEVELS, n_examples: int = 5, conditions: Sequence[str] | None = None,
                  allow_unreplicated: bool = False) -> SweepComparison:
    """Every comparison of a sweep's runs table, in ``jobs`` processes (see the module docstring);
    ``allow_unreplicated``: give comparisons with one seed on a side verdicts too (see :func:`stats.adjust`)."""
    stats.correction_name(correction)  # a bad name fails before any work
    work = plan(table, conditions)
    notes = list(dict.fromkeys(work.notes))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = compare_languages(partial(load_cells, work.cells), list(work.cells), jobs=jobs,
                                   correction=correction, alpha=alpha, pie_levels=pie_levels, n_examples=n_examples,
                                   allow_unreplicated=allow_unreplicated)
    notes += [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    facts = language_facts(table)
    return SweepComparison(_described(result.significance, work.index, facts),
                           _described(result.pie, work.index, facts),
                           _described(result.examples, work.index, facts), work.index, notes, work.skipped)


def baseline_runs(table: pd.DataFrame) -> pd.DataFrame:
    """The runs table the figures draw: every sparse run under its comparison arm and target sparsity, and
    each arm's own dense baseline (the dense runs of its MATCH cells, one per seed) at sparsity 0, so a
    figure never pairs an arm with the dense runs of another model, regime or quantization."""
    table = (table.assign(arm=cell_arms(table), sparsity=table["target_sparsity"])
             .sort_values(["seed", "run_dir"], kind="stable"))
    sparse = table[(table["method"] != DENSE) & ~_repeated_seed(table)]  # as in the comparisons: one run a seed
    dense = (table[table["method"] == DENSE].sort_values(["seed", "run_dir"])
             .drop_duplicates([*MATCH, "seed"]).drop(columns="arm"))
    arms = sparse[[*MATCH, "arm"]].drop_duplicates()
    baselines = arms.merge(dense, on=list(MATCH)).assign(sparsity=0.0)
    return pd.concat([baselines[sparse.columns], sparse], ignore_index=True)
