"""``sparsenlp-train --help``: every option with its default and description, from the config classes.

The text is built from the dataclasses' field metadata (``sparsenlp.options.option``) and the method table, so
it can never disagree with what a run validates; the group options are the YAML files of ``conf/`` and the
methods. Nothing here imports torch: help is printed in well under two seconds.
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from sparsenlp.config import RunConfig
from sparsenlp.config.languages import LanguagesConfig
from sparsenlp.pruning.methods import NO_SCHEDULE, PruningConfig, methods

HEADER = """sparsenlp-train: fine-tune a multilingual encoder for NER on WikiANN while pruning it, evaluate each language
on clean and perturbed test sets, and record the run (results.json, predictions, W&B).

  sparsenlp-train lang=sw pruning=global_magnitude schedule=cubic pruning.sparsity=0.9
  sparsenlp-train -m experiment=smoke                     # a sweep (Hydra multirun)
  sparsenlp-train -m experiment=paper hydra.sweeper.dry_run=true   # list a study's jobs
  sparsenlp-train --cfg job model=tiny                    # print the composed config
  sparsenlp-train --help languages                        # the language table
  sparsenlp-train --hydra-help                            # Hydra's own options (launchers, sweep dirs)
"""
WIDTH = 34


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
    else:
        value = MISSING
    if value == MISSING:
        return "(required)"
    return "null" if value is None else str(value).replace("True", "true").replace("False", "false")


def _rows(cls: type, prefix: str, skip: set[str] = frozenset()) -> list[str]:
    """One line per key of ``cls`` (nested config classes expanded), ``key=default  help [accepted]``."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        key = f"{prefix}{f.name}"
        nested = next((t for t in (hints[f.name], *typing.get_args(hints[f.name])) if dataclasses.is_dataclass(t)),
                      None)
        if nested is not None:
            rows += _rows(nested, f"{key}.")
            continue
        check = f.metadata.get("check")
        accepted = check.describe() if check is not None else ""
        text = f.metadata.get("help", "") + (f" [{accepted}]" if accepted else "")
        rows.append(f"  {f'{key}={_default(f)}':<{WIDTH}} {text}")
    return rows


def _options(conf: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (conf / group).glob("*.yaml"))


def describe(conf: Path) -> str:
    """The full help text; ``conf``: the folder of YAML options."""
    lines = [HEADER, "Config groups (group=option):"]
    for group in ("model", "data", "languages", "schedule", "perturbation", "quantization", "trainer", "logger",
                  "experiment"):
        lines.append(f"  {group:<14} {', '.join(_options(conf, group))}")
    lines.append(f"  {'pruning':<14} {', '.join(methods())}")
    lines.append(f"  {'hydra/launcher':<14} {', '.join(['basic', *_options(conf, 'hydra/launcher')])}")
    lines += ["", "Keys (key=default, then what it means) of a run:"]
    groups = {f.name for f in dataclasses.fields(RunConfig)
              if dataclasses.is_dataclass(typing.get_type_hints(RunConfig)[f.name])}
    lines += _rows(RunConfig, "", skip=groups | {"output_dir"})
    hints = typing.get_type_hints(RunConfig)
    for group in sorted(groups - {"pruning"}):
        lines += ["", f"{group}:"] + _rows(hints[group], f"{group}.", skip={"langs"} if group == "languages" else set())
    lines += ["", "pruning (pruning=<method> selects the method, its keys and the schedule it runs under):"]
    base = {f.name for f in dataclasses.fields(PruningConfig)}
    for name, method in methods().items():
        schedules = "no schedule" if method.schedules == (NO_SCHEDULE,) else \
            f"schedule: {method.schedules[0]} (also {', '.join(method.schedules[1:])})"
        lines += [f"  pruning={name}: {method.summary}; {schedules}"]
        lines += ["  " + row for row in _rows(method.config, "pruning.", skip=base)]
    lines += ["", "Sweeps: add -m and comma-separated values (lang=de,sw pruning.sparsity=0,0.5,0.9); run them in "
              "parallel with hydra/launcher=joblib, on SLURM with hydra/launcher=submitit_slurm, on Ray with "
              "hydra/launcher=ray. Every job is checked before the first starts (hydra.sweeper.dry_run=true: check "
              "and list only; hydra.sweeper.skip_invalid=true: launch the valid ones anyway); its folder in "
              "hydra.sweep.dir (default multirun/<experiment> or multirun/sweep) is named by what it runs, so a "
              "relaunch or a larger grid runs only what has no record. On SLURM, hydra.launcher.wait=false returns "
              "once the jobs are submitted. Follow a sweep: sparsenlp-report status SWEEP_DIR. "
              "Reports: sparsenlp-report SWEEP_DIR."]
    return "\n".join(lines) + "\n"


def describe_languages(languages: LanguagesConfig) -> str:
    """The language table of a `languages` config: code, name, script, family, training size, tier."""
    rows = [f"  {'code':<5} {'name':<12} {'script':<11} {'family':<14} {'train':>6}  tier"]
    for code in sorted(languages.codes()):
        facts: Any = languages.langs[code]
        rows.append(f"  {code:<5} {facts.name:<12} {facts.script:<11} {facts.family:<14} {facts.train_size:>6}  "
                    f"{languages.tier(code)}")
    return "\n".join([f"languages: high-resource from {languages.tier_min_train_sentences} training sentences", *rows]) \
        + "\n"
