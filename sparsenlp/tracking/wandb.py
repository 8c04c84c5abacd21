"""Weights & Biases tracking: one W&B run per job, secondary to the local record.

The run's ``results.json`` is the source of truth and is written before :meth:`WandbTracker.log_final`;
W&B is a convenience view on top of it. So nothing here may stop a run: ``wandb.init`` failures (no
network, no login, a timeout) and later logging errors are logged as warnings and the tracker turns
into a no-op. ``logger.mode=disabled`` never imports wandb at all.

Launchers: current wandb (checked with 0.31) has no ``Settings(start_method=...)`` any more; every
process talks to a separate ``wandb-core`` service over a socket, which is fork- and spawn-safe. Runs
are created with ``reinit="create_new"`` and logged only through the run object, never the global
``wandb.run``, so several jobs in one process (basic launcher, a reused joblib/loky worker) each get
their own run; submitit jobs are separate processes anyway.

Panels: every run's config gets a ``derived`` section (lang, tier, script, family as plain strings)
to group by, and the final test metrics are logged against ``sparsity/target`` (``define_metric``),
so a line plot of ``test/f1`` with runs grouped by ``derived.tier`` is F1 vs sparsity per tier.
"""
from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from statistics import fmean
from types import TracebackType
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from sparsenlp.data.languages import LanguageInfo, info, resolve_langs
from sparsenlp.errors import SparseNLPError
from sparsenlp.training.callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover
    from wandb import Run

    from sparsenlp.training.trainer import Trainer

log = logging.getLogger(__name__)

MODES = ("online", "offline", "disabled")
SINGLE_RUNS_GROUP = "single-runs"
# overrides that say where or how a job runs, not what it is: left out of W&B run names
_NOT_IN_NAME = ("logger.", "logger=", "hydra.", "hydra/", "data.root=", "data.cache_dir=", "data.hub_cache_dir=",
                "trainer.progress=", "trainer.cpu_threads=", "trainer.device=", "skip_completed=")


def build_tracker(cfg: DictConfig, output_dir: Path) -> WandbTracker:
    """The tracker for one job; ``cfg`` is the whole run config (with ``logger``, ``lang``, ``pruning``...)."""
    mode = OmegaConf.select(cfg, "logger.mode", default="disabled")
    if mode not in MODES:
        raise SparseNLPError(f"logger.mode={mode!r} is not valid; use one of: {', '.join(MODES)}")
    return WandbTracker(cfg, Path(output_dir))


class WandbTracker(Callback):
    """Trainer callback that mirrors one job into one W&B run (see the module docstring)."""

    def __init__(self, cfg: DictConfig, output_dir: Path) -> None:
        self.cfg = cfg
        self.output_dir = output_dir
        self.mode: str = OmegaConf.select(cfg, "logger.mode", default="disabled")
        self.run: Run | None = None
        self._logging_failed = False
        self._last_step = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> bool:
        """Open the W&B run; False (with a warning) when disabled or when W&B is unavailable."""
        if self.mode == "disabled" or self.run is not None:
            return self.run is not None
        try:
            self.run = self._init()
        except Exception as error:  # noqa: BLE001 - W&B must never stop a run
            log.warning("W&B init failed (%s: %s); the run continues without W&B (results.json is unaffected)",
                        type(error).__name__, error)
            return False
        self._guard("define_metric", self._define_metrics)
        return True

    def finish(self, exit_code: int = 0) -> None:
        """Close the W&B run (exit_code != 0 marks it failed). Safe to call any number of times."""
        run, self.run = self.run, None
        if run is None:
            return
        try:
            run.finish(exit_code=exit_code)
        except Exception as error:  # noqa: BLE001
            log.warning("W&B finish failed (%s: %s); results.json is unaffected", type(error).__name__, error)

    def __enter__(self) -> WandbTracker:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)

    # ------------------------------------------------------------------ trainer hooks
    def on_log(self, trainer: Trainer, step: int, metrics: dict[str, float]) -> None:
        self._log(dict(metrics), step)

    def on_evaluate(self, trainer: Trainer, step: int, metrics: dict[str, Any]) -> None:
        self._log(dict(metrics), step)

    # ------------------------------------------------------------------ end of run
    def log_final(self, results: dict[str, Any]) -> None:
        """Mirror a results.json record: test F1 per language × condition, robustness gaps, sparsity."""
        if self.run is None or self._logging_failed:
            return
        import wandb

        sparsity = results.get("sparsity") or {}
        row: dict[str, Any] = {"sparsity/target": float(sparsity.get("target", 0.0))}
        if "achieved" in sparsity:
            row["sparsity/achieved"] = float(sparsity["achieved"])
        row.update(final_metrics(results))
        if sparsity.get("per_tensor"):
            row["sparsity/per_tensor"] = wandb.Table(
                columns=["tensor", "target", "achieved", "numel"],
                data=[[name, t["target"], t["achieved"], t["numel"]] for name, t in sparsity["per_tensor"].items()])
        if sparsity.get("trace"):
            row["sparsity/trace"] = wandb.Table(
                columns=["step", "target", "achieved"],
                data=[[t["step"], t["target"], t["achieved"]] for t in sparsity["trace"]])
        # A row of its own after training, so the last training row keeps its own sparsity values.
        self._log(row, step=self._last_step + 1)
        # The dev F1 of the model that was tested (the best checkpoint), not of the last evaluation.
        extra = {"dev/f1": results.get("dev", {}).get("f1"),
                 "dev/best_step": results.get("training", {}).get("best_step"),
                 "time/total_seconds": results.get("timings", {}).get("total_seconds")}
        summary = {k: v for k, v in extra.items() if v is not None}
        self._guard("summary update", lambda: self.run.summary.update(summary))

    # ------------------------------------------------------------------ internals
    def _init(self) -> Run:
        import wandb

        logger = self.cfg.logger
        sweep_dir, overrides = _hydra_job()
        config = OmegaConf.to_container(self.cfg, resolve=True)
        config["derived"] = self._derived()
        settings = wandb.Settings(
            init_timeout=float(logger.get("init_timeout", 90)),
            x_disable_stats=not logger.get("system_metrics", True),
            console=str(logger.get("console", "off")),
            reinit="create_new",
        )
        return wandb.init(
            project=logger.get("project"), entity=logger.get("entity"), mode=self.mode,
            dir=str(logger.get("dir") or self.output_dir), config=config, job_type="train",
            group=logger.get("group") or _group(sweep_dir), name=self._name(overrides),
            tags=self._tags() + [str(t) for t in logger.get("tags") or []], notes=logger.get("notes"),
            settings=settings,
        )

    def _define_metrics(self) -> None:
        """Final test/robustness metrics are plotted against the target sparsity (F1-vs-sparsity panels)."""
        assert self.run is not None
        self.run.define_metric("sparsity/target")
        for final in ("test/*", "robustness/*"):
            self.run.define_metric(final, step_metric="sparsity/target", step_sync=True)

    def _languages(self) -> list[LanguageInfo]:
        languages = _plain(self.cfg.languages)
        return [info(languages, code) for code in resolve_langs(_plain(self.cfg.lang), languages)]

    def _derived(self) -> dict[str, str]:
        """One plain string per grouping key (multi-language runs join with '+')."""
        infos = self._languages()
        return {"lang": _join(i.code for i in infos), "tier": _join(i.tier for i in infos),
                "script": _join(i.script for i in infos), "family": _join(i.family for i in infos)}

    def _tags(self) -> list[str]:
        cfg, infos = self.cfg, self._languages()
        langs = ["all"] if cfg.lang == "all" else [i.code for i in infos]
        tags = [f"lang:{code}" for code in langs] + [f"tier:{t}" for t in sorted({i.tier for i in infos})]
        for key, path in (("method", "pruning.method"), ("schedule", "schedule.name"),
                          ("sparsity", "pruning.sparsity"), ("seed", "seed")):
            value = OmegaConf.select(cfg, path, default=None)
            if value is not None:
                tags.append(f"{key}:{value}")
        return tags

    def _name(self, overrides: list[str]) -> str:
        """The job's own overrides (what makes it differ from its sweep siblings), else a short summary."""
        own = [o for o in overrides if not o.lstrip("+~").startswith(_NOT_IN_NAME)]
        if own:
            return ",".join(own)
        sparsity = OmegaConf.select(self.cfg, "pruning.sparsity", default=None)
        parts = [_join(i.code for i in self._languages()), OmegaConf.select(self.cfg, "pruning.method", default=None),
                 None if sparsity is None else f"s{sparsity}", f"seed{self.cfg.seed}"]
        return "-".join(str(p) for p in parts if p is not None)

    def _log(self, data: dict[str, Any], step: int) -> None:
        self._last_step = max(self._last_step, step)
        if self.run is not None and not self._logging_failed:
            self._guard("log", lambda: self.run.log(data, step=step))

    def _guard(self, what: str, action: Callable[[], object]) -> None:
        """Run a W&B call; on error warn once and stop logging (finish() is still attempted)."""
        try:
            action()
        except Exception as error:  # noqa: BLE001 - W&B must never stop a run
            self._logging_failed = True
            log.warning("W&B %s failed (%s: %s); no further W&B logging for this run (results.json is unaffected)",
                        what, type(error).__name__, error)


def final_metrics(results: dict[str, Any]) -> dict[str, float]:
    """Flat W&B metrics from a results.json record.

    ``test/f1`` is the clean F1 averaged over the test languages; ``test/<lang>/<condition>/f1`` one
    per condition; ``robustness/<lang>/<condition>/{gap,gap_ratio}`` and their mean ``robustness/gap``.
    Condition names are made W&B-safe (letters, digits, '_'): ``char_noise@0.1`` -> ``char_noise_0_1``.
    """
    row: dict[str, float] = {}
    clean = []
    for lang, conditions in results.get("test", {}).items():
        for condition, metrics in conditions.items():
            row[f"test/{_safe(lang)}/{_safe(condition)}/f1"] = float(metrics["f1"])
        if "clean" in conditions:
            clean.append(float(conditions["clean"]["f1"]))
    if clean:
        row["test/f1"] = fmean(clean)
    gaps = []
    for lang, conditions in (results.get("robustness") or {}).items():
        for condition, gap in conditions.items():
            prefix = f"robustness/{_safe(lang)}/{_safe(condition)}"
            row[f"{prefix}/gap"], row[f"{prefix}/gap_ratio"] = float(gap["gap"]), float(gap["gap_ratio"])
            gaps.append(float(gap["gap"]))
    if gaps:
        row["robustness/gap"] = fmean(gaps)
    return row


def _safe(name: str) -> str:
    """W&B sorts and filters only metric names made of letters, digits and '_' ('.' also means nesting)."""
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def _join(values: Iterable[str]) -> str:
    """Ordered, de-duplicated, '+'-joined: ``de+af``, ``high+low``."""
    return "+".join(dict.fromkeys(values))


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _hydra_job() -> tuple[str | None, list[str]]:
    """(sweep dir when running under --multirun, the job's task overrides); (None, []) without Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None, []
    hydra = HydraConfig.get()
    sweep_dir = str(hydra.sweep.dir) if hydra.mode == RunMode.MULTIRUN else None
    return sweep_dir, [str(o) for o in hydra.overrides.task]


def _group(sweep_dir: str | None) -> str:
    """The sweep's last two path parts (``multirun/2026-01-31/12-00-00`` -> ``2026-01-31/12-00-00``)."""
    if sweep_dir is None:
        return SINGLE_RUNS_GROUP
    return "/".join(Path(sweep_dir).parts[-2:])


def read_offline_run(path: Path) -> dict[str, Any]:
    """What an offline W&B run recorded, read back from its ``run-*.wandb`` transaction log.

    ``path`` is the ``.wandb`` file or any folder holding exactly one ``offline-run-*`` (e.g. a job's
    output_dir). Uses wandb's own reader (``wandb leet inspect --json``, wandb >= 0.31) and folds its
    records into ``{"project", "run_id", "name", "group", "job_type", "tags", "notes", "config",
    "summary", "history", "metrics", "exit_code"}``; ``summary`` keys are as recorded (values nested by
    wandb, e.g. a Table's fields, appear as ``key.field``). For tests and for checking a run before
    ``wandb sync``.
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(path.rglob("offline-run-*/run-*.wandb"))
        if len(found) != 1:
            raise FileNotFoundError(f"expected one offline W&B run under {path}, found {len(found)}: {found}")
        path = found[0]
    out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(path)],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    run: dict[str, Any] = {"config": {}, "summary": {}, "history": [], "metrics": [], "exit_code": None}
    for record in map(json.loads, filter(None, out.splitlines())):
        kind, body = record["type"], record.get(record["type"], {})
        if kind == "run":
            run.update(project=body.get("project"), run_id=body.get("run_id"), name=body.get("display_name"),
                       group=body.get("run_group"), job_type=body.get("job_type"), tags=body.get("tags", []),
                       notes=body.get("notes"))
            run["config"].update(body.get("config", {}).get("update", {}))
        elif kind == "config":
            run["config"].update(body.get("update", {}))
        elif kind == "summary":
            run["summary"].update(body.get("update", {}))
            for removed in body.get("remove", []):
                run["summary"].pop(removed["key"], None)
        elif kind == "history":
            run["history"].append(body["item"])
        elif kind == "metric":
            run["metrics"].append(body)
        elif kind == "exit":
            run["exit_code"] = body.get("exit_code", 0)
    run["config"].pop("_wandb", None)
    return run
