"""Parameter selection, MaskSet and magnitude selection, checked against torch.nn.utils.prune."""
from __future__ import annotations

import pytest
import torch
from torch.nn.utils import prune
from transformers import BertConfig, BertForTokenClassification, XLMRobertaConfig, XLMRobertaForTokenClassification

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning import magnitude
from sparsenlp.pruning.magnitude import global_masks, layerwise_masks
from sparsenlp.pruning.masks import MaskSet
from sparsenlp.pruning.params import embedding_matrix, select_prunable

SPARSITIES = [0.0, 1e-4, 0.3, 0.5, 0.9, 0.99, 1.0]
SHAPES = [(37, 53), (128, 64), (301,), (64, 256), (5, 7)]
ENCODER_SUFFIXES = [
    "attention.self.query.weight",
    "attention.self.key.weight",
    "attention.self.value.weight",
    "attention.output.dense.weight",
    "intermediate.dense.weight",
    "output.dense.weight",
]


def tie_free(shapes=SHAPES, seed: int = 0) -> dict[str, torch.Tensor]:
    """Distinct |w| everywhere (a shuffled 1..N with random signs), so torch's topk mask is unique."""
    g = torch.Generator().manual_seed(seed)
    n = sum(torch.Size(s).numel() for s in shapes)
    values = (torch.randperm(n, generator=g) + 1).float() * (torch.randint(0, 2, (n,), generator=g) * 2 - 1)
    out, at = {}, 0
    for i, shape in enumerate(shapes):
        size = torch.Size(shape).numel()
        out[f"t{i}"] = values[at : at + size].view(shape).clone()
        at += size
    return out


def holders(params: dict[str, torch.Tensor]) -> list[torch.nn.Module]:
    mods = []
    for w in params.values():
        mod = torch.nn.Module()
        mod.weight = torch.nn.Parameter(w.detach().clone())
        mods.append(mod)
    return mods


def torch_global(params, amount, mods=None) -> dict[str, torch.Tensor]:
    mods = mods or holders(params)
    prune.global_unstructured([(m, "weight") for m in mods], pruning_method=prune.L1Unstructured, amount=amount)
    return {name: m.weight_mask.bool() for name, m in zip(params, mods)}


def torch_layerwise(params, amount, mods=None) -> dict[str, torch.Tensor]:
    mods = mods or holders(params)
    out = {}
    for (name, w), m in zip(params.items(), mods):
        prune.l1_unstructured(m, "weight", amount=amount(w) if callable(amount) else amount)
        out[name] = m.weight_mask.bool()
    return out


def assert_same(ours: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> None:
    assert list(ours) == list(ref)
    for name in ref:
        assert ours[name].dtype == torch.bool and ours[name].shape == ref[name].shape
        assert torch.equal(ours[name], ref[name]), f"{name}: {(ours[name] != ref[name]).sum()} elements differ"


@pytest.fixture(params=["default", "small-sample", "missed-bracket"])
def selection_path(request, monkeypatch):
    """Exercise the direct kthvalue, the sample bracket, and the fallback when the bracket misses."""
    if request.param != "default":
        monkeypatch.setattr(magnitude, "GLOBAL_SAMPLE", 64)
        monkeypatch.setattr(magnitude, "LAYERWISE_SAMPLE", 16)
    if request.param == "missed-bracket":
        monkeypatch.setattr(magnitude, "_SIGMAS", 0.0)
    return request.param


@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_global_matches_torch_global_unstructured(sparsity, selection_path):
    params = tie_free()
    assert_same(global_masks(params, sparsity), torch_global(params, sparsity))


@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_layerwise_matches_torch_l1_unstructured(sparsity, selection_path):
    params = tie_free(seed=1)
    assert_same(layerwise_masks(params, sparsity), torch_layerwise(params, sparsity))


def small_bert(seed: int = 0) -> BertForTokenClassification:
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=120, hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=96, max_position_embeddings=64, num_labels=7)
    return BertForTokenClassification(cfg)


@pytest.mark.parametrize("sparsity", [0.25, 0.9])
def test_masks_on_small_bert_match_torch(sparsity, selection_path):
    params = {n: p.detach() for n, p in select_prunable(small_bert()).items()}
    assert_same(global_masks(params, sparsity), torch_global(params, sparsity))
    assert_same(layerwise_masks(params, sparsity), torch_layerwise(params, sparsity))


@pytest.mark.parametrize("sparsity", [1e-4, 0.37, 0.9])
def test_exact_counts_and_deterministic_ties(sparsity, selection_path):
    """All-equal |w|: exactly round(s*n) pruned, lowest concatenated positions first."""
    params = {name: torch.full(w.shape, -0.5) for name, w in tie_free().items()}
    total = sum(w.numel() for w in params.values())
    k = round(sparsity * total)
    masks = global_masks(params, sparsity)
    flat = torch.cat([m.reshape(-1) for m in masks.values()])
    expected = torch.arange(total) >= k
    assert torch.equal(flat, expected)
    for name, mask in layerwise_masks(params, sparsity).items():
        n = mask.numel()
        assert torch.equal(mask.reshape(-1), torch.arange(n) >= round(sparsity * n))


def test_exact_counts_with_heavy_ties(selection_path):
    """Few distinct values (like bf16 weights): counts stay exact and the mask is repeatable."""
    g = torch.Generator().manual_seed(3)
    params = {name: torch.randint(-4, 5, w.shape, generator=g).float() for name, w in tie_free().items()}
    total = sum(w.numel() for w in params.values())
    for sparsity in (0.2, 0.5, 0.8):
        masks = global_masks(params, sparsity)
        assert sum(int((~m).sum()) for m in masks.values()) == round(sparsity * total)
        kept = torch.cat([params[n][m] for n, m in masks.items()]).abs()
        pruned = torch.cat([params[n][~m] for n, m in masks.items()]).abs()
        assert pruned.max() <= kept.min()
        assert_same(global_masks(params, sparsity), masks)


@pytest.mark.parametrize("first,second", [(0.5, 0.8), (0.3, 0.31), (0.6, 0.6)])
def test_monotone_global_matches_torch_iterative(first, second, selection_path):
    """Prior-pruned elements go first; the rest are the smallest |w| of the *new* unpruned weights,
    which is what torch's PruningContainer does when asked for the extra count."""
    params = tie_free(seed=2)
    total = sum(w.numel() for w in params.values())
    prior = global_masks(params, first)
    new_weights = tie_free(seed=5)  # training moved the weights since the last pruning
    ours = global_masks(new_weights, second, prior)

    mods = holders(params)
    torch_global(params, first, mods)
    for mod, w in zip(mods, new_weights.values()):
        mod.weight_orig.data.copy_(w)
        mod.weight = mod.weight_orig * mod.weight_mask
    extra = round(second * total) - round(first * total)
    assert_same(ours, torch_global(new_weights, extra, mods))
    for name in prior:
        assert not (ours[name] & ~prior[name]).any()


def test_monotone_layerwise_matches_torch_iterative(selection_path):
    params, new_weights = tie_free(seed=2), tie_free(seed=6)
    prior = layerwise_masks(params, 0.4)
    ours = layerwise_masks(new_weights, 0.75, prior)
    mods = holders(params)
    torch_layerwise(params, 0.4, mods)
    for mod, w in zip(mods, new_weights.values()):
        mod.weight_orig.data.copy_(w)
        mod.weight = mod.weight_orig * mod.weight_mask
    ref = torch_layerwise(new_weights, lambda w: round(0.75 * w.numel()) - round(0.4 * w.numel()), mods)
    assert_same(ours, ref)


def test_prior_wins_when_fewer_are_requested():
    params = tie_free()
    prior = global_masks(params, 0.6)
    assert_same(global_masks(params, 0.2, prior), prior)
    assert_same(layerwise_masks(params, 0.2, layerwise_masks(params, 0.6)), layerwise_masks(params, 0.6))


def test_bad_sparsity_is_rejected():
    with pytest.raises(SparseNLPError, match="outside"):
        global_masks(tie_free(), 1.5)


# ---- parameter selection ---------------------------------------------------------------------

def expected_encoder_names(prefix: str, layers: int) -> list[str]:
    return [f"{prefix}.encoder.layer.{i}.{s}" for i in range(layers) for s in ENCODER_SUFFIXES]


def test_default_selection_bert_and_xlmr():
    assert list(select_prunable(small_bert())) == expected_encoder_names("bert", 2)
    xlmr = XLMRobertaForTokenClassification(XLMRobertaConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
        num_labels=7))
    selected = select_prunable(xlmr)
    assert list(selected) == expected_encoder_names("roberta", 3)
    assert all(selected[n] is p for n, p in xlmr.named_parameters() if n in selected)


def test_the_embedding_matrix_is_a_group_of_its_own_and_never_in_two():
    model = small_bert()
    assert list(embedding_matrix(model, list(select_prunable(model)))) == ["bert.embeddings.word_embeddings.weight"]
    with pytest.raises(SparseNLPError, match="pruning.params already selects bert.embeddings.word_embeddings.weight"):
        embedding_matrix(model, list(select_prunable(model, [r"embeddings\.word_embeddings\.weight$"])))


def test_custom_patterns_search_names():
    names = list(select_prunable(small_bert(), [r"intermediate\.dense\.weight$", r"^classifier\.weight"]))
    assert names == ["bert.encoder.layer.0.intermediate.dense.weight",
                     "bert.encoder.layer.1.intermediate.dense.weight", "classifier.weight"]


@pytest.mark.parametrize("patterns,match", [
    ([r"bert\.decoder\..*"], r"bert\\\\.decoder.*bert\.embeddings\.word_embeddings\.weight"),
    ([r"^encoder\.layer"], "matches no parameter"),  # names start with the base model's prefix
    ([r"encoder.layer.(\d+"], "invalid"),
    ([], "non-empty"),
    ("encoder", "non-empty"),
])
def test_bad_patterns_raise(patterns, match):
    with pytest.raises(SparseNLPError, match=match):
        select_prunable(small_bert(), patterns)


# ---- MaskSet ---------------------------------------------------------------------------------

def test_maskset_apply_zeroes_only_masked_and_reports_sparsity():
    model = small_bert()
    params = select_prunable(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ms = MaskSet(params)
    assert ms.num_prunable == sum(p.numel() for p in params.values())
    assert ms.sparsity() == 0.0
    masks = global_masks(params, 0.7)
    ms.update_(masks)
    ms.apply_()
    for name, p in model.named_parameters():
        if name in masks:
            assert torch.equal(p.detach(), before[name] * masks[name])
        else:
            assert torch.equal(p.detach(), before[name])
    pruned = {n: int((~m).sum()) for n, m in masks.items()}
    assert ms.pruned_counts() == pruned
    assert ms.sparsity() == sum(pruned.values()) / ms.num_prunable
    assert ms.per_tensor_sparsity() == {n: pruned[n] / masks[n].numel() for n in masks}


def test_maskset_cast_is_cached_and_follows_dtype():
    model = small_bert()
    ms = MaskSet(select_prunable(model))
    ms.update_(global_masks(ms.params, 0.5))
    first = ms._cast_masks()
    ms.apply_()
    assert ms._cast_masks() is first  # no re-cast per step
    model.double()
    ms.apply_()
    assert all(f.dtype == torch.float64 for f in ms._cast_masks()[1])
    for name, p in ms.params.items():
        assert p.dtype == torch.float64 and not p[~ms.masks[name]].any()


def test_maskset_update_monotone_and_not():
    ms = MaskSet(tie_free())
    a, b = global_masks(ms.params, 0.5), global_masks(tie_free(seed=9), 0.5)
    ms.update_(a)
    ms.update_(b)
    assert all(torch.equal(ms.masks[n], a[n] & b[n]) for n in a)
    ms.update_(b, monotone=False)
    assert all(torch.equal(ms.masks[n], b[n]) for n in b)


def test_maskset_state_dict_round_trip_and_mismatch():
    params = tie_free()
    ms = MaskSet(params)
    ms.update_(layerwise_masks(params, 0.4))
    other = MaskSet(tie_free())
    other.load_state_dict(ms.state_dict())
    assert all(torch.equal(other.masks[n], ms.masks[n]) for n in params)
    with pytest.raises(SparseNLPError, match="missing"):
        MaskSet(tie_free(shapes=SHAPES[:2])).load_state_dict(ms.state_dict())
    with pytest.raises(SparseNLPError, match="shape"):
        MaskSet(tie_free(shapes=[(2, 2)] * len(SHAPES))).load_state_dict(ms.state_dict())


def test_empty_maskset_is_rejected():
    with pytest.raises(SparseNLPError, match="no prunable"):
        MaskSet({})


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_masks_match_cpu_and_apply():
    model = small_bert()
    cpu = global_masks(select_prunable(model), 0.8)
    model.cuda()
    ms = MaskSet(select_prunable(model))
    ms.update_(global_masks(ms.params, 0.8))
    ms.apply_()
    for name, p in ms.params.items():
        assert ms.masks[name].device == p.device
        assert torch.equal(ms.masks[name].cpu(), cpu[name])
        assert not p[~ms.masks[name]].any()
