"""``sparsenlp-report status SWEEP_DIR``: where a sweep stands, from its folders alone, while it runs or long after.

The sweep's job list (``jobs.json``, written at launch by the study sweeper) says which jobs the latest launch
asked for; each job's folder (``<short name>-<config hash>``) says how far it got:

- **done**: it holds ``results.json`` (written last and atomically, so it is the whole record);
- **running**: its job lock (``.job.lock``) names a live holder: a process alive on this host, or, on another host,
  one whose folder changed within ``stale_after`` (the trainer logs every ``trainer.log_every`` steps);
- **failed**: it holds ``failure.json`` (the job's error line), or a lock whose holder is gone without a record
  (killed, out of memory, timed out), shown with the last line of its log;
- **pending**: none of these (not started, or queued by the scheduler).

Throughput counts the records written since the launch; the ETA assumes the rest goes at that pace.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from sparsenlp.errors import SparseNLPError
from sparsenlp.runlock import LOCK_NAME, describe, holder
from sparsenlp.tracking import failure, joblist
from sparsenlp.tracking.records import RESULTS

STATES = ("done", "running", "failed", "pending")
STALE_AFTER_S = 1800.0
LOG_GLOB = "*.log"
SHOWN = 10  # jobs listed per state unless asked for all


@dataclass
class JobState:
    folder: str
    state: str
    detail: str = ""  # failed: the error line; running: the holder and its last log line
    finished: Optional[float] = None  # done: when its record was written (epoch seconds)


@dataclass
class SweepStatus:
    sweep_dir: str
    launched_at: Optional[str]
    launcher: Optional[str]
    jobs: list[JobState]
    invalid: int
    other_folders: int  # job folders of earlier launches, not in the latest job list
    jobs_per_hour: Optional[float]
    eta_hours: Optional[float]

    def count(self, state: str) -> int:
        return sum(job.state == state for job in self.jobs)


def _last_line(folder: Path) -> str:
    """The last non-empty line of the job's newest log file ('' when it has none)."""
    logs = sorted(folder.glob(LOG_GLOB), key=lambda p: p.stat().st_mtime)
    if not logs:
        return ""
    with logs[-1].open("rb") as handle:
        handle.seek(max(0, logs[-1].stat().st_size - 4096))
        lines = [line.strip() for line in handle.read().decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _last_change(folder: Path) -> float:
    paths = [folder, folder / LOCK_NAME, *folder.glob(LOG_GLOB), folder / "checkpoints" / "last.pt"]
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


def _alive(info: dict, folder: Path, now: float, stale_after: float) -> bool:
    """Whether the lock's holder still runs (see the module docstring)."""
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
        try:
            os.kill(info["pid"], 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return now - _last_change(folder) < stale_after


def job_state(folder: Path, now: float, stale_after: float = STALE_AFTER_S) -> JobState:
    results = folder / RESULTS
    if results.is_file():
        return JobState(folder.name, "done", finished=results.stat().st_mtime)
    lock = folder / LOCK_NAME
    if lock.exists():
        info = holder(lock)
        last = _last_line(folder)
        if _alive(info, folder, now, stale_after):
            return JobState(folder.name, "running", f"{describe(info)}; last: {last}" if last else describe(info))
        return JobState(folder.name, "failed", f"stopped without a record (killed, out of memory or out of time?); "
                                               f"last log line: {last or '(none)'}")
    found = failure.read(folder)
    if found is not None:
        return JobState(folder.name, "failed", str(found.get("error", "")))
    return JobState(folder.name, "pending")


def _job_folders(sweep_dir: Path) -> list[str]:
    """Every job folder of the sweep, named or not by the job list (one that Hydra or a job has written in)."""
    marks = (RESULTS, ".hydra", LOCK_NAME, failure.FAILURE)
    return sorted(p.name for p in sweep_dir.iterdir() if p.is_dir() and any((p / m).exists() for m in marks))


def status(sweep_dir: Path, stale_after: float = STALE_AFTER_S, now: Optional[float] = None) -> SweepStatus:
    if not sweep_dir.is_dir():
        what = "is a file, not a folder" if sweep_dir.exists() else "does not exist"
        raise SparseNLPError(f"sweep folder {sweep_dir} {what}; pass the hydra.sweep.dir a sweep was "
                             "launched with (e.g. multirun/paper)")
    if (sweep_dir / RESULTS).exists() or (sweep_dir / ".hydra").is_dir():
        raise SparseNLPError(f"{sweep_dir} is a job folder, not a sweep folder; pass the sweep folder above it "
                             f"({sweep_dir.parent}), or read {sweep_dir / RESULTS} and its log for this job")
    now = datetime.now(timezone.utc).timestamp() if now is None else now
    listing = joblist.read(sweep_dir)
    folders = _job_folders(sweep_dir)
    listed = [job.folder for job in listing.jobs] if listing else folders
    jobs = [job_state(sweep_dir / folder, now, stale_after) for folder in listed]
    other = len(set(folders) - set(listed))
    rate = eta = None
    launched = listing.launched_at if listing else None
    if launched:
        start = datetime.fromisoformat(launched).timestamp()
        finished = [j.finished for j in jobs if j.finished is not None and j.finished >= start]
        left = sum(j.state in ("running", "pending") for j in jobs)
        end = now if left else max(finished, default=now)
        if finished and end > start:
            rate = len(finished) / ((end - start) / 3600)
            eta = left / rate if left else 0.0
    return SweepStatus(str(sweep_dir), launched, listing.launcher if listing else None, jobs,
                       len(listing.invalid) if listing else 0, other, rate, eta)


def _hours(hours: float) -> str:
    return f"{hours * 60:.0f} min" if hours < 1 else (f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days")


def render(report: SweepStatus, shown: tuple[str, ...] = ("failed", "running"), limit: Optional[int] = SHOWN) -> str:
    """The status as text: counts, throughput and ETA, the jobs of the ``shown`` states, what to do next."""
    counts = ", ".join(f"{report.count(s):,} {s}" for s in STATES)
    head = f"{report.sweep_dir}: {len(report.jobs):,} jobs: {counts}"
    if report.invalid:
        head += f" ({report.invalid:,} invalid, not launched)"
    lines = [head]
    if report.launched_at:
        pace = (f"{report.jobs_per_hour:.1f} jobs/h since the launch" if report.jobs_per_hour
                else "no job finished since the launch yet")
        eta = f"; ETA {_hours(report.eta_hours)}" if report.eta_hours else ""
        lines.append(f"launched {report.launched_at} ({report.launcher}); {pace}{eta}")
    else:
        lines.append("no jobs.json (launched before job lists existed): jobs are the folders found; none pending")
    if report.other_folders:
        lines.append(f"{report.other_folders:,} more job folders from earlier launches are not in the latest job list")
    for state in shown:
        listed = [j for j in report.jobs if j.state == state]
        if not listed:
            continue
        cut = listed if limit is None else listed[:limit]
        more = f", first {len(cut)}; --list {state} --all shows every one" if len(cut) < len(listed) else ""
        lines.append(f"{state} ({len(listed):,}{more}):")
        lines += [f"  {j.folder}" + (f": {j.detail}" if j.detail else "") for j in cut]
    lines.append(f"next: {_next(report)}")
    return "\n".join(lines)


def _next(report: SweepStatus) -> str:
    where = report.sweep_dir
    if report.count("failed"):
        return ("read a failed job's log (<job>/*.log), fix, and relaunch the sweep's command: completed jobs are "
                "skipped, failed ones run again")
    if report.count("running") or report.count("pending"):
        return f"wait (sparsenlp-report status {where} again), or relaunch the sweep's command if its launcher stopped"
    return f"sparsenlp-report {where}"


def as_json(report: SweepStatus) -> str:
    data = asdict(report)
    data["counts"] = {s: report.count(s) for s in STATES}
    return json.dumps(data, indent=2)
