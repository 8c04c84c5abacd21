"""Wanda: pruning by weights and activations, one shot, no weight update.

Sun, Liu, Bair & Kolter (2023), "A Simple and Effective Pruning Approach for Large Language Models",
arXiv:2306.11695 (ICLR 2024); reference code github.com/locuslab/wanda (``lib/prune.py: prune_wanda``,
``lib/layerwrapper.py: WrappedGPT``). The importance of weight W_ij of a Linear layer is

    S_ij = |W_ij| · ||X_j||_2

where X_j collects input feature j over every calibration token. Weights compete within their output
row (the paper's per-output comparison group): each row loses its lowest scores. With N:M, each group of
M consecutive inputs of a row keeps its N highest scores (the reference's ``prune_n``/``prune_m``).

Faithful to the reference except where the library's conventions say otherwise:
- padding positions are left out of ||X_j|| (the reference calibrates on unpadded 2048-token segments,
  so it has none; here a padded position is not text the model reads);
- a row prunes ``round(s · in_features)`` (the reference: ``int``, i.e. floor); the two agree whenever
  s · in_features is an integer, e.g. 50% of any even width;
- ties: the lower input index is pruned first (the reference sorts with ``stable=True``, which is the
  same for the unstructured case; its N:M ``topk`` leaves ties unspecified);
- the reference scales the norm by 1/sqrt(samples); a common factor per layer changes no ranking.
Which tokens: the driver (``sparsenlp.pruning.calibration``) runs the layers in order, so a layer is
scored on inputs that already went through the pruned layers below it, as ``prune_wanda`` does.
"""
from __future__ import annotations

import torch

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.grouped import Target, target_masks


class InputNorms:
    """Σ_t x_tj² per input feature j over the calibration tokens a Linear layer sees, added batch by
    batch (memory: one vector per layer, whatever the number of tokens)."""

    def __init__(self, features: int, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        self.sum_squares = torch.zeros(features, dtype=dtype, device=device)
        self.tokens = 0

    @torch.no_grad()
    def add(self, rows: torch.Tensor) -> None:
        """``rows``: (tokens, features) inputs, padding already removed."""
        if rows.dim() != 2 or rows.shape[1] != self.sum_squares.numel():
            raise SparseNLPError(
                f"calibration inputs of shape {tuple(rows.shape)} do not match a layer with "
                f"{self.sum_squares.numel()} input features"
            )
        x = rows.to(self.sum_squares.dtype)
        self.sum_squares += x.square().sum(0)
        self.tokens += rows.shape[0]

    def norms(self) -> torch.Tensor:
        """||X_j||_2 for every input feature j."""
        if self.tokens == 0:
            raise SparseNLPError("no calibration tokens reached this layer; pass non-empty calibration batches")
        return self.sum_squares.sqrt()


def wanda_scores(weight: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """S = |W| · ||X||_2 broadcast over output rows (in the norms' dtype)."""
    if weight.dim() != 2 or norms.shape != (weight.shape[1],):
        raise SparseNLPError(
            f"input norms of shape {tuple(norms.shape)} do not match a weight of shape {tuple(weight.shape)}"
        )
    return weight.detach().to(norms.dtype).abs() * norms[None, :]


def wanda_masks(weight: torch.Tensor, norms: torch.Tensor, target: Target, name: str = "weight") -> torch.Tensor:
    """Keep-mask (True = kept): per output row for a sparsity, per group of M inputs for N:M."""
    target.check_columns(weight.shape[1], name)
    return target_masks(wanda_scores(weight, norms), target)
