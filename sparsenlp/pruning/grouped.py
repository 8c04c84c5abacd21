"""Selection inside fixed comparison groups: per output row, per block, per group of M inputs.

One-shot methods rank weights inside small groups instead of across a whole tensor: Wanda compares the
weights of one output row (Sun et al. 2023, "per output"), SparseGPT the weights of one block of
columns, N:M the M consecutive inputs of a row. All of them reduce to "prune the k lowest scores of
every slice along the last dimension", which is done here once, exactly and deterministically: among
equal scores the lower position is pruned first (the library-wide tie rule of ``magnitude`` and
``semi_structured``), and NaN scores are an error rather than kept.

A target is either an unstructured ``sparsity`` (a fraction) or an N:M pattern (N kept of every M),
never both; ``Target`` checks that once for every method.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.magnitude import count_to_prune
from sparsenlp.pruning.semi_structured import check_nm, nm_sparsity


@dataclass(frozen=True)
class Target:
    """What to reach: ``sparsity`` (unstructured) or ``n``:``m`` (N kept of every M consecutive inputs)."""

    sparsity: float | None = None
    n: int | None = None
    m: int | None = None

    def __post_init__(self) -> None:
        nm_given = self.n is not None or self.m is not None
        if (self.sparsity is not None) == nm_given:
            raise SparseNLPError(
                "a one-shot target is either a sparsity or an N:M pattern; give exactly one (e.g. sparsity=0.5 or n=2, m=4)"
            )
        if nm_given:
            check_nm(self.n, self.m)  # type: ignore[arg-type]
        elif not 0.0 <= self.sparsity <= 1.0:  # type: ignore[operator]
            raise SparseNLPError(f"sparsity {self.sparsity} is outside [0, 1]; use a fraction such as 0.5")

    @property
    def is_nm(self) -> bool:
        return self.n is not None

    @property
    def fraction(self) -> float:
        """The share of weights removed: the sparsity, or (M - N) / M."""
        return nm_sparsity(self.n, self.m) if self.is_nm else self.sparsity  # type: ignore[arg-type,return-value]

    @property
    def structure(self) -> str | None:
        """``'2:4'`` for N:M, None when unstructured (as the record's ``Arm.structure``)."""
        return f"{self.n}:{self.m}" if self.is_nm else None

    def check_columns(self, columns: int, name: str) -> None:
        """N:M groups run along the input dimension, which must be a multiple of M."""
        if self.is_nm and columns % self.m:  # type: ignore[operator]
            raise SparseNLPError(
                f"{name} has {columns} input features, not a multiple of M={self.m}; "
                f"leave it out of pruning.params or choose an M that divides {columns}"
            )


@torch.no_grad()
def prune_lowest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Keep-mask (True = kept) pruning the ``k`` lowest scores of every slice along the last dimension;
    among equal scores the lower position is pruned first.

    The k-th smallest value of each slice (``kthvalue``, linear time: about twice as fast as a sort on
    a CPU) splits it: everything below is pruned, and of the values equal to it the first ones by
    position, as many as k leaves (a running count of the ties)."""
    if bool(torch.isnan(scores).any()):
        raise SparseNLPError("pruning scores contain NaN (NaN weights or activations?); check the model and the data")
    if k <= 0:
        return torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    if k >= scores.shape[-1]:
        return torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    kth = torch.kthvalue(scores, k, dim=-1, keepdim=True).values
    below = scores < kth
    ties = scores == kth
    budget = k - below.sum(-1, keepdim=True)  # >= 1 tied elements to prune, in position order
    return ~(below | (ties & (ties.cumsum(-1) <= budget)))


def row_masks(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep-mask pruning ``round(sparsity * columns)`` lowest scores of every row (last dimension)."""
    return prune_lowest(scores, count_to_prune(sparsity, scores.shape[-1]))


def group_masks(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Keep-mask keeping the ``n`` highest scores of every ``m`` consecutive ones along the last dimension."""
    check_nm(n, m)
    if scores.shape[-1] % m:
        raise SparseNLPError(f"scores of shape {tuple(scores.shape)} do not split into groups of M={m}")
    grouped = scores.reshape(*scores.shape[:-1], scores.shape[-1] // m, m)
    return prune_lowest(grouped, m - n).reshape(scores.shape)


def target_masks(scores: torch.Tensor, target: Target) -> torch.Tensor:
    """Keep-mask for a 2-D score matrix: per output row (unstructured) or per group of M inputs (N:M)."""
    if target.is_nm:
        return group_masks(scores, target.n, target.m)  # type: ignore[arg-type]
    return row_masks(scores, target.sparsity)  # type: ignore[arg-type]
