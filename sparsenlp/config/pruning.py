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
# masked methods: a mask per selected weight, driven by the `schedule` group; magnitude methods name their
# scope, the others read it from `pruning.scope`
MAGNITUDE = {"global_magnitude": "global", "layerwise_magnitude": "layerwise"}
MOVEMENT = "movement"
SEMI_STRUCTURED = "semi_structured"
MASKED = (*MAGNITUDE, MOVEMENT, SEMI_STRUCTURED)
STRUCTURED = "structured_heads"
METHODS = (DENSE, *MASKED, STRUCTURED)
SCOPES = ("global", "layerwise")
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
    # movement, semi_structured: global (weights / groups compete across tensors) or layerwise (per tensor)
    scope: Optional[str] = None
    # semi_structured: keep the N largest |w| in every group of M consecutive input weights; `sparsity` is
    # then at most (M - N) / M (every group converted), null = exactly that
    n: Optional[int] = None
    m: Optional[int] = None
    # structured_heads: share of attention heads / FFN neurons removed per layer, 0 <= r < 1
    head_ratio: Optional[float] = None
    ffn_ratio: Optional[float] = None
    importance: Optional[str] = None  # structured_heads: l1 | l2 (magnitude) | random (control)
    round_to: Optional[int] = None  # structured_heads: kept FFN width rounded down to a multiple of this

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SparseNLPError(f"pruning.method={self.method!r} is unknown; use one of {', '.join(METHODS)}")
        if self.method == SEMI_STRUCTURED:
            self._check_semi_structured()
        elif self.method in MASKED:
            self._check_unstructured()
        else:
            self._only(set() if self.method == DENSE else {"head_ratio", "ffn_ratio", "importance", "round_to"})
        if self.method == STRUCTURED:
            self._check_structured()

    @property
    def is_dense(self) -> bool:
        return self.method == DENSE

    @property
    def selection_scope(self) -> str:
        """``global`` or ``layerwise`` for masked methods."""
        return MAGNITUDE.get(self.method) or str(self.scope)

    def _check_scope(self) -> None:
        if self.method in MAGNITUDE:
            return
        if self.scope not in SCOPES:
            raise SparseNLPError(f"pruning.scope={self.scope!r} is unknown for pruning={self.method}; use "
                                 f"{' or '.join(SCOPES)}")

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
        self._check_scope()
        self._only({"sparsity", "params", "prune_embeddings", "monotone"} | ({"scope"} if self.method == MOVEMENT
                                                                             else set()))

    def _check_semi_structured(self) -> None:
        n, m = self.n, self.m
        if n is None or m is None or not 1 <= n < m:
            raise SparseNLPError(f"pruning.n={n} and pruning.m={m} must satisfy 1 <= n < m, e.g. 2 and 4")
        full = (m - n) / m
        if self.sparsity is None:
            self.sparsity = full
        if not 0.0 < self.sparsity <= full:
            raise SparseNLPError(f"pruning.sparsity={self.sparsity} must be in (0, {full:g}] for {n}:{m} sparsity "
                                 f"((M - N) / M when every group is converted); or null for exactly that")
        self._check_scope()
        self._only({"sparsity", "params", "prune_embeddings", "scope", "n", "m"})

    @property
    def structure(self) -> Optional[str]:
        """The shape constraint of the sparsity: ``2:4``, ``heads=0.25,ffn=0.25``; None for unstructured."""
        if self.method == SEMI_STRUCTURED:
            return f"{self.n}:{self.m}"
        if self.method == STRUCTURED:
            return f"heads={self.head_ratio:g},ffn={self.ffn_ratio:g}"
        return None

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
        neutral = {"sparsity": None, "params": None, "prune_embeddings": False, "monotone": True, "scope": None,
                   "n": None, "m": None, "head_ratio": None, "ffn_ratio": None, "importance": None, "round_to": None}
        for name, value in neutral.items():
            if name not in used and getattr(self, name) != value:
                fix = ("choose a pruning method, e.g. pruning=global_magnitude" if self.method == DENSE
                       else f"drop it (pruning={self.method} does not use it)")
                raise SparseNLPError(
                    f"pruning.{name}={getattr(self, name)} has no effect with pruning={self.method}; {fix}"
                )
