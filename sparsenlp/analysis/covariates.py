"""Who gets hurt: ΔF1 at each arm, condition and sparsity against the languages' facts, in one mixed model.

"Resource level alone does not predict harm" is a regression question. For each arm × test condition ×
sparsity, the runs of every language (its dense seeds and the arm's sparse seeds at that sparsity) enter a
linear mixed model (``statsmodels`` MixedLM, REML)::

    F1 ~ sparse * (log2 training sentences + subwords per word + seen-entity share + single-entity share
                   + script + family),   random intercept and sparse slope per language

so the coefficient of ``sparse:x`` is the change in ΔF1 (sparse − dense F1) per unit of x, holding the
other facts fixed; the per-language random slope is the part of each language's ΔF1 the facts do not
explain, and the residual is the seed-to-seed spread. Continuous facts are centred, so ``sparse`` itself is
ΔF1 at the mean facts and the reference script and family. Scripts and families with fewer than
:data:`MIN_LEVEL` languages are pooled as ``other``; the reference level is the most frequent one.

Facts (:data:`TERMS`): training sentences of the language actually trained on (0 for zero-shot, so
log2(1 + n)), tokenizer fertility and the share of test entity mentions seen as entities in training
(from the records, :data:`sparsenlp.analysis.collect.DATA_FACTS`), the share of test sentences that are
one entity and nothing else (from the test set). A fact missing for any language of a model, or the
same for all, is left out of that model with a note: missing is never 0.

Inference: Wald statistics of the language-level terms with a t distribution of n_languages − p degrees of
freedom (p: the language-level coefficients of the ΔF1 part, the "between-within" rule: the facts vary
between languages only, so there are as many independent replicates as languages), and Holm's correction
across the fact terms of each model (``p_adjusted``).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from sparsenlp.analysis.stats import VERDICTS, correction_name

MIN_LEVEL = 3  # languages a script or family needs for a coefficient of its own
MIN_LANGUAGES = 8  # per model
# column of the model table → (term as reported, unit of its coefficient)
TERMS = {
    "log2_train": ("log2 training sentences", "ΔF1 per doubling of the sentences trained on"),
    "subwords_per_word": ("subwords per word", "ΔF1 per extra subword per word"),
    "seen_entity_share": ("seen-entity share", "ΔF1 per unit share of test entities seen in training"),
    "single_entity_share": ("single-entity share", "ΔF1 per unit share of single-entity test sentences"),
}
CATEGORIES = ("script", "family")
COLUMNS = ("arm", "condition", "sparsity", "term", "level", "unit", "estimate", "se", "df", "ci_low", "ci_high",
           "p_value", "p_adjusted", "n_langs", "n_runs", "random_effects", "note")


def model_table(runs: pd.DataFrame, sig: pd.DataFrame, arm: str, condition: str, sparsity: float,
                allow_unreplicated: bool = False) -> pd.DataFrame:
    """The runs of one model: the arm's dense baseline (sparsity 0) and sparse runs at ``sparsity`` of every
    language whose comparison was tested (one seed a side only with ``allow_unreplicated``), with the
    language's facts and the test set's single-entity share from the significance table."""
    tested = sig[(sig["arm"] == arm) & (sig["condition"] == condition) & (sig["sparsity"] == sparsity)]
    ok = tested["verdict"].isin(VERDICTS) | (allow_unreplicated & tested["p_value"].notna())
    langs = tested.loc[ok, ["lang", "single_entity_share"]].drop_duplicates("lang")
    rows = runs[(runs["arm"] == arm) & (runs["condition"] == condition) & runs["sparsity"].isin([0.0, sparsity])
                & runs["f1"].notna()]
    rows = rows.drop(columns=["single_entity_share"], errors="ignore").merge(langs, on="lang")
    return rows.assign(sparse=(rows["sparsity"] == sparsity).astype(float),
                       log2_train=np.log2(1.0 + rows["train_size"].astype(float)))


def _levels(values: pd.Series, languages: pd.Series) -> tuple[pd.Series, str] | None:
    """A categorical fact with rare levels pooled as ``other``, and its reference (most frequent) level; None
    when fewer than two levels remain."""
    per_language = values.groupby(languages).first()
    counts = per_language.value_counts()
    keep = set(counts[counts >= MIN_LEVEL].index)
    pooled = values.where(values.isin(keep), "other")
    levels = pooled.groupby(languages).first().value_counts()
    if len(levels) < 2:
        return None
    return pooled, str(levels.index[0])


def _design(data: pd.DataFrame, notes: list[str]) -> tuple[pd.DataFrame, list[str], dict[str, str]]:
    """Centred continuous facts and pooled categories usable for this model; notes for those left out."""
    data = data.copy()
    used, references = [], {}
    for column, (term, _) in TERMS.items():
        per_language = data.groupby("lang")[column].first()
        if per_language.isna().any():
            missing = sorted(per_language.index[per_language.isna()])
            notes.append(f"{term} left out: unknown for {len(missing)} of {len(per_language)} languages "
                         f"({', '.join(missing[:5])}{'…' if len(missing) > 5 else ''})")
        elif per_language.nunique() < 2:
            notes.append(f"{term} left out: the same for every language")
        else:
            data[column] = data[column] - per_language.mean()
            used.append(column)
    for column in CATEGORIES:
        pooled = _levels(data[column].astype(str), data["lang"])
        if pooled is None:
            notes.append(f"{column} left out: fewer than two {column}s with ≥ {MIN_LEVEL} languages")
            continue
        data[column], references[column] = pooled
        used.append(column)
    return data, used, references


def _formula(used: Sequence[str], references: dict[str, str]) -> str:
    parts = [f"C({c}, Treatment({references[c]!r}))" if c in references else c for c in used]
    return "f1 ~ sparse" + (" * (" + " + ".join(parts) + ")" if parts else "")


def _fit(formula: str, data: pd.DataFrame, notes: list[str]) -> tuple[Any, str] | None:
    """REML fit with a random intercept and sparse slope per language; a random intercept only when that
    does not converge; None when neither does."""
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    for re_formula, label in (("~sparse", "intercept + sparse slope per language"), ("~1", "intercept per language")):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            warnings.filterwarnings("ignore", message=".*(Hessian|boundary|singular).*")
            try:
                result = smf.mixedlm(formula, data, groups=data["lang"], re_formula=re_formula).fit(
                    reml=True, method=["lbfgs", "powell"])
            except (ConvergenceWarning, np.linalg.LinAlgError, ValueError) as exc:
                notes.append(f"random {label}: no fit ({str(exc).splitlines()[0][:80]})")
                continue
        if np.all(np.isfinite(result.bse.filter(like="sparse"))):
            return result, label
        notes.append(f"random {label}: standard errors not finite")
    return None


def _term(name: str) -> tuple[str, str, str]:
    """(term, level, unit) of a coefficient ``sparse:x`` of the model."""
    inner = name.split(":", 1)[1]
    for column, (term, unit) in TERMS.items():
        if inner == column:
            return term, "", unit
    category = inner.split(",")[0].removeprefix("C(")
    level = inner.split("[T.")[-1].rstrip("]")
    return category, level, f"ΔF1 of {level} vs the reference {category}"


def fit_model(data: pd.DataFrame, arm: str, condition: str, sparsity: float,
              correction: str = "holm") -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of one model (:data:`COLUMNS`) and notes on what it left out."""
    notes: list[str] = []
    key = {"arm": arm, "condition": condition, "sparsity": float(sparsity)}
    n_langs = int(data["lang"].nunique())
    if n_langs < MIN_LANGUAGES or data["sparse"].nunique() < 2:
        return [], [f"{arm} {condition} @{sparsity:g}: {n_langs} languages with tested comparisons; a covariate "
                    f"model needs ≥ {MIN_LANGUAGES}"]
    data, used, references = _design(data, notes)
    fitted = _fit(_formula(used, references), data, notes)
    where = f"{arm} {condition}"
    if fitted is None:
        return [], [f"{where}: {note}" for note in notes]
    result, random = fitted
    names = [n for n in result.fe_params.index if n.startswith("sparse:")]
    df = max(n_langs - (len(names) + 1), 1)
    rows = []
    for name in ["sparse", *names]:
        estimate, se = float(result.fe_params[name]), float(result.bse[name])
        half = float(scipy_stats.t.ppf(0.975, df)) * se
        term, level, unit = ("ΔF1 at the mean facts", "", "ΔF1") if name == "sparse" else _term(name)
        rows.append({**key, "term": term, "level": level, "unit": unit, "estimate": estimate, "se": se, "df": df,
                     "ci_low": estimate - half, "ci_high": estimate + half,
                     "p_value": float(2 * scipy_stats.t.sf(abs(estimate / se), df)) if se > 0 else math.nan,
                     "p_adjusted": math.nan, "n_langs": n_langs, "n_runs": int(len(data)),
                     "random_effects": random, "note": "; ".join(notes)})
    facts = [r for r in rows[1:] if np.isfinite(r["p_value"])]
    if facts:
        from statsmodels.stats.multitest import multipletests

        adjusted = multipletests([r["p_value"] for r in facts], method=correction_name(correction))[1]
        for r, p in zip(facts, adjusted):
            r["p_adjusted"] = float(p)
    return rows, [f"{where}: {note}" for note in notes]


def covariate_table(runs: pd.DataFrame, sig: pd.DataFrame, conditions: Sequence[str] | None = ("clean",),
                    correction: str = "holm", allow_unreplicated: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Every model of a sweep (one per arm × condition × sparsity of the significance table; ``conditions``:
    which, None for all): ``covariates.csv``'s rows and notes. ``runs``: each arm with its dense baseline at
    sparsity 0 (:func:`sparsenlp.analysis.sweep_comparison.baseline_runs`)."""
    rows, notes = [], []
    cells = sig[["arm", "condition", "sparsity"]].drop_duplicates().sort_values(["arm", "condition", "sparsity"])
    if conditions is not None:
        cells = cells[cells["condition"].isin(list(conditions))]
    for cell in cells.itertuples():
        data = model_table(runs, sig, cell.arm, cell.condition, cell.sparsity, allow_unreplicated)
        more, said = fit_model(data, cell.arm, cell.condition, cell.sparsity, correction)
        rows += more
        notes += said
    return pd.DataFrame(rows, columns=list(COLUMNS)), list(dict.fromkeys(notes))
