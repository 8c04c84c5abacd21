"""SparseGPT (Frantar & Alistarh 2023) against a naive per-row reference of the published algorithm.

The reference below knows nothing of Cholesky factors, blocks of lazy updates or vectorisation: for each
column j in order it inverts the remaining Hessian H_F (F = columns j..n-1) directly and, for each row
whose weight j is pruned, applies the optimal-brain-surgeon update w_F −= w_j / [H_F⁻¹]_jj · [H_F⁻¹]_{:,j}.
Masks are chosen where the published algorithm chooses them (at every block start for unstructured, at
every M-th column for N:M) from the weights as updated so far, with saliency w_j² / [H_Fj⁻¹]_jj.
"""
from __future__ import annotations

import pytest
import torch

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.grouped import Target
from sparsenlp.pruning.sparsegpt import Hessian, sparsegpt_prune


def naive_sparsegpt(weight: torch.Tensor, hessian: torch.Tensor, target: Target, blocksize: int,
                    percdamp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    w = weight.double().clone()
    h = hessian.double().clone()
    rows, n = w.shape
    for j in range(n):
        if h[j, j] == 0:  # dead input: H_jj = 1, W_:j = 0
            h[j, j] = 1.0
            w[:, j] = 0.0
    h += percdamp * torch.diagonal(h).mean() * torch.eye(n, dtype=h.dtype)
    pruned = [[False] * n for _ in range(rows)]

    def saliency(r: int, c: int) -> float:
        return w[r, c].item() ** 2 / torch.linalg.inv(h[c:, c:])[0, 0].item()

    for j in range(n):
        if not target.is_nm and j % blocksize == 0:
            block = range(j, min(j + blocksize, n))
            entries = sorted((saliency(r, c), r, c - j) for r in range(rows) for c in block)  # ties: row-major
            for _, r, offset in entries[: round(target.sparsity * len(entries))]:
                pruned[r][j + offset] = True
        if target.is_nm and j % target.m == 0:
            for r in range(rows):
                group = sorted((saliency(r, c), c) for c in range(j, j + target.m))
                for _, c in group[: target.m - target.n]:
                    pruned[r][c] = True
        h_f_inv = torch.linalg.inv(h[j:, j:])
        for r in range(rows):
            if pruned[r][j]:
                w[r, j:] -= w[r, j] / h_f_inv[0, 0] * h_f_inv[:, 0]
                w[r, j] = 0.0
    return w, ~torch.tensor(pruned)


def toy_layer(rows: int = 6, columns: int = 16, tokens: int = 40, dead: int | None = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, columns, generator=g, dtype=torch.float64) * torch.linspace(0.2, 2.0, columns,
                                                                                          dtype=torch.float64)
    x[:, :3] += x[:, 3:6]  # correlated inputs, where the OBS update matters
    if dead is not None:
        x[:, dead] = 0.0
    weight = torch.randn(rows, columns, generator=g, dtype=torch.float64)
    hessian = Hessian(columns, dtype=torch.float64)
    hessian.add(x[:25])
    hessian.add(x[25:])
    return weight, hessian.matrix(), x


@pytest.mark.parametrize("target", [Target(sparsity=0.5), Target(sparsity=0.3), Target(sparsity=0.75),
                                    Target(n=2, m=4), Target(n=1, m=4)], ids=str)
@pytest.mark.parametrize("blocksize", [4, 8, 16, 128])
def test_matches_the_naive_per_row_reference(target, blocksize):
    weight, hessian, _ = toy_layer()
    before = weight.clone()
    updated, keep = sparsegpt_prune(weight, hessian, target, blocksize=blocksize, dtype=torch.float64)
    expected_weight, expected_keep = naive_sparsegpt(weight, hessian, target, blocksize)
    assert torch.equal(weight, before)  # the input is not modified
    assert torch.equal(keep, expected_keep)
    torch.testing.assert_close(updated, expected_weight, rtol=1e-9, atol=1e-10)
    assert (updated[~keep] == 0).all()  # exactly zero, not merely small
    assert (updated[:, 5] == 0).all()  # the dead input's weights


def test_matches_with_uneven_blocks_and_several_rows_of_blocks():
    weight, hessian, _ = toy_layer(rows=9, columns=22, tokens=60, dead=None, seed=3)
    for target in (Target(sparsity=0.5), Target(sparsity=0.6)):
        updated, keep = sparsegpt_prune(weight, hessian, target, blocksize=5, dtype=torch.float64)
        expected_weight, expected_keep = naive_sparsegpt(weight, hessian, target, 5)
        assert torch.equal(keep, expected_keep)
        torch.testing.assert_close(updated, expected_weight, rtol=1e-9, atol=1e-10)


def test_every_block_reaches_the_target_exactly():
    weight, hessian, _ = toy_layer(rows=7, columns=24, dead=None)
    _, keep = sparsegpt_prune(weight, hessian, Target(sparsity=0.5), blocksize=8, dtype=torch.float64)
    assert [int((~keep[:, i:i + 8]).sum()) for i in (0, 8, 16)] == [28, 28, 28]  # round(0.5 * 7 * 8)
    assert keep[:, :8].sum(1).tolist() != [4] * 7  # the group is the block, not the row
    _, keep = sparsegpt_prune(weight, hessian, Target(n=2, m=4), blocksize=8)
    assert (keep.reshape(7, 6, 4).sum(-1) == 2).all()


def test_float32_agrees_with_float64():
    weight, hessian, _ = toy_layer(rows=32, columns=64, tokens=400, dead=None)
    w64, k64 = sparsegpt_prune(weight, hessian, Target(sparsity=0.5), blocksize=16, dtype=torch.float64)
    w32, k32 = sparsegpt_prune(weight.float(), hessian.float(), Target(sparsity=0.5), blocksize=16)
    assert w32.dtype == torch.float32
    assert (k32 != k64).float().mean() < 0.01
    same = k32 & k64
    torch.testing.assert_close(w32[same].double(), w64[same], rtol=1e-3, atol=1e-4)


def test_the_update_lowers_the_reconstruction_error_of_its_own_mask():
    """With correlated inputs (as real activations are) the OBS update recovers most of what the mask loses."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(200, 8, generator=g, dtype=torch.float64) @ torch.randn(8, 32, generator=g, dtype=torch.float64)
    x += 0.1 * torch.randn(200, 32, generator=g, dtype=torch.float64)
    weight = torch.randn(16, 32, generator=g, dtype=torch.float64)
    hessian = Hessian(32, dtype=torch.float64)
    hessian.add(x)
    updated, keep = sparsegpt_prune(weight, hessian.matrix(), Target(sparsity=0.5), dtype=torch.float64)
    error = (x @ (weight - updated).T).norm()
    assert error < 0.5 * (x @ (weight - weight * keep).T).norm()


def test_bad_inputs_fail_with_one_line():
    weight, hessian, _ = toy_layer(dead=None)
    with pytest.raises(SparseNLPError, match="multiple of M=4"):
        sparsegpt_prune(weight, hessian, Target(n=2, m=4), blocksize=6)
    with pytest.raises(SparseNLPError, match="does not match weight of shape"):
        sparsegpt_prune(weight, hessian[:-1, :-1], Target(sparsity=0.5))
    rank_deficient = Hessian(16, dtype=torch.float64)
    rank_deficient.add(torch.ones(3, 16, dtype=torch.float64))
    with pytest.raises(SparseNLPError, match="not positive definite even with percdamp=0.0; raise percdamp"):
        sparsegpt_prune(weight, rank_deficient.matrix(), Target(sparsity=0.5), percdamp=0.0, dtype=torch.float64)
    with pytest.raises(SparseNLPError, match="no calibration tokens"):
        Hessian(4).matrix()
