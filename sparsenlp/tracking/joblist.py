"""A sweep's job list on disk (``SWEEP/jobs.json``): what the latest launch asked for, written before any job
starts, so that ``sparsenlp-report status`` can tell pending jobs from finished ones while the sweep runs (or
after the launching process has returned, e.g. from SLURM)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ValidationError

from sparsenlp.errors import SparseNLPError
from sparsenlp.io import write_json

JOBS = "jobs.json"
LAUNCHED, COMPLETE = "launched", "complete"  # a job's state at launch (complete ones are skipped)


class ListedJob(BaseModel):
    folder: str  # below the sweep folder: <short name>-<config hash>
    name: str
    hash: str
    overrides: list[str]
    at_launch: str  # LAUNCHED or COMPLETE


class InvalidJob(BaseModel):
    overrides: list[str]
    problem: str


class JobList(BaseModel):
    version: int = 1
    sweep_dir: str
    launched_at: str
    launcher: str
    jobs: list[ListedJob]
    invalid: list[InvalidJob] = []


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write(sweep_dir: Path, jobs: list[ListedJob], launcher: str, invalid: list[InvalidJob]) -> JobList:
    listing = JobList(sweep_dir=str(sweep_dir.resolve()), launched_at=now(), launcher=launcher, jobs=jobs,
                      invalid=invalid)
    write_json(sweep_dir / JOBS, listing.model_dump(mode="json"))
    return listing


def read(sweep_dir: Path) -> Optional[JobList]:
    """The sweep's job list; None when there is none (a sweep launched before job lists existed)."""
    path = sweep_dir / JOBS
    if not path.is_file():
        return None
    try:
        return JobList.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError) as exc:
        raise SparseNLPError(f"{path} is not a sparsenlp job list ({type(exc).__name__}); relaunch the sweep's "
                             "command to write it again (completed jobs are skipped)") from None


def as_dict(listing: JobList) -> dict[str, Any]:
    return listing.model_dump(mode="json")
