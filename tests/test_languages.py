"""The 40 PAN-X languages, their metadata and tiers, and `lang` resolution."""
from __future__ import annotations

import dataclasses

import pytest

from sparsenlp.data.wikiann import read_wikiann_file
from sparsenlp.errors import SparseNLPError
from tests.helpers import compose_settings

XTREME40 = "af ar bg bn de el en es et eu fa fi fr he hi hu id it ja jv ka kk ko ml mr ms my nl pt ru sw ta te th tl tr ur vi yo zh".split()


@pytest.fixture(scope="module")
def languages():
    return compose_settings(["languages=xtreme40"]).languages


def test_the_forty_pan_x_languages(languages):
    assert sorted(languages.langs) == sorted(XTREME40)
    for code in XTREME40:
        entry = languages.langs[code]
        assert entry.script and entry.family and entry.name and entry.train_size > 0


def test_train_sizes_match_the_data_files(languages, wikiann_root):
    for code in ("af", "jv", "kk", "et", "de"):
        assert len(read_wikiann_file(wikiann_root / code / "train", code)) == languages.langs[code].train_size


def test_tier_follows_the_configured_criterion(languages):
    assert languages.tier("de") == "high" and languages.tier("yo") == "low"
    # hand-listed from the data README: the languages with the full 20,000 training sentences (+ th)
    high = set("ar bg de el en es fa fi fr he hu id it ja ko ms nl pt ru th tr ur vi zh".split())
    assert {c for c in XTREME40 if languages.tier(c) == "high"} == high
    stricter = dataclasses.replace(languages, tier_min_train_sentences=30000)
    assert stricter.tier("de") == "low"


def test_script_and_family_neighbours(languages):
    assert "fa" in languages.sharing("ar", "script") and "ur" in languages.sharing("ar", "script")
    assert languages.sharing("ka", "script") == []
    assert {"fi", "hu"} <= set(languages.sharing("et", "family"))
    assert "et" not in languages.sharing("et", "family")
    assert languages.facts("hi").script == "Devanagari"


def test_local39_is_xtreme40_without_thai():
    local = compose_settings(["languages=local39", "lang=all"])
    assert local.train_langs == [c for c in XTREME40 if c != "th"]


def test_resolve_langs(languages):
    assert languages.resolve("de") == ["de"]
    assert languages.resolve(["de", "fr", "de"]) == ["de", "fr"]
    assert languages.resolve("all") == list(languages.langs)
    subset = dataclasses.replace(languages, subset=["de", "th", "yo"], exclude=["th"])
    assert subset.resolve("all") == ["de", "yo"]
    with pytest.raises(SparseNLPError, match="unknown language code 'xx'"):
        languages.resolve(["de", "xx"])
