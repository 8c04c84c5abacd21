"""The strength table of a sweep: per language next to the gap, spread across languages, and its flags."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from sparsenlp.analysis import collect, strength
from tests.records import STRENGTH, make_record


def _rows(condition: str, chars: dict[str, float]) -> list[dict]:
    return [{"model": "mbert", "regime": "per_language", "training": strength.OWN, "condition": condition,
             "lang": lang, "characters_changed": c, "subwords_changed": 2 * c, "dense_gap_ratio": 0.1}
            for lang, c in chars.items()]


def test_spread_flags_conditions_whose_dose_differs_across_languages_by_hand():
    frame = pd.DataFrame(_rows("char_noise@0.1", {"en": 0.09, "zh": 0.08, "hi": 0.085})
                         + _rows("char_noise_word@0.1", {"en": 0.1, "de": 0.1, "zh": 0.1, "ja": 0.5}))
    spread = strength.spread_table(frame).set_index("condition")
    even, uneven = spread.loc["char_noise@0.1"], spread.loc["char_noise_word@0.1"]
    # 10th / 90th percentile by linear interpolation, by hand: sorted 0.08 0.085 0.09 -> 0.081 and 0.089
    assert even["characters_changed_p10"] == pytest.approx(0.081)
    assert even["characters_changed_p90"] == pytest.approx(0.089)
    assert even["characters_changed_ratio"] == pytest.approx(0.089 / 0.081) and even["flagged"] == ""
    # sorted 0.1 0.1 0.1 0.5: the 90th percentile sits 0.7 of the way from 0.1 to 0.5
    assert uneven["characters_changed_p90"] == pytest.approx(0.38)
    assert uneven["flagged"] == "characters, subwords" and uneven["languages"] == 4


def test_one_language_has_no_spread_and_a_zero_dose_is_an_infinite_one():
    assert strength._ratio(0.0, 0.2) == math.inf and math.isnan(strength._ratio(0.0, 0.0))
    spread = strength.spread_table(pd.DataFrame(_rows("lower@1", {"en": 0.1})))
    assert math.isnan(spread.loc[0, "characters_changed_ratio"]) and spread.loc[0, "flagged"] == ""


def test_strength_reaches_the_tidy_table_and_the_report_from_records():
    record = make_record()
    loaded = [(Path("run"), record)]
    table = collect.table_from_records(loaded)
    noisy = table[table["condition"] == "char_noise@0.1"]
    assert (noisy[list(collect.STRENGTH)] == pd.Series(STRENGTH)).all(axis=None)
    assert table[table["condition"] == "clean"][list(collect.STRENGTH)].isna().all(axis=None)
    assert "lower@1" not in set(table["condition"])  # not applicable: no row, never a gap of 0
    rows, page = strength.report(table, loaded)
    measured = rows[rows["condition"] == "char_noise@0.1"].set_index("lang")
    assert measured.loc["de", "characters_changed"] == STRENGTH["characters_changed"]
    assert measured.loc["de", "training"] == "de+af"  # joint runs: a cell of their own training languages
    missing = rows[rows["condition"] == "lower@1"]
    assert missing["reason"].tolist() == ["case: script X has no letter case"] and missing["lang"].tolist() == ["de"]
    assert "## Perturbation strength" in page and "### Not applicable" in page
    assert "case: script X has no letter case" in page


@pytest.mark.parametrize("reason, short", [
    ("case: script Georgian has no letter case (94% of the test letters; it applies to Latin, which hold 6%)",
     "case: script Georgian has no letter case"),
    ("entity_swap (script pool): no other language shares script='Georgian' with lang=ka",
     "entity_swap (script pool): no other language shares script='Georgian' with lang=ka"),
    ("strip_diacritics: changes 2.5% of the test sentences, under perturbation.min_changed=0.05",
     "strip_diacritics: changes too few of the test sentences, under perturbation.min_changed=0.05"),
])
def test_reasons_group_across_languages_without_their_numbers(reason, short):
    assert strength._short(reason) == short
