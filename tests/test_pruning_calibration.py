"""The layer-by-layer one-shot driver on a small BERT: targets per comparison group, untouched parameters,
determinism, padding, sequential calibration checked against an independent recomputation, MaskSet
compatibility, the magnitude control against the library's own selections, and its errors."""
from __future__ import annotations

import copy

import pytest
import torch
from transformers import BertConfig, BertForTokenClassification

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.calibration import OneShotReport, one_shot_prune
from sparsenlp.pruning.grouped import Target
from sparsenlp.pruning.magnitude import layerwise_masks
from sparsenlp.pruning.masks import MaskSet
from sparsenlp.pruning.params import select_prunable
from sparsenlp.pruning.semi_structured import nm_masks
from sparsenlp.pruning.sparsegpt import sparsegpt_prune
from sparsenlp.pruning.wanda import wanda_masks
from tests.linear_inputs import linear_inputs

BLOCK = 16  # SparseGPT blocks: several per tensor at this width
TARGETS = [Target(sparsity=0.5), Target(sparsity=0.3), Target(n=2, m=4)]


def small_bert(layers: int = 2) -> BertForTokenClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=64, num_labels=5)
    return BertForTokenClassification(config)


def batches() -> list[dict[str, torch.Tensor]]:
    """Three batches of real lengths 9..2; padding positions hold random ids (only the mask says padding)."""
    g = torch.Generator().manual_seed(1)
    out = []
    for lengths in ([9, 7, 4], [8, 8], [5, 3, 6, 2]):
        ids = torch.randint(1, 60, (len(lengths), max(lengths)), generator=g)
        mask = torch.tensor([[1] * n + [0] * (max(lengths) - n) for n in lengths])
        out.append({"input_ids": ids, "attention_mask": mask})
    return out


def more_padding(extra: int) -> list[dict[str, torch.Tensor]]:
    """The batches of ``batches()`` with ``extra`` more padding positions of random ids each."""
    g = torch.Generator().manual_seed(7)
    padded = []
    for batch in batches():
        rows = batch["input_ids"].shape[0]
        ids = torch.cat([batch["input_ids"], torch.randint(1, 60, (rows, extra), generator=g)], dim=1)
        mask = torch.cat([batch["attention_mask"], torch.zeros(rows, extra, dtype=torch.long)], dim=1)
        padded.append({"input_ids": ids, "attention_mask": mask})
    return padded


def prune(method: str, target: Target, model: torch.nn.Module | None = None, **kwargs):
    model = model if model is not None else small_bert()
    data = kwargs.pop("data", None)
    data = data if data is not None else ([] if method == "magnitude" else batches())
    return model, one_shot_prune(model, method, target, data, blocksize=kwargs.pop("blocksize", BLOCK), **kwargs)


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_every_tensor_reaches_the_target_in_its_comparison_groups(method, target):
    model, result = prune(method, target)
    params = dict(model.named_parameters())
    assert list(result.masks) == list(select_prunable(model))
    for name, keep in result.masks.items():
        assert keep.dtype == torch.bool and keep.shape == params[name].shape
        assert (params[name][~keep] == 0).all(), name
        rows, columns = keep.shape
        if target.is_nm:
            assert (keep.reshape(rows, -1, target.m).sum(-1) == target.n).all()
        elif method == "sparsegpt":  # the group is a block of BLOCK columns over all rows
            for start in range(0, columns, BLOCK):
                block = keep[:, start:start + BLOCK]
                assert int((~block).sum()) == round(target.sparsity * block.numel())
        else:  # the group is an output row
            assert ((~keep).sum(1) == round(target.sparsity * columns)).all()
    report = OneShotReport.model_validate(result.report.model_dump())
    assert report.method == method and report.target == target.fraction and report.structure == target.structure
    assert report.pruned_parameters == sum(int((~k).sum()) for k in result.masks.values())
    assert report.achieved == pytest.approx(report.pruned_parameters / report.prunable_parameters)
    assert report.layers == 2 and set(report.per_tensor) == set(result.masks)
    assert report.calibration_tokens == (0 if method == "magnitude" else 9 + 7 + 4 + 8 + 8 + 5 + 3 + 6 + 2)


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
def test_other_parameters_are_untouched(method):
    dense = small_bert()
    model, result = prune(method, Target(sparsity=0.5), copy.deepcopy(dense))
    before = dict(dense.named_parameters())
    for name, p in model.named_parameters():
        if name not in result.masks:
            assert torch.equal(p, before[name]), name
        elif method != "sparsegpt":
            assert torch.equal(p, before[name] * result.masks[name]), name  # only zeros, no update


@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
def test_same_inputs_give_bit_identical_masks_and_weights(method):
    a, first = prune(method, Target(sparsity=0.5))
    b, second = prune(method, Target(sparsity=0.5))
    for name in first.masks:
        assert torch.equal(first.masks[name], second.masks[name])
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
def test_padding_changes_nothing(method):
    _, tight = prune(method, Target(sparsity=0.5))
    padded_model, padded = prune(method, Target(sparsity=0.5), data=more_padding(6))
    tight_model, _ = prune(method, Target(sparsity=0.5))
    for name in tight.masks:
        assert torch.equal(tight.masks[name], padded.masks[name]), name
    for (name, p), q in zip(tight_model.named_parameters(), padded_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6, msg=name)
    assert padded.report.calibration_tokens == tight.report.calibration_tokens
    assert padded.report.calibration_sequences == tight.report.calibration_sequences == 9


@pytest.mark.parametrize("target", [Target(sparsity=0.5), Target(n=2, m=4)], ids=str)
def test_each_layer_is_calibrated_on_the_pruned_layers_below_it(target):
    """Layer 1's statistics must come from a model whose layer 0 is already pruned and layer 1 still dense."""
    dense = small_bert()
    wanda_model, wanda = prune("wanda", target, copy.deepcopy(dense), dtype=torch.float64)
    sgpt_model, sgpt = prune("sparsegpt", target, copy.deepcopy(dense), dtype=torch.float64)
    for pruned_model, result in ((wanda_model, wanda), (sgpt_model, sgpt)):
        mixed = copy.deepcopy(dense)  # layer 0 as pruned, layer 1 dense
        mixed.bert.encoder.layer[0].load_state_dict(pruned_model.bert.encoder.layer[0].state_dict())
        inputs, dense_inputs = linear_inputs(mixed, batches(), 1), linear_inputs(dense, batches(), 1)
        assert len(inputs) == 6
        changed = False
        for name, x in inputs.items():
            x = x.double()
            weight = dict(dense.named_parameters())[name].detach()
            if result is wanda:
                expected = wanda_masks(weight, x.norm(dim=0), target)
                assert torch.equal(result.masks[name], expected), name
            else:
                hessian = 2.0 / x.shape[0] * x.T @ x
                updated, keep = sparsegpt_prune(weight, hessian, target, blocksize=BLOCK, dtype=torch.float64)
                assert torch.equal(result.masks[name], keep), name
                torch.testing.assert_close(dict(pruned_model.named_parameters())[name], updated, rtol=1e-4,
                                           atol=1e-6)
                x0 = dense_inputs[name].double()
                from_dense, _ = sparsegpt_prune(weight, 2.0 / x0.shape[0] * x0.T @ x0, target, blocksize=BLOCK,
                                                dtype=torch.float64)
                changed |= not torch.allclose(from_dense, updated, rtol=1e-4, atol=1e-6)
        assert changed or result is wanda  # calibrating on dense inputs would have given other weights


def test_masks_keep_the_zeros_through_a_recovery_step():
    model, result = prune("sparsegpt", Target(sparsity=0.5))
    params = select_prunable(model)
    masks = MaskSet(params)
    masks.update_(result.masks, monotone=False)
    before = {name: p.detach().clone() for name, p in params.items()}
    masks.apply_()
    assert all(torch.equal(p, before[name]) for name, p in params.items())  # already exact
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    batch = batches()[0]
    model(**batch, labels=torch.randint(0, 5, batch["input_ids"].shape)).loss.backward()
    optimizer.step()
    assert any(p[~result.masks[name]].abs().sum() > 0 for name, p in params.items())  # the step moved zeros
    masks.apply_()
    assert all((p[~result.masks[name]] == 0).all() for name, p in params.items())
    assert masks.sparsity() == pytest.approx(result.report.achieved)


def test_the_magnitude_control_agrees_with_the_library_selections():
    dense = small_bert()
    model, rows = prune("magnitude", Target(sparsity=0.3), copy.deepcopy(dense))
    _, nm = prune("magnitude", Target(n=2, m=4), copy.deepcopy(dense))
    for name, weight in dict(dense.named_parameters()).items():
        if name not in rows.masks:
            continue
        per_row = layerwise_masks({i: row for i, row in enumerate(weight.detach())}, 0.3)  # each row a "tensor"
        assert torch.equal(rows.masks[name], torch.stack([per_row[i] for i in range(weight.shape[0])])), name
        assert torch.equal(nm.masks[name], nm_masks(weight.detach(), 2, 4)), name


def test_training_mode_is_restored_and_dropout_is_off_while_pruning():
    model = small_bert()
    model.config.hidden_dropout_prob = 0.5
    model.train()
    _, first = prune("wanda", Target(sparsity=0.5), model)
    assert model.training
    _, second = prune("wanda", Target(sparsity=0.5))
    assert all(torch.equal(first.masks[n], second.masks[n]) for n in first.masks)


def test_a_subset_of_layers_is_pruned_after_propagating_through_the_others():
    dense = small_bert()
    model, result = prune("sparsegpt", Target(sparsity=0.5), copy.deepcopy(dense),
                          params=[r"encoder\.layer\.1\.(attention\.self\.query|intermediate\.dense)\.weight$"])
    assert list(result.masks) == ["bert.encoder.layer.1.attention.self.query.weight",
                                  "bert.encoder.layer.1.intermediate.dense.weight"]
    assert result.report.layers == 1
    before = dict(dense.named_parameters())
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters() if name not in result.masks)


@pytest.mark.parametrize("kwargs,message", [
    ({"method": "obs"}, "one-shot method 'obs' is unknown"),
    ({"method": "magnitude", "data": batches()}, "reads no calibration data"),
    ({"method": "wanda", "data": []}, "wanda needs calibration batches"),
    ({"method": "wanda", "data": [{"input_ids": torch.ones(1, 3, dtype=torch.long)}]}, "lacks \\['attention_mask'\\]"),
    ({"method": "wanda", "params": [r"word_embeddings\.weight$"]}, "is not a Linear weight inside an encoder layer"),
    ({"method": "wanda", "target": Target(n=1, m=3)}, "not a multiple of M=3"),
    ({"method": "sparsegpt", "blocksize": 6, "target": Target(n=2, m=4)}, "blocksize that is a multiple of M=4"),
    ({"method": "sparsegpt", "percdamp": -0.1}, "percdamp >= 0"),
])
def test_bad_requests_fail_with_one_line(kwargs, message):
    kwargs = dict(kwargs)
    method = kwargs.pop("method")
    target = kwargs.pop("target", Target(sparsity=0.5))
    data = kwargs.pop("data", None)
    model = small_bert()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(SparseNLPError, match=message) as error:
        one_shot_prune(model, method, target, batches() if data is None else data, **kwargs)
    assert "\n" not in str(error.value)
    assert all(torch.equal(p, before[name]) for name, p in model.state_dict().items())  # checked before any change


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
def test_cuda_agrees_with_cpu(method):
    _, cpu = prune(method, Target(sparsity=0.5), dtype=torch.float64)
    model = small_bert().cuda()
    _, cuda = prune(method, Target(sparsity=0.5), model, dtype=torch.float64)
    assert cuda.report.device.startswith("cuda")
    for name, keep in cpu.masks.items():
        assert cuda.masks[name].is_cuda
        assert (cuda.masks[name].cpu() != keep).float().mean() < 0.01, name
        assert (dict(model.named_parameters())[name][~cuda.masks[name]] == 0).all()


def test_xlmr_family_encoders_are_pruned_the_same_way():
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification

    torch.manual_seed(0)
    model = XLMRobertaForTokenClassification(XLMRobertaConfig(
        vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        num_labels=5, pad_token_id=1))
    result = one_shot_prune(model, "wanda", Target(n=2, m=4), batches())
    assert len(result.masks) == 12 and all(name.startswith("roberta.encoder.layer.") for name in result.masks)
    assert all((keep.reshape(keep.shape[0], -1, 4).sum(-1) == 2).all() for keep in result.masks.values())
