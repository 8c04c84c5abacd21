"""Wanda masks against a loop written from the definition S_ij = |W_ij| · ||X_j||_2 (Sun et al. 2023):
on a toy layer, and through the driver on a one-layer BERT whose padding positions hold real tokens."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from transformers import BertConfig, BertForTokenClassification

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.calibration import one_shot_prune
from sparsenlp.pruning.grouped import Target
from sparsenlp.pruning.wanda import InputNorms, wanda_masks, wanda_scores
from tests.linear_inputs import linear_inputs

TARGETS = [Target(sparsity=0.5), Target(sparsity=0.3), Target(sparsity=0.9), Target(n=2, m=4), Target(n=1, m=4),
           Target(n=4, m=8)]


def reference_wanda(weight: list[list[float]], tokens: list[list[float]], target: Target) -> list[list[bool]]:
    """Keep-mask from the definition, one number at a time: ||X_j|| over the given tokens, S = |W|·||X||,
    per row the round(s·columns) lowest S pruned (N:M: per group of M the M-N lowest), lower index first."""
    columns = len(weight[0])
    norm = [math.sqrt(sum(token[j] ** 2 for token in tokens)) for j in range(columns)]
    keep = []
    for row in weight:
        score = [abs(row[j]) * norm[j] for j in range(columns)]
        if target.is_nm:
            pruned = set()
            for start in range(0, columns, target.m):
                group = sorted(range(start, start + target.m), key=lambda j: (score[j], j))
                pruned.update(group[: target.m - target.n])
        else:
            pruned = set(sorted(range(columns), key=lambda j: (score[j], j))[: round(target.sparsity * columns)])
        keep.append([j not in pruned for j in range(columns)])
    return keep


@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_masks_equal_the_definition_on_a_toy_layer(target):
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(6, 16, generator=g)
    batches = [torch.randn(n, 16, generator=g) * torch.linspace(0.1, 3.0, 16) for n in (5, 9, 1)]
    norms = InputNorms(16, dtype=torch.float64)
    for batch in batches:
        norms.add(batch)
    assert norms.tokens == 15
    keep = wanda_masks(weight, norms.norms(), target)
    tokens = [row for batch in batches for row in batch.tolist()]
    assert keep.tolist() == reference_wanda(weight.tolist(), tokens, target)
    assert keep.dtype == torch.bool and keep.shape == weight.shape


def test_scores_follow_the_activations_not_only_the_weights():
    """A large input norm rescues a small weight: Wanda's mask differs from magnitude's."""
    weight = torch.tensor([[0.1, 1.0, 0.5, 0.6]])
    norms = torch.tensor([100.0, 1.0, 1.0, 1.0])
    assert torch.allclose(wanda_scores(weight, norms), torch.tensor([[10.0, 1.0, 0.5, 0.6]]))
    assert wanda_masks(weight, norms, Target(sparsity=0.5)).tolist() == [[True, True, False, False]]


def test_ties_prune_the_lower_index_first():
    weight = torch.ones(3, 8)
    norms = torch.ones(8)
    assert wanda_masks(weight, norms, Target(sparsity=0.25)).tolist() == [[False, False] + [True] * 6] * 3
    assert wanda_masks(weight, norms, Target(n=2, m=4)).tolist() == [[False, False, True, True] * 2] * 3


def test_bad_inputs_fail_with_one_line():
    with pytest.raises(SparseNLPError, match="do not match a weight of shape"):
        wanda_scores(torch.ones(2, 4), torch.ones(3))
    with pytest.raises(SparseNLPError, match="not a multiple of M=4"):
        wanda_masks(torch.ones(2, 6), torch.ones(6), Target(n=2, m=4))
    with pytest.raises(SparseNLPError, match="NaN"):
        wanda_masks(torch.ones(2, 4), torch.tensor([1.0, float("nan"), 1.0, 1.0]), Target(sparsity=0.5))
    with pytest.raises(SparseNLPError, match="no calibration tokens"):
        InputNorms(4).norms()
    with pytest.raises(SparseNLPError, match="do not match a layer with 4 input features"):
        InputNorms(4).add(torch.ones(3, 5))
    with pytest.raises(SparseNLPError, match="either a sparsity or an N:M pattern"):
        Target(sparsity=0.5, n=2, m=4)


# ------------------------------------------------------------------ through the driver, padding excluded
def one_layer_bert() -> BertForTokenClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=3)
    return BertForTokenClassification(config).eval()


def padded_batch() -> dict[str, torch.Tensor]:
    """Padding positions hold ordinary token ids, so their activations are as large as any token's:
    only the attention mask says they are not text."""
    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1, 50, (3, 7), generator=g)
    attention_mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@pytest.mark.parametrize("target", [Target(sparsity=0.5), Target(n=2, m=4)], ids=str)
def test_the_driver_scores_non_padding_tokens_only(target):
    dense = one_layer_bert()
    batch = padded_batch()
    real, everything = linear_inputs(dense, [batch], 0), linear_inputs(dense, [batch], 0, padding=True)
    model = copy.deepcopy(dense)
    result = one_shot_prune(model, "wanda", target, [batch], dtype=torch.float64)
    assert set(result.masks) == set(real) and len(real) == 6
    differs_with_padding = False
    for name, x in real.items():
        weight = dict(dense.named_parameters())[name].tolist()
        expected = reference_wanda(weight, x.tolist(), target)
        assert result.masks[name].tolist() == expected, name
        differs_with_padding |= reference_wanda(weight, everything[name].tolist(), target) != expected
        pruned = ~result.masks[name]
        assert (dict(model.named_parameters())[name][pruned] == 0).all()
        kept = dict(model.named_parameters())[name][~pruned]
        assert torch.equal(kept, dict(dense.named_parameters())[name][~pruned])  # Wanda never updates weights
    assert differs_with_padding  # so the test would notice padding being counted
    assert result.report.calibration_tokens == int(batch["attention_mask"].sum()) == 13
