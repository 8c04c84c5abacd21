"""submitit's SLURM launcher (``hydra-submitit-launcher``), made for a study of thousands of jobs.

- **Arrays below MaxArraySize.** submitit submits a launch as one job array, which SLURM refuses above its
  ``MaxArraySize`` (1001 by default; the reference study has 3,567 jobs). The jobs are split into arrays of at most
  ``max_array_size`` jobs (null: the cluster's MaxArraySize, from ``scontrol show config``), all submitted at once;
  ``array_parallelism`` stays the cap on the jobs running at once, shared among the arrays.
- **A launch that returns.** submitit's launcher waits for every job to end, so the launching process must outlive
  the study. With ``wait: false`` it returns once the arrays are submitted; ``sparsenlp-report status SWEEP`` follows
  the jobs, and relaunching the same command later submits only what has no record (completed jobs are skipped).
- With ``wait: true`` a job that SLURM ended without a result (cancelled, out of requeues) is reported as failed
  with SLURM's reason, and the other jobs' results are still collected.
"""
from __future__ import annotations

import logging
import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import OmegaConf

log = logging.getLogger(__name__)
DEFAULT_MAX_ARRAY_SIZE = 1001  # SLURM's default MaxArraySize


@dataclass
class StudySlurmQueueConf(SlurmQueueConf):
    """The plugin's SLURM options, plus this launcher's (conf/hydra/launcher/submitit_slurm.yaml sets them)."""

    _target_: str = "hydra_plugins.sparsenlp_slurm_launcher._launcher.StudySlurmLauncher"
    wait: bool = True  # false: return once the jobs are submitted (follow with sparsenlp-report status)
    max_array_size: Optional[int] = None  # jobs per array; null: the cluster's MaxArraySize


def cluster_max_array_size() -> int:
    """SLURM's MaxArraySize for this cluster (``scontrol show config``), or its default when it cannot be asked."""
    if shutil.which("scontrol") is None:
        return DEFAULT_MAX_ARRAY_SIZE
    try:
        out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return DEFAULT_MAX_ARRAY_SIZE
    found = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, re.MULTILINE)
    return int(found.group(1)) if found else DEFAULT_MAX_ARRAY_SIZE


def chunks(n: int, size: int) -> list[range]:
    """``range(n)`` cut into consecutive pieces of at most ``size``."""
    return [range(start, min(start + size, n)) for start in range(0, n, size)]


class StudySlurmLauncher(SlurmLauncher):
    """See the module docstring."""

    def __init__(self, wait: bool = True, max_array_size: Optional[int] = None, **params: Any) -> None:
        super().__init__(**params)
        self.wait = wait
        self.max_array_size = max_array_size

    def _executor(self) -> Any:
        """submitit's executor with this launcher's parameters, built as the plugin builds it."""
        import submitit

        init = {"folder": self.params["submitit_folder"]}
        if "max_num_timeout" in self.params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = self.params["max_num_timeout"]
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"{self._EXECUTOR}_{k}": v for k, v in self.params.items()
                                      if k not in ("submitit_folder", "max_num_timeout")})
        return executor

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None
        executor = self._executor()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        params = [(list(o), "hydra.sweep.dir", initial_job_idx + i, f"job_id_for_{initial_job_idx + i}",
                   Singleton.get_state()) for i, o in enumerate(job_overrides)]
        size = self.max_array_size or cluster_max_array_size()
        pieces = chunks(len(params), size)
        running = max(1, math.ceil(int(self.params.get("array_parallelism") or size) / len(pieces)))
        executor.update_parameters(slurm_array_parallelism=running)
        jobs = []
        for piece in pieces:
            jobs += executor.map_array(self, *zip(*(params[i] for i in piece)))
        arrays = sorted({str(job.job_id).split("_")[0] for job in jobs})
        log.info("submitted %d jobs to SLURM as %d array(s) of at most %d (%s), %d running at once per array; "
                 "SLURM logs: %s", len(jobs), len(arrays), size, ", ".join(arrays), running,
                 self.params["submitit_folder"].replace("%j", "<job id>"))
        if not self.wait:
            return [JobReturn(overrides=filter_overrides(o), status=JobStatus.UNKNOWN) for o in job_overrides]
        return [self._result(job, o) for job, o in zip(jobs, job_overrides)]

    @staticmethod
    def _result(job: Any, overrides: Sequence[str]) -> JobReturn:
        """The job's own result, or a failed one with SLURM's reason when it ended without a result."""
        import submitit

        try:
            return job.results()[0]
        except (submitit.core.utils.UncompletedJobError, submitit.core.utils.FailedJobError) as exc:
            failed = JobReturn(overrides=filter_overrides(overrides), status=JobStatus.FAILED)
            failed.return_value = RuntimeError(f"SLURM job {job.job_id} ended without a result ({job.state}): "
                                               f"{str(exc).strip().splitlines()[0]}")
            return failed


def register() -> None:
    """Make ``hydra/launcher=submitit_slurm`` this launcher (with its options) once Hydra has scanned its plugins."""
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance().register(StudySlurmLauncher)
    ConfigStore.instance().store(group="hydra/launcher", name="submitit_slurm", node=StudySlurmQueueConf,
                                 provider="sparsenlp")
