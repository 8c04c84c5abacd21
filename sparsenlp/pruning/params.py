"""Which parameters are prunable: regexes over ``model.named_parameters()`` names.

By default the encoder's Linear weights (attention Q/K/V/output and FFN in/out) of BERT-style
encoders (``bert.encoder.layer.N...`` for mBERT/MiniLM, ``roberta.encoder.layer.N...`` for
XLM-R); embeddings, LayerNorm, biases, pooler and the classifier stay dense, following the
usual BERT pruning setups (Chen et al. 2020, sparseml recipes). The word-embedding matrix is pruned
on request as a group of its own (``embedding_matrix``), with its own target: in mBERT it holds 92M weights
beside the encoder's 85M, so ranking both together would leave the encoder at another sparsity than in the
arm without it.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence

import torch

from sparsenlp.errors import SparseNLPError

ENCODER_LINEAR_WEIGHTS = (
    r"(?:^|\.)encoder\.layer\.\d+\."
    r"(?:attention\.self\.(?:query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"
    r"\.weight$"
)
WORD_EMBEDDINGS = r"(?:^|\.)embeddings\.word_embeddings\.weight$"
DEFAULT_PATTERNS: tuple[str, ...] = (ENCODER_LINEAR_WEIGHTS,)


def select_prunable(
    model: torch.nn.Module,
    patterns: Sequence[str] | None = None,
) -> "OrderedDict[str, torch.nn.Parameter]":
    """Parameters whose name any pattern matches (``re.search``: anchor with ^/$ as needed), in
    ``named_parameters()`` order.

    ``patterns=None`` means the default encoder Linear weights. Every pattern must match something, so a
    typo fails before training.
    """
    if patterns is None:
        patterns = DEFAULT_PATTERNS
    elif isinstance(patterns, str) or not patterns:
        raise SparseNLPError(
            f"pruning.params must be a non-empty list of regexes, got {patterns!r}; "
            "leave it null for the default encoder Linear weights"
        )
    named = list(model.named_parameters())
    if not named:
        raise SparseNLPError(f"{type(model).__name__} has no parameters to prune; build the model first")
    selected: OrderedDict[str, torch.nn.Parameter] = OrderedDict()
    for pattern in patterns:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise SparseNLPError(f"pruning.params regex {pattern!r} is invalid ({exc}); fix the regex") from exc
        hits = [(name, p) for name, p in named if regex.search(name)]
        if not hits:
            examples = ", ".join(dict.fromkeys(named[i][0] for i in (0, len(named) // 2, -1)))
            raise SparseNLPError(
                f"pruning.params regex {pattern!r} matches no parameter of {type(model).__name__} "
                f"(names look like {examples}); fix the regex"
            )
        selected.update(hits)
    ordered = OrderedDict((name, p) for name, p in named if name in selected)
    for name, p in ordered.items():
        if not p.is_floating_point():
            raise SparseNLPError(f"parameter {name} is {p.dtype}, not floating point; drop it from pruning.params")
    return ordered


def embedding_matrix(model: torch.nn.Module,
                     selected: Sequence[str] = ()) -> "OrderedDict[str, torch.nn.Parameter]":
    """The word-embedding matrix, as a group of prunable parameters of its own; ``selected``: the names of the
    other group, which must not hold it already (it would then have two targets)."""
    group = select_prunable(model, [WORD_EMBEDDINGS])
    twice = [name for name in group if name in selected]
    if twice:
        raise SparseNLPError(f"pruning.params already selects {twice[0]}, and pruning.prune_embeddings prunes it "
                             "with a target of its own; drop it from pruning.params or set "
                             "pruning.prune_embeddings=false")
    return group
