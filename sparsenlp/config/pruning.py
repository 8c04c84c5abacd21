"""The `pruning` group (conf/pruning/): which weights are removed, by which criterion, how many.

One dataclass for every method: each method reads the fields it needs, and a field that another method
reads must stay null (or at its default), so a contradictory config (``pruning=dense
pruning.sparsity=0.5``) fails before any data is loaded instead of silently training something else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from sparsenlp.errors import SparseNLPError

DENSE = "dense"
# unstructured methods: a mask per selected weight, driven by the `schedule` group
UNSTRUCTURED = {"global_magnitude": "global", "layerwise_magnitude": "layerwise"}
STRUCTURED = "structured_heads"
METHODS = (DENSE, *UNSTRUCTURED, STRUCTURED)
IMPORTANCES = ("l1", "l2", "random")


@dataclass
class PruningConfig:
    method: str = DENSE
    # unstructured: final target, the fraction of the selected weights set to exactly 0 (0 < s < 1)
    sparsity: Optional[float] = None
    # unstructured: regexes (re.search) over parameter names; null: the encoder's attention and FFN Linear
    # weights (sparsenlp/pruning/params.py); embeddings, LayerNorm, biases, classifier stay dense
    params: Optional[List[str]] = None
    prune_embeddings: bool = False  # unstructured: add the word-embedding matrix to the pruned set
    monotone: bool = True  # unstructured: once pruned, stays pruned (false: masks recomputed from scratch)
    # structured_heads: share of attention heads / FFN neurons removed per layer, 0 <= r < 1
    head_ratio: Optional[float] = None
    ffn_ratio: Optional[float] = None
    importance: Optional[str] = None  # structured_heads: l1 | l2 (magnitude) | random (control)
    round_to: Optional[int] = None  # structured_heads: kept FFN width rounded down to a multiple of this

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SparseNLPError(f"pruning.method={self.method!r} is unknown; use one of {', '.join(METHODS)}")
        if self.method in UNSTRUCTURED:
            self._check_unstructured()
        else:
            self._only(set() if self.method == DENSE else {"head_ratio", "ffn_ratio", "importance", "round_to"})
        if self.method == STRUCTURED:
            self._check_structured()

    @property
    def is_dense(self) -> bool:
        return self.method == DENSE

    def _check_unstructured(self) -> None:
        s = self.sparsity
        if s is None:
            raise SparseNLPError(f"pruning={self.method} needs pruning.sparsity, e.g. pruning.sparsity=0.9")
        if s == 0.0:
            raise SparseNLPError(
                f"pruning.sparsity=0 with pruning={self.method} trains a dense model under a pruning label; "
                "use pruning=dense for the dense baseline"
            )
        if not 0.0 < s < 1.0:
            raise SparseNLPError(f"pruning.sparsity={s} is outside (0, 1); use a fraction such as 0.9")
        self._only({"sparsity", "params", "prune_embeddings", "monotone"})

    def _check_structured(self) -> None:
        for name in ("head_ratio", "ffn_ratio"):
            ratio = getattr(self, name)
            if ratio is None or not 0.0 <= ratio < 1.0:
                raise SparseNLPError(f"pruning.{name}={ratio} must be in [0, 1) for pruning={STRUCTURED}")
        if self.importance not in IMPORTANCES:
            raise SparseNLPError(f"pruning.importance={self.importance!r} is unknown; use one of "
                                 f"{', '.join(IMPORTANCES)}")
        if self.round_to is not None and self.round_to < 1:
            raise SparseNLPError(f"pruning.round_to={self.round_to} must be a positive integer or null")

    def _only(self, used: set[str]) -> None:
        """Fields the method does not read must keep their neutral value."""
        neutral = {"sparsity": None, "params": None, "prune_embeddings": False, "monotone": True,
                   "head_ratio": None, "ffn_ratio": None, "importance": None, "round_to": None}
        for name, value in neutral.items():
            if name not in used and getattr(self, name) != value:
                fix = ("choose a pruning method, e.g. pruning=global_magnitude" if self.method == DENSE
                       else f"drop it (pruning={self.method} does not use it)")
                raise SparseNLPError(
                    f"pruning.{name}={getattr(self, name)} has no effect with pruning={self.method}; {fix}"
                )
