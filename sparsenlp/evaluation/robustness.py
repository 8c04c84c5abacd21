"""Test-time evaluation: the clean test set of every language, plus each member of the perturbation suite.

The suite is config (conf/perturbation/): members keyed by a condition label, each naming a registered
perturbation, its severities and parameters. Names, severities and parameters are checked by the config
(``PerturbationConfig``); ``prepare`` then decides, per test language and before training, which
conditions apply and how strong each is:

1. **Scripts.** A perturbation that declares scripts (case, strip_diacritics) applies when those scripts
   hold at least half the letters of the language's test text, measured per character from Unicode.
2. **Entity pools** (``entity_swap``) must exist and cover the test set's entity types (below).
3. **Measured strength.** Each condition is applied and measured on the test text
   (:mod:`sparsenlp.perturb.strength`); one that changes fewer than ``perturbation.min_changed`` of the
   sentences is not applicable: its gap would be near 0 by construction.

A condition that does not apply is recorded with its reason (``not_applicable[lang][condition]``) and has
no metrics and no gap, never a gap of 0 (a member with ``required: true`` stops the run instead).

Entity pools never hold a name the run trained or selected on, except ``seen``, which probes exactly
that. Every pool draws from data the run neither trained nor selected on, the same in the per-language
and the joint regime, minus every entity form of the run's training and dev data:

- ``seen``: the test language's own training sentences in this run (training data on purpose: names the
  model was fine-tuned on); not applicable to a zero-shot test language, which has none;
- ``unseen``: the test language's own test set (a sentence never gets one of its own names back);
- ``script`` / ``family``: the test sets of the *other* languages with the same script / family in the
  ``languages`` config (``perturbation.pool_limit`` sentences each).

Perturbations are seeded by ``perturbation.seed`` (not the training seed), so every run of a sweep, and
so every member of a PIE population, is scored on the very same perturbed sentences.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sparsenlp.config.data import DataConfig
from sparsenlp.config.languages import LanguagesConfig
from sparsenlp.config.perturbation import MemberConfig, PerturbationConfig
from sparsenlp.data.align import encode, word_pieces
from sparsenlp.data.datamodule import NERData, Split, read_split
from sparsenlp.data.wikiann import Sentence
from sparsenlp.errors import SparseNLPError
from sparsenlp.perturb import (
    EntityPool,
    NotApplicable,
    Strength,
    entity_forms,
    entity_types,
    get,
    letters_by_script,
    measure,
    perturb_dataset,
)

log = logging.getLogger(__name__)
CLEAN = "clean"


def condition(label: str, severity: float) -> str:
    """The name of a perturbed test condition: ``char_noise@0.1``."""
    return f"{label}@{severity:g}"


def _sentences(perturbed: Sequence[Any], lang: str) -> list[Sentence]:
    return [Sentence(tuple(p.tokens), tuple(p.tags), lang) for p in perturbed]


def vocabulary_check(tokenizer) -> Callable[[str], bool]:
    """Whether ``tokenizer`` reads a character without [UNK], alone and inside a word (``c``, ``cc``)."""
    unk = tokenizer.unk_token_id

    @lru_cache(maxsize=None)
    def known(char: str) -> bool:
        return unk is None or all(unk not in tokenizer(text, add_special_tokens=False)["input_ids"]
                                  for text in (char, char * 2))

    return known


class RobustnessSuite:
    """Evaluates a trained model on clean and perturbed test sets; returns metrics and predictions."""

    def __init__(self, cfg: PerturbationConfig, langs: Sequence[str]) -> None:
        self.members: dict[str, MemberConfig] = cfg.active()
        self.seed, self.pool_limit, self.min_changed = cfg.seed, cfg.pool_limit, cfg.min_changed
        self.langs = list(langs)
        self.params: dict[tuple[str, str], dict[str, Any]] = {}  # (label, lang) -> the member's parameters
        self.strength: dict[str, dict[str, Strength]] = {}  # lang -> applicable condition -> measured strength
        self.not_applicable: dict[str, dict[str, str]] = {}  # lang -> condition -> why it does not apply
        self.pools: dict[str, dict[str, EntityPool]] = {}  # lang -> member label -> its entity pool
        self._encode: Any = None
        self._pool_tests: dict[str, list[Sentence]] = {}

    def prepare(self, data: NERData, data_cfg: DataConfig, languages: LanguagesConfig, tokenizer) -> None:
        """Decide which conditions apply to each test language and measure their strength (needs the data
        and the tokenizer), and remember how to encode perturbed text."""
        self._encode = lambda sentences: encode(sentences, tokenizer, data_cfg.max_length)
        if not self.members:
            return
        known = vocabulary_check(tokenizer)
        held = entity_forms(data.train.sentences) | entity_forms(data.dev.sentences)

        def subwords(sentences: Sequence[Any]) -> list[list[int]]:
            return [[i for word in s for i in word] for s in word_pieces(tokenizer, sentences)]

        for lang in self.langs:
            clean = data.test[lang].sentences
            letters = letters_by_script(t for s in clean for t in s.tokens)
            clean_tokens, clean_ids = [s.tokens for s in clean], subwords(clean)
            for label, member in self.members.items():
                try:
                    params = self._params(label, member, lang, letters, known, data, data_cfg, languages, held)
                except NotApplicable as exc:
                    self._skip(label, member, lang, member.severities, exc.reason)
                    continue
                self.params[(label, lang)] = params
                for severity in member.severities:
                    perturbed = perturb_dataset(member.perturbation, clean, severity, self.seed, **params)
                    strength = measure(clean_tokens, [p.tokens for p in perturbed], clean_ids, subwords(perturbed),
                                       tokenizer.unk_token_id)
                    if strength.sentences_changed < self.min_changed:
                        self._skip(label, member, lang, [severity], (
                            f"{member.perturbation}: changes {strength.sentences_changed:.1%} of the test sentences, "
                            f"under perturbation.min_changed={self.min_changed:g}"))
                    else:
                        self.strength.setdefault(lang, {})[condition(label, severity)] = strength

    def _skip(self, label: str, member: MemberConfig, lang: str, severities: Sequence[float], reason: str) -> None:
        if member.required:
            raise SparseNLPError(f"perturbation.members.{label} does not apply to lang={lang}: {reason}; set its "
                                 "`required: false` to record it as not applicable")
        log.info("%s does not apply to %s: %s", label, lang, reason)
        for severity in severities:
            self.not_applicable.setdefault(lang, {})[condition(label, severity)] = reason

    def _params(self, label: str, member: MemberConfig, lang: str, letters: Any, known: Callable[[str], bool],
                data: NERData, data_cfg: DataConfig, languages: LanguagesConfig,
                held: set[tuple[str, ...]]) -> dict[str, Any]:
        """The member's parameters for ``lang`` (its entity pool included); NotApplicable says why there are none."""
        spec = get(member.perturbation)
        reason = spec.script_reason(letters)
        if reason is not None:
            raise NotApplicable(f"{member.perturbation}: {reason}")
        params = dict(member.params)
        if spec.uses_vocabulary:
            params["known"] = known
        if member.pool is not None:
            try:
                pool = self._pool(member.pool, lang, data, data_cfg, languages, held)
                pool.validate(entity_types(data.test[lang].sentences))
            except NotApplicable as exc:
                raise NotApplicable(f"entity_swap ({member.pool} pool): {exc.reason}") from None
            self.pools.setdefault(lang, {})[label] = pool
            params["pool"] = pool
        return params

    def _pool(self, source: str, lang: str, data: NERData, data_cfg: DataConfig, languages: LanguagesConfig,
              held: set[tuple[str, ...]]) -> EntityPool:
        """The entity pool of ``source`` for test language ``lang`` (sources: the module docstring)."""
        if source == "seen":
            if lang not in data.train_langs:
                raise NotApplicable(f"{lang} is not a training language of this run, so none of its names was "
                                    "seen in training")
            own = [s for s in data.train.sentences if s.lang == lang]
            return EntityPool.from_sentences(own, lang=lang, source=source, languages=[lang], split="train")
        if source == "unseen":
            return EntityPool.from_sentences(data.test[lang].sentences, lang=lang, source=source, languages=[lang],
                                             split="test", exclude=held)
        codes = languages.sharing(lang, source)
        if not codes:
            value = getattr(languages.facts(lang), source)
            raise NotApplicable(f"no other language shares {source}={value!r} with lang={lang}")
        sentences: list[Sentence] = []
        used = []
        for code in codes:
            if code not in self._pool_tests:
                try:
                    self._pool_tests[code] = read_split(data_cfg, code, "test", self.pool_limit)
                except SparseNLPError as exc:
                    log.warning("entity pools skip %s: %s", code, exc)
                    self._pool_tests[code] = []
            if self._pool_tests[code]:
                used.append(code)
                sentences += self._pool_tests[code]
        if not used:
            raise NotApplicable(f"none of the languages sharing its {source} ({', '.join(codes)}) has readable "
                                "test data")
        return EntityPool.from_sentences(sentences, lang=lang, source=source, languages=used, split="test",
                                         exclude=held)

    def pool_report(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every entity pool, for the record: language -> member label -> source, split, languages, sizes."""
        return {lang: {label: {"source": pool.source, "split": pool.split, "languages": list(pool.languages),
                               "sizes": pool.sizes(), "excluded": pool.excluded,
                               "training_data": pool.source == "seen"}
                       for label, pool in pools.items()}
                for lang, pools in self.pools.items()}

    def evaluate(self, trainer: Any, data: NERData) -> tuple[dict, dict, dict[str, list[dict[str, Any]]]]:
        """``test[lang][condition]`` metrics, ``robustness[lang][condition]`` gaps with their measured strength,
        predictions per condition; conditions that do not apply to a language are absent from all three."""
        test: dict[str, dict[str, Any]] = {}
        robustness: dict[str, dict[str, Any]] = {}
        predictions: dict[str, list[dict[str, Any]]] = {}
        for lang in self.langs:
            clean = data.test[lang]
            metrics, pred = trainer.evaluate(clean)
            test[lang] = {CLEAN: metrics}
            predictions.setdefault("test", []).extend(_rows(clean.sentences, pred))
            robustness[lang] = {}
            applicable = self.strength.get(lang, {})
            for label, member in self.members.items():
                for severity in member.severities:
                    name = condition(label, severity)
                    if name not in applicable:
                        continue
                    perturbed = perturb_dataset(member.perturbation, clean.sentences, severity, self.seed,
                                                **self.params[(label, lang)])
                    sentences = _sentences(perturbed, lang)
                    split = Split(sentences, self._encode(sentences))
                    p_metrics, p_pred = trainer.evaluate(split)
                    test[lang][name] = p_metrics
                    robustness[lang][name] = {**gap(metrics.f1, p_metrics.f1),
                                              "strength": dataclasses.asdict(applicable[name])}
                    kept = [p.kept for p in perturbed]
                    predictions.setdefault(f"test.{name}", []).extend(_rows(sentences, p_pred, kept))
        return test, robustness, predictions


def gap(clean_f1: float | None, perturbed_f1: float | None) -> dict[str, float | str | None]:
    """Absolute drop in F1 and the drop relative to clean F1 (None when clean F1 is 0); without an F1 on either
    side (a test set without gold entities) no gap at all, with the reason, never a gap of 0."""
    if clean_f1 is None or perturbed_f1 is None:
        side = "clean" if clean_f1 is None else "perturbed"
        return {"f1": perturbed_f1, "gap": None, "gap_ratio": None,
                "missing": f"the {side} test set has no gold entity: F1 and the gap are undefined"}
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
