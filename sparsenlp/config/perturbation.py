"""The `perturbation` group (conf/perturbation/): the test-time robustness suite.

A member is a condition label -> a registered perturbation (sparsenlp/perturb/registry.py), its
severities (each gives the condition ``<label>@<severity>``) and parameters. Names, severities and
parameters are checked here, before any data is loaded; which conditions apply to which test language
(scripts, entity pools, measured strength) needs the data and is decided right after it is read, before
training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Optional

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import ValidationError

from sparsenlp.errors import SparseNLPError
from sparsenlp.options import (
    FRACTION,
    Each,
    Free,
    Group,
    OneOf,
    Range,
    at_least,
    option,
    validate,
)
from sparsenlp.perturb import PERTURBATIONS, SOURCES, EntityPool, check

BOOLEAN = Free("a boolean; its type is checked by Hydra")


@dataclass
class MemberConfig:
    perturbation: str = option(MISSING, "a registered perturbation (sparsenlp/perturb/registry.py)",
                               OneOf(tuple(PERTURBATIONS)))
    severities: List[float] = option(MISSING, "each gives the condition <label>@<severity>",
                                     Each(Range(0.0, 1.0), non_empty=True))
    params: Dict[str, Any] = option(help="the perturbation's parameters", check=Free("checked by the perturbation"),
                                    factory=dict)
    pool: Optional[str] = option(None, "entity_swap only: where replacement names come from", OneOf(SOURCES))
    required: bool = option(False, "a test language the member cannot change (case on a caseless script, no pool) "
                            "is recorded as not applicable; true: stop before training instead", BOOLEAN)

    def check(self, path: str) -> None:
        swap = self.perturbation == "entity_swap"
        if swap != (self.pool is not None):
            raise SparseNLPError(f"{path[:-1]}: entity_swap needs `pool: {'|'.join(SOURCES)}`, other perturbations "
                                 "none")
        extra = {"pool": EntityPool("", self.pool, [], {})} if swap else {}
        for severity in self.severities:
            try:
                check(self.perturbation, severity, **self.params, **extra)
            except SparseNLPError as exc:
                raise SparseNLPError(f"{path[:-1]}: {exc.message}") from None


@dataclass
class PerturbationConfig(Group):
    KEY: ClassVar[str] = "perturbation"

    name: str = option("none", "the suite's name in records", Free("a label"))
    seed: int = option(0, "fixed across runs, so every run (and every PIE population) sees the same text",
                       at_least(0))
    pool_limit: Optional[int] = option(None, "entity_swap script/family: test sentences read per pool language "
                                       "(null: all)", at_least(1))
    min_changed: float = option(0.05, "a condition that changes fewer than this share of a language's test "
                                "sentences is not applicable to it (a gap can only come from changed sentences)",
                                FRACTION)
    # label -> MemberConfig (typed here, not by OmegaConf, so that a member can be added with one
    # `+perturbation.members.<label>={...}` override and a bad value gets a message naming the member)
    members: Dict[str, Any] = option(help="condition label -> member (perturbation, severities, params, pool)",
                                     check=Free("checked member by member"), factory=dict)

    def __post_init__(self) -> None:
        self.members = {str(label): _member(str(label), spec) for label, spec in self.members.items()}
        super().__post_init__()

    def check(self, path: str) -> None:
        for label, member in self.active().items():
            if "@" in label or "/" in label:
                raise SparseNLPError(f"{path}members.{label}: a label may not contain '@' or '/'; rename it")
            validate(member, f"{path}members.{label}.")

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
