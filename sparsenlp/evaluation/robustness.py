"""Test-time evaluation: the clean test set of every language, plus each member of the perturbation suite.

The suite is config (conf/perturbation/): members keyed by a condition label, each naming a registered
perturbation, its severities and parameters. Names, severities and parameters are checked by the config
(``PerturbationConfig``), entity pools in ``prepare`` — all before training — so a typo never costs a
training run. Perturbations
are seeded by ``perturbation.seed`` (not the training seed), so every run of a sweep, and so every
member of a PIE population, is scored on the very same perturbed sentences.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sparsenlp.config.data import DataConfig
from sparsenlp.config.languages import LanguagesConfig
from sparsenlp.config.perturbation import MemberConfig, PerturbationConfig
from sparsenlp.data.align import encode
from sparsenlp.data.datamodule import NERData, Split, read_split
from sparsenlp.data.wikiann import Sentence
from sparsenlp.errors import SparseNLPError
from sparsenlp.perturb import EntityPool, entity_forms, entity_types, perturb_dataset, pool_languages

log = logging.getLogger(__name__)
CLEAN = "clean"


def condition(label: str, severity: float) -> str:
    """The name of a perturbed test condition: ``char_noise@0.1``."""
    return f"{label}@{severity:g}"


def _sentences(perturbed: Sequence[Any], lang: str) -> list[Sentence]:
    return [Sentence(tuple(p.tokens), tuple(p.tags), lang) for p in perturbed]


class RobustnessSuite:
    """Evaluates a trained model on clean and perturbed test sets; returns metrics and predictions."""

    def __init__(self, cfg: PerturbationConfig, langs: Sequence[str]) -> None:
        self.members: dict[str, MemberConfig] = cfg.active()
        self.seed, self.pool_limit, self.langs = cfg.seed, cfg.pool_limit, list(langs)
        self.pools: dict[tuple[str, str], EntityPool] = {}
        self.skipped: dict[str, dict[str, str]] = {}  # lang -> condition label -> why it was skipped
        self._encode: Any = None

    def prepare(self, data: NERData, data_cfg: DataConfig, languages: LanguagesConfig, tokenizer) -> None:
        """Build and check entity pools (needs the data) and remember how to encode perturbed text."""
        self._encode = lambda sentences: encode(sentences, tokenizer, data_cfg.max_length)
        train_by_lang: dict[str, list[Sentence]] = {}
        for s in data.train.sentences:
            train_by_lang.setdefault(s.lang, []).append(s)
        for label, member in self.members.items():
            if member.pool is None:
                continue
            for lang in self.langs:
                try:
                    pool = self._pool(member.pool, lang, languages, train_by_lang, data, data_cfg)
                    pool.validate(entity_types(data.test[lang].sentences))
                except SparseNLPError as exc:
                    if member.required:
                        raise
                    log.warning("skipping %s for %s: %s", label, lang, exc)
                    self.skipped.setdefault(lang, {})[label] = exc.message
                    continue
                self.pools[(label, lang)] = pool

    def _pool(self, source: str, lang: str, languages: LanguagesConfig, loaded: dict[str, list[Sentence]],
              data: NERData, data_cfg: DataConfig) -> EntityPool:
        codes = pool_languages(lang, source, languages)
        if source == "unseen":  # held-out names of the language itself, none of which the run trained on
            if lang not in data.train_langs:  # zero-shot: the test language's dev set was never read
                held_out = read_split(data_cfg, lang, "dev")
            else:
                held_out = [s for s in data.dev.sentences if s.lang == lang]
            return EntityPool.from_sentences(held_out, lang=lang, source=source, languages=codes,
                                             exclude=entity_forms(data.train.sentences))
        sentences: list[Sentence] = []
        used = []
        for code in codes:
            if code not in loaded:
                try:
                    loaded[code] = read_split(data_cfg, code, "train", self.pool_limit)
                except SparseNLPError as exc:
                    log.warning("entity pool for %s/%s skips %s: %s", lang, source, code, exc)
                    loaded[code] = []
            if loaded[code]:
                used.append(code)
                sentences += loaded[code][: self.pool_limit] if self.pool_limit else loaded[code]
        if not used:
            raise SparseNLPError(f"entity pool '{source}' for lang={lang} has no readable training data in "
                                 f"{codes}; add their data or use pool: seen")
        return EntityPool.from_sentences(sentences, lang=lang, source=source, languages=used)

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
            for label, member in self.members.items():
                if label in self.skipped.get(lang, {}):
                    continue
                params = dict(member.params)
                if member.pool is not None:
                    params["pool"] = self.pools[(label, lang)]
                for severity in member.severities:
                    name = condition(label, severity)
                    perturbed = perturb_dataset(member.perturbation, clean.sentences, severity, self.seed, **params)
                    sentences = _sentences(perturbed, lang)
                    split = Split(sentences, self._encode(sentences))
                    p_metrics, p_pred = trainer.evaluate(split)
                    test[lang][name] = p_metrics
                    robustness[lang][name] = gap(metrics.f1, p_metrics.f1)
                    kept = [p.kept for p in perturbed]
                    predictions.setdefault(f"test.{name}", []).extend(_rows(sentences, p_pred, kept))
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
