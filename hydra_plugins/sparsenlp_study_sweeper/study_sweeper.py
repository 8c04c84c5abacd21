"""The study sweeper: Hydra's basic sweeper (cartesian product of ``-m`` values), made to enumerate arms.

Every job is reduced to what its pruning method reads (``sparsenlp.sweep_jobs.reduce_job``: sparsity 0 is the
dense arm, keys and schedules a method does not read are dropped), so the dense baseline of a method x sparsity
grid runs once per language and seed; ``collapse`` (``conf/hydra/sweeper/study.yaml``, empty by default) adds
rules of one's own: a job whose overrides match ``when`` drops the overrides listed in ``drop``. Repeated jobs
are then launched once, in first-seen order.

``lang=each`` expands to every language of the composed ``languages`` config (``subset``/``exclude``
applied). When the data is read from local files, languages without a folder there are dropped with a
warning, so an offline sweep runs what it can instead of failing on the missing ones; jobs with ``lang=all``
or ``eval_lang=all`` use the languages that have data (``RunConfig.train_langs``), said once here.

``hydra.sweeper.dry_run=true`` prints the jobs (one line of overrides each) and launches nothing.
Scheduling stays with the configured Hydra launcher (basic, joblib, submitit, ray).
"""
from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.types import Override
from omegaconf import OmegaConf

from sparsenlp.config import DataConfig, LanguagesConfig
from sparsenlp.config.languages import ALL
from sparsenlp.sweep_jobs import key_value as _key_value
from sparsenlp.sweep_jobs import reduce_job

log = logging.getLogger(__name__)
EACH = "each"


class StudySweeper(BasicSweeper):
    """BasicSweeper + collapse rules + ``lang=each`` + dry run (see the module docstring)."""

    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[dict[str, str]] = None,
                 collapse: Optional[Sequence[Mapping[str, Any]]] = None, dry_run: bool = False) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.collapse = [(dict(rule["when"]), list(rule["drop"])) for rule in collapse or []]
        self.dry_run = dry_run

    def split_arguments(self, overrides: list[Override], max_batch_size: Optional[int]) -> list[list[list[str]]]:
        jobs = self.jobs(BasicSweeper.split_arguments(overrides, None)[0])
        if self.dry_run:
            print("\n".join(" ".join(job) for job in jobs))
            log.info("dry run: %d jobs, none launched", len(jobs))
            return []
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
        return reduce_job(job, self._default_method(), str(self.config.schedule.name))

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
