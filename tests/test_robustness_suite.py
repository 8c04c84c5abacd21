"""The robustness suite on real WikiANN data and mBERT's tokenizer: which conditions apply to which language,
their measured strength, and entity pools that never hold a name the run trained or selected on."""
from __future__ import annotations

import pytest
from seqeval.metrics.sequence_labeling import get_entities

from sparsenlp.data.datamodule import load_sentences
from sparsenlp.data.wikiann import read_wikiann_file
from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.robustness import RobustnessSuite
from tests.helpers import compose_settings

LIMITS = ["data.train_limit=2000", "data.dev_limit=500", "data.test_limit=400"]


def prepared(wikiann_root, tokenizer, overrides: list[str]) -> tuple[RobustnessSuite, object, object]:
    s = compose_settings([f"data.root={wikiann_root}", "perturbation=suite", *LIMITS, *overrides])
    data = load_sentences(s.data, s.train_langs, s.eval_langs)
    suite = RobustnessSuite(s.perturbation, s.eval_langs)
    suite.prepare(data, s.data, s.languages, tokenizer)
    return suite, data, s


def forms(root, lang: str, split: str, limit: int) -> set[tuple[str, ...]]:
    """Entity surface forms read straight from a file (independent of the code under test)."""
    return {tuple(s.tokens[i : j + 1]) for s in read_wikiann_file(root / lang / split, lang, limit)
            for _, i, j in get_entities(list(s.tags))}


def pool_forms(pool) -> set[tuple[str, ...]]:
    return {f for fs in pool.entities.values() for f in fs}


@pytest.fixture(scope="module")
def scripts_run(wikiann_root, mbert_tokenizer):
    """Trained on English, scored on the six scripts the blind perturbations got wrong."""
    return prepared(wikiann_root, mbert_tokenizer, ["lang=en", "eval_lang=[ka,hi,my,zh,ar,en]"])


def test_conditions_that_cannot_change_a_script_are_not_applicable_with_a_reason(scripts_run):
    suite, _, _ = scripts_run
    na = suite.not_applicable
    for lang, script in (("ka", "Georgian"), ("hi", "Devanagari"), ("my", "Myanmar"), ("zh", "Han"),
                         ("ar", "Arabic")):
        for cond in ("lower@1", "upper@1"):
            assert na[lang][cond].startswith(f"case: script {script} has no letter case"), na[lang][cond]
            assert cond not in suite.strength[lang]
    for lang in ("ka", "hi", "my", "zh"):
        assert "has no optional marks" in na[lang]["strip_diacritics@1"]
    # Arabic has optional marks (harakat), but its Wikipedia text rarely writes them: too few sentences change
    assert "of the test sentences, under perturbation.min_changed=0.05" in na["ar"]["strip_diacritics@1"]
    assert {"lower@1", "upper@1", "strip_diacritics@1"} <= set(suite.strength["en"])
    assert "en" not in na or not {"lower@1", "upper@1"} & set(na["en"])
    for lang in ("ka", "hi", "my", "zh", "ar", "en"):  # every condition is either measured or not applicable
        assert not set(suite.strength[lang]) & set(na.get(lang, {}))
        assert {"char_noise@0.1", "char_noise@0.3", "context_drop@0.2", "swap_unseen@1"} <= set(suite.strength[lang])
    for lang in ("ka", "hi", "my", "zh", "ar"):  # zero-shot: nothing of theirs was trained on
        assert "not a training language of this run" in na[lang]["swap_seen@1"]
    assert "no other language shares script='Georgian'" in na["ka"]["swap_script@1"]


def test_char_noise_strength_is_the_same_share_of_characters_in_every_script(scripts_run):
    suite, _, _ = scripts_run
    for severity in (0.1, 0.3):
        chars = {lang: suite.strength[lang][f"char_noise@{severity:g}"].characters_changed
                 for lang in ("ka", "hi", "my", "zh", "ar", "en")}
        # characters that hold a letter are edited at rate `severity`; digits and punctuation are not
        assert all(0.6 * severity < c <= 1.05 * severity for c in chars.values()), chars
        assert max(chars.values()) / min(chars.values()) < 1.4, chars


def test_unk_rates_are_those_of_the_tokenizer(scripts_run, mbert_tokenizer):
    """[UNK] rate before perturbation, counted directly with the tokenizer on the test words."""
    suite, data, _ = scripts_run
    unk = mbert_tokenizer.unk_token_id
    for lang in ("ka", "zh", "en"):
        ids = mbert_tokenizer([list(s.tokens) for s in data.test[lang].sentences], is_split_into_words=True,
                              add_special_tokens=False)["input_ids"]
        total = sum(map(len, ids))
        empty = sum(not mbert_tokenizer(w, add_special_tokens=False)["input_ids"]
                    for s in data.test[lang].sentences for w in s.tokens)  # the model reads [UNK] for these
        expected = (sum(x.count(unk) for x in ids) + empty) / (total + empty)
        for strength in suite.strength[lang].values():
            assert strength.unk_before == pytest.approx(expected)
    en = suite.strength["en"]
    assert en["upper@1"].unk_after <= en["upper@1"].unk_before  # case never creates an [UNK]


def _run_forms(root, langs, train_limit=2000, dev_limit=500) -> set[tuple[str, ...]]:
    return set().union(*(forms(root, lang, split, limit) for lang in langs
                         for split, limit in (("train", train_limit), ("dev", dev_limit))))


@pytest.mark.parametrize("overrides, train_langs", [
    (["lang=ru"], ["ru"]),
    (["lang=[ru,bg,kk]"], ["ru", "bg", "kk"]),
    (["lang=en", "eval_lang=[ru,de]"], ["en"]),
])
def test_no_pool_but_seen_holds_a_name_the_run_trained_or_selected_on(wikiann_root, mbert_tokenizer, overrides,
                                                                      train_langs):
    suite, data, _ = prepared(wikiann_root, mbert_tokenizer, overrides)
    used = _run_forms(wikiann_root, train_langs)
    checked = excluded = 0
    for lang, pools in suite.pools.items():
        test_forms = forms(wikiann_root, lang, "test", 400)
        for label, pool in pools.items():
            held = pool_forms(pool)
            if pool.source == "seen":
                assert held <= used and pool.split == "train" and pool.languages == (lang,)
                continue
            assert held and not held & used, (lang, label)  # checked against an independent read of the files
            checked += 1
            excluded += pool.excluded
            if pool.source == "unseen":
                assert held <= test_forms and pool.split == "test"  # never the dev set, which selects the model
            else:
                assert pool.split == "test" and lang not in pool.languages
    assert checked >= 3 and excluded > 0  # the exclusion removed names that were really there
    report = suite.pool_report()
    for lang, pools in suite.pools.items():
        for label, pool in pools.items():
            entry = report[lang][label]
            assert entry["sizes"] == {t: len(f) for t, f in sorted(pool.entities.items())}
            assert entry["training_data"] == (pool.source == "seen")


def test_script_pools_mean_the_same_in_both_regimes(wikiann_root, mbert_tokenizer):
    """ru's script pool is the test sets of the other Cyrillic languages in both regimes; joint training only
    removes more names (its own training names), it never changes where the pool comes from."""
    single, _, _ = prepared(wikiann_root, mbert_tokenizer, ["lang=ru"])
    joint, _, _ = prepared(wikiann_root, mbert_tokenizer, ["lang=[ru,bg,kk]"])
    a, b = single.pools["ru"]["swap_script"], joint.pools["ru"]["swap_script"]
    assert a.languages == b.languages == ("bg", "kk") and a.split == b.split == "test"
    assert pool_forms(b) < pool_forms(a)
    assert pool_forms(a) - pool_forms(b) <= _run_forms(wikiann_root, ["bg", "kk"])


def test_a_required_member_that_cannot_apply_stops_before_training(wikiann_root, mbert_tokenizer):
    with pytest.raises(SparseNLPError, match=r"perturbation.members.upper does not apply to lang=hi: case: script "
                                             r"Devanagari has no letter case.*required: false"):
        prepared(wikiann_root, mbert_tokenizer, ["lang=hi", "+perturbation.members.upper.required=true"])
