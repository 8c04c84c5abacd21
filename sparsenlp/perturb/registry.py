"""The named perturbations, their severity ranges, the scripts they apply to, and seeding.

Adding a perturbation: write ``fn(tokens, tags, rng, severity, **params) -> Perturbed`` (identity at
severity 0) and add one ``Perturbation`` line to ``PERTURBATIONS``, with the scripts whose letters it can
change when that is not every script.
"""
from __future__ import annotations

import inspect
import math
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from sparsenlp.errors import SparseNLPError
from sparsenlp.perturb.base import Perturbed, SentenceLike
from sparsenlp.perturb.case import SCRIPTS as CASED_SCRIPTS
from sparsenlp.perturb.case import case
from sparsenlp.perturb.char_noise import char_noise
from sparsenlp.perturb.context_drop import context_drop
from sparsenlp.perturb.diacritics import SCRIPTS as MARKED_SCRIPTS
from sparsenlp.perturb.diacritics import strip_diacritics
from sparsenlp.perturb.entity_swap import entity_swap
from sparsenlp.perturb.scripts import main_scripts, script_name

# A condition with declared scripts applies to a test set when those scripts hold at least this share of
# its letters: the question is what happens to the language's own script, not to the foreign names
# quoted in it (15% of the Chinese test set's letters are Latin, 6% of the Georgian one's).
MIN_SCRIPT_SHARE = 0.5


@dataclass(frozen=True)
class Perturbation:
    """A perturbation function, the closed severity range it accepts, and the scripts it can change.

    ``scripts``: ISO 15924 codes of the scripts whose letters it changes (None: any script); ``lacks``:
    what the other scripts lack, for the not-applicable reason; ``uses_vocabulary``: it takes
    ``known=`` (whether the run's tokenizer knows a character), which the robustness suite passes."""

    fn: Callable[..., Perturbed]
    low: float = 0.0
    high: float = 1.0
    scripts: frozenset[str] | None = None
    lacks: str = ""
    uses_vocabulary: bool = False

    def script_reason(self, letters: Counter[str]) -> str | None:
        """Why the perturbation cannot apply to text with this letter count per script; None when it can."""
        if self.scripts is None:
            return None
        total = sum(letters.values())
        if not total:
            return "the test text has no letters"
        share = sum(n for code, n in letters.items() if code in self.scripts) / total
        if share >= MIN_SCRIPT_SHARE:
            return None
        main = main_scripts(letters, set(letters) - self.scripts)
        held = sum(letters[c] for c in main) / total
        subject = f"script {script_name(main[0])} has" if len(main) == 1 else \
            f"scripts {', '.join(script_name(c) for c in main)} have"
        applies = ", ".join(sorted(script_name(c) for c in self.scripts))
        return (f"{subject} {self.lacks} ({held:.0%} of the test letters; it applies to {applies}, which hold "
                f"{share:.0%}, under {MIN_SCRIPT_SHARE:.0%})")


PERTURBATIONS: dict[str, Perturbation] = {
    "char_noise": Perturbation(char_noise),
    "case": Perturbation(case, scripts=CASED_SCRIPTS, lacks="no letter case", uses_vocabulary=True),
    "strip_diacritics": Perturbation(strip_diacritics, scripts=MARKED_SCRIPTS, lacks="no optional marks"),
    "entity_swap": Perturbation(entity_swap),
    "context_drop": Perturbation(context_drop),
}


def get(name: str) -> Perturbation:
    """The registered perturbation ``name``."""
    if name not in PERTURBATIONS:
        raise SparseNLPError(f"unknown perturbation {name!r}; known: {', '.join(sorted(PERTURBATIONS))}")
    return PERTURBATIONS[name]


def rng_for(name: str, seed: int, index: int) -> np.random.Generator:
    """A generator fixed by (seed, sentence index, perturbation name), stable across processes
    (crc32, not Python's salted ``hash``) and independent of the order sentences are perturbed in."""
    if not isinstance(seed, int) or seed < 0:
        raise SparseNLPError(f"perturbation seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng([seed, index, zlib.crc32(name.encode("utf-8"))])


def check(name: str, severity: float, **params: object) -> None:
    """Validate name, severity and parameters before any work starts (e.g. before training).

    Runs the perturbation on an empty sentence, which checks parameter values without touching data.
    An ``entity_swap`` pool still needs ``EntityPool.validate`` against the test set's entity types.
    """
    p = get(name)
    if isinstance(severity, bool) or not isinstance(severity, (int, float)) or math.isnan(severity):
        raise SparseNLPError(f"severity for perturbation {name!r} must be a number, got {severity!r}")
    if not p.low <= severity <= p.high:
        raise SparseNLPError(
            f"severity {severity} for perturbation {name!r} is outside [{p.low}, {p.high}]; pick one in range"
        )
    try:
        inspect.signature(p.fn).bind([], [], None, severity, **params)
    except TypeError as exc:
        raise SparseNLPError(f"bad parameters {sorted(params)} for perturbation {name!r}: {exc}") from None
    p.fn([], [], rng_for(name, 0, 0), severity, **params)


def perturb_sentence(
    name: str, tokens: Sequence[str], tags: Sequence[str], severity: float, seed: int, index: int, **params: object
) -> Perturbed:
    """Perturb one sentence; the result depends only on the arguments (``index``: its position in the split)."""
    check(name, severity, **params)
    if len(tokens) != len(tags):
        raise SparseNLPError(f"sentence {index} has {len(tokens)} tokens but {len(tags)} tags; fix the data")
    return get(name).fn(list(tokens), list(tags), rng_for(name, seed, index), severity, **params)


def perturb_dataset(
    name: str, sentences: Sequence[SentenceLike], severity: float, seed: int, **params: object
) -> list[Perturbed]:
    """Perturb every sentence (objects with ``.tokens`` and ``.tags``); sentence ``i`` is seeded by
    ``(seed, i, name)``, so a sentence's perturbation does not depend on the others."""
    check(name, severity, **params)
    fn = get(name).fn
    out = []
    for i, s in enumerate(sentences):
        if len(s.tokens) != len(s.tags):
            raise SparseNLPError(f"sentence {i} has {len(s.tokens)} tokens but {len(s.tags)} tags; fix the data")
        out.append(fn(list(s.tokens), list(s.tags), rng_for(name, seed, i), severity, **params))
    return out
