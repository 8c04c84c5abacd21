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

Panels: every run's config carries its ``arm`` (model, regime, method, criterion, scope, schedule,
sparsity, embedding sparsity, quantization, selection rule, training length, seed), ``lang_info`` (lang, tier, script, family as plain
strings) to filter by and ``panel`` (each language fact joined with the arm minus its sparsity) to group
by, so a panel never pools two arms; metric keys do not embed the language (``test/f1``,
``test/<condition>/f1``), so one panel compares every language of a sweep; the final test metrics are
logged against ``sparsity/target`` (``define_metric``), next to the achieved sparsity of each encoder
layer (``sparsity/layer_<i>``). :func:`history_keys` says, from a record alone, which keys its run
logged, so a dashboard can be checked against a sweep without reading W&B back.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from statistics import fmean
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sparsenlp import identity
from sparsenlp.tracking.schema import ARM_FIELDS, CLEAN, Arm, RunRecord
from sparsenlp.training.callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover
    from wandb import Run

    from sparsenlp.config import RunConfig
    from sparsenlp.training.trainer import Trainer

log = logging.getLogger(__name__)

SINGLE_RUNS_GROUP = "single-runs"
# What the trainer logs through on_log / on_evaluate while a record's history / dev_history fills.
TRAIN_KEYS = ("train/loss", "train/lr", "train/epoch")
DEV_KEYS = ("dev/f1", "dev/precision", "dev/recall")
PRUNING_KEYS = ("sparsity/target", "sparsity/achieved")
EMBEDDING_KEYS = ("sparsity/embedding_target", "sparsity/embedding_achieved")  # the pruner's updates, when pruned
LAYER = re.compile(r"(?:^|\.)layer\.(\d+)\.")


def build_tracker(settings: RunConfig, arm: Arm, output_dir: Path, config: dict[str, Any]) -> WandbTracker:
    """The tracker for one job; ``config`` is the job's resolved config (W&B's run config)."""
    return WandbTracker(settings, arm, Path(output_dir), config)


class WandbTracker(Callback):
    """Trainer callback that mirrors one job into one W&B run (see the module docstring)."""

    def __init__(self, settings: RunConfig, arm: Arm, output_dir: Path, config: dict[str, Any]) -> None:
        self.settings = settings
        self.arm = arm
        self.config = config
        self.output_dir = output_dir
        self.mode = settings.logger.mode
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
    def log_final(self, record: RunRecord) -> None:
        """Mirror a record: test F1 per condition, robustness gaps, sparsity per tensor and over time."""
        if self.run is None or self._logging_failed:
            return
        import wandb

        pruning = record.pruning
        row: dict[str, Any] = final_scalars(record)
        if pruning is not None:
            if pruning.per_tensor:
                row["sparsity/per_tensor"] = wandb.Table(
                    columns=["tensor", "target", "achieved", "numel"],
                    data=[[name, t.target, t.achieved, t.numel] for name, t in pruning.per_tensor.items()])
            if pruning.trace:
                row["sparsity/trace"] = wandb.Table(columns=["step", "target", "achieved"],
                                                    data=[[t.step, t.target, t.achieved] for t in pruning.trace])
        if len(record.test) > 1:
            row["test/per_language"] = wandb.Table(
                columns=["lang", "condition", "f1", "transfer"],
                data=[[lang, cond, m.f1, record.languages[lang].transfer]
                      for lang, conds in record.test.items() for cond, m in conds.items()])
        # A row of its own after training, so the last training row keeps its own sparsity values.
        self._log(row, step=self._last_step + 1)
        # The dev F1 of the model that was tested (the best checkpoint), not of the last evaluation.
        extra = {"dev/f1": record.dev.f1, "dev/selected_step": record.training.selection.step,
                 "dev/candidates": record.training.selection.candidates,
                 "time/total_seconds": record.timings.get("total_seconds")}
        summary = {k: v for k, v in extra.items() if v is not None}
        self._guard("summary update", lambda: self.run.summary.update(summary))

    # ------------------------------------------------------------------ internals
    def _init(self) -> Run:
        import wandb

        logger = self.settings.logger
        sweep_dir, _ = hydra_job()
        lang_info = self._lang_info()
        config = {**self.config, "arm": self.arm.model_dump(), "lang_info": lang_info,
                  "panel": panel_groups(self.arm, lang_info)}
        settings = wandb.Settings(init_timeout=logger.init_timeout, x_disable_stats=not logger.system_metrics,
                                  console=logger.console, reinit="create_new", silent=not logger.verbose)
        # named by what the job runs and where its record lives: a relaunched job resumes its run
        run_id = identity.run_id(identity.config_hash(self.config), self.output_dir)
        return wandb.init(
            project=logger.project, entity=logger.entity, mode=self.mode, dir=str(logger.dir or self.output_dir),
            config=config, job_type="train", group=logger.group or sweep_group(sweep_dir), name=self.arm.run_name(),
            tags=self._tags() + list(logger.tags), notes=logger.notes, settings=settings, id=run_id, resume="allow",
        )

    def _define_metrics(self) -> None:
        """Final test/robustness metrics are plotted against the target sparsity (F1-vs-sparsity panels)."""
        assert self.run is not None
        self.run.define_metric("sparsity/target")
        for final in ("test/*", "robustness/*", "int8/*"):
            self.run.define_metric(final, step_metric="sparsity/target", step_sync=True)

    def _lang_info(self) -> dict[str, str]:
        """One plain string per grouping key of the test languages (several join with '+')."""
        languages, codes = self.settings.languages, self.settings.eval_langs
        return {"lang": _join(codes), "tier": _join(languages.tier(c) for c in codes),
                "script": _join(languages.facts(c).script for c in codes),
                "family": _join(languages.facts(c).family for c in codes)}

    def _tags(self) -> list[str]:
        languages, codes = self.settings.languages, self.settings.eval_langs
        langs = ["all"] if self.settings.lang == "all" else codes
        tags = [f"lang:{code}" for code in langs] + [f"tier:{t}" for t in sorted({languages.tier(c) for c in codes})]
        # every arm field but the languages (tagged above) and those a method leaves empty (no structure, no
        # calibration data, no recovery steps)
        empty = {key for key, spec in Arm.model_fields.items() if spec.default in (None, 0)}
        fields = {key: getattr(self.arm, key) for key in ARM_FIELDS if key != "train_langs"}
        return tags + [f"{key}:{_tag_value(value)}" for key, value in fields.items()
                       if not (key in empty and value == Arm.model_fields[key].default)]

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


def _tag_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def panel_groups(arm: Arm, lang_info: dict[str, str]) -> dict[str, str]:
    """Config keys a W&B panel can group by without pooling arms: each language fact joined with everything
    that makes the arm except its sparsity (the x axis) and seed (the replicates), e.g.
    ``panel.tier = "low · tiny/per_language · global_magnitude·cubic+emb · best@0.7; epochs=10"``."""
    arm_key = f"{arm.model}/{arm.regime} · {arm.setting()} · {arm.protocol()}"
    return {"arm": arm_key, **{key: f"{value} · {arm_key}" for key, value in lang_info.items()}}


def final_metrics(record: RunRecord) -> dict[str, float]:
    """Flat W&B metrics from a record, with keys that do not name the language.

    One test language: ``test/f1`` (clean), ``test/<condition>/f1`` per perturbed condition and
    ``robustness/<condition>/{gap,gap_ratio}``. Several: the same keys hold the mean over the test
    languages (each language weighs equally; a condition is averaged over the languages it applies to, one
    that does not apply is left out, never counted as 0) and ``test/<lang>/...`` the per-language values. A
    quantized model's scores are under the same keys prefixed ``int8/``, with ``int8/size_ratio`` and
    ``int8/speedup``.
    Condition names are made W&B-safe (letters, digits, '_'): ``char_noise@0.1`` -> ``char_noise_0_1``.
    """
    row = _condition_metrics(record.test, record.robustness)
    quantized = record.quantization
    if quantized is not None:
        row.update({f"int8/{k}": v for k, v in _condition_metrics(quantized.test, quantized.robustness).items()})
        row["int8/size_ratio"] = quantized.size_ratio
        if quantized.speedup is not None:
            row["int8/speedup"] = quantized.speedup
    return row


def _condition_metrics(test: dict[str, Any], robustness: dict[str, Any]) -> dict[str, float]:
    """Means over languages leave out what a language does not have (a condition that does not apply, an F1
    without gold entities): a missing value is never counted as 0, and a key without any value is not logged."""
    row: dict[str, float] = {}
    per_key: dict[str, list[float]] = {}
    several = len(test) > 1
    for lang, conditions in test.items():
        for condition, metrics in conditions.items():
            if metrics.f1 is None:
                continue
            key = "test/f1" if condition == CLEAN else f"test/{safe(condition)}/f1"
            per_key.setdefault(key, []).append(metrics.f1)
            if several:
                row[f"test/{safe(lang)}/{safe(condition)}/f1"] = metrics.f1
        for condition, gap in robustness.get(lang, {}).items():
            if gap.gap is not None:
                per_key.setdefault(f"robustness/{safe(condition)}/gap", []).append(gap.gap)
            if gap.gap_ratio is not None:
                per_key.setdefault(f"robustness/{safe(condition)}/gap_ratio", []).append(gap.gap_ratio)
    row.update({key: fmean(values) for key, values in per_key.items()})
    return row


def layer_sparsity(record: RunRecord) -> dict[str, float]:
    """Achieved sparsity per encoder layer, ``sparsity/layer_<i>`` (pruned over prunable weights of the
    layer's tensors), and ``sparsity/embeddings`` when an embedding matrix was pruned: scalars, because a
    panel cannot plot a column of the per-tensor table against the target sparsity."""
    if record.pruning is None:
        return {}
    layers: dict[int, list[int]] = {}
    embeddings = [0, 0]
    for name, tensor in record.pruning.per_tensor.items():
        layer = LAYER.search(name)
        totals = layers.setdefault(int(layer.group(1)), [0, 0]) if layer else (
            embeddings if "embeddings" in name else None)
        if totals is not None:
            totals[0] += tensor.pruned
            totals[1] += tensor.numel
    row = {f"sparsity/layer_{i}": pruned / numel for i, (pruned, numel) in sorted(layers.items())}
    if embeddings[1]:
        row["sparsity/embeddings"] = embeddings[0] / embeddings[1]
    return row


def final_scalars(record: RunRecord) -> dict[str, float]:
    """The scalars of the row :meth:`WandbTracker.log_final` logs: target (x of every final panel) and
    achieved sparsity, :func:`final_metrics` and :func:`layer_sparsity`."""
    row: dict[str, float] = {"sparsity/target": record.arm.sparsity, **final_metrics(record)}
    if record.pruning is not None:
        row["sparsity/achieved"] = record.pruning.achieved
    return {**row, **layer_sparsity(record)}


def history_keys(record: RunRecord) -> set[str]:
    """The scalar history keys the run of ``record`` logged to W&B (what a line plot can draw); empty when
    its logger was off. Derived from the record, so it holds for online runs too."""
    logger = record.config.get("logger") or {}
    if logger.get("name") == "none" or logger.get("mode") == "disabled":
        return set()
    keys = set(final_scalars(record))
    if record.training.history:
        keys.update(TRAIN_KEYS)
    if record.training.dev_history:
        keys.update(DEV_KEYS)
    if record.pruning is not None and record.pruning.trace:
        keys.update(PRUNING_KEYS)
        if record.pruning.embedding_target is not None:
            keys.update(EMBEDDING_KEYS)
    return keys


def safe(name: str) -> str:
    """W&B sorts and filters only metric names made of letters, digits and '_' ('.' also means nesting)."""
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def _join(values: Iterable[str]) -> str:
    """Ordered, de-duplicated, '+'-joined: ``de+af``, ``high+low``."""
    return "+".join(dict.fromkeys(values))


def hydra_job() -> tuple[str | None, list[str]]:
    """(sweep dir when running under --multirun, the job's task overrides); (None, []) without Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None, []
    hydra = HydraConfig.get()
    sweep_dir = str(hydra.sweep.dir) if hydra.mode == RunMode.MULTIRUN else None
    return sweep_dir, [str(o) for o in hydra.overrides.task]


def sweep_group(sweep_dir: str | None, cwd: str | Path | None = None) -> str:
    """The W&B group of a sweep: its folder as given (relative to ``cwd``, where it was launched; default:
    here), so two sweeps never share a group unless they share a folder."""
    if sweep_dir is None:
        return SINGLE_RUNS_GROUP
    path = Path(sweep_dir)
    if path.is_absolute():
        try:
            path = path.relative_to(Path(cwd or os.getcwd()))
        except ValueError:
            pass
    return path.as_posix()


__all__ = ["SINGLE_RUNS_GROUP", "WandbTracker", "build_tracker", "final_metrics", "final_scalars", "history_keys",
           "hydra_job", "layer_sparsity", "safe", "sweep_group"]
