"""The run record (``results.json``): one typed definition for every writer and reader.

``train`` fills a :class:`RunRecord`; the analysis, the W&B tracker and the tests read records back
through :func:`RunRecord.model_validate` (pydantic), so a field is named, typed and documented once.
``results.schema.json`` next to this file is generated from it (``python -m sparsenlp.tracking.schema``)
for readers in other languages; a test keeps the two identical.

Every record names its **arm** (:class:`Arm`): model, training regime, training languages, pruning method
and criterion, schedule, embeddings pruned or not, target sparsity, quantization and seed. Aggregates
never mix arms; seeds are the replicate axis.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model, model_validator

from sparsenlp.languages import TIERS
from sparsenlp.languages import Language as LanguageFacts
from sparsenlp.pruning.methods import methods

SCHEMA_VERSION = 3
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")
DENSE = "dense"
CLEAN = "clean"
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Condition = Annotated[str, StringConstraints(pattern=r"^(clean|[A-Za-z0-9_.-]+@[0-9.e+-]+)$")]
Regime = Literal["per_language", "joint"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Arm(_Model):
    """What was compared: one cell of the study's design (without the language it is scored on)."""

    model: str = Field(description="model config name, e.g. mbert")
    regime: Regime = Field(description="per_language: trained on one language; joint: one model on several")
    train_langs: list[str] = Field(min_length=1)
    method: str = Field(description="pruning config name: dense, global_magnitude, layerwise_magnitude, ...")
    criterion: str = Field(description="what ranks weights: none (dense), magnitude, movement, l1, l2, random")
    scope: str = Field(description="where weights compete: global, layerwise (per tensor), none (dense)")
    structure: Optional[str] = Field(default=None, description="shape of the sparsity when constrained: "
                                     "'heads=0.25,ffn=0.25' (structured), '2:4' (N:M); null: unstructured")
    schedule: str = Field(description="none (dense, structured) or the schedule config name")
    embeddings: bool = Field(description="the word-embedding matrix is pruned too")
    sparsity: Fraction = Field(description="target share of the selected weights removed; 0 for dense")
    quantization: str = Field(default="none", description="post-training quantization: none, dynamic_int8")
    seed: int

    def label(self) -> str:
        """The arm without model, regime and seed, for table columns: ``global_magnitude·cubic@0.9+emb``
        (``+dynamic_int8`` when quantized; ``structured_heads:l2[...]``: a criterion the method name does
        not imply, so arms that differ only in it never share a label)."""
        return self._label(with_sparsity=True)

    def setting(self) -> str:
        """The label without the sparsity level: one line of an F1-vs-sparsity figure."""
        return self._label(with_sparsity=False)

    def _label(self, with_sparsity: bool) -> str:
        quantized = "" if self.quantization == "none" else f"+{self.quantization}"
        if self.method == DENSE:
            return DENSE + quantized
        known = methods().get(self.method)  # a record of a method whose package is not installed: say everything
        implied_criterion = known.implied_criterion if known else None
        implied_scope = known.implied_scope if known else None
        name = self.method + ("" if self.criterion == implied_criterion else f":{self.criterion}")
        method = name if self.scope == implied_scope else f"{name}[{self.scope}]"
        structure = f"({self.structure})" if self.structure else ""
        sparsity = f"@{self.sparsity:g}" if with_sparsity else ""
        emb = "+emb" if self.embeddings else ""
        return f"{method}{structure}·{self.schedule}{sparsity}{emb}{quantized}"

    def run_name(self) -> str:
        """A short human name: ``sw-global-s0.9-emb-seed2``, ``de+sw-dense-seed1``."""
        langs = "+".join(self.train_langs) if len(self.train_langs) <= 3 else f"{len(self.train_langs)}langs"
        method = self.method.removesuffix("_magnitude")
        parts = [langs, method]
        if self.method != DENSE:
            parts += [f"s{self.sparsity:g}"] + (["emb"] if self.embeddings else [])
        if self.quantization != "none":
            parts.append(self.quantization)
        return "-".join([*parts, f"seed{self.seed}"])


ARM_FIELDS: tuple[str, ...] = tuple(Arm.model_fields)


def _language_model() -> type[BaseModel]:
    """A test language in the record: the facts of ``sparsenlp.languages.Language`` (the one type of a
    language's facts), its tier and its role in the run."""
    types = get_type_hints(LanguageFacts)
    facts = {f.name: (types[f.name], Field(description=f.metadata["help"])) for f in dataclasses.fields(LanguageFacts)}
    return create_model(
        "Language", __base__=_Model, __doc__=_language_model.__doc__, **facts,
        tier=(Literal[TIERS], Field(description="high: training set reaches languages.tier_min_train_sentences")),
        transfer=(bool, Field(description="not among the training languages: zero-shot cross-lingual transfer")),
    )


Language = _language_model()


class RunInfo(_Model):
    eval_langs: list[str] = Field(min_length=1)
    output_dir: str
    started_at: str
    finished_at: str
    git_revision: Optional[str]
    overrides: list[str]
    sweep_dir: Optional[str]
    job_num: Optional[int]


class FeatureCacheUse(_Model):
    hits: int = Field(ge=0)
    misses: int = Field(ge=0)


class LanguageDataFacts(_Model):
    """What a test language's scores can be explained by besides the model (sparsenlp/data/facts.py)."""

    train_sentences: int = Field(ge=0, description="sentences of this language trained on; 0: zero-shot")
    dev_sentences: int = Field(ge=0, description="sentences of this language in the run's dev set")
    test_sentences: int = Field(ge=0)
    single_entity_share: Fraction = Field(description="share of test sentences whose tokens are all one entity")
    seen_entity_share: Optional[Fraction] = Field(description="share of test entity mentions whose surface form "
                                                  "is an entity in the run's training data; null: no mention")
    subwords_per_word: float = Field(ge=0, description="the run's tokenizer's subwords per test word")


class DataInfo(_Model):
    source: Literal["hub", "local"]
    train_sentences: int = Field(ge=1)
    train_sentences_per_lang: dict[str, int]
    dev_sentences: int = Field(ge=1)
    test_sentences: dict[str, int]
    train_windows: int = Field(ge=1)
    max_length: int
    tokenizer: str = Field(description="content hash of the tokenizer (same hash = same tokenization)")
    feature_cache: FeatureCacheUse
    facts: dict[str, LanguageDataFacts] = Field(description="test language -> facts of its data in this run")


class ModelInfo(_Model):
    name: str
    name_or_path: Optional[str]
    parameters: int = Field(ge=1, description="after structured pruning, if any")


class LossEntry(_Model):
    step: int
    loss: Optional[float]
    lr: float
    epoch: float


class DevEntry(_Model):
    step: int
    f1: float
    precision: Optional[float] = Field(description="null: the model predicted no entity")
    recall: float
    eligible: bool = Field(description="at the final sparsity, so the model may be selected")


class TrainingInfo(_Model):
    steps: int = Field(ge=1)
    steps_per_epoch: int = Field(ge=1)
    epochs: float
    best_step: Optional[int]
    best_dev_f1: Optional[float]
    train_seconds: float = Field(ge=0)
    sentences_per_second: float = Field(ge=0)
    tokens_per_second: float = Field(ge=0)
    device: str
    precision: str
    resumed_from_step: Optional[int]
    history: list[LossEntry]
    dev_history: list[DevEntry]


class Score(_Model):
    """Span P/R/F1; a ratio whose denominator is 0 is null, never 0, and ``missing`` says why."""

    precision: Optional[Fraction] = Field(description="null: no predicted entity")
    recall: Optional[Fraction] = Field(description="null: no gold entity")
    f1: Optional[Fraction] = Field(description="null: no gold entity")
    support: Optional[int] = None
    missing: Optional[str] = Field(default=None, description="why a value above is null")


class Metrics(Score):
    sentences: int = Field(ge=0)
    per_type: dict[str, Score]


class Strength(_Model):
    """How much a condition changed a language's test text, the dose its gap answers
    (sparsenlp/perturb/strength.py). Shares of the clean test set's sentences, characters (grapheme
    clusters, by edit distance) and the run's tokenizer's subwords; a swap for longer names can exceed 1."""

    sentences_changed: Fraction
    characters_changed: float = Field(ge=0)
    subwords_changed: float = Field(ge=0)
    unk_before: Fraction = Field(description="share of the clean test subwords that are the unknown token")
    unk_after: Fraction = Field(description="the same on the perturbed test set")


class Gap(_Model):
    """Perturbed F1 and its drop from clean F1, absolute and relative (None when clean F1 is 0), next to the
    strength of the perturbation that caused it. Without an F1 on either side (no gold entity) the gap is null,
    never 0, and ``missing`` says why."""

    f1: Optional[float]
    gap: Optional[float]
    gap_ratio: Optional[float]
    strength: Strength
    missing: Optional[str] = Field(default=None, description="why the gap is null")


class EntityPoolInfo(_Model):
    """Where an entity_swap member's replacement names came from, for one test language."""

    source: Literal["seen", "unseen", "script", "family"]
    split: Literal["train", "test"] = Field(description="the split of `languages` the names come from")
    languages: list[str]
    sizes: dict[str, int] = Field(description="entity type -> distinct surface forms")
    excluded: int = Field(ge=0, description="distinct forms left out: entities of the run's training or dev data")
    training_data: bool = Field(description="true for `seen` only: names from the run's training data, on purpose "
                                "(it probes memorisation); every other pool holds none")


class ScheduleInfo(_Model):
    name: str
    initial_sparsity: float
    final_sparsity: float
    total_steps: int
    update_steps: list[int]
    updates: int = Field(description="mask updates, the same for every language of a sweep")
    start_step: int
    end_step: int = Field(description="the final sparsity is in force from here")
    recovery_steps: int = Field(description="optimizer steps after the last update")
    recovery_fraction: Fraction


class TensorSparsity(_Model):
    numel: int
    pruned: int
    target: Optional[float] = Field(description="per-tensor target (layer-wise selection), else null")
    achieved: Fraction


class TraceEntry(_Model):
    step: int
    target: float
    achieved: float


class PruningInfo(_Model):
    """What pruning did: target and achieved sparsity overall and per tensor, and how it got there."""

    target: Fraction
    achieved: Fraction = Field(description="share of the prunable weights that are zero by mask")
    model_sparsity: Fraction = Field(description="pruned weights over all the model's parameters")
    prunable_parameters: int = Field(ge=1)
    total_parameters: int = Field(ge=1)
    pruned_parameters: int = Field(ge=0)
    per_tensor: dict[str, TensorSparsity]
    trace: list[TraceEntry]
    schedule: Optional[ScheduleInfo]
    details: Optional[dict[str, Any]] = Field(default=None, description="the method's own section, typed by its "
                                              "`report` model (sparsenlp/pruning/methods/<method>.py)")


class QuantizedLanguage(_Model):
    f1_change: Optional[float] = Field(description="int8 F1 minus fp32 F1 on the clean test set; null without an "
                                      "F1 (no gold entity)")
    token_agreement: Fraction = Field(description="share of words with the same predicted tag")
    fp32_seconds: float
    int8_seconds: float


class QuantizationInfo(_Model):
    """Post-training quantization of the selected model: size, CPU speed and the int8 model's scores."""

    method: str
    modules: list[str]
    dtype: str
    engine: str
    cpu_threads: int
    fp32_bytes: int = Field(description="torch.save(state_dict) of the fp32 model")
    int8_bytes: int
    size_ratio: float
    fp32_seconds: float = Field(description="CPU time to predict every clean test set, fp32")
    int8_seconds: float
    speedup: Optional[float]
    per_language: dict[str, QuantizedLanguage]
    test: dict[str, dict[Condition, Metrics]] = Field(description="the int8 model: language -> condition")
    robustness: dict[str, dict[Condition, Gap]]


class RunRecord(_Model):
    """Everything one job measured; ``results.json`` is this, written last and atomically."""

    schema_version: Literal[3] = SCHEMA_VERSION
    status: Literal["complete"] = "complete"
    arm: Arm
    config: dict[str, Any] = Field(description="the resolved Hydra config of the job")
    run: RunInfo
    data: DataInfo
    model: ModelInfo
    languages: dict[str, Language] = Field(description="every test language")
    training: TrainingInfo
    dev: Metrics
    test: dict[str, dict[Condition, Metrics]] = Field(description="test language -> condition -> metrics")
    robustness: dict[str, dict[Condition, Gap]] = Field(description="test language -> perturbed condition -> gap")
    robustness_not_applicable: dict[str, dict[Condition, str]] = Field(
        description="test language -> perturbed condition -> why it cannot change that language (absent from "
                    "`test` and `robustness`, never a gap of 0)")
    entity_pools: dict[str, dict[str, EntityPoolInfo]] = Field(description="test language -> entity_swap member "
                                                                "-> its pool")
    pruning: Optional[PruningInfo] = Field(description="null for a dense run")
    quantization: Optional[QuantizationInfo] = Field(default=None, description="null without quantization; "
                                                      "`test` above is the fp32 model either way")
    timings: dict[str, Annotated[float, Field(ge=0)]]
    versions: dict[str, Optional[str]]

    @model_validator(mode="after")
    def _typed_details(self) -> "RunRecord":
        self.method_report()
        return self

    def method_report(self) -> Optional[BaseModel]:
        """``pruning.details`` as its method's typed report (None without one, or for a method whose package is
        not installed here)."""
        method = methods().get(self.arm.method)
        if method is None or method.report is None or self.pruning is None or self.pruning.details is None:
            return None
        return method.report.model_validate(self.pruning.details)


def json_schema() -> dict[str, Any]:
    schema = RunRecord.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sparsenlp run record (results.json)"
    return schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # regenerate results.schema.json
    SCHEMA_PATH.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}", file=sys.stderr)
