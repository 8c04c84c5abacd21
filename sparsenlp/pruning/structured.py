"""Structured pruning (whole attention heads, FFN neurons) of BERT-family token classifiers.

Unlike mask-based pruning this produces a genuinely smaller model. The dependency tracing, importance
ranking and tensor surgery are torch-pruning's (``BasePruner`` with ``prune_num_heads``); this module
chooses what may be pruned, keeps the Hugging Face model self-consistent and reports the effect.

Choices, and why:
- Pruning is *per layer and uniform*: every layer loses ``ceil(head_ratio * heads)`` heads (the ones
  with the lowest importance in that layer) and keeps ``floor((1 - ffn_ratio) * intermediate_size)``
  FFN neurons (rounded down to a multiple of ``round_to``). HF configs hold one ``num_attention_heads``
  and one ``intermediate_size`` for all layers, so uniform widths are what a config can describe.
- The hidden size, embeddings, LayerNorms and the classifier are never touched, so the output shape
  (batch, seq, num_labels) is unchanged.
- Transformers v5 has no ``config.pruned_heads``, and stock BERT derives the head size as
  ``hidden_size / num_attention_heads``, so a model with fewer heads of the original size cannot be
  rebuilt from a stock config. Pruning therefore switches the config to a registered subclass
  (model type ``sparsenlp-pruned-<type>``) that also stores ``attention_head_size``; the matching
  model classes rebuild the narrower attention, so ``save_pretrained`` +
  ``AutoModelForTokenClassification.from_pretrained`` round-trips once this module is imported.
- Prune before fine-tuning: torch-pruning replaces parameter tensors, so an optimizer created earlier
  would keep updating the removed ones (see ``StructuredPruner``).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterator

import torch
import torch_pruning as tp
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    BertConfig,
    BertForTokenClassification,
    RobertaConfig,
    RobertaForTokenClassification,
    XLMRobertaConfig,
    XLMRobertaForTokenClassification,
)
from transformers.pytorch_utils import prune_linear_layer

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.methods.structured_heads import StructuredReport
from sparsenlp.pruning.params import select_prunable
from sparsenlp.tracking.schema import PruningInfo
from sparsenlp.training.callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover
    from sparsenlp.training.trainer import Trainer

# Magnitude scores are the group's summed |w|^p over the rows/columns a channel owns; a head scores the
# mean over its channels.
_IMPORTANCE = {
    "l1": lambda: tp.importance.MagnitudeImportance(p=1),
    "l2": lambda: tp.importance.MagnitudeImportance(p=2),
    "random": tp.importance.RandomImportance,
}
IMPORTANCES = tuple(_IMPORTANCE)
SUPPORTED = (BertForTokenClassification, RobertaForTokenClassification, XLMRobertaForTokenClassification)


# --- config and model classes that can rebuild a pruned checkpoint ------------------------------------


class _PrunedWidth:
    """Mixin for the model classes: build the stock model, then narrow every self-attention to
    ``config.num_attention_heads`` heads of ``config.attention_head_size`` so the saved tensors fit."""

    def __init__(self, config: Any) -> None:
        kept_heads = config.num_attention_heads
        # The stock __init__ derives the head size from the head count: give it the unpruned count.
        config.num_attention_heads = config.hidden_size // config.attention_head_size
        try:
            super().__init__(config)  # type: ignore[call-arg]
        finally:
            config.num_attention_heads = kept_heads
        for self_attention, attention_output in _attention_parts(self):  # type: ignore[arg-type]
            width = kept_heads * self_attention.attention_head_size
            _set_attention_width(self_attention, attention_output, torch.arange(width))


# attention_head_size defaults to 64 so that each class's defaults still describe the parent's default
# (base-size) model; pruning always writes the real value.
class PrunedBertConfig(BertConfig):
    model_type = "sparsenlp-pruned-bert"
    attention_head_size: int = 64


class PrunedRobertaConfig(RobertaConfig):
    model_type = "sparsenlp-pruned-roberta"
    attention_head_size: int = 64


class PrunedXLMRobertaConfig(XLMRobertaConfig):
    model_type = "sparsenlp-pruned-xlm-roberta"
    attention_head_size: int = 64


class PrunedBertForTokenClassification(_PrunedWidth, BertForTokenClassification):
    config_class = PrunedBertConfig


class PrunedRobertaForTokenClassification(_PrunedWidth, RobertaForTokenClassification):
    config_class = PrunedRobertaConfig


class PrunedXLMRobertaForTokenClassification(_PrunedWidth, XLMRobertaForTokenClassification):
    config_class = PrunedXLMRobertaConfig


_PRUNED_CONFIG = {
    BertConfig: PrunedBertConfig,
    RobertaConfig: PrunedRobertaConfig,
    XLMRobertaConfig: PrunedXLMRobertaConfig,
}
for _model_class in (
    PrunedBertForTokenClassification,
    PrunedRobertaForTokenClassification,
    PrunedXLMRobertaForTokenClassification,
):
    AutoConfig.register(_model_class.config_class.model_type, _model_class.config_class, exist_ok=True)
    AutoModelForTokenClassification.register(_model_class.config_class, _model_class, exist_ok=True)


# --- the report -------------------------------------------------------------------------------------


# --- checks -----------------------------------------------------------------------------------------


def check_structured_supported(model: nn.Module) -> None:
    """Fail fast (before any training) on a model whose attention this module cannot rewrite."""
    config = getattr(model, "config", None)
    if not isinstance(model, SUPPORTED) or getattr(config, "is_decoder", False):
        model_type = getattr(config, "model_type", "none")
        raise SparseNLPError(
            f"structured pruning supports BERT / RoBERTa / XLM-R encoders for token classification, got "
            f"{type(model).__name__} (model_type={model_type}); use a supported model or an unstructured "
            "pruning method (pruning=global_magnitude or pruning=layerwise_magnitude)"
        )


def check_ratios(head_ratio: float, ffn_ratio: float, importance: str = "l1", round_to: int | None = None) -> None:
    """Validate the model-independent arguments (usable at config time)."""
    for name, ratio in (("head_ratio", head_ratio), ("ffn_ratio", ffn_ratio)):
        if not 0.0 <= ratio < 1.0:
            raise SparseNLPError(f"{name}={ratio} is out of range; use 0 <= {name} < 1")
    if importance not in IMPORTANCES:
        raise SparseNLPError(f"unknown structured importance {importance!r}; use one of {', '.join(IMPORTANCES)}")
    if round_to is not None and round_to < 1:
        raise SparseNLPError(f"round_to={round_to} must be a positive integer (or null for no rounding)")


def planned_sparsity(config: Any, head_ratio: float, ffn_ratio: float, round_to: int | None) -> float:
    """Share of the encoder Linear weights (Q, K, V, attention output, FFN in and out) that pruning will
    remove from a model with this HF ``config``: known before pruning, so a run's arm can name it."""
    heads, ffn, hidden = config.num_attention_heads, config.intermediate_size, config.hidden_size
    kept_heads, kept_ffn = planned_widths(heads, ffn, head_ratio, ffn_ratio, round_to)
    attention = 4 * hidden * hidden  # q, k, v: (heads * head_size) x hidden each; output: the transpose
    feed_forward = 2 * hidden * ffn
    removed = attention * (1 - kept_heads / heads) + feed_forward * (1 - kept_ffn / ffn)
    return removed / (attention + feed_forward)


def planned_widths(
    heads: int, intermediate: int, head_ratio: float, ffn_ratio: float, round_to: int | None
) -> tuple[int, int]:
    """Heads and FFN neurons kept per layer, by torch-pruning's own rounding (local pruning)."""
    kept_heads = heads - math.ceil(head_ratio * heads)
    kept_ffn = int(intermediate * (1 - ffn_ratio))
    if round_to and kept_ffn < intermediate:
        kept_ffn -= kept_ffn % round_to
    if kept_heads < 1:
        raise SparseNLPError(f"head_ratio={head_ratio} would remove all {heads} heads per layer; lower head_ratio")
    if kept_ffn < 1:
        raise SparseNLPError(
            f"ffn_ratio={ffn_ratio} (round_to={round_to}) would remove all {intermediate} FFN neurons per layer; "
            "lower ffn_ratio or round_to"
        )
    return kept_heads, kept_ffn


# --- pruning ----------------------------------------------------------------------------------------


def prune_structured(
    model: nn.Module,
    *,
    head_ratio: float,
    ffn_ratio: float,
    example_inputs: dict[str, torch.Tensor] | None = None,
    importance: str = "l1",
    round_to: int | None = None,
) -> StructuredReport:
    """Remove attention heads and FFN neurons in place and update ``model.config`` to match.

    ``example_inputs`` (a tokenized batch) is used to trace the model; without it a random batch of
    8 x 128 token ids is used.
    """
    check_structured_supported(model)
    check_ratios(head_ratio, ffn_ratio, importance, round_to)
    config = model.config
    heads_before, intermediate_before = config.num_attention_heads, config.intermediate_size
    kept_heads, kept_ffn = planned_widths(heads_before, intermediate_before, head_ratio, ffn_ratio, round_to)
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in (example_inputs or _random_batch(config)).items()}
    params_before, linear_before = _count_params(model), _count_linear(model)

    if kept_heads < heads_before or kept_ffn < intermediate_before:
        _run_torch_pruning(model, inputs, head_ratio, ffn_ratio, importance, round_to)
    _sync_attributes(model, kept_heads, kept_ffn)

    params_after = _count_params(model)
    return StructuredReport(
        head_ratio=head_ratio,
        ffn_ratio=ffn_ratio,
        importance=importance,
        num_layers=config.num_hidden_layers,
        params_before=params_before,
        params_after=params_after,
        heads_before=heads_before,
        heads_after=kept_heads,
        intermediate_before=intermediate_before,
        intermediate_after=kept_ffn,
        linear_before=linear_before,
        linear_after=_count_linear(model),
        param_reduction=1.0 - params_after / params_before,
    )


def _run_torch_pruning(
    model: nn.Module,
    inputs: dict[str, torch.Tensor],
    head_ratio: float,
    ffn_ratio: float,
    importance: str,
    round_to: int | None,
) -> None:
    """Local (per-layer) pruning; only the query projections and FFN input layers get a ratio, so the
    hidden-size group (embeddings, residual stream, classifier) keeps the default ratio of 0."""
    num_heads, ratios = {}, {}
    for layer in _layers(model):
        self_attention = layer.attention.self
        for projection in (self_attention.query, self_attention.key, self_attention.value):
            num_heads[projection] = self_attention.num_attention_heads
        if head_ratio > 0:
            # torch-pruning only removes heads from a group whose channel ratio is > 0; the channel
            # ratio itself is ignored because prune_head_dims=False.
            ratios[self_attention.query] = head_ratio
        if ffn_ratio > 0:
            ratios[layer.intermediate.dense] = ffn_ratio
    scorer = _IMPORTANCE[importance]()
    previous_attention = model.config._attn_implementation
    # Trace the eager attention (plain matmuls): its graph does not depend on the SDPA backend.
    model.set_attn_implementation("eager")
    try:
        with torch.enable_grad():
            pruner = tp.pruner.BasePruner(
                model,
                inputs,
                importance=scorer,
                pruning_ratio=0.0,
                pruning_ratio_dict=ratios,
                global_pruning=False,
                round_to=round_to,
                num_heads=num_heads,
                prune_num_heads=True,
                prune_head_dims=False,
                head_pruning_ratio=head_ratio,
                ignored_layers=[model.classifier],
                output_transform=lambda output: output.logits.sum(),
            )
            pruner.step()
    finally:
        model.set_attn_implementation(previous_attention)


def _sync_attributes(model: nn.Module, kept_heads: int, kept_ffn: int) -> None:
    """Make module attributes and the config describe the new widths (and check they are uniform)."""
    config = model.config
    for layer in _layers(model):
        self_attention = layer.attention.self
        head_size = self_attention.attention_head_size  # whole heads were removed: unchanged
        widths = (self_attention.query.out_features, layer.intermediate.dense.out_features)
        if widths != (kept_heads * head_size, kept_ffn):
            raise RuntimeError(f"torch-pruning left widths {widths}, expected {(kept_heads * head_size, kept_ffn)}")
        self_attention.num_attention_heads, self_attention.all_head_size = kept_heads, widths[0]
    if kept_heads != config.num_attention_heads:
        # Only fewer heads needs the registered config (FFN width is a stock config field).
        config.__class__ = _PRUNED_CONFIG.get(type(config), type(config))  # every module keeps its reference
        config.attention_head_size = head_size
        config.num_attention_heads = kept_heads
    config.intermediate_size = kept_ffn


# --- helpers ----------------------------------------------------------------------------------------


def _layers(model: nn.Module) -> Iterator[nn.Module]:
    return iter(model.base_model.encoder.layer)


def _attention_parts(model: nn.Module) -> Iterator[tuple[nn.Module, nn.Module]]:
    """(self-attention, the output projection after it) per layer: the modules a head lives in."""
    for layer in _layers(model):
        yield layer.attention.self, layer.attention.output


def _set_attention_width(self_attention: nn.Module, attention_output: nn.Module, keep: torch.Tensor) -> None:
    """Keep only the q/k/v rows and output-projection columns listed in ``keep``."""
    for name in ("query", "key", "value"):
        setattr(self_attention, name, prune_linear_layer(getattr(self_attention, name), keep))
    attention_output.dense = prune_linear_layer(attention_output.dense, keep, dim=1)
    self_attention.all_head_size = len(keep)
    self_attention.num_attention_heads = len(keep) // self_attention.attention_head_size


def _random_batch(config: Any, batch: int = 8, seq: int = 128) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    seq = min(seq, config.max_position_embeddings - 2)  # RoBERTa offsets positions by padding_idx + 1
    input_ids = torch.randint(0, config.vocab_size, (batch, seq), generator=generator)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def _count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _count_linear(model: nn.Module) -> int:
    return sum(p.numel() for p in select_prunable(model).values())


# --- trainer adapter --------------------------------------------------------------------------------


class StructuredPruner(Callback):
    """Prunes ``trainer.model`` once, in ``on_train_begin`` (step 0, before fine-tuning).

    Pruning later would leave the optimizer (and any LR-scheduler state) holding the removed tensors, so
    the trainer creates its optimizer after the ``on_train_begin`` callbacks have run. The report is kept
    in ``self.report`` and in ``state_dict()``; a resumed run with a restored report does not prune again
    (the restored checkpoint already has the pruned shapes).
    """

    def __init__(
        self,
        head_ratio: float,
        ffn_ratio: float,
        importance: str = "l1",
        round_to: int | None = None,
        example_inputs: dict[str, torch.Tensor] | None = None,
    ) -> None:
        check_ratios(head_ratio, ffn_ratio, importance, round_to)
        self.head_ratio, self.ffn_ratio = head_ratio, ffn_ratio
        self.importance, self.round_to = importance, round_to
        self.example_inputs = example_inputs
        self.report: StructuredReport | None = None

    planned_sparsity = staticmethod(planned_sparsity)

    @classmethod
    def for_model(cls, model: nn.Module, head_ratio: float, ffn_ratio: float, importance: str,
                  round_to: int | None) -> "StructuredPruner":
        """The pruner of a run, after checking that ``model`` is one this module can rewrite."""
        check_structured_supported(model)
        return cls(head_ratio, ffn_ratio, importance=importance, round_to=round_to)

    def on_train_begin(self, trainer: "Trainer") -> None:
        if self.report is not None:
            return
        if getattr(trainer, "optimizer", None) is not None:
            raise RuntimeError(
                "StructuredPruner ran after the optimizer was created; create it after on_train_begin so it "
                "holds the pruned parameters"
            )
        self.report = prune_structured(
            trainer.model,
            head_ratio=self.head_ratio,
            ffn_ratio=self.ffn_ratio,
            example_inputs=self.example_inputs,
            importance=self.importance,
            round_to=self.round_to,
        )

    def pruning_report(self) -> PruningInfo:
        """For the record: sparsity over the encoder Linear weights, as unstructured runs report it, plus what
        was removed (the method's own section)."""
        report = self.report
        assert report is not None, "the model has not been pruned yet"
        return PruningInfo(
            target=report.linear_sparsity, achieved=report.linear_sparsity, embedding_target=None,
            embedding_achieved=None, model_sparsity=report.param_reduction,
            prunable_parameters=report.linear_before, total_parameters=report.params_before,
            pruned_parameters=report.linear_before - report.linear_after, per_tensor={}, trace=[], schedule=None,
            details=report.model_dump(),
        )

    def state_dict(self) -> dict[str, Any]:
        return {"report": None if self.report is None else self.report.model_dump()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("report")
        if saved is not None:
            self.report = StructuredReport.model_validate(saved)
