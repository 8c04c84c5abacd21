"""Test-time evaluation: the clean test set of every language, plus each member of the perturbation suite.

The suite is config (conf/perturbation/): members keyed by a condition label, each naming a registered
perturbation, its severities and parameters. All names, severities and entity pools are checked in
``build_suite``/``prepare`` — before training — so a typo never costs a training run. Perturbations
are seeded by ``perturbation.seed`` (not the training seed), so every run of a sweep, and so every
member of a PIE population, is scored on the very same perturbed sentences.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sparsenlp.data.align import encode
from sparsenlp.data.datamodule import NERData, Split
from sparsenlp.data.wikiann import Sentence, load_split
from sparsenlp.errors import SparseNLPError
from sparsenlp.perturb import EntityPool, check, entity_types, perturb_dataset, pool_languages

log = logging.getLogger(__name__)
CLEAN = "clean"


@dataclass(frozen=True)
class Member:
    label: str
    perturbation: str
    severities: tuple[float, ...]
    params: dict[str, Any] = field(default_factory=dict)
    pool: str | None = None  # entity_swap only: same | script | family
    required: bool = True    # False: skip (and record) languages this member cannot apply to

    def condition(self, severity: float) -> str:
        return f"{self.label}@{severity:g}"


def _members(cfg: Mapping[str, Any]) -> list[Member]:
    members = []
    for label, spec in (cfg.get("members") or {}).items():
        if spec is None:  # `~perturbation.members.x` or `perturbation.members.x=null` disables one
            continue
        if "@" in str(label) or "/" in str(label):
            raise SparseNLPError(f"perturbation label {label!r} may not contain '@' or '/'; rename it")
        severities = spec.get("severities")
        if not severities:
            raise SparseNLPError(f"perturbation.members.{label}.severities is empty; give at least one severity")
        member = Member(str(label), str(spec.get("perturbation", label)), tuple(float(s) for s in severities),
                        dict(spec.get("params") or {}), spec.get("pool"), bool(spec.get("required", True)))
        if (member.perturbation == "entity_swap") != (member.pool is not None):
            raise SparseNLPError(
                f"perturbation.members.{label}: entity_swap needs `pool: same|script|family`, other perturbations none"
            )
        for severity in member.severities:
            if member.pool is None:
                check(member.perturbation, severity, **member.params)
            else:  # the pool is built in prepare(); here only name and severity
                check(member.perturbation, severity, pool=EntityPool("", member.pool, [], {}), **member.params)
        members.append(member)
    return members


def _sentences(perturbed: Sequence[Any], lang: str) -> list[Sentence]:
    return [Sentence(tuple(p.tokens), tuple(p.tags), lang) for p in perturbed]


class RobustnessSuite:
    """Evaluates a trained model on clean and perturbed test sets; returns metrics and predictions."""

    def __init__(self, members: list[Member], seed: int, pool_limit: int | None, langs: Sequence[str]) -> None:
        self.members, self.seed, self.pool_limit, self.langs = members, seed, pool_limit, list(langs)
        self.pools: dict[tuple[str, str], EntityPool] = {}
        self.skipped: dict[str, dict[str, str]] = {}  # lang -> condition label -> why it was skipped
        self._encode: Any = None

    def prepare(self, data: NERData, data_cfg: Mapping[str, Any], languages: Mapping[str, Any], tokenizer) -> None:
        """Build and check entity pools (needs the data) and remember how to encode perturbed text."""
        max_length = int(data_cfg["max_length"])
        self._encode = lambda sentences: encode(sentences, tokenizer, max_length)
        meta = {code: {"script": e["script"], "family": e["family"]} for code, e in languages["langs"].items()}
        train_by_lang: dict[str, list[Sentence]] = {}
        for s in data.train.sentences:
            train_by_lang.setdefault(s.lang, []).append(s)
        for member in self.members:
            if member.pool is None:
                continue
            for lang in self.langs:
                try:
                    pool = self._pool(member.pool, lang, meta, train_by_lang, data_cfg)
                    pool.validate(entity_types(data.test[lang].sentences))
                except SparseNLPError as exc:
                    if member.required:
                        raise
                    log.warning("skipping %s for %s: %s", member.label, lang, exc)
                    self.skipped.setdefault(lang, {})[member.label] = str(exc).removeprefix("sparsenlp error: ")
                    continue
                self.pools[(member.label, lang)] = pool

    def _pool(self, source: str, lang: str, meta: Mapping[str, Any], loaded: dict[str, list[Sentence]],
              data_cfg: Mapping[str, Any]) -> EntityPool:
        codes = pool_languages(lang, source, meta)
        sentences: list[Sentence] = []
        used = []
        for code in codes:
            if code not in loaded:
                try:
                    loaded[code] = load_split(str(data_cfg["source"]), data_cfg.get("root"), code, "train",
                                              self.pool_limit, data_cfg.get("hub_cache_dir"))
                except SparseNLPError as exc:
                    log.warning("entity pool for %s/%s skips %s: %s", lang, source, code, exc)
                    loaded[code] = []
            if loaded[code]:
                used.append(code)
                sentences += loaded[code][: self.pool_limit] if self.pool_limit else loaded[code]
        if not used:
            raise SparseNLPError(f"entity pool '{source}' for lang={lang} has no readable training data in "
                                 f"{codes}; add their data or use pool: same")
        return EntityPool.from_sentences(sentences, lang=lang, source=source, languages=used)

    def conditions(self) -> list[str]:
        return [CLEAN] + [m.condition(s) for m in self.members for s in m.severities]

    def evaluate(self, trainer: Any, data: NERData) -> tuple[dict, dict, dict[str, list[dict[str, Any]]]]:
        """``test[lang][condition]`` metrics, ``robustness[lang][condition]`` gaps, predictions per condition."""
        test: dict[str, dict[str, Any]] = {}
        robustness: dict[str, dict[str, Any]] = {}
        predictions: dict[str, list[dict[str, Any]]] = {}
        for lang in self.langs:
            clean = data.test[lang]
            metrics, pred = trainer.evaluate(clean)
            test[lang] = {CLEAN: metrics}
            predictions.setdefault("test", []).extend(_rows(clean.sentences, pred))
            robustness[lang] = {}
            for member in self.members:
                if member.label in self.skipped.get(lang, {}):
                    continue
                params = dict(member.params)
                if member.pool is not None:
                    params["pool"] = self.pools[(member.label, lang)]
                for severity in member.severities:
                    condition = member.condition(severity)
                    perturbed = perturb_dataset(member.perturbation, clean.sentences, severity, self.seed, **params)
                    sentences = _sentences(perturbed, lang)
                    split = Split(sentences, self._encode(sentences))
                    p_metrics, p_pred = trainer.evaluate(split)
                    test[lang][condition] = p_metrics
                    robustness[lang][condition] = gap(metrics["f1"], p_metrics["f1"])
                    kept = [p.kept for p in perturbed]
                    predictions.setdefault(f"test.{condition}", []).extend(_rows(sentences, p_pred, kept))
        return test, robustness, predictions


def gap(clean_f1: float, perturbed_f1: float) -> dict[str, float | None]:
    """Absolute drop in F1 and the drop relative to clean F1 (None when clean F1 is 0)."""
    drop = clean_f1 - perturbed_f1
    return {"f1": perturbed_f1, "gap": drop, "gap_ratio": drop / clean_f1 if clean_f1 > 0 else None}


def _rows(sentences: Sequence[Sentence], pred: Sequence[Sequence[str]],
          kept: Sequence[Sequence[int] | None] | None = None) -> list[dict[str, Any]]:
    rows = []
    for i, (s, p) in enumerate(zip(sentences, pred)):
        row: dict[str, Any] = {"id": i, "lang": s.lang, "tokens": list(s.tokens), "gold": list(s.tags), "pred": list(p)}
        if kept is not None and kept[i] is not None:
            row["kept"] = list(kept[i])
        rows.append(row)
    return rows


def build_suite(cfg: Mapping[str, Any], langs: Sequence[str]) -> RobustnessSuite:
    """The suite from `perturbation` config; names, severities and parameters are validated here."""
    seed = int(cfg.get("seed", 0))
    limit = cfg.get("pool_limit")
    return RobustnessSuite(_members(cfg), seed, None if limit is None else int(limit), langs)
