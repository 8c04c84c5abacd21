"""Reading WikiANN files: real data checked by hand, the original 'lang:' form, and bad input."""
from __future__ import annotations

import pytest

from sparsenlp.data.wikiann import LABELS, load_split, read_wikiann_file
from sparsenlp.errors import SparseNLPError


def test_first_english_training_sentence_matches_the_file(wikiann_root):
    sentences = read_wikiann_file(wikiann_root / "en" / "train", "en", limit=2)
    first = sentences[0]
    assert first.tokens == ("R.H.", "Saunders", "(", "St.", "Lawrence", "River", ")", "(", "968", "MW", ")")
    assert first.tags == ("B-ORG", "I-ORG", "O", "B-ORG", "I-ORG", "I-ORG", "O", "O", "O", "O", "O")
    assert first.lang == "en" and len(sentences) == 2


def test_german_test_sentences_and_counts(wikiann_root):
    sentences = read_wikiann_file(wikiann_root / "de" / "test", "de")
    assert len(sentences) == 10000  # published split size (README of the data)
    assert sentences[1].tokens == ("Katja", "Kipping", ",", "Bernd", "Riexinger")
    assert sentences[1].tags == ("B-PER", "I-PER", "O", "B-PER", "I-PER")
    assert sum(len(s.tokens) for s in sentences) == 97646  # token count from the data README


def test_all_tags_are_known_labels(wikiann_root):
    tags = {t for s in read_wikiann_file(wikiann_root / "sw" / "train", "sw") for t in s.tags}
    assert tags <= set(LABELS) and "B-PER" in tags


def test_original_prefixed_format_is_read(tmp_path):
    path = tmp_path / "train"
    path.write_text("en:London\tB-LOC\nen:calling\tO\n\nen:en:x\tO\n", encoding="utf-8")
    sentences = read_wikiann_file(path, "en")
    assert [s.tokens for s in sentences] == [("London", "calling"), ("en:x",)]


def test_last_sentence_without_trailing_blank_line(tmp_path):
    path = tmp_path / "dev"
    path.write_text("a\tO\n\nb\tB-PER\nc\tI-PER", encoding="utf-8")
    assert [s.tags for s in read_wikiann_file(path, "xx")] == [("O",), ("B-PER", "I-PER")]


@pytest.mark.parametrize("bad_line", ["Paris B-LOC", "Paris\tB-CITY", "\tO", "a\tO\tO"])
def test_malformed_line_names_file_and_line(tmp_path, bad_line):
    path = tmp_path / "train"
    path.write_text(f"ok\tO\n\nfine\tB-PER\n{bad_line}\n", encoding="utf-8")
    with pytest.raises(SparseNLPError, match=rf"malformed line 4 in {path}"):
        read_wikiann_file(path, "en")


def test_missing_prefix_in_prefixed_file_is_malformed(tmp_path):
    path = tmp_path / "train"
    path.write_text("en:a\tO\nb\tO\n", encoding="utf-8")
    with pytest.raises(SparseNLPError, match="line 2"):
        read_wikiann_file(path, "en")


def test_missing_language_folder_and_root(wikiann_root, tmp_path):
    with pytest.raises(SparseNLPError, match="no WikiANN folder for language 'th'"):
        load_split("local", wikiann_root, "th", "train")
    with pytest.raises(SparseNLPError, match="does not exist"):
        load_split("local", tmp_path / "nowhere", "en", "train")
    (tmp_path / "en").mkdir()
    with pytest.raises(SparseNLPError, match="split not found"):
        load_split("local", tmp_path, "en", "dev")


def test_hub_unreachable_says_how_to_work_offline(tmp_path):
    # conftest sets HF_HUB_OFFLINE / HF_DATASETS_OFFLINE, as on a machine without network
    with pytest.raises(SparseNLPError, match="data.source=local data.root="):
        load_split("hub", None, "yo", "test", cache_dir=str(tmp_path))
