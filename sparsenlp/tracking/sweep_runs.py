"""Where a sweep's W&B runs went and what they logged, read from the sweep's records alone.

The dashboard and the analysis run must point at the W&B group, project and entity the training runs
used, and the dashboard may only plot keys those runs logged. All of it follows from the records
(``results.json``) plus Hydra's ``.hydra/hydra.yaml`` beside each, so no W&B file or server is read:
the same answer for offline runs not yet synced and for online runs.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from sparsenlp.errors import SparseNLPError
from sparsenlp.tracking.schema import CLEAN, RunRecord
from sparsenlp.tracking.wandb import history_keys, sweep_group

HYDRA_FILE = Path(".hydra") / "hydra.yaml"


@dataclass(frozen=True)
class SweepRuns:
    """The W&B side of a sweep: its runs' groups, project, entity, mode and the union of their history keys."""

    sweep_dir: Path
    groups: tuple[str, ...]
    project: str | None  # None: the runs used several projects
    entity: str | None  # None: the W&B default entity of whoever syncs
    mode: str  # offline or online: what the runs used (offline when they disagree)
    keys: frozenset[str]
    conditions: frozenset[str]  # the perturbed test conditions, e.g. char_noise@0.1
    runs: int


def run_group(run_dir: Path, record: RunRecord) -> str:
    """The W&B group the tracker gave this run (``logger.group``, else its sweep folder as launched).

    The folder as launched is Hydra's ``hydra.sweep.dir`` as written, relative to ``hydra.runtime.cwd``;
    when that value is an interpolation (the default ``multirun/${now:...}``, saved unresolved), the
    resolved sweep dir of the record is taken relative to the launch folder instead, which is the same.
    """
    logger = record.config.get("logger") or {}
    if logger.get("group"):
        return str(logger["group"])
    if record.run.sweep_dir is None:
        return sweep_group(None)
    hydra_file = run_dir / HYDRA_FILE
    if not hydra_file.is_file():
        raise SparseNLPError(f"cannot tell the W&B group of {run_dir}: {HYDRA_FILE} is missing; "
                             "pass --group with the group its runs were logged under")
    hydra = OmegaConf.to_container(OmegaConf.load(hydra_file), resolve=False).get("hydra", {})  # as written
    given = str(hydra.get("sweep", {}).get("dir", ""))
    cwd = hydra.get("runtime", {}).get("cwd")
    return sweep_group(record.run.sweep_dir if "${" in given or not given else given, cwd)


def _one(values: Iterable[str | None]) -> str | None:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def sweep_runs(sweep_dir: Path, loaded: list[tuple[Path, RunRecord]], group: str | None = None,
               entity: str | None = None, project: str | None = None) -> SweepRuns:
    """The W&B side of the runs in ``loaded`` (``collect.load_records``); ``group``, ``entity`` and
    ``project`` replace what the records say (e.g. after ``wandb sync --project``). Runs whose logger was
    off are left out; a sweep with none logged is an error."""
    logged = [(run_dir, record, history_keys(record)) for run_dir, record in loaded]
    logged = [item for item in logged if item[2]]
    if not logged:
        raise SparseNLPError(f"no run under {sweep_dir} logged to W&B (logger=none or logger.mode=disabled); "
                             "rerun the sweep with logger=wandb")
    loggers = [record.config.get("logger") or {} for _, record, _ in logged]
    groups = (group,) if group else tuple(sorted({run_group(run_dir, record) for run_dir, record, _ in logged}))
    return SweepRuns(
        sweep_dir=sweep_dir, groups=groups, project=project or _one(lg.get("project", "sparsenlp") for lg in loggers),
        entity=entity or _one(lg.get("entity") for lg in loggers), mode=_one(lg.get("mode") for lg in loggers) or "offline",
        keys=frozenset().union(*(keys for _, _, keys in logged)), runs=len(logged),
        conditions=frozenset(c for _, record, _ in logged for conds in record.test.values() for c in conds if c != CLEAN))
