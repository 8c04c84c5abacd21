"""SparseGPT: one-shot pruning with optimal-brain-surgeon weight updates from the layer inputs' Hessian.

Frantar & Alistarh (2023), "SparseGPT: Massive Language Models Can Be Accurately Pruned in One-Shot",
ICML, arXiv:2301.00774; reference code github.com/IST-DASLab/sparsegpt (``sparsegpt.py``:
``SparseGPT.add_batch`` and ``SparseGPT.fasterprune``), followed step by step:

1. H = (2/n) Σ_t x_t x_tᵀ over the calibration tokens (the Hessian of ||WX − ŴX||² per output row).
2. Dead inputs (H_jj = 0: feature j is 0 on every calibration token) get H_jj = 1 and W_:j = 0: they
   cannot change the output on the data, and a zero weight scores 0, so the selection takes it first.
3. Dampening: H += percdamp · mean(diag H) · I (default 1%).
4. U = upper Cholesky factor of H⁻¹ (``cholesky`` → ``cholesky_inverse`` → ``cholesky(upper=True)``);
   row j of U is the row of the inverse of the *remaining* Hessian H_F (F = columns j..) scaled by
   1/sqrt([H_F⁻¹]_jj), so one factorisation serves every step of the sequential elimination.
5. Columns are processed left to right in blocks of ``blocksize`` (128). At the start of a block the
   mask is chosen adaptively from the weights as updated so far: score w_ij² / U_jj², lowest pruned.
   With N:M, at every M-th column the M − N lowest scores of the next M columns of each row are pruned.
6. Column j: q = w_j with the pruned entries set to 0; err = (w_j − q)/U_jj; the block's remaining
   columns get W_:,j: −= err · U_j,j: (the OBS update), which leaves q in column j (kept entries
   exactly; pruned ones up to rounding, then set to exactly 0 as the reference's Q1 does).
7. Lazy batch update: after a block, the columns to its right get W −= Err · U_block,right in one matmul.

Comparison group of the unstructured mask: the **block** (all rows × ``blocksize`` columns), as in the
reference (one threshold over ``tmp.flatten()`` of the block), not the row. Deviations, all small:
- the reference prunes every score ≤ the sorted score at index ``int(numel · s)``, i.e. one more than
  ``int(numel · s)`` per block (more on ties); here exactly ``round(numel · s)`` per block, ties broken
  by the lower position in row-major order, so the achieved sparsity is the target;
- the reference's ``prunen`` counts the weights *pruned* per group; here N counts the weights *kept*
  (the library's N:M convention): 2:4 is the same pattern either way. Ties: lower position pruned first;
- H is averaged over tokens (the reference: over 2048-token samples); a common factor changes nothing,
  since the dampening is relative and the updates are ratios of entries of U;
- float32 as the reference; ``dtype=torch.float64`` for tests. Padding tokens are left out of H by the
  driver (``sparsenlp.pruning.calibration``), which also runs the layers sequentially as the reference's
  ``opt_sequential`` does.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.grouped import Target, group_masks, prune_lowest
from sparsenlp.pruning.magnitude import count_to_prune

BLOCKSIZE = 128  # the reference's default
PERCDAMP = 0.01  # the reference's default


class Hessian:
    """Σ_t x_t x_tᵀ over the calibration tokens a Linear layer sees, added batch by batch (memory: one
    features × features matrix per layer, whatever the number of tokens)."""

    def __init__(self, features: int, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        self.sum = torch.zeros((features, features), dtype=dtype, device=device)
        self.tokens = 0

    @torch.no_grad()
    def add(self, rows: torch.Tensor) -> None:
        """``rows``: (tokens, features) inputs, padding already removed."""
        if rows.dim() != 2 or rows.shape[1] != self.sum.shape[0]:
            raise SparseNLPError(
                f"calibration inputs of shape {tuple(rows.shape)} do not match a layer with "
                f"{self.sum.shape[0]} input features"
            )
        x = rows.to(self.sum.dtype)
        self.sum.addmm_(x.t(), x)
        self.tokens += rows.shape[0]

    def matrix(self) -> torch.Tensor:
        """H = (2/n) Σ_t x_t x_tᵀ."""
        if self.tokens == 0:
            raise SparseNLPError("no calibration tokens reached this layer; pass non-empty calibration batches")
        return self.sum * (2.0 / self.tokens)


def check_sparsegpt_options(target: Target, blocksize: int, percdamp: float) -> None:
    """blocksize >= 1, percdamp >= 0, and N:M groups that never straddle two blocks."""
    if isinstance(blocksize, bool) or not isinstance(blocksize, int) or blocksize < 1 or not percdamp >= 0:
        raise SparseNLPError(f"SparseGPT needs an integer blocksize >= 1 and percdamp >= 0, got {blocksize} and {percdamp}")
    if target.is_nm and blocksize % target.m:  # type: ignore[operator]
        raise SparseNLPError(f"SparseGPT N:M needs a blocksize that is a multiple of M={target.m}, got {blocksize}")


def _inverse_cholesky(hessian: torch.Tensor, percdamp: float, name: str) -> torch.Tensor:
    """Steps 3-4: the upper Cholesky factor of (H + damp · I)⁻¹ (H already has its dead inputs fixed)."""
    h = hessian.clone()
    h.diagonal().add_(percdamp * h.diagonal().mean())
    try:
        lower = torch.linalg.cholesky(h)
        return torch.linalg.cholesky(torch.cholesky_inverse(lower), upper=True)
    except torch.linalg.LinAlgError:
        raise SparseNLPError(
            f"the calibration Hessian of {name} is not positive definite even with percdamp={percdamp}; "
            "raise percdamp (e.g. 0.1) or calibrate with more sentences"
        ) from None


@contextlib.contextmanager
def _one_thread_on_cpu(device: torch.device) -> Iterator[None]:
    """SparseGPT on a CPU runs single-threaded: the column loop is a few small ops per column (83k
    columns in mBERT) and the factorisations are small LAPACK calls. With several intra-op threads every
    op ends at a barrier, and on a CPU shared with other processes a descheduled worker stretches each
    one to milliseconds. One mBERT layer's six tensors on the 2-core machine of BENCHMARKS.md: 9.2 s on
    2 threads at load 3.5 against 1.3 s on one thread; when the machine is quiet, 0.87 s against 1.3 s.
    Twelve layers cost a few seconds more at best and save minutes at worst; the forward passes, which
    dominate the run, keep all threads."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def sparsegpt_prune(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    target: Target,
    blocksize: int = BLOCKSIZE,
    percdamp: float = PERCDAMP,
    dtype: torch.dtype = torch.float32,
    name: str = "weight",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(updated weight in the weight's dtype, keep-mask); pruned entries of the weight are exactly 0.

    ``hessian``: H = (2/n) Σ x xᵀ of the layer's inputs (``Hessian.matrix()``); the weight is not modified."""
    rows, columns = weight.shape
    if hessian.shape != (columns, columns):
        raise SparseNLPError(f"Hessian of shape {tuple(hessian.shape)} does not match {name} of shape {(rows, columns)}")
    check_sparsegpt_options(target, blocksize, percdamp)
    target.check_columns(columns, name)

    # W transposed (columns × rows): column j of W is the contiguous row j, so each step below and the
    # lazy update touch contiguous memory; the arithmetic is the reference's.
    wt = weight.detach().to(dtype).t().contiguous()
    h = hessian.detach().to(device=wt.device, dtype=dtype).clone()
    dead = h.diagonal() == 0
    h.diagonal()[dead] = 1.0
    wt[dead] = 0.0
    pruned_t = torch.zeros((columns, rows), dtype=torch.bool, device=wt.device)
    with _one_thread_on_cpu(wt.device):
        u = _inverse_cholesky(h, percdamp, name)
        for i1 in range(0, columns, blocksize):
            i2 = min(i1 + blocksize, columns)
            block, prune = wt[i1:i2], pruned_t[i1:i2]  # views: updated in place
            u_block = u[i1:i2, i1:i2]
            d = u_block.diagonal()[:, None]
            errors = torch.empty_like(block)
            scale = torch.empty_like(block)  # 1/U_jj where pruned, 0 where kept: err = w · scale = (w − q)/U_jj
            if not target.is_nm:
                scores = (block.square() / d.square()).t().reshape(1, -1)  # the block in W's row-major order
                keep = prune_lowest(scores, count_to_prune(target.sparsity, scores.numel()))  # type: ignore[arg-type]
                prune.copy_(~keep.view(rows, i2 - i1).t())
                torch.div(prune, d, out=scale)
            for i in range(i2 - i1):
                if target.is_nm and i % target.m == 0:  # type: ignore[operator]
                    group = slice(i, i + target.m)  # type: ignore[operator]
                    scores = (block[group].square() / d[group].square()).t()
                    prune[group] = ~group_masks(scores, target.n, target.m).t()  # type: ignore[arg-type]
                    torch.div(prune[group], d[group], out=scale[group])
                err = torch.mul(block[i], scale[i], out=errors[i])
                block[i:].addr_(u_block[i, i:], err, alpha=-1.0)  # OBS update; leaves q in row i
            block.masked_fill_(prune, 0.0)  # exactly 0 (the update leaves rounding residue)
            wt[i2:].addmm_(u[i1:i2, i2:].t(), errors, alpha=-1.0)  # lazy batch update
    return wt.t().to(weight.dtype).contiguous(), ~pruned_t.t().contiguous()
