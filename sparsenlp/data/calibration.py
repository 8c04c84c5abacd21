"""Calibration sentences for one-shot pruning (Wanda, SparseGPT): whose data calibrates, and which sentences.

``calibration.lang`` names the data: ``self`` (the evaluated language), a language code (``en``),
``mix`` (an equal share of every training language) or ``none`` (no data: the magnitude control).
Sentences come from **training splits only** (``training_pools`` reads nothing else), so no dev or
test sentence is ever seen by a pruning decision. ``calibration.sentences`` defaults to 128, the
number of calibration samples both papers use (128 segments of 2048 tokens from C4).

The draw is a pure function of (pools, lang, sentences, seed):
- each language's sentences are the first k of a permutation seeded by (seed, language), so a smaller
  draw is a prefix of a larger one and a language's draw does not depend on which others are mixed in;
- ``mix`` gives every language ``sentences // L``; the remainder goes one each to the first languages
  in code order, so every seed has the same composition and only the sentences vary;
- too few sentences: a language with fewer training sentences than its share gives all it has and
  the shortfall is recorded (``per_lang``, ``sentences`` < ``requested``), not filled from others.
  The smallest PAN-X languages (jv, my, yo) have 100 training sentences: an error would make the
  default unusable exactly for the low-resource languages the study is about, and topping up from
  other languages would change what "self" or "mix" means. Asking ``mix`` for fewer sentences than
  it has languages is an error (some language would get none);
- ``sha256`` hashes the tokens of exactly the sentences drawn, in order (JSON, UTF-8), so it is stable
  across processes and machines and changes with any token.

``calibration_batches`` encodes the sentences exactly as training and evaluation do (``align.encode``
windows + ``batching.collate`` padding), so calibration sees what the model sees.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sparsenlp.config.data import DataConfig
from sparsenlp.data.align import encode
from sparsenlp.data.batching import collate, eval_batches
from sparsenlp.data.datamodule import read_split
from sparsenlp.data.wikiann import Sentence
from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.methods.calibrated import MIX, NONE, SELF, CalibrationInfo

DEFAULT_SENTENCES = 128


@dataclass(frozen=True)
class CalibrationSample:
    sentences: tuple[Sentence, ...]
    info: CalibrationInfo


def calibration_langs(lang: str, evaluated: str, train_langs: Sequence[str]) -> list[str]:
    """The languages ``lang`` draws from: ``self`` → the evaluated one, ``mix`` → every training
    language (sorted), ``none`` → none, a code → itself."""
    if not isinstance(lang, str) or not lang.strip():
        raise SparseNLPError(f"calibration.lang={lang!r} is not a language; use self, mix, none or a code such as en")
    if lang == SELF:
        return [evaluated]
    if lang == MIX:
        if not train_langs:
            raise SparseNLPError("calibration.lang=mix needs the run's training languages; none were given")
        return sorted(set(train_langs))
    if lang == NONE:
        return []
    return [lang]


def shares(sentences: int, langs: Sequence[str]) -> dict[str, int]:
    """Equal shares of ``sentences`` over ``langs`` (in code order); the remainder one each to the first."""
    ordered = sorted(langs)
    if sentences < len(ordered):
        raise SparseNLPError(
            f"calibration.sentences={sentences} cannot give each of the {len(ordered)} languages a sentence; "
            f"ask for at least {len(ordered)}"
        )
    base, extra = divmod(sentences, len(ordered))
    return {lang: base + (i < extra) for i, lang in enumerate(ordered)}


def sentences_sha256(sentences: Sequence[Sentence]) -> str:
    """sha256 of the sentences' tokens, in order (stable across processes, unlike ``hash``)."""
    payload = json.dumps([list(s.tokens) for s in sentences], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def draw_calibration(
    pools: Mapping[str, Sequence[Sentence]],
    lang: str,
    evaluated: str,
    train_langs: Sequence[str],
    sentences: int = DEFAULT_SENTENCES,
    seed: int = 0,
) -> CalibrationSample:
    """Draw the calibration sentences for ``lang`` from ``pools`` (language → its training sentences)."""
    if isinstance(sentences, bool) or not isinstance(sentences, int) or sentences < 1:
        raise SparseNLPError(f"calibration.sentences={sentences!r} must be a positive number of sentences, e.g. 128")
    langs = calibration_langs(lang, evaluated, train_langs)
    if not langs:
        info = CalibrationInfo(lang=lang, langs=[], requested=0, sentences=0, per_lang={}, available={},
                               seed=seed, sha256=None)
        return CalibrationSample((), info)
    for code in langs:
        if not pools.get(code):
            known = " ".join(sorted(c for c, pool in pools.items() if pool)) or "none"
            raise SparseNLPError(
                f"calibration.lang={lang!r} needs training sentences of '{code}', which are not loaded (loaded: {known}); "
                f"use self, mix, none or a language with a training split"
            )
    drawn: list[Sentence] = []
    per_lang = {}
    for code, share in shares(sentences, langs).items():
        pool = pools[code]
        order = np.random.default_rng([seed, *code.encode("utf-8")]).permutation(len(pool))[:share]
        picked = [pool[i] for i in order]
        drawn += picked
        per_lang[code] = len(picked)
    info = CalibrationInfo(lang=lang, langs=sorted(langs), requested=sentences, sentences=len(drawn),
                           per_lang=per_lang, available={code: len(pools[code]) for code in sorted(langs)},
                           seed=seed, sha256=sentences_sha256(drawn))
    return CalibrationSample(tuple(drawn), info)


def training_pools(cfg: DataConfig, langs: Sequence[str]) -> dict[str, list[Sentence]]:
    """The training split of each language (``data.train_limit`` applies, as in training): the only data
    calibration may draw from."""
    return {code: read_split(cfg, code, "train") for code in dict.fromkeys(langs)}


def calibration_batches(sentences: Sequence[Sentence], tokenizer, max_length: int,
                        batch_size: int = 16) -> list[dict[str, torch.Tensor]]:
    """``input_ids`` + ``attention_mask`` batches of the sentences' windows (longest first, padded to the
    batch's longest), encoded exactly as for training."""
    if not sentences:
        return []
    features = encode(sentences, tokenizer, max_length)
    batches = []
    for indices in eval_batches(features, batch_size):
        batch = collate(features, indices, tokenizer.pad_token_id)
        batches.append({"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]})
    return batches
