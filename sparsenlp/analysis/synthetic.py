"""Synthetic NER predictions and sweeps with a known truth: for calibrating an analysis before trusting it.

The statistics tests, ``bench/`` and a user checking what an analysis does on data whose answer is known all
build their sweeps here.

A test set is a list of sentences with IOB2 gold entities; a run's predictions start from gold and
lose each gold entity with a known probability (``miss``: the tags become ``O``), change its type with
probability ``confuse``, and add a spurious one-token entity to a sentence with probability ``spurious``.
Seeds are replicates: each run draws its own errors. A sparse arm that "drops a fraction f of the
entities more than dense" is a run with ``miss = dense miss + f``, so the expected ΔF1 is known.

Rows share their ``tokens`` and ``gold`` lists with the test set, and a prediction equal to gold is
the gold list itself, so a 40-language sweep fits in memory one language at a time. :func:`write_run`
writes a run to disk as a job would (a valid record and its prediction files), for sweeps on disk.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from sparsenlp.config.languages import LanguagesConfig
from sparsenlp.errors import SparseNLPError

if TYPE_CHECKING:
    from sparsenlp.analysis.encode import TestSet

TYPES = ("PER", "ORG", "LOC")
LANGUAGES_YAML = Path(str(resources.files("sparsenlp.conf") / "languages" / "xtreme40.yaml"))


@dataclass(frozen=True)
class Sentence:
    id: int
    tokens: list[str]
    gold: list[str]
    spans: tuple[tuple[int, int, str], ...]  # (start, end exclusive, type)


def make_test_set(rng: np.random.Generator, n_sentences: int, mean_tokens: float = 8.0,
                  entities_per_sentence: float = 1.3) -> list[Sentence]:
    """Sentences of random length (≥ 1 token) with 1 + Poisson(entities − 1) non-overlapping entities of 1–3
    tokens where they fit (WikiANN sentences nearly all hold an entity)."""
    lengths = np.maximum(1, rng.poisson(max(mean_tokens - 1, 0.1), n_sentences) + 1)
    n_entities = 1 + rng.poisson(max(entities_per_sentence - 1, 0.0), n_sentences)
    sentences = []
    for i, (length, k) in enumerate(zip(lengths.tolist(), n_entities.tolist())):
        gold = ["O"] * length
        spans = []
        pos = int(rng.integers(0, min(2, length)))
        for _ in range(k):
            if pos >= length:
                break
            size = int(min(rng.integers(1, 4), length - pos))
            etype = TYPES[int(rng.integers(0, 3))]
            gold[pos] = f"B-{etype}"
            for t in range(pos + 1, pos + size):
                gold[t] = f"I-{etype}"
            spans.append((pos, pos + size, etype))
            pos += size + 1 + int(rng.integers(0, 3))
        sentences.append(Sentence(i, [f"w{t}" for t in range(length)], gold, tuple(spans)))
    return sentences


def predict(rng: np.random.Generator, sentences: Sequence[Sentence], lang: str, miss: float,
            confuse: float = 0.0, spurious: float = 0.0) -> list[dict]:
    """One run's prediction rows (``{"id", "lang", "tokens", "gold", "pred"}``) with the given error rates."""
    n_spans = np.array([len(s.spans) for s in sentences])
    draws = rng.random(int(n_spans.sum()))
    confused = rng.random(int(n_spans.sum()))
    extra = rng.random(len(sentences)) < spurious
    offsets = np.concatenate([[0], np.cumsum(n_spans)])
    rows = []
    for i, s in enumerate(sentences):
        d = draws[offsets[i] : offsets[i + 1]]
        c = confused[offsets[i] : offsets[i + 1]]
        pred = s.gold
        if extra[i] or (d < miss).any() or (c < confuse).any():
            pred = list(s.gold)
            for (start, end, etype), dropped, conf in zip(s.spans, d, c):
                if dropped < miss:
                    pred[start:end] = ["O"] * (end - start)
                elif conf < confuse:
                    other = TYPES[(TYPES.index(etype) + 1) % 3]
                    pred[start:end] = [f"B-{other}"] + [f"I-{other}"] * (end - start - 1)
            if extra[i]:
                empty = [t for t, tag in enumerate(pred) if tag == "O" and (t + 1 == len(pred) or pred[t + 1] == "O")]
                if empty:
                    pred[empty[int(rng.integers(0, len(empty)))]] = "B-ORG"
        rows.append({"id": s.id, "lang": lang, "tokens": s.tokens, "gold": s.gold, "pred": pred})
    return rows


def seed_runs(sentences: int | Sequence[Sentence] = 300, seeds: Sequence[int] = range(3), lang: str = "de", miss: float = 0.2,
              confuse: float = 0.05, spurious: float = 0.05, test_seed: int = 0) -> list[list[dict]]:
    """One run per seed on the same test set (``sentences``, or that many drawn with ``test_seed``), each
    drawing its errors from ``default_rng(seed)``: a population of seeds whose answer is known."""
    if isinstance(sentences, int):
        sentences = make_test_set(np.random.default_rng(test_seed), sentences)
    return [predict(np.random.default_rng(s), sentences, lang, miss, confuse, spurious) for s in seeds]


def wikiann_test_sizes(wikiann_root: str | Path) -> dict[str, tuple[int, int]]:
    """(test sentences, test tokens) per language from the per-language table of a local WikiANN folder's README."""
    readme = Path(wikiann_root) / "README.md"
    if not readme.is_file():
        raise SparseNLPError(f"{readme} does not exist; pass the WikiANN folder (data.root) whose README lists "
                             "the test sizes, or the sizes themselves")
    sizes = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and re.fullmatch(r"[a-z]{2}", cells[0]) and cells[3].isdigit():
            sizes[cells[0]] = (int(cells[3]), int(cells[6]))
    return sizes


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    tier: str
    script: str
    family: str
    train_size: int
    test_sentences: int
    mean_tokens: float


@lru_cache(maxsize=4)
def _languages_config() -> dict:
    return yaml.safe_load(LANGUAGES_YAML.read_text(encoding="utf-8"))


def tier(train_size: int) -> str:
    """The resource tier of a WikiANN training split size, by the `languages` group's threshold."""
    return "high" if train_size >= LanguagesConfig.__dataclass_fields__["tier_min_train_sentences"].default \
        else "low"


def xtreme40(wikiann_root: str | Path | None = None,
             sizes: Mapping[str, tuple[int, int]] | None = None) -> list[Language]:
    """The 40 languages of ``conf/languages/xtreme40.yaml`` with their WikiANN test sizes (``sizes``, or read
    from ``wikiann_root``'s README); Thai, absent from the local data, gets the published 10,000 test sentences
    and the median sentence length of the others."""
    if sizes is None:
        if wikiann_root is None:
            raise SparseNLPError("xtreme40 needs the test sizes: pass wikiann_root (a local WikiANN folder) or sizes")
        sizes = wikiann_test_sizes(wikiann_root)
    conf = _languages_config()
    sizes = dict(sizes)
    median_len = float(np.median([tok / sent for sent, tok in sizes.values()]))
    langs = []
    for code, entry in conf["langs"].items():
        sent, tok = sizes.get(code, (10000, int(10000 * median_len)))
        langs.append(Language(code, entry["name"], tier(entry["train_size"]), entry["script"], entry["family"],
                              entry["train_size"], sent, tok / sent))
    return langs


# --- a study-shaped sweep -----------------------------------------------------------------------------------

ARMS = ("global_magnitude·cubic", "layerwise_magnitude·cubic")
SPARSITIES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
PERTURBATIONS = {"char_noise@0.1": 0.06, "char_noise@0.3": 0.15, "lower@1": 0.10, "swap_same@1": 0.08}


@dataclass(frozen=True)
class Effects:
    """A language's known behaviour: dense entity miss rate and sensitivity to pruning."""

    dense_miss: float
    sensitivity: float


def language_effects(lang: Language, seed: int = 0) -> Effects:
    """Dense models miss more entities the less training data a language has; pruning sensitivity varies
    widely and only loosely with the tier, so resource level alone does not predict who is hurt."""
    rng = np.random.default_rng([seed, sum(map(ord, lang.code))])
    base = 0.08 + 0.25 * (1 - np.log10(lang.train_size) / np.log10(20000)) + rng.uniform(0, 0.05)
    sensitivity = float(rng.lognormal(0.2 if lang.tier == "low" else 0.0, 0.5))
    return Effects(float(base), sensitivity)


def extra_miss(arm: str, sparsity: float, effects: Effects) -> float:
    """The known effect of an arm: extra share of entities missed (negative at low sparsity: a slight
    regularisation gain), growing steeply towards 98 %; the layer-wise arm suffers more at the extreme."""
    x = (sparsity - 0.5) / 0.48
    scale = 0.25 if arm == ARMS[0] else 0.32
    return effects.sensitivity * scale * x**3 - 0.01 * (1 - x)


def perturbation_miss(condition: str, sparsity: float, lang: Language) -> float:
    """Extra misses under a perturbation: larger for sparser models and for low-resource languages."""
    if condition == "clean":
        return 0.0
    return PERTURBATIONS[condition] * (1 + sparsity) * (1.3 if lang.tier == "low" else 1.0)


def sweep_language(lang: Language, seeds: int = 3, dense_seeds: int = 3, arms: Sequence[str] = ARMS,
                   sparsities: Sequence[float] = SPARSITIES, conditions: Sequence[str] = ("clean",),
                   max_sentences: int | None = None, seed: int = 0) -> list:
    """The cells of one language: every arm × sparsity × condition against the dense runs of the condition."""
    from sparsenlp.analysis.stats import (
        Cell,  # stats imports nothing from here: no cycle at load time
    )

    n = lang.test_sentences if max_sentences is None else min(lang.test_sentences, max_sentences)
    rng = np.random.default_rng([seed, sum(map(ord, lang.code)), n])
    sentences = make_test_set(rng, n, lang.mean_tokens)
    effects = language_effects(lang, seed)

    def runs(miss: float, first_seed: int, k: int) -> list[list[dict]]:
        out = []
        for s in range(first_seed, first_seed + k):
            run_rng = np.random.default_rng([seed, sum(map(ord, lang.code)), s, int(miss * 1e6)])
            jitter = run_rng.normal(0, 0.01)
            out.append(predict(run_rng, sentences, lang.code, float(np.clip(miss + jitter, 0, 1)), 0.04, 0.05))
        return out

    cells = []
    for condition in conditions:
        dense = runs(effects.dense_miss + perturbation_miss(condition, 0.0, lang), 0, dense_seeds)
        for arm in arms:
            for sparsity in sparsities:
                miss = effects.dense_miss + extra_miss(arm, sparsity, effects) + perturbation_miss(condition, sparsity,
                                                                                                  lang)
                cells.append(Cell(lang.code, arm, sparsity, condition, dense, runs(miss, 100, seeds)))
    return cells


def runs_table(cells: Sequence, languages: Sequence[Language], seed: int = 0):
    """The runs table of in-memory cells (:func:`sweep_language`), as the figures and the covariate model read
    it: one row per run × condition with its span F1, each arm's dense baseline at sparsity 0, and the
    languages' facts (:func:`language_covariates`, less the single-entity share, which comes from the test set)."""
    import pandas as pd

    from sparsenlp.analysis.encode import TestSet
    from sparsenlp.analysis.stats import span_f1

    facts = {lang.code: lang for lang in languages}
    rows, seen = [], set()
    for cell in cells:
        lang = facts[cell.lang]
        test = TestSet(cell.dense[0], cell.lang, cell.condition)
        about = {"lang": lang.code, "tier": lang.tier, "script": lang.script, "family": lang.family,
                 **{k: v for k, v in language_covariates(lang, seed).items() if k != "single_entity_share"}}
        for sparsity, runs in ((0.0, cell.dense), (cell.sparsity, cell.sparse)):
            key = (cell.lang, cell.arm, sparsity, cell.condition)
            if key in seen:
                continue
            seen.add(key)
            for k, run in enumerate(runs):
                counts = test.encode(run)
                rows.append({**about, "arm": cell.arm, "sparsity": sparsity, "seed": k, "condition": cell.condition,
                             "f1": float(span_f1(counts.tp.sum(), counts.pred.sum(), test.gold.sum()))})
    return pd.DataFrame(rows)


# --- runs on disk -------------------------------------------------------------------------------------------

METHODS = {"dense": ("none", "none", "none"), "global_magnitude": ("magnitude", "global", "cubic"),
           "layerwise_magnitude": ("magnitude", "layerwise", "cubic")}  # method: (criterion, scope, schedule)
MBERT_PRUNABLE, MBERT_TOTAL, MBERT_LAYERS = 85_054_464, 177_853_440, 12  # encoder attention + FFN Linear, all


def _pruning(method: str, sparsity: float, steps: int, embedding_sparsity: float = 0.0) -> dict:
    """The pruning section of a gradual magnitude run: 72 mBERT-shaped tensors, 10 updates, a cubic trace."""
    _, scope, _ = METHODS[method]
    each = MBERT_PRUNABLE // (MBERT_LAYERS * 6)
    names = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
             "intermediate.dense", "output.dense")
    per_tensor = {f"bert.encoder.layer.{layer}.{name}.weight": {
        "numel": each, "pruned": int(each * sparsity), "target": sparsity if scope == "layerwise" else None,
        "achieved": int(each * sparsity) / each} for layer in range(MBERT_LAYERS) for name in names}
    updates = [int(steps * (0.1 + 0.6 * k / 9)) for k in range(10)]
    trace = [{"step": s, "target": sparsity * (1 - (1 - k / 9) ** 3), "achieved": sparsity * (1 - (1 - k / 9) ** 3)}
             for k, s in enumerate(updates)]
    embedding = embedding_sparsity or None
    return {"target": sparsity, "embedding_target": embedding, "embedding_achieved": embedding,
            "achieved": sparsity, "model_sparsity": sparsity * MBERT_PRUNABLE / MBERT_TOTAL,
            "prunable_parameters": MBERT_PRUNABLE, "total_parameters": MBERT_TOTAL,
            "pruned_parameters": int(MBERT_PRUNABLE * sparsity), "per_tensor": per_tensor, "trace": trace,
            "schedule": {"name": "cubic", "initial_sparsity": 0.0, "final_sparsity": sparsity, "total_steps": steps,
                         "update_steps": updates, "updates": 10, "start_step": updates[0], "end_step": updates[-1],
                         "recovery_steps": steps - updates[-1], "recovery_fraction": (steps - updates[-1]) / steps}}


def _metrics(f1: float, sentences: int) -> dict:
    return {"precision": f1, "recall": f1, "f1": f1, "sentences": sentences, "per_type": {}}


def language_data_facts(lang: str, test: "TestSet", train_sentences: int, seed: int = 0) -> dict:
    """The data facts a record gives per test language (``record.data.facts``): sentences trained on, the test
    set's size and single-entity share, and a synthetic entity overlap and tokenizer fertility (fixed per
    language and ``seed``)."""
    rng = np.random.default_rng([seed, sum(map(ord, lang)), 7])
    return {"train_sentences": int(train_sentences), "dev_sentences": min(max(int(train_sentences), 1), 10000),
            "test_sentences": len(test), "single_entity_share": test.single_entity_share,
            "seen_entity_share": float(rng.uniform(0.2, 0.7)) if train_sentences else None,
            "subwords_per_word": float(rng.uniform(1.1, 2.6))}


def run_record(scores: Mapping[str, tuple[float, int]], train_langs: Sequence[str], method: str = "dense",
               sparsity: float = 0.0, seed: int = 0, model: str = "mbert", embedding_sparsity: float = 0.0,
               selection: str = "best@0.7", length: str = "epochs=10", config: Mapping | None = None, run_dir: Path = Path("run"), overrides: Sequence[str] = (),
               facts: Mapping[str, dict] | None = None):
    """A valid record (``RunRecord``) of one synthetic job: ``scores``: test language → (clean F1, test
    sentences); the languages' facts come from ``conf/languages/xtreme40.yaml``, the training sizes from
    their WikiANN splits; ``facts`` (test language → :func:`language_data_facts`) is kept where the record
    has a place for it (``data.facts``)."""
    from sparsenlp.tracking.schema import DataInfo, RunRecord

    conf = _languages_config()
    languages = {code: {**conf["langs"][code], "transfer": code not in train_langs,
                        "tier": tier(conf["langs"][code]["train_size"])} for code in scores}
    train = {code: conf["langs"][code]["train_size"] for code in train_langs}
    steps = max(500, -(-sum(train.values()) // 32) * 10)
    criterion, scope, schedule = METHODS[method]
    dense = method == "dense"
    history = [{"step": s, "loss": 1.0 / (1 + s / 100), "lr": 2e-5 * (1 - s / steps), "epoch": s / (steps / 10)}
               for s in range(50, steps + 1, max(50, steps // 40))]
    dev_f1 = float(np.mean([f1 for f1, _ in scores.values()]))
    data = {"source": "local", "train_sentences": sum(train.values()), "train_sentences_per_lang": train,
            "dev_sentences": min(sum(train.values()), 10000), "test_sentences": {c: n for c, (_, n) in scores.items()},
            "train_windows": sum(train.values()) + 10, "max_length": 128, "tokenizer": "0123456789abcdef",
            "feature_cache": {"hits": 3, "misses": 0}}
    if facts is not None and "facts" in DataInfo.model_fields:
        data["facts"] = dict(facts)
    return RunRecord.model_validate({
        "arm": {"model": model, "regime": "per_language" if len(train_langs) == 1 else "joint",
                "train_langs": list(train_langs), "method": method, "criterion": criterion, "scope": scope,
                "schedule": schedule, "sparsity": 0.0 if dense else sparsity,
                "embedding_sparsity": 0.0 if dense else embedding_sparsity, "selection": selection,
                "length": length, "seed": seed},
        "config": dict(config or {"lang": list(train_langs), "seed": seed}),
        "run": {"eval_langs": list(scores), "output_dir": str(run_dir),
                "started_at": "2026-11-20T10:00:00+00:00", "finished_at": "2026-11-20T11:00:00+00:00",
                "git_revision": None, "overrides": list(overrides), "sweep_dir": str(run_dir.parent), "job_num": None},
        "data": data,
        "model": {"name": model, "name_or_path": "bert-base-multilingual-cased", "parameters": MBERT_TOTAL},
        "languages": languages,
        "training": {"steps": steps, "steps_per_epoch": steps // 10, "epochs": 10.0, "length_by": "epochs",
                     "selection": {"rule": "best", "after": 0.7, "eligible_steps": [steps], "candidates": 1,
                                   "step": steps, "dev_f1": dev_f1}, "train_seconds": 3600.0, "sentences_per_second": 50.0,
                     "tokens_per_second": 2000.0, "device": "cuda", "precision": "bf16", "resumed_from_step": None,
                     "history": history, "dev_history": [{"step": steps, "f1": dev_f1, "precision": dev_f1,
                                                          "recall": dev_f1, "eligible": True}]},
        "dev": _metrics(dev_f1, 1000), "test": {c: {"clean": _metrics(f1, n)} for c, (f1, n) in scores.items()},
        "robustness": {}, "robustness_not_applicable": {}, "entity_pools": {}, "pruning": None if dense else _pruning(method, sparsity, steps,
                                                                                               embedding_sparsity),
        "timings": {"total_seconds": 3700.0, "train_seconds": 3600.0, "eval_seconds": 60.0},
        "versions": {"python": "3.11", "sparsenlp": "synthetic"}})


def write_run(run_dir: Path, rows: Sequence[dict], train_langs: Sequence[str], **arm) -> None:
    """One synthetic job on disk through ``records.write``: its record (clean F1 per test language computed
    from ``rows`` with the analysis's span counts, and each language's data facts) and
    ``predictions/test.jsonl`` with its companion."""
    from sparsenlp.analysis.encode import TestSet
    from sparsenlp.tracking import records

    scores, facts = {}, {}
    conf = _languages_config()
    for lang in dict.fromkeys(r["lang"] for r in rows):
        mine = [r for r in rows if r["lang"] == lang]
        test = TestSet(mine, lang, "clean")
        counts = test.encode(mine)
        scores[lang] = (float(2 * counts.tp.sum() / max(counts.pred.sum() + test.gold.sum(), 1)), len(mine))
        trained = conf["langs"][lang]["train_size"] if lang in train_langs else 0
        facts[lang] = language_data_facts(lang, test, trained)
    records.write(run_dir, run_record(scores, train_langs, run_dir=run_dir, facts=facts, **arm),
                  {"test": list(rows)})


# --- run-level F1 with planted effects of the languages' facts ----------------------------------------------


def language_covariates(lang: Language, seed: int = 0) -> dict[str, float]:
    """The facts a covariate model reads, for a synthetic language: the sentences trained on (its WikiANN
    split), a tokenizer fertility, a seen-entity share and a single-entity share, fixed per language and seed."""
    rng = np.random.default_rng([seed, sum(map(ord, lang.code)), 11])
    return {"train_size": float(lang.train_size), "subwords_per_word": float(rng.uniform(1.1, 2.6)),
            "seen_entity_share": float(rng.uniform(0.2, 0.7)), "single_entity_share": float(rng.uniform(0.05, 0.4))}


def covariate_sweep(languages: Sequence[Language], planted: Mapping[str, float] | None = None,
                    sparsities: Sequence[float] = (0.5, 0.9), seeds: int = 3, arm: str = ARMS[0],
                    heterogeneity: float = 0.01, seed_sd: float = 0.01, seed: int = 0):
    """(runs table, significance table) of one arm whose ΔF1 at every sparsity is ``−0.1·sparsity³`` plus
    ``planted[x] · (x − mean x)`` for each planted fact x (``log2_train`` = log2(1 + train_size), or a
    column of :func:`language_covariates`), plus a language effect (sd ``heterogeneity``); every run adds
    seed noise (sd ``seed_sd``). The runs table has the dense baseline at sparsity 0, as
    :func:`sparsenlp.analysis.sweep_comparison.baseline_runs` gives it; the significance table lists every
    comparison as tested."""
    import pandas as pd

    rng = np.random.default_rng([seed, 97])
    facts = {lang.code: language_covariates(lang, seed) for lang in languages}
    values = {code: {**f, "log2_train": float(np.log2(1.0 + f["train_size"]))} for code, f in facts.items()}
    means = {x: float(np.mean([v[x] for v in values.values()])) for x in (planted or {})}
    runs, sig = [], []
    for lang in languages:
        level = 0.85 + rng.normal(0, 0.03)
        base = {"lang": lang.code, "tier": lang.tier, "script": lang.script, "family": lang.family,
                "condition": "clean", "arm": arm, **{k: v for k, v in facts[lang.code].items()
                                                     if k != "single_entity_share"}}
        for s in range(seeds):
            runs.append({**base, "sparsity": 0.0, "seed": s, "f1": level + rng.normal(0, seed_sd)})
        for sparsity in sparsities:
            delta = -0.1 * sparsity**3 + rng.normal(0, heterogeneity) + sum(
                beta * (values[lang.code][x] - means[x]) for x, beta in (planted or {}).items())
            for s in range(seeds):
                runs.append({**base, "sparsity": sparsity, "seed": 100 + s,
                             "f1": level + delta + rng.normal(0, seed_sd)})
            sig.append({"lang": lang.code, "arm": arm, "condition": "clean", "sparsity": sparsity,
                        "delta_f1": delta, "p_value": 0.5, "verdict": "indistinguishable",
                        "single_entity_share": facts[lang.code]["single_entity_share"]})
    return pd.DataFrame(runs), pd.DataFrame(sig)
