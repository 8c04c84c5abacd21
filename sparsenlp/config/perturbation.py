"""The `perturbation` group (conf/perturbation/): the test-time robustness suite.

A member is a condition label -> a registered perturbation (sparsenlp/perturb/registry.py), its
severities (each gives the condition ``<label>@<severity>``) and parameters. Names, severities and
parameters are checked here, before any data is loaded; which conditions apply to which test language
(scripts, entity pools, measured strength) needs the data and is decided right after it is read, before
training.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import ValidationError

from sparsenlp.errors import SparseNLPError


@dataclass
class MemberConfig:
    perturbation: str = MISSING  # a name in sparsenlp.perturb.PERTURBATIONS
    severities: List[float] = MISSING
    params: Dict[str, Any] = field(default_factory=dict)
    pool: Optional[str] = None  # entity_swap only: seen | unseen | script | family
    # a test language the member cannot change (case on a caseless script, no pool) is recorded as not
    # applicable; true: stop before training instead
    required: bool = False


@dataclass
class PerturbationConfig:
    name: str = "none"
    seed: int = 0  # fixed across runs, so every run (and every PIE population) sees the same text
    pool_limit: Optional[int] = None  # entity_swap script/family: test sentences read per pool language (null: all)
    # a condition that changes fewer than this share of a language's test sentences is not applicable to it:
    # a gap can only come from changed sentences, so below this it is near 0 by construction
    min_changed: float = 0.05
    # label -> MemberConfig (typed here, not by OmegaConf, so that a member can be added with one
    # `+perturbation.members.<label>={...}` override and a bad value gets a message naming the member)
    members: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from sparsenlp.perturb import SOURCES, EntityPool, check

        self.members = {str(label): _member(str(label), spec) for label, spec in self.members.items()}
        if self.seed < 0:
            raise SparseNLPError(f"perturbation.seed={self.seed} must be a non-negative integer")
        if self.pool_limit is not None and self.pool_limit < 1:
            raise SparseNLPError(f"perturbation.pool_limit={self.pool_limit} must be positive or null")
        if not 0.0 <= self.min_changed <= 1.0:
            raise SparseNLPError(f"perturbation.min_changed={self.min_changed} must be a share in [0, 1]")
        for label, member in self.active().items():
            where = f"perturbation.members.{label}"
            if "@" in label or "/" in label:
                raise SparseNLPError(f"{where}: a label may not contain '@' or '/'; rename it")
            if not member.severities:
                raise SparseNLPError(f"{where}.severities is empty; give at least one severity")
            swap = member.perturbation == "entity_swap"
            if swap != (member.pool is not None):
                raise SparseNLPError(f"{where}: entity_swap needs `pool: {'|'.join(SOURCES)}`, other perturbations none")
            if swap and member.pool not in SOURCES:
                raise SparseNLPError(f"{where}.pool={member.pool!r} is unknown; use one of {', '.join(SOURCES)}")
            extra = {"pool": EntityPool("", member.pool, [], {})} if swap else {}
            for severity in member.severities:
                try:
                    check(member.perturbation, severity, **member.params, **extra)
                except SparseNLPError as exc:
                    raise SparseNLPError(f"{where}: {str(exc).removeprefix('sparsenlp error: ')}") from None

    def active(self) -> Dict[str, MemberConfig]:
        """Members not disabled (``~perturbation.members.x`` or ``perturbation.members.x=null``)."""
        return {str(label): m for label, m in self.members.items() if m is not None}


def _member(label: str, spec: Any) -> Optional[MemberConfig]:
    """One member as a MemberConfig (None: disabled), or a one-line error naming the member and the key."""
    if spec is None or isinstance(spec, MemberConfig):
        return spec
    where = f"perturbation.members.{label}"
    if not isinstance(spec, dict):
        raise SparseNLPError(f"{where} must be a mapping with perturbation, severities (and params, pool), "
                             f"got {spec!r}")
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(MemberConfig), spec))
    except (ValidationError, KeyError) as exc:
        key = getattr(exc, "full_key", "") or ""
        reason = str(exc).splitlines()[0]
        raise SparseNLPError(f"{where}{'.' + key if key else ''}: {reason}; severities are numbers in [0, 1] and "
                             "the keys are perturbation, severities, params, pool, required") from None
