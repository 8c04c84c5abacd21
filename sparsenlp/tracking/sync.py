"""``sparsenlp-report sync``: upload a sweep's offline W&B runs with ``wandb sync``, skipping synced ones.

Offline runs sit anywhere below the sweep folder (``<job>/wandb/offline-run-*/run-<id>.wandb``, the
analysis run under ``SWEEP_DIR/wandb/``), one level deeper than ``wandb sync DIR`` looks, so their files
are listed here and handed to ``wandb sync`` itself, all files of one W&B run in one call (a relaunched
job resumes its run in a file of its own; wandb syncs a run's files in the order they were started). A
run is synced when wandb's own marker ``run-<id>.wandb.synced`` sits beside its file; it is what ``wandb
sync`` writes after an upload and reads to skip, so counting markers before and after says what was
uploaded and what failed.
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sparsenlp.errors import SparseNLPError

CHUNK = 200  # files per `wandb sync` call, far below any command-line limit


@dataclass(frozen=True)
class SyncPlan:
    pending: list[Path]
    synced: list[Path]


def run_id(wandb_file: Path) -> str:
    """The W&B run a file belongs to: a relaunched job resumes its run, so one run may have several files."""
    return wandb_file.stem.removeprefix("run-")


def runs(files: list[Path]) -> int:
    return len({run_id(f) for f in files})


def is_synced(wandb_file: Path) -> bool:
    return wandb_file.with_suffix(".wandb.synced").exists()


def plan(sweep_dir: Path) -> SyncPlan:
    """Every offline run file below ``sweep_dir``, split into not yet synced and already synced."""
    if not sweep_dir.is_dir():
        raise SparseNLPError(f"sweep directory {sweep_dir} does not exist; pass the folder a sweep wrote, e.g. multirun/...")
    files = sorted(sweep_dir.rglob("offline-run-*/run-*.wandb"))
    if not files:
        raise SparseNLPError(f"no offline W&B run under {sweep_dir}; runs logged online (logger.mode=online) "
                             "are uploaded already, and logger=none logs none")
    return SyncPlan([f for f in files if not is_synced(f)], [f for f in files if is_synced(f)])


def upload(files: list[Path], entity: str | None = None, project: str | None = None) -> None:
    """``wandb sync`` the given run files (entity/project: overrides of what each run recorded)."""
    options = [*(["--entity", entity] if entity else []), *(["--project", project] if project else [])]
    by_run: dict[str, list[Path]] = {}
    for f in files:  # one call gets all files of a run: wandb syncs them in order of their start
        by_run.setdefault(run_id(f), []).append(f)
    chunk: list[str] = []
    for group in by_run.values():
        if chunk and len(chunk) + len(group) > CHUNK:
            subprocess.run([sys.executable, "-m", "wandb", "sync", *options, *chunk], check=False)
            chunk = []
        chunk += [str(f) for f in group]
    if chunk:
        subprocess.run([sys.executable, "-m", "wandb", "sync", *options, *chunk], check=False)


def sync(sweep_dir: Path, entity: str | None, project: str | None, dry_run: bool) -> str:
    """Upload the sweep's unsynced offline runs; returns the counts, or raises naming how many failed."""
    todo = plan(sweep_dir)
    if not todo.pending:
        return f"nothing to upload: all {len(todo.synced)} offline run(s) are synced already"
    if dry_run:
        listing = "".join(f"\n  {f.parent}" for f in todo.pending)
        return (f"would upload {len(todo.pending)} offline run(s) into {runs(todo.pending)} W&B run(s), skip "
                f"{len(todo.synced)} already synced:{listing}")
    upload(todo.pending, entity, project)
    failed = [f for f in todo.pending if not is_synced(f)]
    if failed:
        raise SparseNLPError(f"{len(failed)} of {len(todo.pending)} offline run(s) were not uploaded (wandb's "
                             f"messages above say why, e.g. {failed[0].parent}); run `wandb login` and retry: "
                             "uploaded runs are skipped")
    return (f"uploaded {len(todo.pending)} offline run(s) into {runs(todo.pending)} W&B run(s); skipped "
            f"{len(todo.synced)} already synced")
