"""The run record (``results.json``): one typed definition for every writer and reader.

``train`` fills a :class:`RunRecord`; the analysis, the W&B tracker and the tests read records back
through :func:`RunRecord.model_validate` (pydantic), so a field is named, typed and documented once.
``results.schema.json`` next to this file is generated from it (``python -m sparsenlp.tracking.schema``)
for readers in other languages; a test keeps the two identical.

Every record names its **arm** (:class:`Arm`): model, training regime, training languages, pruning method
and criterion, schedule, target sparsity of the selected weights and of the embedding matrix, quantization, the
protocol (model-selection rule, training length) and seed. Aggregates never mix arms; seeds are the replicate
axis.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, get_type_hints

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    model_validator,
)

from sparsenlp.languages import TIERS
from sparsenlp.languages import Language as LanguageFacts
from sparsenlp.pruning.methods import methods

SCHEMA_VERSION = 4
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")
DENSE = "dense"
CLEAN = "clean"
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Condition = Annotated[str, StringConstraints(pattern=r"^(clean|[A-Za-z0-9_.-]+@[0-9.e+-]+)$")]
Regime = Literal["per_language", "joint"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Arm(_Model):
    """What was compared: one cell of the study's design (without the language it is scored on).

    ``selection`` and ``length`` are the protocol: a pruned arm is only ever compared with dense runs of the same
    protocol. Labels leave them out (every arm of a study shares them); the analysis names them where a sweep
    holds several (``sparsenlp.analysis.sweep_comparison.cell_arms``)."""

    model: str = Field(description="model config name, e.g. mbert")
    regime: Regime = Field(description="per_language: trained on one language; joint: one model on several")
    train_langs: list[str] = Field(min_length=1)
    method: str = Field(description="pruning config name: dense, global_magnitude, layerwise_magnitude, ...")
    criterion: str = Field(description="what ranks weights: none (dense), magnitude, movement, l1, l2, random")
    scope: str = Field(description="where weights compete: global, layerwise (per tensor), none (dense)")
    structure: Optional[str] = Field(default=None, description="shape of the sparsity when constrained: "
                                     "'heads=0.25,ffn=0.25' (structured), '2:4' (N:M); null: unstructured")
    schedule: str = Field(description="none (dense, structured) or the schedule config name")
    sparsity: Fraction = Field(description="target share of the selected weights removed (pruning.params: the "
                               "encoder's Linear weights by default), the embedding matrix apart; 0 for dense")
    embedding_sparsity: Fraction = Field(description="target share of the word-embedding matrix removed, ranked "
                                         "within the matrix alone; 0: not pruned")
    quantization: str = Field(default="none", description="post-training quantization: none, dynamic_int8")
    calibration: Optional[str] = Field(default=None, description="one-shot methods: whose data calibrated the "
                                       "pruning (self, a language code, mix, none); null for other methods")
    recovery_steps: int = Field(default=0, ge=0, description="one-shot methods: fine-tuning steps after pruning, "
                                "masks fixed (0: none, and for the methods that prune during fine-tuning)")
    selection: str = Field(description="the model-selection rule (trainer.selection, trainer.select_after): "
                           "'best@0.7' = best dev F1 among evaluations from 70% of training on; 'final'")
    length: str = Field(description="the training-length policy: 'epochs=10', 'epochs=10,min_steps=500' (a floor "
                        "that gives small training sets more epochs), 'max_steps=300'")
    seed: int

    def label(self) -> str:
        """The arm without model, regime, protocol and seed, for table columns: ``global_magnitude·cubic@0.9+emb``
        (``+emb``: the embedding matrix pruned to the same target; ``+emb@0.5`` to another; ``+dynamic_int8``
        when quantized; ``structured_heads:l2[...]``: a criterion the method name does not imply, so arms that
        differ only in it never share a label)."""
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
        if self.calibration is not None:  # one-shot after fine-tuning: no schedule; the calibration data instead
            recovery = f"+rec{self.recovery_steps}" if self.recovery_steps else ""
            return f"{method}{structure}·cal={self.calibration}{sparsity}{recovery}{quantized}"
        return f"{method}{structure}·{self.schedule}{sparsity}{self._embeddings('+emb', '@')}{quantized}"

    def _embeddings(self, mark: str, at: str) -> str:
        """The embedding matrix in labels: nothing when not pruned, ``mark`` at the arm's own target, else
        ``mark`` + ``at`` + its target."""
        if not self.embedding_sparsity:
            return ""
        return mark if self.embedding_sparsity == self.sparsity else f"{mark}{at}{self.embedding_sparsity:g}"

    def protocol(self) -> str:
        """What every arm of a comparison must share besides the data: ``best@0.7; epochs=10``."""
        return f"{self.selection}; {self.length}"

    def run_name(self) -> str:
        """A short human name: ``sw-global-s0.9-emb-seed2`` (``emb0.5``: another target for the embedding matrix),
        ``de+sw-dense-seed1``."""
        langs = "+".join(self.train_langs) if len(self.train_langs) <= 3 else f"{len(self.train_langs)}langs"
        method = self.method.removesuffix("_magnitude")
        parts = [langs, method]
        if self.method != DENSE:
            # the structure (2:4, heads=0.5,ffn=0.5), then the sparsity, which a structured method knows only once
            # the model is built (0 before: a sweep names its jobs before building anything)
            parts += [self.structure] if self.structure else []
            parts += [f"s{self.sparsity:g}"] if self.sparsity or not self.structure else []
            parts += [self._embeddings("emb", "")] if self.embedding_sparsity else []
            parts += [f"cal_{self.calibration}"] if self.calibration is not None else []
            parts += [f"rec{self.recovery_steps}"] if self.recovery_steps else []
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
    eligible: bool = Field(description="the selection rule let this evaluation compete (never before the final "
                           "sparsity)")


class SelectionInfo(_Model):
    """Which dev evaluation the run kept, under the rule every arm of a comparison shares (``trainer.selection``,
    ``trainer.select_after``): a dense run and the pruned runs it is compared with have the same eligible steps."""

    rule: Literal["best", "final"] = Field(description="best: highest dev F1 among the eligible evaluations; final: "
                                           "the model after the last step")
    after: Optional[Fraction] = Field(description="rule best: evaluations from this share of training on are "
                                      "eligible; null for final")
    eligible_steps: list[int] = Field(min_length=1, description="the steps of the evaluations that competed")
    candidates: int = Field(ge=1, description="how many competed (the more, the more a noisy dev set flatters)")
    step: int = Field(ge=1, description="the step of the model kept")
    dev_f1: float = Field(description="its dev F1")

    @model_validator(mode="after")
    def _consistent(self) -> "SelectionInfo":
        if self.candidates != len(self.eligible_steps) or self.step not in self.eligible_steps:
            raise ValueError("candidates must count eligible_steps, and the selected step must be one of them")
        return self


class TrainingInfo(_Model):
    steps: int = Field(ge=1, description="optimizer steps trained")
    steps_per_epoch: int = Field(ge=1)
    epochs: float = Field(description="passes over the training set trained: steps / steps_per_epoch")
    length_by: Literal["epochs", "min_steps", "max_steps"] = Field(
        description="what set `steps`: trainer.epochs x steps_per_epoch, the trainer.min_steps floor (an ablation "
                    "that gives small training sets more epochs) or trainer.max_steps")
    selection: SelectionInfo
    train_seconds: float = Field(ge=0, description="time spent in optimizer steps, summed over every process that "
                                 "trained this run (a resumed run counts the steps before its checkpoint too)")
    sentences_per_second: float = Field(ge=0)
    tokens_per_second: float = Field(ge=0)
    device: str
    precision: str
    resumed_from_step: Optional[int]
    reused_from: Optional[str] = Field(default=None, description="trainer.model_store entry the fine-tuned model "
                                       "was loaded from (trained once, by a job with the same training config)")
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
    target: float = Field(description="the selected weights' target after this update")
    achieved: float
    embedding_target: Optional[float] = Field(default=None, description="the embedding matrix's, when pruned")
    embedding_achieved: Optional[float] = None


class PruningInfo(_Model):
    """What pruning did: target and achieved sparsity of the selected weights and of the embedding matrix (each
    selected on its own), of the whole model and per tensor, and how it got there."""

    target: Fraction = Field(description="the selected weights' final target (pruning.params: the encoder's Linear "
                             "weights by default), the embedding matrix apart")
    achieved: Fraction = Field(description="share of the selected weights that are zero by mask")
    embedding_target: Optional[Fraction] = Field(description="the word-embedding matrix's own final target; null: "
                                                 "not pruned")
    embedding_achieved: Optional[Fraction] = Field(description="share of the embedding matrix zero by mask")
    model_sparsity: Fraction = Field(description="pruned weights over all the model's parameters")
    prunable_parameters: int = Field(ge=1, description="weights under a mask: the selected ones, and the embedding "
                                     "matrix when pruned")
    total_parameters: int = Field(ge=1)
    pruned_parameters: int = Field(ge=0, description="weights zero by mask, the embedding matrix's included")
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

    schema_version: Literal[4] = SCHEMA_VERSION
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
    timings: dict[str, Annotated[float, Field(ge=0)]] = Field(
        description="seconds of the process that wrote the record: data, model, total (after a resume, less than "
                    "training.train_seconds, which sums every process)")
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
