"""The 40 PAN-X languages, their metadata and tiers, and `lang` resolution."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from sparsenlp.data.languages import info, resolve_langs, same_family, same_script, tier
from sparsenlp.data.wikiann import read_wikiann_file
from sparsenlp.errors import SparseNLPError
from tests.conftest import REPO

XTREME40 = "af ar bg bn de el en es et eu fa fi fr he hi hu id it ja jv ka kk ko ml mr ms my nl pt ru sw ta te th tl tr ur vi yo zh".split()


@pytest.fixture(scope="module")
def languages():
    return OmegaConf.load(REPO / "conf" / "languages" / "xtreme40.yaml")


def test_the_forty_pan_x_languages(languages):
    assert sorted(languages.langs) == sorted(XTREME40)
    for code in XTREME40:
        entry = languages.langs[code]
        assert entry.script and entry.family and entry.name and entry.train_size > 0


def test_train_sizes_match_the_data_files(languages, wikiann_root):
    for code in ("af", "jv", "kk", "et", "de"):
        assert len(read_wikiann_file(wikiann_root / code / "train", code)) == languages.langs[code].train_size


def test_tier_follows_the_configured_criterion(languages):
    assert tier(languages, "de") == "high" and tier(languages, "yo") == "low"
    # hand-listed from the data README: the languages with the full 20,000 training sentences (+ th)
    high = set("ar bg de el en es fa fi fr he hu id it ja ko ms nl pt ru th tr ur vi zh".split())
    assert {c for c in XTREME40 if tier(languages, c) == "high"} == high
    stricter = OmegaConf.merge(languages, {"tier_min_train_sentences": 30000})
    assert tier(stricter, "de") == "low"


def test_script_and_family_neighbours(languages):
    assert "fa" in same_script(languages, "ar") and "ur" in same_script(languages, "ar")
    assert same_script(languages, "ka") == []
    assert {"fi", "hu"} <= set(same_family(languages, "et"))
    assert info(languages, "hi").script == "Devanagari"


def test_resolve_langs(languages):
    assert resolve_langs("de", languages) == ["de"]
    assert resolve_langs(["de", "fr", "de"], languages) == ["de", "fr"]
    assert resolve_langs("all", languages) == list(languages.langs)
    subset = OmegaConf.merge(languages, {"subset": ["de", "th", "yo"], "exclude": ["th"]})
    assert resolve_langs("all", subset) == ["de", "yo"]
    with pytest.raises(SparseNLPError, match="unknown language code 'xx'"):
        resolve_langs(["de", "xx"], languages)
