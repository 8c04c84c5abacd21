"""Label-preserving test-set perturbations, deterministic given (seed, sentence index, name)."""
from sparsenlp.perturb.base import Perturbed, SentenceLike
from sparsenlp.perturb.pools import SOURCES, EntityPool, entity_forms, entity_types, pool_languages
from sparsenlp.perturb.registry import PERTURBATIONS, Perturbation, check, get, perturb_dataset, perturb_sentence

__all__ = [
    "PERTURBATIONS",
    "SOURCES",
    "EntityPool",
    "Perturbation",
    "Perturbed",
    "SentenceLike",
    "check",
    "entity_forms",
    "entity_types",
    "get",
    "perturb_dataset",
    "perturb_sentence",
    "pool_languages",
]
