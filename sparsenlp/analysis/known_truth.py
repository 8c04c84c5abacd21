"""Per-sentence span counts and prediction codes of runs whose population F1 is known exactly: the data on
which ``bench/stats_calibration.py`` measures whether the report's tests keep their promise.

A language is a test set drawn from an infinite population of sentences: sentence i holds ``gold_i = 1 +
Poisson(0.3)`` entities, has a difficulty ``d_i ~ N(0, 1)`` (logit scale) and, when a model gets it wrong,
a preferred way of getting it wrong (probabilities ``π_i ~ Dirichlet(½, ½, ½, ½)`` over four error
variants, so a sentence's errors repeat across runs, as PIEs need). A run is a seed: its quality ``u ~
N(0, seed_sd²)`` shifts every sentence's error probability ``expit(θ + d_i + u)``; each sentence is then
wrong independently, in one of the variants:

===========  ===============  =================
variant      true positives   predicted spans
===========  ===============  =================
0 (right)    gold             gold
1            gold − 1         gold − 1 (one entity missed)
2            gold − 1         gold (one entity with a wrong type or boundary)
3            gold             gold + 1 (a spurious entity)
4            0                0 (every entity missed)
===========  ===============  =================

The population F1 of a run of quality u is 2·E[tp] / (E[predicted] + E[gold]) over the population of
sentences, computed by Gauss–Hermite quadrature (:func:`population_f1`), and the estimand of a comparison
is its mean over seeds. A "sparse" population of the same language has its own θ (:func:`shift_for`
solves for the θ that moves the estimand by a given ΔF1, −0.02 for a 2-point loss), so every
comparison's truth is known to quadrature precision. Seed spread ``seed_sd`` of 0 means runs differ only
by their per-sentence draws.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

EXTRA_ENTITIES = 0.3  # gold entities per sentence: 1 + Poisson(EXTRA_ENTITIES)
VARIANTS = 4
SPREADS = {"none": 0.0, "moderate": 0.1, "dominant": 0.4}  # seed_sd on the logit scale: ≈ 0, 0.8, 3 F1 points
BASE_ERROR = -1.386  # logit of a 20% chance that a sentence of average difficulty is wrong
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(60)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


@dataclass(frozen=True)
class Language:
    """A test set: entities per sentence, difficulty, and error-variant probabilities (sentences × 4)."""

    gold: np.ndarray
    difficulty: np.ndarray
    variants: np.ndarray

    def __len__(self) -> int:
        return len(self.gold)


@dataclass(frozen=True)
class Runs:
    """Runs × sentences: prediction codes (0 = right, 1–4 = variant), true positives, predicted spans."""

    codes: np.ndarray
    tp: np.ndarray
    pred: np.ndarray


def draw_language(rng: np.random.Generator, n: int) -> Language:
    return Language(1 + rng.poisson(EXTRA_ENTITIES, n), rng.normal(0.0, 1.0, n),
                    rng.dirichlet(np.full(VARIANTS, 0.5), n))


def draw_runs(rng: np.random.Generator, language: Language, theta: float, k: int, seed_sd: float) -> Runs:
    """k runs (seeds) of a population with error level ``theta`` and seed spread ``seed_sd``."""
    n = len(language)
    quality = rng.normal(0.0, seed_sd, k) if seed_sd > 0 else np.zeros(k)
    wrong = rng.random((k, n)) < expit(theta + language.difficulty[None, :] + quality[:, None])
    cumulative = np.cumsum(language.variants, axis=1)
    variant = 1 + np.minimum((rng.random((k, n))[..., None] > cumulative[None]).sum(axis=-1), VARIANTS - 1)
    codes = np.where(wrong, variant, 0)
    g = np.broadcast_to(language.gold, codes.shape)
    tp = np.select([codes == 1, codes == 2, codes == 4], [g - 1, g - 1, 0], g)
    pred = np.select([codes == 1, codes == 3, codes == 4], [g - 1, g + 1, 0], g)
    return Runs(codes, tp.astype(np.float64), pred.astype(np.float64))


def population_f1(theta: float, seed_sd: float) -> float:
    """The mean over seeds of a run's F1 on the whole population of sentences (exact up to quadrature)."""
    mean_gold = 1.0 + EXTRA_ENTITIES
    quality = _NODES * seed_sd
    wrong = (expit(theta + _NODES[None, :] + quality[:, None]) * _WEIGHTS[None, :]).sum(axis=1)
    # a wrong sentence loses, averaged over the variants (equally likely a priori), (2 + gold) / 4 true
    # positives and gold / 4 predicted spans
    tp = mean_gold - wrong * (2.0 + mean_gold) / VARIANTS
    pred = mean_gold - wrong * mean_gold / VARIANTS
    return float(((2.0 * tp / (pred + mean_gold)) * _WEIGHTS).sum())


def shift_for(theta: float, seed_sd: float, delta_f1: float, reference_sd: float | None = None) -> float:
    """The θ of a population with seed spread ``seed_sd`` whose estimand is ``delta_f1`` away from that of the
    population (θ, ``reference_sd``) (by default the same spread): with other spreads, ΔF1 = 0 is still a null."""
    target = population_f1(theta, seed_sd if reference_sd is None else reference_sd) + delta_f1
    return brentq(lambda t: population_f1(t, seed_sd) - target, theta - 6.0, theta + 6.0, xtol=1e-12)
