"""N:M masks against a plain per-group loop, gradual conversion against a sorted list of groups,
the pruner in a training loop, and (on CUDA) 2:4 sparse kernels against the dense masked model."""
from __future__ import annotations

import json

import pytest
import torch
from transformers import BertConfig, BertForTokenClassification

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning import magnitude
from sparsenlp.pruning.schedules import Schedule
from sparsenlp.pruning.semi_structured import (
    SemiStructuredPruner,
    gradual_nm_masks,
    is_nm_sparse,
    nm_masks,
    nm_sparsity,
    semi_structured_available,
    to_semi_structured_,
)
from sparsenlp.tracking.schema import PruningInfo

NM = [(2, 4), (1, 4), (3, 4), (1, 2), (4, 8), (3, 8)]


def reference_nm(weight: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Group by group: prune the M - N smallest |w|, the lower position first among equals."""
    rows = weight.reshape(-1, m).tolist()
    keep = []
    for row in rows:
        pruned = sorted(range(m), key=lambda i: (abs(row[i]), i))[: m - n]
        keep.append([i not in pruned for i in range(m)])
    return torch.tensor(keep, dtype=torch.bool).view(weight.shape)


@pytest.mark.parametrize("n,m", NM)
def test_masks_match_the_reference_loop_on_random_tensors(n, m):
    g = torch.Generator().manual_seed(n * 10 + m)
    for shape in [(8, 16), (3, 5, 24), (64,), (48, 32)]:
        weight = torch.randn(shape, generator=g)
        original = weight.clone()
        mask = nm_masks(weight, n, m)
        assert torch.equal(weight, original)  # selection reads the weights, never writes them
        assert mask.shape == weight.shape and mask.dtype == torch.bool
        assert torch.equal(mask, reference_nm(weight, n, m))
        assert (mask.reshape(-1, m).sum(1) == n).all()  # exactly N kept in every group


@pytest.mark.parametrize("n,m", [(2, 4), (4, 8)])
def test_ties_are_broken_by_position(n, m):
    """Equal |w| (signs differ): the lower positions are pruned, every group keeps exactly N."""
    weight = torch.tensor([1.0, -1.0, 1.0, -1.0] * (m // 2)).repeat(6, 1)
    expected = (torch.arange(weight.shape[1]) % m >= m - n).expand_as(weight)
    assert torch.equal(nm_masks(weight, n, m), expected)
    g = torch.Generator().manual_seed(1)
    coarse = torch.randint(-2, 3, (32, 64), generator=g).to(torch.bfloat16)  # few distinct values
    mask = nm_masks(coarse, n, m)
    assert torch.equal(mask, reference_nm(coarse.float(), n, m))
    assert torch.equal(nm_masks(coarse, n, m), mask)


def test_is_nm_sparse():
    weight = torch.randn(16, 32)
    assert not is_nm_sparse(weight, 2, 4)
    pruned = weight * nm_masks(weight, 2, 4)
    assert is_nm_sparse(pruned, 2, 4) and is_nm_sparse(pruned, 3, 4) and not is_nm_sparse(pruned, 1, 4)
    zero = int(torch.nonzero(pruned[0, :4] == 0)[0])
    pruned[0, zero] = 1.0  # a third non-zero in the first group
    assert not is_nm_sparse(pruned, 2, 4) and is_nm_sparse(pruned, 3, 4)
    assert not is_nm_sparse(torch.zeros(3, 6), 2, 4)  # 6 is not a multiple of 4


# ---- gradual conversion ----------------------------------------------------------------------------

def reference_gradual(params: dict[str, torch.Tensor], n: int, m: int, fraction: float,
                      scope: str) -> dict[str, torch.Tensor]:
    """Groups listed as (cost, position) and sorted; the first round(f * G) convert to their N:M mask."""
    out = {}
    pools = [list(params)] if scope == "global" else [[name] for name in params]
    for pool in pools:
        groups = []
        for name in pool:
            rows = params[name].reshape(-1, m)
            for i, row in enumerate(rows.tolist()):
                cost = sum(sorted(abs(v) for v in row)[: m - n])
                groups.append((cost, len(groups), name, i))
        converted = {(name, i) for _, _, name, i in sorted(groups)[: round(fraction * len(groups))]}
        for name in pool:
            full = reference_nm(params[name], n, m).reshape(-1, m)
            rows = [full[i] if (name, i) in converted else torch.ones(m, dtype=torch.bool)
                    for i in range(full.shape[0])]
            out[name] = torch.stack(rows).view(params[name].shape)
    return out


def layers(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"a": torch.randn(12, 16, generator=g), "b": torch.randn(8, 32, generator=g) * 0.1,
            "c": torch.randn(40, generator=g)}


@pytest.fixture(params=["default", "small-sample"])
def sample_path(request, monkeypatch):
    if request.param == "small-sample":  # the sample-bracket path of the group selection
        monkeypatch.setattr(magnitude, "GLOBAL_SAMPLE", 16)
        monkeypatch.setattr(magnitude, "LAYERWISE_SAMPLE", 4)
    return request.param


@pytest.mark.parametrize("scope", ["global", "layerwise"])
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.37, 0.5, 1.0])
def test_gradual_matches_sorted_groups(scope, fraction, sample_path):
    params = layers()
    originals = {name: p.clone() for name, p in params.items()}
    for n, m in [(2, 4), (1, 4), (4, 8)]:
        ours = gradual_nm_masks(params, n, m, fraction, scope=scope)
        assert all(torch.equal(params[name], originals[name]) for name in params)
        ref = reference_gradual(params, n, m, fraction, scope)
        for name in params:
            assert torch.equal(ours[name], ref[name]), (n, m, name)


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_gradual_is_monotone_and_exact(scope):
    params = layers(1)
    total_groups = sum(p.numel() for p in params.values()) // 4
    prior = None
    for fraction in (0.2, 0.5, 0.5, 0.8, 1.0):
        new = gradual_nm_masks(params, 2, 4, fraction, prior, scope)
        groups = {name: mask.reshape(-1, 4) for name, mask in new.items()}
        converted = {name: ~g.all(1) for name, g in groups.items()}
        for name, g in groups.items():  # converted groups are exactly 2:4, the rest untouched
            assert (g[converted[name]].sum(1) == 2).all() and g[~converted[name]].all()
            if prior is not None:
                assert not (new[name] & ~prior[name]).any()  # nothing regrows
                old = prior[name].reshape(-1, 4)
                was = ~old.all(1)
                assert torch.equal(g[was], old[was])  # a converted group keeps its mask
        if scope == "global":
            assert sum(int(c.sum()) for c in converted.values()) == round(fraction * total_groups)
        else:
            for name, c in converted.items():
                assert int(c.sum()) == round(fraction * c.numel())
        # training moves the weights between updates: the next conversions follow the new weights
        params = {name: p + 0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(int(fraction * 10)))
                  for name, p in params.items()}
        prior = new
    assert all(is_nm_sparse(params[name] * mask, 2, 4) for name, mask in prior.items())


def test_prior_wins_when_the_fraction_drops():
    params = layers(2)
    prior = gradual_nm_masks(params, 2, 4, 0.6)
    again = gradual_nm_masks(params, 2, 4, 0.3, prior)
    for name in params:
        assert torch.equal(again[name], prior[name])


# ---- the pruner in a training loop ---------------------------------------------------------------------

def tiny_bert(hidden: int = 32, ffn: int = 64) -> BertForTokenClassification:
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=ffn, max_position_embeddings=32, num_labels=7)
    return BertForTokenClassification(cfg)


def train(model, pruner, steps: int, check=None) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    pruner.on_train_begin(None)
    for step in range(1, steps + 1):
        g = torch.Generator().manual_seed(step)
        ids, labels = torch.randint(1, 100, (4, 12), generator=g), torch.randint(0, 7, (4, 12), generator=g)
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        pruner.on_step_end(None, step)
        if check:
            check(step)


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_gradual_pruner_keeps_zeros_and_ends_2_4(scope):
    model = tiny_bert()
    schedule = Schedule("cubic", nm_sparsity(2, 4), (2, 5, 8, 11, 14), 18)
    pruner = SemiStructuredPruner(model, scope, None, schedule)
    params, total = pruner.masks.params, pruner.masks.num_prunable
    previous = {n: m.clone() for n, m in pruner.masks.masks.items()}

    def check(step: int) -> None:
        for name, p in params.items():
            mask = pruner.masks.masks[name]
            assert not p.detach()[~mask].any(), f"step {step}: {name}"
            assert not (mask & ~previous[name]).any(), f"step {step}: {name} regrew"
            previous[name] = mask.clone()
        converted = sum(int((~m.reshape(-1, 4)).any(1).sum()) for m in pruner.masks.masks.values())
        assert sum(pruner.masks.pruned_counts().values()) == 2 * converted  # half of each converted group

    train(model, pruner, 18, check)
    assert [e["step"] for e in pruner.trace] == [2, 5, 8, 11, 14]
    targets = [e["target"] for e in pruner.trace]
    assert targets == sorted(targets) and targets[-1] == 0.5
    for entry in pruner.trace:  # achieved = whole converted groups; within half a group's worth per tensor
        slack = 2 if scope == "global" else 2 * len(params)
        assert abs(entry["achieved"] - entry["target"]) * total <= slack
    for name, p in params.items():
        assert is_nm_sparse(p, 2, 4), name
    report = json.loads(pruner.pruning_report().model_dump_json())
    PruningInfo.model_validate(report)
    nm = report["details"]
    assert pruner.criterion == "magnitude" and (nm["n"], nm["m"]) == (2, 4)
    assert nm["converted_fraction"] == 1.0 and nm["converted_group_sparsity"] == 0.5
    assert report["achieved"] == 0.5 and nm["groups"] == total // 4
    assert all(e["converted_groups"] == e["groups"] for e in nm["per_tensor"].values())
    assert set(nm["per_tensor"]) == set(report["per_tensor"])


def test_oneshot_converts_every_group_at_once_and_partial_targets():
    model = tiny_bert()
    pruner = SemiStructuredPruner(model, "global", None, Schedule("oneshot", 0.5, (0,), 100), n=2, m=4)
    before = {name: p.detach().clone() for name, p in pruner.masks.params.items()}
    pruner.on_train_begin(None)
    assert pruner.masks.sparsity() == 0.5
    for name, p in pruner.masks.params.items():
        assert torch.equal(pruner.masks.masks[name], reference_nm(before[name], 2, 4))
        assert is_nm_sparse(p, 2, 4)
    half = SemiStructuredPruner(tiny_bert(), "layerwise", None, Schedule("oneshot", 0.375, (0,), 100), n=1, m=4)
    half.on_train_begin(None)
    nm = half.pruning_report().details
    assert nm["converted_fraction"] == pytest.approx(0.5, abs=1e-3) and nm["converted_group_sparsity"] == 0.75


def test_bad_input():
    model = tiny_bert()
    with pytest.raises(SparseNLPError, match="1 <= N < M"):
        SemiStructuredPruner(model, "global", None, Schedule("oneshot", 0.5, (0,), 100), n=4, m=4)
    with pytest.raises(SparseNLPError, match="at most 0.5"):
        SemiStructuredPruner(model, "global", None, Schedule("oneshot", 0.6, (0,), 100), n=2, m=4)
    with pytest.raises(SparseNLPError, match="not a multiple of M=3"):
        SemiStructuredPruner(model, "global", None, Schedule("oneshot", 0.3, (0,), 100), n=2, m=3)
    with pytest.raises(SparseNLPError, match="scope"):
        gradual_nm_masks(layers(), 2, 4, 0.5, scope="random")
    with pytest.raises(SparseNLPError, match="CUDA|Linear"):
        to_semi_structured_(model, ["bert.encoder.layer.0.intermediate.dense.weight"])
    with pytest.raises(SparseNLPError, match="not an nn.Linear weight"):
        to_semi_structured_(model, ["bert.embeddings.word_embeddings.weight"])


# ---- CUDA: the semi-structured kernels compute what the dense masked model computes ------------------------

@pytest.mark.cuda
@pytest.mark.skipif(not semi_structured_available()[0], reason="needs a CUDA GPU with 2:4 sparse support")
def test_semi_structured_outputs_match_dense_masked_model():
    model = tiny_bert(hidden=256, ffn=512)  # every Linear dimension a multiple of the kernels' 64
    pruner = SemiStructuredPruner(model, "global", None, Schedule("oneshot", 0.5, (0,), 100))
    pruner.on_train_begin(None)
    model = model.half().cuda().eval()
    ids = torch.randint(1, 100, (8, 32), device="cuda")
    with torch.inference_mode():
        dense = model(input_ids=ids).logits.float()
    converted = to_semi_structured_(model, list(pruner.masks.params))
    assert len(converted) == 12
    with torch.inference_mode():
        sparse = model(input_ids=ids).logits.float()
    torch.testing.assert_close(sparse, dense, rtol=1e-2, atol=1e-2)
    assert (sparse.argmax(-1) == dense.argmax(-1)).float().mean() > 0.99
