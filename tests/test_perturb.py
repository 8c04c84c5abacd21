"""Perturbations: alignment, gold tags, determinism, severity 0, nesting, what each one may change in which
script (on real test sentences of ka, hi, my, zh, ar, en ... with mBERT's tokenizer), errors."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
import regex
from seqeval.metrics.sequence_labeling import get_entities
from tokenizers import normalizers

from sparsenlp.data.wikiann import Sentence, read_wikiann_file
from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.robustness import vocabulary_check
from sparsenlp.perturb import (
    PERTURBATIONS,
    EntityPool,
    NotApplicable,
    check,
    entity_forms,
    entity_types,
    get,
    letters_by_script,
    measure,
    perturb_dataset,
    perturb_sentence,
)

DATA = Path(__file__).resolve().parents[2] / "shared/data/wikiann"
LANGS = ("de", "vi", "el", "ru", "ar", "zh", "hi", "ka", "my", "en", "ja")
SCRIPT_LANGS = ("ka", "hi", "my", "zh", "ar", "en")  # the scripts the blind perturbations got wrong


def read(lang: str, split: str, n: int) -> list[Sentence]:
    """The first ``n`` sentences of a WikiANN split."""
    return read_wikiann_file(DATA / lang / split, lang, n)


@pytest.fixture(scope="module")
def test_sets() -> dict[str, list[Sentence]]:
    return {lang: read(lang, "test", 300) for lang in LANGS}


@pytest.fixture(scope="module")
def de_pool() -> EntityPool:
    return EntityPool.from_sentences(read("de", "train", 2000), lang="de", source="seen", languages=["de"])


def params_for(name: str, pool: EntityPool) -> dict:
    return {"pool": pool} if name == "entity_swap" else {}


def edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance (insert, delete, substitute each cost 1) by the textbook dynamic programme."""
    d = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(b) + 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
    return d[len(b)]


def graphemes(text: str) -> list[str]:
    return regex.findall(r"\X", text)


def script_letter(text: str) -> bool:
    """Whether ``text`` holds a letter of some script (not one common to several, like the Arabic tatweel)."""
    return bool(regex.search(r"(?=\p{L})\P{Script=Common}", text))


REGEX_SCRIPTS = ("Latin", "Georgian", "Devanagari", "Myanmar", "Han", "Arabic", "Hiragana", "Katakana", "Greek",
                 "Cyrillic", "Hangul", "Thai", "Hebrew")


def regex_scripts(text: str) -> set[str]:
    """The scripts of ``text``'s letters by the regex module's Script property (a table the code does not read)."""
    return {name for name in REGEX_SCRIPTS if regex.search(rf"(?=\p{{L}})\p{{Script={name}}}", text)}


def name_script(char: str) -> str:
    """The script a character's Unicode name starts with (LATIN, GEORGIAN, CJK, ...): a reference that does not
    use the Scripts table the code reads."""
    return unicodedata.name(char, "?").split()[0]


def valid_iob2(tags: tuple[str, ...]) -> bool:
    prev = "O"
    for t in tags:
        if t.startswith("I-") and prev[2:] != t[2:]:
            return False
        prev = t
    return True


# --- properties shared by every perturbation, on real sentences ------------------------------------

@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_severity_zero_is_identity(name, test_sets, de_pool):
    for sents in test_sets.values():
        for s, p in zip(sents, perturb_dataset(name, sents, 0.0, seed=3, **params_for(name, de_pool))):
            assert (p.tokens, p.tags) == (s.tokens, s.tags)
            assert p.kept in (None, tuple(range(len(s.tokens))))


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_same_seed_same_output_other_seed_differs(name, test_sets, de_pool):
    sents = test_sets["de"]
    a = perturb_dataset(name, sents, 0.5, seed=0, **params_for(name, de_pool))
    b = perturb_dataset(name, sents, 0.5, seed=0, **params_for(name, de_pool))
    c = perturb_dataset(name, sents, 0.5, seed=1, **params_for(name, de_pool))
    assert a == b
    assert a != c
    assert a != [type(a[0])(s.tokens, s.tags, a[i].kept) for i, s in enumerate(sents)]  # it did change something


@pytest.mark.parametrize("name", ["char_noise", "case", "strip_diacritics"])
def test_length_preserving_perturbations_keep_gold_tags(name, test_sets):
    for sents in test_sets.values():
        for s, p in zip(sents, perturb_dataset(name, sents, 1.0, seed=0)):
            assert p.tags == s.tags
            assert len(p.tokens) == len(s.tokens)
            assert all(p.tokens)


def test_sentence_is_seeded_by_its_index_not_its_neighbours(test_sets):
    sents = test_sets["vi"]
    full = perturb_dataset("char_noise", sents, 0.7, seed=5)
    assert perturb_sentence("char_noise", sents[17].tokens, sents[17].tags, 0.7, seed=5, index=17) == full[17]


def test_output_does_not_depend_on_python_hash_seed(test_sets):
    sents = test_sets["el"][:30]
    here = [list(p.tokens) for p in perturb_dataset("char_noise", sents, 1.0, seed=2)]
    code = (
        "import json,sys; from sparsenlp.perturb import perturb_sentence as p; "
        "d=json.load(sys.stdin); "
        "print(json.dumps([list(p('char_noise',t,g,1.0,seed=2,index=i).tokens) for i,(t,g) in enumerate(d)]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps([[s.tokens, s.tags] for s in sents]),
        capture_output=True, text=True, env=env, check=True,
    )
    assert json.loads(out.stdout) == here


@pytest.mark.parametrize("name", ["char_noise", "case", "strip_diacritics", "context_drop", "entity_swap"])
def test_what_changes_at_low_severity_changes_at_high(name, test_sets, de_pool):
    """Tokens (spans, drops) changed at a lower severity are changed at a higher one: the same way, except for
    char_noise, whose characters keep their edits while more characters of the word get one."""
    changed = 0
    for lang in ("de", "zh", "ka", "hi", "ru"):
        sents = test_sets[lang]
        low = perturb_dataset(name, sents, 0.3, seed=4, **params_for(name, de_pool))
        high = perturb_dataset(name, sents, 0.8, seed=4, **params_for(name, de_pool))
        for s, lo, hi in zip(sents, low, high):
            if name == "context_drop":
                assert set(hi.kept) <= set(lo.kept)
            elif name == "entity_swap":
                lo_new = {s_ for s_ in _spans(lo) if s_ not in _spans(Sentence(s.tokens, s.tags, lang))}
                assert lo_new <= _spans(hi)
            else:
                for t, a, b in zip(s.tokens, lo.tokens, hi.tokens):
                    if a != t:
                        changed += 1
                        assert b != t and (b == a or name == "char_noise"), (lang, t, a, b)
    assert changed or name in ("context_drop", "entity_swap")


def _spans(s) -> set[tuple[str, tuple[str, ...]]]:
    return {(t, tuple(s.tokens[i : j + 1])) for t, i, j in get_entities(list(s.tags))}


# --- scripts ----------------------------------------------------------------------------------------

def test_letters_are_counted_by_script_per_character(test_sets):
    """Against the regex module's own Script property, on test sets that mix scripts (Latin names in ka, zh)."""
    for lang, main in (("ka", "Georgian"), ("zh", "Han"), ("hi", "Devanagari"), ("my", "Myanmar"), ("ar", "Arabic")):
        words = [t for s in test_sets[lang] for t in s.tokens]
        counts = letters_by_script(words)
        text = "".join(words)
        for code, name in (("Latn", "Latin"), (max(counts, key=counts.get), main)):
            assert counts[code] == len(regex.findall(rf"(?=\p{{L}})\p{{Script={name}}}", text)), (lang, name)
        assert counts["Latn"] > 0  # every one of these test sets quotes Latin names


@pytest.mark.parametrize("lang, mode, reason", [
    ("ka", "upper", "script Georgian has no letter case"), ("hi", "lower", "script Devanagari has no letter case"),
    ("my", "upper", "script Myanmar has no letter case"), ("zh", "lower", "script Han has no letter case"),
    ("ar", "upper", "script Arabic has no letter case"), ("ja", "upper", "scripts Han, "),
])
def test_case_does_not_apply_to_caseless_scripts_whatever_their_latin_names(lang, mode, reason, test_sets):
    letters = letters_by_script(t for s in test_sets[lang] for t in s.tokens)
    assert reason in get("case").script_reason(letters)


@pytest.mark.parametrize("lang", ["en", "de", "el", "ru", "vi"])
def test_case_and_diacritics_apply_to_cased_scripts(lang, test_sets):
    letters = letters_by_script(t for s in test_sets[lang] for t in s.tokens)
    assert get("case").script_reason(letters) is None and get("strip_diacritics").script_reason(letters) is None
    assert get("char_noise").script_reason(letters) is None


# --- char_noise -------------------------------------------------------------------------------------

@pytest.mark.parametrize("severity", [0.1, 0.3])
def test_char_noise_edits_the_same_share_of_characters_in_every_script(severity, test_sets):
    """Severity is the share of letter-bearing characters (grapheme clusters) edited, in every script: counted
    here by an edit distance over each word's grapheme clusters, against the number of such characters."""
    shares = {}
    for lang in SCRIPT_LANGS:
        sents = test_sets[lang]
        edits = letters = 0
        for s, p in zip(sents, perturb_dataset("char_noise", sents, severity, seed=11)):
            for t, n in zip(s.tokens, p.tokens):
                before = graphemes(t)
                letters += sum(map(script_letter, before))
                edits += edit_distance(before, graphemes(n))
        shares[lang] = edits / letters
        assert abs(shares[lang] - severity) < 0.25 * severity, (lang, shares[lang])
    assert max(shares.values()) / min(shares.values()) < 1.25, shares


def test_char_noise_keeps_each_word_in_its_own_script_and_never_empties_it(test_sets):
    for lang in SCRIPT_LANGS + ("ja", "vi"):
        for s, p in zip(test_sets[lang], perturb_dataset("char_noise", test_sets[lang], 1.0, seed=9)):
            for t, n in zip(s.tokens, p.tokens):
                assert n
                if not script_letter(t):
                    assert n == t  # digits and punctuation are never edited
                    continue
                assert n != t
                assert regex_scripts(n) <= regex_scripts(t), (lang, t, n)


def test_char_noise_on_one_letter_words_never_empties():
    for seed in range(20):
        p = perturb_sentence("char_noise", ["a", "b", "7", "中"], ["O"] * 4, 1.0, seed=seed, index=0)
        assert all(len(t) >= 1 for t in p.tokens)
        assert p.tokens[0] != "a" and p.tokens[1] != "b" and p.tokens[2] == "7" and p.tokens[3] != "中"
        assert name_script(p.tokens[3][0]) == "CJK"  # a Han word alone in its script gets a Han letter


# --- case -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["lower", "upper"])
def test_case_at_full_severity_converts_every_ascii_token(mode, test_sets):
    for lang in ("en", "de", "vi"):
        for s, p in zip(test_sets[lang], perturb_dataset("case", test_sets[lang], 1.0, seed=0, mode=mode)):
            for t, n in zip(s.tokens, p.tokens):
                if t.isascii():
                    assert n == getattr(t, mode)()


@pytest.mark.parametrize("mode", ["lower", "upper"])
def test_case_maps_letters_one_to_one_and_never_makes_an_unk(mode, test_sets, mbert_tokenizer):
    """Every changed character maps back to the original, and no word gains an [UNK] under mBERT's tokenizer,
    counted directly with the tokenizer, word by word."""
    known = vocabulary_check(mbert_tokenizer)
    unk = mbert_tokenizer.unk_token_id
    back = str.upper if mode == "lower" else str.lower
    changed = 0
    for lang in ("en", "de", "el", "ru", "vi", "ka", "zh"):
        sents = test_sets[lang]
        for s, p in zip(sents, perturb_dataset("case", sents, 1.0, seed=0, mode=mode, known=known)):
            for t, n in zip(s.tokens, p.tokens):
                assert len(n) == len(t)
                if n == t:
                    continue
                changed += 1
                assert all(a == b or back(b) == a for a, b in zip(t, n)), (t, n)
                ids = [mbert_tokenizer(w, add_special_tokens=False)["input_ids"].count(unk) for w in (t, n)]
                assert ids[1] <= ids[0], (lang, t, n)
    assert changed > 1000


def test_upper_never_writes_georgian_mtavruli(test_sets, mbert_tokenizer):
    """Georgian is not a cased script here: its letters stay Mkhedruli, with or without the tokenizer check."""
    known = vocabulary_check(mbert_tokenizer)
    assert not known("Ა")  # mBERT reads Mtavruli as [UNK]
    for params in ({}, {"known": known}):
        for s, p in zip(test_sets["ka"], perturb_dataset("case", test_sets["ka"], 1.0, seed=0, mode="upper",
                                                         **params)):
            for t, n in zip(s.tokens, p.tokens):
                assert not any(0x1C90 <= ord(c) <= 0x1CBF for c in n)
                assert [c for c in n if name_script(c) == "GEORGIAN"] == [c for c in t if name_script(c) == "GEORGIAN"]


def test_case_leaves_letters_without_a_one_to_one_mapping():
    p = perturb_sentence("case", ["Straße", "İzmir", "Αθήνας"], ["O"] * 3, 1.0, seed=0, index=0, mode="upper")
    assert p.tokens == ("STRAßE", "İZMIR", "ΑΘΉΝΑς")  # ß -> SS, final ς -> Σ -> σ do not round-trip
    p = perturb_sentence("case", ["İzmir"], ["O"], 1.0, seed=0, index=0, mode="lower")
    assert p.tokens == ("İzmir",)  # İ lower-cases to two characters


def test_case_rejects_unknown_mode():
    with pytest.raises(SparseNLPError, match="mode='title'"):
        check("case", 0.5, mode="title")


# --- strip_diacritics -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, expected",
    [
        ("São Paulo", "Sao Paulo"),
        ("Zürich Łódź İstanbul", "Zurich Łodz Istanbul"),  # Ł is a letter of its own (no decomposition)
        ("Thành phố Hồ Chí Minh", "Thanh pho Ho Chi Minh"),  # Vietnamese: stacked marks all go
        ("Đà Nẵng", "Đa Nang"),  # Đ is a letter of its own (no decomposition), it stays
        ("Αθήνα Ελλάδα", "Αθηνα Ελλαδα"),  # Greek tonos
        ("Ἀθῆναι", "Αθηναι"),  # polytonic Greek: breathing and circumflex
        ("Ёлка Москва", "Елка Москва"),
        ("مُحَمَّد أحمد آمنة", "محمد أحمد آمنة"),  # harakat go; the hamza and madda that spell أ and آ stay
        ("שָׁלוֹם", "שלום"),  # Hebrew points
        ("दिल्ली ज़िला क़िला", "दिल्ली ज़िला क़िला"),  # Devanagari vowel signs, virama and nukta stay
        ("မြို့နယ် ရန်ကုန်", "မြို့နယ် ရန်ကုန်"),  # Myanmar vowel signs, medials, asat, dot below stay
        ("কলকাতা தமிழ்நாடு", "কলকাতা தமிழ்நாடு"),  # Bengali, Tamil
        ("ﬁnal ２０２０", "ﬁnal ２０２０"),  # compatibility forms are not diacritics
        ("서울 東京", "서울 東京"),  # Hangul and Han have no marks: unchanged
        ("\u0301 x\u0301", "\u0301 x"),  # a token of marks only keeps its form
    ],
)
def test_strip_diacritics_on_hand_checked_words(text, expected):
    tokens = text.split(" ")
    p = perturb_sentence("strip_diacritics", tokens, ["O"] * len(tokens), 1.0, seed=0, index=0)
    assert " ".join(p.tokens) == expected


def test_strip_diacritics_keeps_every_mark_of_the_abugidas_on_real_text():
    """No nonspacing or spacing mark of Devanagari, Myanmar, Bengali or Tamil is removed, counted by the marks'
    Unicode names."""
    compared = 0
    for lang, script in (("hi", "DEVANAGARI"), ("mr", "DEVANAGARI"), ("my", "MYANMAR"), ("bn", "BENGALI"),
                         ("ta", "TAMIL")):
        sents = read(lang, "test", 300)
        for s, p in zip(sents, perturb_dataset("strip_diacritics", sents, 1.0, seed=0)):
            for t, n in zip(s.tokens, p.tokens):
                marks = [[c for c in unicodedata.normalize("NFD", w)
                          if unicodedata.category(c).startswith("M") and name_script(c) == script] for w in (t, n)]
                assert marks[0] == marks[1], (lang, t, n)
                compared += bool(marks[0])
    assert compared > 1000


def test_strip_diacritics_matches_the_tokenizers_library_on_latin_greek_cyrillic(test_sets):
    """HF tokenizers' NFKD + StripAccents + NFC is the reference where it has the same scope: tokens of Latin,
    Greek or Cyrillic letters without compatibility characters (which we leave alone)."""
    ref = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(), normalizers.NFC()])
    compared = changed = 0
    for lang in ("de", "vi", "el", "ru"):
        sents = test_sets[lang]
        for s, p in zip(sents, perturb_dataset("strip_diacritics", sents, 1.0, seed=0)):
            for t, n in zip(s.tokens, p.tokens):
                if unicodedata.normalize("NFKD", t) != unicodedata.normalize("NFD", t):
                    continue
                if not all(name_script(c) in ("LATIN", "GREEK", "CYRILLIC", "COMBINING") for c in
                           unicodedata.normalize("NFD", t) if not c.isascii()):
                    continue
                compared += 1
                changed += n != t
                assert n == ref.normalize_str(t), (lang, t)
    assert compared > 3000 and changed > 300


# --- context_drop -----------------------------------------------------------------------------------

def test_context_drop_removes_only_o_tokens_and_reports_kept_indices(test_sets):
    for sents in test_sets.values():
        for s, p in zip(sents, perturb_dataset("context_drop", sents, 0.6, seed=1)):
            assert list(p.kept) == sorted(set(p.kept)) and p.kept
            assert p.tokens == tuple(s.tokens[i] for i in p.kept)
            assert p.tags == tuple(s.tags[i] for i in p.kept)
            dropped = set(range(len(s.tokens))) - set(p.kept)
            assert all(s.tags[i] == "O" for i in dropped)


def test_context_drop_at_full_severity_keeps_entities_or_one_token():
    tokens, tags = ["Er", "wohnt", "in", "Köln", "."], ["O", "O", "O", "B-LOC", "O"]
    p = perturb_sentence("context_drop", tokens, tags, 1.0, seed=0, index=0)
    assert p.tokens == ("Köln",) and p.tags == ("B-LOC",) and p.kept == (3,)
    for seed in range(10):
        q = perturb_sentence("context_drop", ["a", "b", "c"], ["O"] * 3, 1.0, seed=seed, index=0)
        assert len(q.tokens) == 1 and q.tokens[0] == "abc"[q.kept[0]]


# --- entity_swap ------------------------------------------------------------------------------------

def test_unseen_style_pool_leaves_out_every_excluded_form_and_counts_them():
    train, test = read("ru", "train", 1500), read("ru", "test", 1000)
    seen = entity_forms(train)
    pool = EntityPool.from_sentences(test, lang="ru", source="unseen", languages=["ru"], split="test", exclude=seen)
    held_out = entity_forms(test)
    forms = {f for fs in pool.entities.values() for f in fs}
    assert forms == held_out - seen and forms  # by set algebra over an independent read of the spans
    assert pool.excluded == len(seen & held_out) > 0  # the exclusion is not vacuous: test shares names with train
    assert sum(pool.sizes().values()) == sum(len(fs) for fs in pool.entities.values())


def test_entity_swap_replaces_every_span_with_a_pool_entity_of_its_type_never_its_own(test_sets):
    pool = EntityPool.from_sentences([s for lang in ("bg", "kk") for s in read(lang, "test", 1500)], lang="ru",
                                     source="script", languages=["bg", "kk"], split="test")
    sents = test_sets["ru"]
    pool.validate(entity_types(sents))
    for s, p in zip(sents, perturb_dataset("entity_swap", sents, 1.0, seed=0, pool=pool)):
        assert len(p.tokens) == len(p.tags) and valid_iob2(p.tags)
        old, new = get_entities(list(s.tags)), get_entities(list(p.tags))
        own = {tuple(s.tokens[i : j + 1]) for _, i, j in old}
        assert [t for t, _, _ in new] == [t for t, _, _ in old]
        for (etype, i, j), (_, a, b) in zip(old, new):
            entity = tuple(p.tokens[a : b + 1])
            assert entity in pool.entities[etype] and entity not in own
        outside_old = [(w, g) for w, g in zip(s.tokens, s.tags) if g == "O"]
        outside_new = [(w, g) for w, g in zip(p.tokens, p.tags) if g == "O"]
        assert outside_new == outside_old


def test_a_draw_is_uniform_over_the_pool_without_the_sentences_own_forms():
    forms = [(f"N{i}",) for i in range(10)]
    pool = EntityPool("xx", "unseen", ["xx"], {"PER": forms}, split="test")
    own = {("N0",), ("N3",), ("N4",), ("N9",), ("Other",)}
    allowed = [f for f in forms if f not in own]  # the reference: the k-th form that is not the sentence's own
    draws = [pool.draw("PER", own, (k + 0.5) / len(allowed)) for k in range(len(allowed))]
    assert draws == allowed
    assert pool.draw("PER", set(forms), 0.3) is None


def test_a_sentence_never_gets_its_own_names_back():
    pool = EntityPool("xx", "unseen", ["xx"], {"LOC": [("Rom",), ("Paris",)]}, split="test")
    for seed in range(10):
        p = perturb_sentence("entity_swap", ["Rom", "und", "Paris"], ["B-LOC", "O", "B-LOC"], 1.0, seed=seed,
                             index=0, pool=pool)
        assert p.tokens == ("Rom", "und", "Paris")


def test_entity_swap_handles_different_span_lengths_by_hand():
    pool = EntityPool("xx", "seen", ["xx"], {"PER": [("Ada", "King", "Lovelace")], "LOC": [("Rom",)]})
    p = perturb_sentence(
        "entity_swap", ["Bob", "in", "Neu", "York"], ["B-PER", "O", "B-LOC", "I-LOC"], 1.0, seed=0, index=0, pool=pool
    )
    assert p.tokens == ("Ada", "King", "Lovelace", "in", "Rom")
    assert p.tags == ("B-PER", "I-PER", "I-PER", "O", "B-LOC")


def test_entity_swap_keeps_a_span_whose_only_pool_form_is_itself():
    pool = EntityPool("xx", "seen", ["xx"], {"LOC": [("Rom",)]})
    p = perturb_sentence("entity_swap", ["in", "Rom"], ["O", "B-LOC"], 1.0, seed=0, index=0, pool=pool)
    assert p.tokens == ("in", "Rom") and p.tags == ("O", "B-LOC")


def test_pool_missing_a_test_type_is_an_error_naming_language_and_type():
    only_per = [Sentence(("Anna", "lacht"), ("B-PER", "O"), "xx")]
    pool = EntityPool.from_sentences(only_per, lang="sw", source="family", languages=["xx"])
    with pytest.raises(NotApplicable, match=r"lang=sw.*LOC, ORG"):
        pool.validate({"PER", "LOC", "ORG"})
    with pytest.raises(SparseNLPError, match=r"lang=sw.*LOC"):
        perturb_sentence("entity_swap", ["in", "Rom"], ["O", "B-LOC"], 1.0, seed=0, index=0, pool=pool)


def test_entity_swap_without_pool_is_an_error():
    with pytest.raises(SparseNLPError, match="pool="):
        check("entity_swap", 0.5)


# --- registry errors --------------------------------------------------------------------------------

def test_unknown_name_lists_known_names():
    with pytest.raises(SparseNLPError, match="unknown perturbation 'typo'.*case, char_noise, context_drop"):
        check("typo", 0.1)


@pytest.mark.parametrize("severity", [-0.1, 1.5, math.nan, "high", True])
def test_bad_severity_is_an_error(severity):
    with pytest.raises(SparseNLPError, match="severity"):
        perturb_sentence("case", ["a"], ["O"], severity, seed=0, index=0)


def test_unknown_parameter_and_bad_seed_are_errors():
    with pytest.raises(SparseNLPError, match="bad parameters"):
        check("char_noise", 0.5, rate=0.2)
    with pytest.raises(SparseNLPError, match="non-negative"):
        perturb_sentence("case", ["a"], ["O"], 0.5, seed=-1, index=0)


# --- measured strength ------------------------------------------------------------------------------

def test_strength_on_a_hand_computed_example():
    clean = [("Sa\u0303o", "Paulo"), ("Bob",), ("中", "国")]  # ã written with a combining tilde: one character
    perturbed = [("Sao", "Paulo"), ("Bob",), ("中",)]
    strength = measure(clean, perturbed, [[1, 2, 3], [4], [5, 6]], [[7, 2, 3], [4], [100]], unk_id=100)
    assert strength.sentences_changed == pytest.approx(2 / 3)
    assert strength.characters_changed == pytest.approx(2 / 13)  # ã -> a, 国 dropped; 8 + 3 + 2 characters
    assert strength.subwords_changed == pytest.approx(3 / 6)  # 1 -> 7; [5, 6] -> [100]
    assert strength.unk_before == 0 and strength.unk_after == pytest.approx(1 / 5)
