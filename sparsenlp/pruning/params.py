"""Which parameters are prunable: regexes over ``model.named_parameters()`` names.

By default the encoder's Linear weights (attention Q/K/V/output and FFN in/out) of BERT-style
encoders (``bert.encoder.layer.N...`` for mBERT/MiniLM, ``roberta.encoder.layer.N...`` for
XLM-R); embeddings, LayerNorm, biases, pooler and the classifier stay dense, following the
usual BERT pruning setups (Chen et al. 2020, sparseml recipes).
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
    prune_embeddings: bool = False,
) -> "OrderedDict[str, torch.nn.Parameter]":
    """Parameters whose name any pattern matches (``re.search``: anchor with ^/$ as needed), in
    ``named_parameters()`` order.

    ``patterns=None`` means the default encoder Linear weights; ``prune_embeddings`` adds the
    word-embedding matrix. Every pattern must match something, so a typo fails before training.
    """
    if patterns is None:
        patterns = DEFAULT_PATTERNS
    elif isinstance(patterns, str) or not patterns:
        raise SparseNLPError(
            f"pruning.params must be a non-empty list of regexes, got {patterns!r}; "
            "leave it null for the default encoder Linear weights"
        )
    patterns = list(patterns) + ([WORD_EMBEDDINGS] if prune_embeddings else [])
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
