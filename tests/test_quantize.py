"""Dynamic int8 quantization: a copy with int8 Linear weights, zeros kept, and on a trained tiny BERT
predictions that mostly agree with fp32 and an F1 that seqeval reproduces from the saved predictions."""
from __future__ import annotations


import pytest
import torch
from seqeval.metrics import f1_score
from transformers import BertConfig, BertForTokenClassification

from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.quantize import evaluate_quantized, quantize_int8, state_dict_bytes, token_agreement
from sparsenlp.io import read_jsonl, write_jsonl
from sparsenlp.pruning.magnitude import global_masks
from sparsenlp.pruning.masks import MaskSet
from sparsenlp.pruning.params import select_prunable


def tiny_bert() -> BertForTokenClassification:
    torch.manual_seed(0)
    return BertForTokenClassification(BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2,
                                                 num_attention_heads=2, intermediate_size=128, num_labels=7))


def test_quantized_copy_has_int8_linears_and_keeps_pruned_zeros():
    model = tiny_bert()
    masks = MaskSet(select_prunable(model))
    masks.update_(global_masks(masks.params, 0.7))
    masks.apply_()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    int8 = quantize_int8(model)
    assert isinstance(model.bert.encoder.layer[0].intermediate.dense, torch.nn.Linear)  # the original is untouched
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    modules = dict(int8.named_modules())
    for name, mask in masks.masks.items():
        module = modules[name.rsplit(".", 1)[0]]
        assert type(module).__module__.startswith("torch.ao.nn.quantized.dynamic")
        weight = module.weight()
        assert weight.dtype == torch.qint8
        assert not weight.dequantize()[~mask].any()  # symmetric int8: a pruned 0 stays 0
        assert weight.int_repr().count_nonzero() <= int(mask.sum())
    ids = torch.randint(1, 100, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(int8(input_ids=ids).logits, model.eval()(input_ids=ids).logits, atol=0.05, rtol=0)


def test_size_on_disk():
    """Two 512x512 Linears: 4 bytes per fp32 weight, 1 per int8 weight (plus biases, scales, archive)."""
    linear_only = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.Linear(512, 512))
    fp32, int8 = state_dict_bytes(linear_only), state_dict_bytes(quantize_int8(linear_only))
    assert 2 * 512 * 512 * 4 < fp32 < 2 * 512 * 512 * 4 * 1.05
    assert 2 * 512 * 512 < int8 < 0.3 * fp32  # one byte per weight, plus fp32 biases and scales


def test_token_agreement():
    assert token_agreement([["O", "B-PER"], ["O"]], [["O", "O"], ["O"]]) == pytest.approx(2 / 3)
    assert token_agreement([], []) == 1.0
    with pytest.raises(ValueError):
        token_agreement([["O"]], [["O", "O"]])


def test_bad_input():
    from sparsenlp.data.datamodule import Split

    with pytest.raises(SparseNLPError, match="no test sets"):
        evaluate_quantized(tiny_bert(), {}, ["O"], 8)
    with pytest.raises(SparseNLPError, match="not encoded"):
        evaluate_quantized(tiny_bert(), {"sw": Split(sentences=[])}, ["O"], 8)


@pytest.mark.slow
def test_trained_model_int8_agrees_and_f1_is_seqeval_of_saved_predictions(tmp_path, tiny_overrides):
    from sparsenlp.data.wikiann import LABELS
    from sparsenlp.train import build_job
    from tests.helpers import compose_run

    job = build_job(compose_run([*tiny_overrides, "lang=sw", "trainer.max_steps=60", "trainer.eval_every=60"],
                                tmp_path))
    trainer, tokenizer = job.trainer, job.tokenizer
    trainer.fit()
    test = job.data.test["sw"]
    result = evaluate_quantized(trainer.model, {"sw": test}, LABELS, 32, tokenizer.pad_token_id, threads=1)

    fp32_metrics, fp32_pred = trainer.evaluate(test)  # the trainer's own evaluation of the same model
    sw = result.per_language["sw"]
    assert sw["fp32"].f1 == fp32_metrics.f1 > 0.05  # the model learned something: agreement is not trivial
    assert result.predictions["sw"]["fp32"] == fp32_pred
    int8_pred = result.predictions["sw"]["int8"]
    words = [(p, q) for a, b in zip(fp32_pred, int8_pred) for p, q in zip(a, b)]
    assert sw["token_agreement"] == sum(p == q for p, q in words) / len(words) >= 0.9
    assert any(tag != "O" for row in int8_pred for tag in row)

    write_jsonl(tmp_path / "test.int8.jsonl", result.prediction_rows("int8"))
    rows = read_jsonl(tmp_path / "test.int8.jsonl")
    assert [r["gold"] for r in rows] == [list(s.tags) for s in test.sentences]
    assert sw["int8"].f1 == pytest.approx(f1_score([r["gold"] for r in rows], [r["pred"] for r in rows]), abs=1e-12)

    summary = result.to_dict()
    assert summary["int8_bytes"] < summary["fp32_bytes"] and summary["cpu_threads"] == 1
    assert summary["fp32_seconds"] > 0 and summary["int8_seconds"] > 0
    assert summary["per_language"]["sw"]["f1_change"] == sw["int8"].f1 - sw["fp32"].f1
