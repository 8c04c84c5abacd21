"""The study sweeper: Hydra's basic sweeper (cartesian product of ``-m`` values), made to run a study that grows
and restarts for weeks without losing a result.

- **Arms.** Every job is reduced to what its pruning method reads (``sparsenlp.sweep_jobs.reduce_job``: sparsity 0
  is the dense arm, keys a method does not read are dropped, a method without a schedule runs under
  ``schedule=none``), so the dense baseline of a method x sparsity grid runs once per language and seed;
  ``collapse`` (``conf/hydra/sweeper/study.yaml``, empty by default) adds rules of one's own: a job whose overrides
  match ``when`` drops the overrides listed in ``drop``. ``lang=each`` expands to every language of the composed
  ``languages`` config that the data source has (languages without local files are left out, with a warning).
- **Checked whole before launch.** Every job is composed and checked as the job will do it, its inputs too
  (``sparsenlp.sweep_plan``): problems are listed once, grouped, with their fix, and nothing is launched unless
  ``skip_invalid=true`` (then the valid jobs are).
- **Named by what it runs.** A job's folder is ``<short arm name>-<config hash>`` (``hydra.sweep.subdir``, set per
  job), so extending the grid in any direction runs only the new jobs, a relaunch finds each job's folder, and a
  job whose folder holds its complete record is not launched at all, nor one that a live process still runs (its
  job lock, as ``sparsenlp-report status`` reads it). ``SWEEP/jobs.json`` lists the launch's jobs for
  ``sparsenlp-report status``.
- **One line at the end** says what ran, was skipped, failed or was submitted, and what to run next; failed jobs
  are listed with their error line, and the exit status is 1 when any failed.

``lang=each`` expands to every language of the composed ``languages`` config (``subset``/``exclude``
applied). When the data is read from local files, languages without a folder there are dropped with a
warning, so an offline sweep runs what it can instead of failing on the missing ones; jobs with ``lang=all``
or ``eval_lang=all`` use the languages that have data (``RunConfig.train_langs``), said once here.

``dry_run=true`` checks and lists the jobs (overrides, then ``->`` their folder) and launches nothing. Scheduling
stays with the configured Hydra launcher (basic, joblib, submitit, ray).
"""
from __future__ import annotations

import fnmatch
import logging
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from sparsenlp.analysis import status
from sparsenlp.config import DataConfig, LanguagesConfig
from sparsenlp.config.languages import ALL
from sparsenlp.errors import SparseNLPError
from sparsenlp.job_configs import JobConfigs
from sparsenlp.runlock import FolderInUse
from sparsenlp.sweep_jobs import key_value as _key_value
from sparsenlp.sweep_jobs import reduce_job
from sparsenlp.sweep_plan import Plan, PlannedJob, plan, problems
from sparsenlp.tracking import failure, joblist
from sparsenlp.tracking.records import RESULTS

log = logging.getLogger(__name__)
EACH = "each"
SKIP_INVALID = "hydra.sweeper.skip_invalid"
SUBDIR = "hydra.sweep.subdir"
LISTED_FAILURES = 10  # failed jobs named at the end of a sweep; `sparsenlp-report status` lists them all


class StudySweeper(BasicSweeper):
    """BasicSweeper + arms + checks before launch + job folders named by identity (see the module docstring)."""

    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[dict[str, str]] = None,
                 collapse: Optional[Sequence[Mapping[str, Any]]] = None, dry_run: bool = False,
                 skip_invalid: bool = False) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.collapse = [(dict(rule["when"]), list(rule["drop"])) for rule in collapse or []]
        self.dry_run = dry_run
        self.skip_invalid = skip_invalid

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        started = time.monotonic()
        params = self._parse_config() + list(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        grid = self.jobs(BasicSweeper.split_arguments(parser.parse_overrides(params), None)[0])
        loader, config = self.hydra_context.config_loader, self.config
        checked = plan(grid, JobConfigs(lambda overrides: loader.load_sweep_config(config, overrides)).job)
        log.info("checked %d jobs in %.1f s: %d to run, %d invalid", checked.total, checked.seconds,
                 len(checked.jobs), len(checked.invalid))
        sweep_dir = Path(str(config.hydra.sweep.dir))
        done, running = self._states(sweep_dir, checked)
        if self.dry_run:
            return self._list(checked, done, running)
        if checked.invalid and not self.skip_invalid:
            raise SparseNLPError(problems(checked, SKIP_INVALID))
        if checked.invalid:
            print(problems(checked, SKIP_INVALID, left_out=True), file=sys.stderr)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, sweep_dir / "multirun.yaml")
        joblist.write(sweep_dir, [_listed(job, job.folder in done) for job in checked.jobs], _launcher_name(config),
                      [joblist.InvalidJob(overrides=list(o), problem=p) for o, p in checked.invalid])
        todo = [job for job in checked.jobs if job.folder not in done | running]
        returns = self._launch(todo)
        self._report(sweep_dir, checked, todo, [r for batch in returns for r in batch], len(done), len(running),
                     started)
        return returns

    # ------------------------------------------------------------------ the grid
    def split_arguments(self, overrides: list[Override], max_batch_size: Optional[int]) -> list[list[list[str]]]:
        """The grid's jobs in batches (Hydra's sweeper interface; :meth:`sweep` does more)."""
        jobs = self.jobs(BasicSweeper.split_arguments(overrides, None)[0])
        return list(BasicSweeper.split_overrides_to_chunks(jobs, max_batch_size)) if jobs else []

    def jobs(self, product: Iterable[list[str]]) -> list[list[str]]:
        """The grid's jobs: ``lang=each`` expanded, reduced to what each method reads, duplicates removed."""
        seen: dict[tuple[str, ...], None] = {}
        for job in self._expand_languages(product):
            seen.setdefault(tuple(self._collapsed(self._reduced(job))), None)
        jobs = [list(job) for job in seen]
        self._say_left_out(jobs)
        return jobs

    def _say_left_out(self, jobs: list[list[str]]) -> None:
        """Once at launch: which languages the jobs that use `all` languages leave out for want of local data."""
        assert self.config is not None
        default = {"lang": str(self.config.lang), "eval_lang": str(self.config.get("eval_lang"))}
        uses_all = [job for job in jobs if ALL in [{**default, **dict(map(_key_value, job))}[key] for key in default]]
        codes, missing, root = self._local_languages() if uses_all else ([], [], None)
        if missing:
            log.warning("lang=all / eval_lang=all: no data under %s for %s; those %d jobs use the %d languages that "
                        "have data", root, " ".join(missing), len(uses_all), len(codes) - len(missing))

    def _default_method(self) -> str:
        assert self.config is not None
        return str(self.config.pruning.method)

    def _reduced(self, job: list[str]) -> list[str]:
        assert self.config is not None
        return reduce_job(job, self._default_method())

    def _collapsed(self, job: list[str]) -> list[str]:
        pairs = [_key_value(o) for o in job]
        for when, drop in self.collapse:
            if all((key, str(value)) in pairs for key, value in when.items()):
                job = [o for o, (key, _) in zip(job, pairs) if not any(fnmatch.fnmatchcase(key, d) for d in drop)]
                pairs = [_key_value(o) for o in job]
        return job

    def _expand_languages(self, product: Iterable[list[str]]) -> Iterable[list[str]]:
        codes: list[str] | None = None
        for job in product:
            at = [i for i, o in enumerate(job) if _key_value(o) == ("lang", EACH)]
            if not at:
                yield job
                continue
            codes = self._languages() if codes is None else codes
            for code in codes:
                yield [f"lang={code}" if i == at[0] else o for i, o in enumerate(job)]

    def _local_languages(self) -> tuple[list[str], list[str], Optional[str]]:
        """Every code of the composed `languages` config, those without local data, and the data root."""
        assert self.config is not None
        languages = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(LanguagesConfig),
                                                        self.config.languages))
        data = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(DataConfig), self.config.data))
        codes = languages.codes()
        return codes, data.missing_languages(codes), data.root

    def _languages(self) -> list[str]:
        """Every language of the composed `languages` config that the configured data source can provide."""
        codes, missing, root = self._local_languages()
        if missing:
            log.warning("lang=each: no data under %s for %s; those languages are left out of the sweep",
                        root, " ".join(missing))
        return [c for c in codes if c not in missing]

    # ------------------------------------------------------------------ launching and reporting
    @staticmethod
    def _states(sweep_dir: Path, checked: Plan) -> tuple[set[str], set[str]]:
        """The folders of the jobs a launch skips: complete (their record is there), and running (a live process
        holds their lock)."""
        done = {job.folder for job in checked.jobs if job.skip_completed and (sweep_dir / job.folder / RESULTS).is_file()}
        now = time.time()
        running = {job.folder for job in checked.jobs if job.folder not in done and
                   status.job_state(sweep_dir / job.folder, now).state == "running"}
        return done, running

    def _list(self, checked: Plan, done: set[str], running: set[str]) -> list:
        """Every job with its folder (``-> folder``, then ``(complete)`` or ``(running)`` for those a launch would
        skip), and one line of counts."""
        for job in checked.jobs:
            state = " (complete)" if job.folder in done else " (running)" if job.folder in running else ""
            print(f"{' '.join(job.overrides)} -> {job.folder}{state}")
        skipped = "".join([f", {len(done):,} complete (skipped)" if done else "",
                           f", {len(running):,} left to the process running them" if running else ""])
        print(f"dry run: {len(checked.jobs) - len(done) - len(running):,} jobs to run, {checked.repeated:,} repeated, "
              f"{len(checked.invalid):,} invalid{skipped} (checked in {checked.seconds:.1f} s); none launched; next: "
              "the same command without hydra.sweeper.dry_run=true")
        if checked.invalid:
            raise SparseNLPError(problems(checked, SKIP_INVALID))
        return []

    def _launch(self, todo: list[PlannedJob]) -> list[Sequence[JobReturn]]:
        assert self.launcher is not None
        batches = list(BasicSweeper.split_overrides_to_chunks(
            [[*job.overrides, f"{SUBDIR}={job.folder}"] for job in todo], self.max_batch_size)) if todo else []
        returns, first = [], 0
        for batch in batches:
            returns.append(self.launcher.launch(batch, initial_job_idx=first))
            first += len(batch)
        return returns

    def _report(self, sweep_dir: Path, checked: Plan, todo: list[PlannedJob], results: list[JobReturn], skipped: int,
                running: int, started: float) -> None:
        """Failed jobs with their error line, then one line: what happened and what to run next."""
        failed = [(job, r) for job, r in zip(todo, results) if r.status == JobStatus.FAILED]
        held = [r for _, r in failed if isinstance(r._return_value, FolderInUse)]  # taken by another launch
        failed = [(job, r) for job, r in failed if not isinstance(r._return_value, FolderInUse)]
        running += len(held)
        submitted = sum(r.status == JobStatus.UNKNOWN for r in results)
        ran = sum(r.status == JobStatus.COMPLETED for r in results)
        for job, r in failed[:LISTED_FAILURES]:
            print(f"failed: {job.folder}: {failure.error_line(r._return_value)}", file=sys.stderr)
        if len(failed) > LISTED_FAILURES:
            print(f"failed: ... and {len(failed) - LISTED_FAILURES} more", file=sys.stderr)
        where = _shown(sweep_dir)
        parts = [f"{ran:,} ran" if not submitted else f"{submitted:,} submitted", f"{skipped:,} skipped (complete)"]
        if running:
            parts.append(f"{running:,} left to the process still running them")
        if failed:
            parts.append(f"{len(failed):,} failed")
        if checked.invalid:
            parts.append(f"{len(checked.invalid):,} invalid (not launched)")
        if failed:
            step = (f"sparsenlp-report status {where} lists them; fix and relaunch the same command (completed jobs "
                    "are skipped)")
        elif submitted:
            step = f"follow with sparsenlp-report status {where}, then sparsenlp-report {where}"
        else:
            step = f"sparsenlp-report {where}"
        print(f"sweep {where}: {', '.join(parts)} in {_duration(time.monotonic() - started)}; next: {step}")
        if failed:
            sys.exit(1)


def _listed(job: PlannedJob, complete: bool) -> joblist.ListedJob:
    return joblist.ListedJob(folder=job.folder, name=job.name, hash=job.digest, overrides=list(job.overrides),
                             at_launch=joblist.COMPLETE if complete else joblist.LAUNCHED)


def _launcher_name(config: Any) -> str:
    return str(config.hydra.launcher.get("_target_", "?")).rsplit(".", 1)[-1]


def _shown(path: Path) -> str:
    """The sweep folder as the user would type it: relative to where they launched when below it."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{secs:02d}s" if minutes else f"{secs}s")
