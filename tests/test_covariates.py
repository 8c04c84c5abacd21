"""The covariate model: a planted effect of training size is recovered within its interval, nothing planted
gives nothing significant, facts that are missing stay missing, and the estimates equal statsmodels' own
MixedLM fitted on the same runs."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from sparsenlp.analysis import covariates
from sparsenlp.analysis.synthetic import covariate_sweep, xtreme40
from tests.conftest import WIKIANN

TRAIN = "log2 training sentences"


@pytest.fixture(scope="module")
def languages():
    return xtreme40(WIKIANN)


def _rows(table: pd.DataFrame, term: str) -> pd.DataFrame:
    return table[table["term"] == term].set_index("sparsity")


def test_a_planted_effect_of_training_size_is_recovered_within_its_interval(languages):
    planted = 0.01  # ΔF1 per doubling of the sentences trained on
    runs, sig = covariate_sweep(languages, {"log2_train": planted}, sparsities=(0.5, 0.9))
    table, notes = covariates.covariate_table(runs, sig)
    assert notes == [] and tuple(table.columns) == covariates.COLUMNS
    train = _rows(table, TRAIN)
    assert (train["ci_low"] < planted).all() and (planted < train["ci_high"]).all()
    assert (train["p_adjusted"] < 0.05).all() and (train["n_langs"] == 40).all()
    assert set(table["random_effects"]) == {"intercept + sparse slope per language"}
    assert (train["unit"] == "ΔF1 per doubling of the sentences trained on").all()


def test_nothing_planted_nothing_found(languages):
    found = []
    for seed in range(3):
        runs, sig = covariate_sweep(languages, {}, sparsities=(0.5, 0.9), seed=seed)
        table, _ = covariates.covariate_table(runs, sig)
        facts = table[table["term"] != "ΔF1 at the mean facts"]
        assert len(facts) > 10
        found += facts.loc[facts["p_adjusted"] < 0.05, "term"].tolist()
    assert found == []  # Holm within each model: a family-wise rate of 5% per model, 6 models


def test_estimates_equal_statsmodels_mixedlm_on_the_same_runs(languages):
    import statsmodels.formula.api as smf

    runs, sig = covariate_sweep(languages, {"log2_train": 0.01}, sparsities=(0.9,))
    table, _ = covariates.covariate_table(runs, sig)
    data = covariates.model_table(runs, sig, runs["arm"].iloc[0], "clean", 0.9)
    for column in ("log2_train", "subwords_per_word", "seen_entity_share", "single_entity_share"):
        data[column] = data[column] - data.groupby("lang")[column].first().mean()
    script = data.groupby("lang")["script"].first().value_counts()
    family = data.groupby("lang")["family"].first().value_counts()
    data["script"] = data["script"].where(data["script"].isin(script[script >= 3].index), "other")
    data["family"] = data["family"].where(data["family"].isin(family[family >= 3].index), "other")
    formula = ("f1 ~ sparse * (log2_train + subwords_per_word + seen_entity_share + single_entity_share"
               " + C(script, Treatment('Latin')) + C(family, Treatment('Indo-European')))")
    with warnings.catch_warnings():  # the per-language slope variance may sit on its boundary: same fit either way
        warnings.simplefilter("ignore")
        fit = smf.mixedlm(formula, data, groups=data["lang"], re_formula="~sparse").fit(
            reml=True, method=["lbfgs", "powell"])
    ours = _rows(table, TRAIN).loc[0.9]
    assert ours["estimate"] == pytest.approx(fit.fe_params["sparse:log2_train"], rel=1e-4)
    assert ours["se"] == pytest.approx(fit.bse["sparse:log2_train"], rel=1e-3)


def test_missing_facts_are_left_out_never_zero(languages):
    runs, sig = covariate_sweep(languages, {}, sparsities=(0.9,))
    runs.loc[runs["lang"] == "de", "subwords_per_word"] = np.nan
    table, notes = covariates.covariate_table(runs, sig)
    assert "subwords per word" not in set(table["term"])
    assert any("subwords per word left out: unknown for 1 of 40 languages (de)" in note for note in notes)
    few, notes = covariates.covariate_table(runs[runs["lang"].isin(["de", "en", "fr"])], sig)
    assert few.empty and any("needs ≥ 8" in note for note in notes)
