"""Top-score mask selection: global (one threshold over all tensors) and layer-wise (one per tensor).

The score is |w| by default (magnitude pruning); any per-element importance can be passed instead
(``scores=``): movement pruning keeps its accumulated movement scores, N:M pruning ranks whole groups
by their cost. Selection is the same in every case: prune the k lowest scores.

Why not ``torch.nn.utils.prune``: its ``topk`` over the concatenated |w| with k = 90% of 85M weights
takes ~20 s per pruning event on a 2-core CPU (this: 0.4-1 s, see bench/pruning.py) and needs
weight_orig reparametrisation. Here the k-th smallest |w| is found exactly by bracketing it with
quantiles of a small random sample, counting what lies below the bracket in one pass and running
``kthvalue`` only on the few elements inside it.
The sample only affects speed: a bracket that misses the k-th value falls back to a full
``kthvalue``, so the mask is always exact.

Conventions (shared with torch.nn.utils.prune, so masks agree on tie-free weights):
- the number pruned is ``round(sparsity * numel)`` (Python's round, half to even), over all selected
  elements for global selection, per tensor for layer-wise;
- the smallest |w| (lowest scores) are pruned; among equal scores the lower position in the
  concatenated flat order goes first (deterministic, unlike ``topk``);
- with a ``prior`` mask (monotone pruning) previously pruned elements are chosen before any other,
  and stay pruned even when the new count is below what the prior already pruned.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from sparsenlp.errors import SparseNLPError

# Sample sizes trade the cost of sampling (and kthvalue on the sample) against the bracket width
# (~12 sigma of the sample quantile, i.e. ~12 * sqrt(q(1-q)/m) of all elements).
GLOBAL_SAMPLE = 1 << 20
LAYERWISE_SAMPLE = 1 << 16
_SIGMAS = 6.0
_SEED = 0


def count_to_prune(sparsity: float, numel: int) -> int:
    """Elements to prune for a fractional target, rounded exactly as torch.nn.utils.prune does."""
    if not 0.0 <= sparsity <= 1.0:
        raise SparseNLPError(f"sparsity {sparsity} is outside [0, 1]; use a fraction such as 0.9")
    return round(sparsity * numel)


def global_masks(
    params: Mapping[str, torch.Tensor],
    sparsity: float,
    prior: Mapping[str, torch.Tensor] | None = None,
    scores: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Keep-masks (True = kept) pruning the ``round(sparsity * total)`` lowest scores across all params.

    ``scores``: one importance tensor per parameter (same names and shapes, any real values, higher =
    more important); None scores every weight by |w|. The masks are views of one flat buffer
    (``MaskSet.update_`` copies them); clone before saving."""
    flat = _flat_scores(params, prior, scores)
    keep = _keep_flat(flat, count_to_prune(sparsity, flat.numel()), GLOBAL_SAMPLE)
    return _shaped(keep.split(_sizes(params)), params, prior)


def layerwise_masks(
    params: Mapping[str, torch.Tensor],
    sparsity: float,
    prior: Mapping[str, torch.Tensor] | None = None,
    scores: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Keep-masks pruning the ``round(sparsity * numel)`` lowest scores of each tensor separately
    (``scores`` as in ``global_masks``)."""
    segments = _flat_scores(params, prior, scores).split(_sizes(params))
    keeps = [_keep_flat(s, count_to_prune(sparsity, s.numel()), LAYERWISE_SAMPLE) for s in segments]
    return _shaped(keeps, params, prior)


def _sizes(params: Mapping[str, torch.Tensor]) -> list[int]:
    return [p.numel() for p in params.values()]


@torch.no_grad()
def _flat_scores(
    params: Mapping[str, torch.Tensor],
    prior: Mapping[str, torch.Tensor] | None,
    scores: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """All scores in one fresh flat float buffer: a few large ops instead of many small ones (on a
    busy CPU each op's thread barrier can cost more than its arithmetic). Previously pruned elements
    score -inf so they are selected before any other (scores may be negative)."""
    if scores is None:
        flat = torch.cat([p.detach().reshape(-1) for p in params.values()]).float().abs_()
    else:
        _check_scores(params, scores)
        flat = torch.cat([scores[name].detach().reshape(-1).float() for name in params])
        if bool(torch.isnan(flat).any()):
            raise SparseNLPError(
                "pruning scores contain NaN (a diverged loss?); lower the learning rate or clip gradients"
            )
    if prior is not None:
        for name, segment in zip(params, flat.split(_sizes(params))):
            kept = prior[name].reshape(-1).to(flat.device)
            if int(torch.count_nonzero(kept)) < kept.numel():  # (bool .all()/.sum() are much slower)
                segment.masked_fill_(~kept, -math.inf)
    return flat


def _check_scores(params: Mapping[str, torch.Tensor], scores: Mapping[str, torch.Tensor]) -> None:
    if set(scores) != set(params):
        raise SparseNLPError(
            f"scores name {len(scores)} tensors but {len(params)} parameters are selected; "
            "pass one score tensor per selected parameter"
        )
    for name, p in params.items():
        if scores[name].shape != p.shape:
            raise SparseNLPError(
                f"scores for {name} have shape {tuple(scores[name].shape)}, the parameter {tuple(p.shape)}; "
                "pass scores shaped like the parameters"
            )


def _shaped(
    chunks: Sequence[torch.Tensor], params: Mapping[str, torch.Tensor], prior: Mapping[str, torch.Tensor] | None
) -> dict[str, torch.Tensor]:
    """Flat keep-masks viewed in the parameters' shapes, never keeping what the prior pruned
    (when fewer are requested than were already pruned, the prior wins)."""
    out = {}
    for (name, p), chunk in zip(params.items(), chunks):
        mask = chunk.view(p.shape)
        if prior is not None:
            mask &= prior[name].to(mask.device)
        out[name] = mask
    return out


@torch.no_grad()
def _keep_flat(scores: torch.Tensor, k: int, sample_size: int) -> torch.Tensor:
    """Flat keep-mask pruning exactly the k smallest scores (ties: lower index first)."""
    if k <= 0:
        return torch.ones_like(scores, dtype=torch.bool)
    if k >= scores.numel():
        return torch.zeros_like(scores, dtype=torch.bool)
    if scores.numel() > 4 * sample_size:
        keep = _keep_via_bracket(scores, k, sample_size)
        if keep is not None:
            return keep
    return _keep_exact(scores, k)


def _keep_exact(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Prune everything below the k-th smallest value, then as many of its ties as k allows."""
    kth = torch.kthvalue(scores, k).values
    keep = scores > kth
    budget = k - int(torch.count_nonzero(scores < kth))  # >= 1 tied elements to prune, in index order
    keep[torch.nonzero(scores == kth).flatten()[budget:]] = True
    return keep


def _keep_via_bracket(scores: torch.Tensor, k: int, sample_size: int) -> torch.Tensor | None:
    """``_keep_exact`` run only on the scores inside a sample-quantile bracket [lo, hi] around the
    k-th value: everything below lo is pruned, above hi kept. None when the bracket misses it."""
    gen = torch.Generator(device=scores.device).manual_seed(_SEED)
    sample = scores[torch.randint(0, scores.numel(), (sample_size,), generator=gen, device=scores.device)]
    q = k / scores.numel()
    spread = _SIGMAS * math.sqrt(sample_size * q * (1.0 - q)) + 2.0
    lo_rank, hi_rank = math.floor(q * sample_size - spread), math.ceil(q * sample_size + spread)
    if lo_rank >= 1:
        keep = scores >= torch.kthvalue(sample, lo_rank).values
    else:
        keep = torch.ones_like(scores, dtype=torch.bool)
    n_below = scores.numel() - int(torch.count_nonzero(keep))
    inside = keep
    if hi_rank <= sample_size:
        inside = scores <= torch.kthvalue(sample, hi_rank).values
        inside &= keep
    index = torch.nonzero(inside).flatten()  # sorted, so ties keep their global index order
    if not 1 <= k - n_below <= index.numel():
        return None
    keep[index] = _keep_exact(scores[index], k - n_below)
    return keep
