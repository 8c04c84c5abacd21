"""What a sweep ran, from its records and Hydra's ``multirun.yaml``: the opening of a report.

A table of results means little without the model, the amount of training and data behind each language,
and how many seeds stand behind each comparison; a reader must also be able to rerun the sweep. Hydra
writes the sweep's composed config and command-line overrides to ``multirun.yaml`` at the sweep's root;
each record keeps its own job's overrides (``run.overrides``) for sweeps that lack one.
"""
from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sparsenlp.tracking.schema import RunRecord

MULTIRUN = "multirun.yaml"


@dataclass(frozen=True)
class Provenance:
    """``command``: the sweep's command line (None without multirun.yaml); ``choices``: its config groups;
    ``overrides``: every key the jobs overrode with its values over the jobs; ``models``, ``revisions``,
    ``versions``: distinct values over the records; ``languages``: one row per test language (data sizes, steps)."""

    sweep_dir: Path
    runs: int
    started: str
    finished: str
    command: str | None
    choices: dict[str, Any]
    overrides: dict[str, list[str]]
    models: list[str]
    revisions: list[str]
    versions: list[str]
    languages: pd.DataFrame


def _span(values: Sequence[Any]) -> str:
    """``300`` or ``100–20000``: the range of a column's values over runs."""
    values = sorted(set(v for v in values if v is not None and v == v))
    if not values:
        return "–"
    return f"{values[0]:,}" if len(values) == 1 else f"{values[0]:,}–{values[-1]:,}"


def _natural(value: str) -> tuple[float, str]:
    """Numbers in numeric order (0.5 before 0.95 before 0.98), then everything else by name."""
    try:
        return float(value), value
    except ValueError:
        return float("inf"), value


def sweep_command(multirun: dict[str, Any]) -> str:
    """``sparsenlp-train -m <overrides>`` as Hydra received them (``hydra.mode=MULTIRUN`` is what ``-m`` says)."""
    overrides = multirun.get("hydra", {}).get("overrides", {})
    hydra = [o for o in overrides.get("hydra", []) if o != "hydra.mode=MULTIRUN"]
    return shlex.join(["sparsenlp-train", "-m", *overrides.get("task", []), *hydra])


def _language_rows(loaded: Sequence[tuple[Path, RunRecord]]) -> pd.DataFrame:
    rows = []
    for _, record in loaded:
        for lang, facts in record.languages.items():
            rows.append({"lang": lang, "name": facts.name, "tier": facts.tier, "transfer": facts.transfer,
                         "train": record.data.train_sentences_per_lang.get(lang),
                         "test": record.data.test_sentences.get(lang), "dev": record.data.dev_sentences,
                         "steps": record.training.steps, "epochs": round(record.training.epochs, 2)})
    df = pd.DataFrame(rows)
    out = []
    for lang, g in df.groupby("lang", sort=False):
        trained = g[~g["transfer"]]
        out.append({"lang": lang, "name": g["name"].iloc[0], "tier": g["tier"].iloc[0], "runs": len(g),
                    "train sentences": _span(trained["train"].tolist()) if len(trained) else "– (transfer only)",
                    "dev sentences (whole run)": _span(g["dev"].tolist()), "test sentences": _span(g["test"].tolist()),
                    "training steps": _span(g["steps"].tolist()), "epochs": _span(g["epochs"].tolist())})
    tiers = {"high": 0, "low": 1}
    return pd.DataFrame(out).sort_values(["tier", "lang"], key=lambda s: s.map(tiers).fillna(2) if s.name == "tier"
                                         else s).reset_index(drop=True)


def provenance(sweep_dir: str | Path, loaded: Sequence[tuple[Path, RunRecord]]) -> Provenance:
    """The provenance of a sweep's loaded records (:func:`sparsenlp.analysis.collect.load_records`)."""
    sweep_dir = Path(sweep_dir)
    records = [record for _, record in loaded]
    command, choices = None, {}
    multirun = sweep_dir / MULTIRUN
    if multirun.is_file():
        config = yaml.safe_load(multirun.read_text(encoding="utf-8")) or {}
        command = sweep_command(config)
        choices = {k: v for k, v in config.get("hydra", {}).get("runtime", {}).get("choices", {}).items()
                   if not k.startswith("hydra/")}
    overrides: dict[str, list[str]] = {}
    for record in records:
        for override in record.run.overrides:
            key, _, value = override.partition("=")
            values = overrides.setdefault(key, [])
            if value not in values:
                values.append(value)
    overrides = {key: sorted(values, key=_natural) for key, values in overrides.items()}
    parameters: dict[tuple[str, str], list[int]] = {}
    for r in records:
        parameters.setdefault((r.model.name, r.model.name_or_path or "built from its config"), []).append(
            r.model.parameters)
    models = [f"{name} ({source}, {_span(counts)} parameters)" for (name, source), counts in sorted(parameters.items())]
    versions = sorted({", ".join(f"{k} {r.versions.get(k)}" for k in ("torch", "transformers", "sparsenlp")
                                 if r.versions.get(k)) for r in records} - {""})
    return Provenance(
        sweep_dir=sweep_dir, runs=len(records), started=min(r.run.started_at for r in records),
        finished=max(r.run.finished_at for r in records), command=command, choices=choices,
        overrides=overrides, models=models,
        revisions=sorted({r.run.git_revision or "unknown" for r in records}), versions=versions,
        languages=_language_rows(loaded))


def markdown(p: Provenance, seeds: pd.DataFrame) -> str:
    """The report's opening section; ``seeds``: one row per arm × sparsity with its seeds per language."""
    lines = [f"{p.runs:,} complete runs in `{p.sweep_dir}`, run between {p.started} and {p.finished}.\n"]
    if p.command:
        lines.append(f"- **command** (from `{MULTIRUN}`): `{p.command}`")
        if p.choices:
            lines.append("- **config groups**: " + ", ".join(f"{k}={v}" for k, v in sorted(p.choices.items())))
    else:
        axes = [f"{key}={','.join(values)}" for key, values in p.overrides.items()]
        lines.append(f"- **command**: no `{MULTIRUN}` at the sweep's root (not a Hydra multirun, or moved); the "
                     "jobs' own overrides (`run.overrides`), each key with its values over the jobs (not every "
                     "combination need have run): " + (f"`{shlex.join(['sparsenlp-train', '-m', *axes])}`"
                                                       if axes else "none"))
    lines.append(f"- **model{'s' if len(p.models) > 1 else ''}**: " + "; ".join(p.models))
    lines.append(f"- **code**: git {', '.join(p.revisions)}; {'; '.join(p.versions) or 'versions not recorded'}")
    out = "\n".join(lines) + "\n"
    out += ("\n### Data and training per test language\n\nSentences and optimizer steps of the runs scored on "
            "each language (a range where runs differ; dev: the whole run's dev set).\n\n")
    out += p.languages.to_markdown(index=False) + "\n"
    if not seeds.empty:
        out += ("\n### Seeds per comparison\n\nRuns (one per seed) behind each arm × sparsity, per language "
                "(a range where languages differ).\n\n") + seeds.to_markdown(index=False) + "\n"
    return out


def seeds_per_comparison(index: pd.DataFrame) -> pd.DataFrame:
    """Per arm × sparsity: languages, and dense / sparse seeds per language (from a comparison plan's index)."""
    if index.empty:
        return pd.DataFrame()
    counted = index.assign(dense=index["dense_seeds"].str.count(",") + 1,
                           sparse=index["sparse_seeds"].str.count(",") + 1)
    rows = [{"arm": arm, "sparsity": sparsity, "languages": g["lang"].nunique(),
             "conditions": g["condition"].nunique(), "dense seeds": _span(g["dense"].tolist()),
             "sparse seeds": _span(g["sparse"].tolist())}
            for (arm, sparsity), g in counted.groupby(["arm", "sparsity"], sort=True)]
    return pd.DataFrame(rows)
