"""A sweep checked whole before its first job starts, and every job named by what it runs.

Each job (a list of overrides) is composed and checked as the job itself will do it (:mod:`sparsenlp.job_configs`),
then its inputs are checked (:func:`sparsenlp.inputs.require_inputs`: a language without local files, an
unreachable Hub), so a bad job is reported at launch, not when its turn comes hours later. A valid job is named by
its arm's short name and its config hash (:func:`sparsenlp.identity.folder_name`): its folder in the sweep, and its
skip decision on a relaunch, follow from what it runs, never from its position in the grid. Jobs that compute the
same thing (they differ only in how they are run or observed, e.g. ``trainer.progress``) run once.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sparsenlp.arm import build_arm
from sparsenlp.errors import SparseNLPError
from sparsenlp.identity import folder_name
from sparsenlp.inputs import absolute_root, require_inputs
from sparsenlp.job_configs import JobConfig

EXAMPLES = 2  # jobs shown per problem


@dataclass(frozen=True)
class PlannedJob:
    """A valid job: its overrides, the arm's short name and the config hash."""

    overrides: tuple[str, ...]
    name: str
    digest: str
    skip_completed: bool = True

    @property
    def folder(self) -> str:
        return folder_name(self.name, self.digest)


@dataclass
class Plan:
    jobs: list[PlannedJob] = field(default_factory=list)  # valid and distinct, in the grid's order
    invalid: list[tuple[tuple[str, ...], str]] = field(default_factory=list)  # (overrides, the one-line problem)
    repeated: int = 0  # jobs that compute what an earlier job of the grid computes
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return len(self.jobs) + len(self.invalid) + self.repeated


def plan(grid: Iterable[Sequence[str]], compose_job: Callable[[list[str]], JobConfig]) -> Plan:
    """Compose and check every job of ``grid`` (``compose_job``: ``JobConfigs.job``)."""
    started = time.perf_counter()
    result, seen = Plan(), set()
    for overrides in grid:
        job = compose_job(list(overrides))
        problem = job.problem
        if problem is None:
            assert job.settings is not None and job.digest is not None
            try:
                require_inputs(absolute_root(job.settings))
            except SparseNLPError as exc:
                problem = exc.message
        if problem is not None:
            result.invalid.append((tuple(overrides), problem))
        elif job.digest in seen:
            result.repeated += 1
        else:
            seen.add(job.digest)
            result.jobs.append(PlannedJob(tuple(overrides), build_arm(job.settings).run_name(), job.digest,
                                          job.settings.skip_completed))
    result.seconds = time.perf_counter() - started
    return result


def problems(plan: Plan, skip_key: str, left_out: bool = False) -> str:
    """The invalid jobs, grouped by problem (most frequent first), each with examples, and what to do next;
    ``left_out``: the valid jobs are launched without them."""
    groups: dict[str, list[tuple[str, ...]]] = {}
    for overrides, problem in plan.invalid:
        groups.setdefault(problem, []).append(overrides)
    verdict = "are left out" if left_out else "so none was launched"
    lines = [f"{len(plan.invalid):,} of {plan.total:,} jobs cannot run, {verdict}:"]
    for problem, jobs in sorted(groups.items(), key=lambda item: -len(item[1])):
        lines.append(f"  {len(jobs):,} job{'s' if len(jobs) > 1 else ''}: {problem}")
        lines += [f"      e.g. {' '.join(job)}" for job in jobs[:EXAMPLES]]
    valid = len(plan.jobs)
    if not left_out and valid:
        lines.append(f"fix them and launch again, or launch the {valid:,} valid job{'s' if valid != 1 else ''} "
                     f"without them with {skip_key}=true")
    elif not left_out:
        lines.append("fix them and launch again")
    return "\n".join(lines)
