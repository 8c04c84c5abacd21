"""Label-preserving test-set perturbations, deterministic given (seed, sentence index, name).

This package takes what it needs as plain arguments (sentences, languages, a tokenizer check); it never
reads config or data itself.
"""
from sparsenlp.perturb.base import NotApplicable, Perturbed, SentenceLike
from sparsenlp.perturb.pools import SOURCES, EntityPool, entity_forms, entity_types
from sparsenlp.perturb.registry import (
    PERTURBATIONS,
    Perturbation,
    check,
    get,
    perturb_dataset,
    perturb_sentence,
)
from sparsenlp.perturb.scripts import letters_by_script
from sparsenlp.perturb.strength import Strength, measure

__all__ = [
    "PERTURBATIONS",
    "SOURCES",
    "EntityPool",
    "NotApplicable",
    "Perturbation",
    "Perturbed",
    "SentenceLike",
    "Strength",
    "check",
    "entity_forms",
    "entity_types",
    "get",
    "letters_by_script",
    "measure",
    "perturb_dataset",
    "perturb_sentence",
]
