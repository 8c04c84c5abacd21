"""End to end: a real tiny model trained on real WikiANN data learns NER, and its record is complete."""
from __future__ import annotations

import json
from collections import Counter

import jsonschema
import pytest

from sparsenlp.data.wikiann import read_wikiann_file
from sparsenlp.evaluation.metrics import ner_metrics
from sparsenlp.io import read_jsonl
from sparsenlp.tracking import records
from sparsenlp.tracking.schema import SCHEMA_PATH, RunRecord
from sparsenlp.train import run
from tests.helpers import compose_run


def _memorisation_baseline(wikiann_root, lang: str, train_limit: int, test_limit: int) -> tuple[float, float]:
    """F1 of two classic baselines: all-O (majority class) and 'most frequent training tag per token'."""
    train = read_wikiann_file(wikiann_root / lang / "train", lang, train_limit)
    test = read_wikiann_file(wikiann_root / lang / "test", lang, test_limit)
    counts: dict[str, Counter] = {}
    for s in train:
        for tok, tag in zip(s.tokens, s.tags):
            counts.setdefault(tok, Counter())[tag] += 1
    gold = [list(s.tags) for s in test]
    majority = ner_metrics(gold, [["O"] * len(s.tokens) for s in test]).f1
    memo = [[counts[t].most_common(1)[0][0] if t in counts else "O" for t in s.tokens] for s in test]
    return majority, ner_metrics(gold, memo).f1


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_overrides):
    out = tmp_path_factory.mktemp("tiny-run")
    overrides = [*tiny_overrides, "lang=de", "data.train_limit=3000", "data.dev_limit=300", "data.test_limit=500",
                 "trainer.max_steps=300", "trainer.batch_size=32", "trainer.eval_every=100", "seed=3"]
    record = run(compose_run(overrides, out))
    return out, record


@pytest.mark.slow
def test_tiny_model_learns_ner_well_above_baselines(tiny_run, wikiann_root):
    _, record = tiny_run
    majority, memorisation = _memorisation_baseline(wikiann_root, "de", 3000, 500)
    f1 = record.test["de"]["clean"].f1
    # measured on this config (seed 3): test F1 0.32; the all-O baseline is 0.0 and the per-token
    # memorisation baseline 0.16 (most test names are unseen in 3,000 sentences); require a clear margin.
    assert majority == 0.0
    assert f1 > memorisation + 0.1, (f1, memorisation)
    assert record.training.steps == 300
    assert [e.step for e in record.training.dev_history] == [100, 200, 300]


@pytest.mark.slow
def test_record_validates_and_predictions_cover_every_word(tiny_run, wikiann_root):
    out, record = tiny_run
    on_disk = json.loads((out / records.RESULTS).read_text())
    jsonschema.validate(on_disk, json.loads(SCHEMA_PATH.read_text()))  # the generated schema file accepts it
    assert RunRecord.model_validate(on_disk) == record
    assert on_disk["config"]["lang"] == "de" and on_disk["config"]["seed"] == 3
    assert on_disk["arm"] == {"model": "tiny", "regime": "per_language", "train_langs": ["de"], "method": "dense",
                              "criterion": "none", "scope": "none", "structure": None, "schedule": "none",
                              "sparsity": 0.0, "embedding_sparsity": 0.0, "quantization": "none",
                              "calibration": None, "recovery_steps": 0, "selection": "best@0.7",
                              "length": "max_steps=300", "seed": 3}
    assert on_disk["languages"]["de"]["tier"] == "high" and on_disk["languages"]["de"]["transfer"] is False
    assert on_disk["data"]["test_sentences"] == {"de": 500}
    rows = read_jsonl(out / "predictions" / "test.jsonl")
    test = read_wikiann_file(wikiann_root / "de" / "test", "de", 500)
    assert [r["tokens"] for r in rows] == [list(s.tokens) for s in test]
    assert all(len(r["pred"]) == len(r["tokens"]) == len(r["gold"]) for r in rows)
    # the recorded F1 is exactly seqeval's on the stored predictions
    recomputed = ner_metrics([r["gold"] for r in rows], [r["pred"] for r in rows])
    assert recomputed.f1 == pytest.approx(on_disk["test"]["de"]["clean"]["f1"])
    assert not (out / "checkpoints" / "last.pt").exists()


@pytest.mark.slow
def test_language_list_trains_one_model_and_scores_each_test_set(tmp_path, tiny_overrides):
    record = run(compose_run([*tiny_overrides, "lang=[sw,yo]", "trainer.max_steps=6", "trainer.eval_every=3"],
                             tmp_path))
    assert record.run.eval_langs == ["sw", "yo"] == record.arm.train_langs
    assert record.arm.regime == "joint" and record.arm.label() == "dense"
    assert record.data.train_sentences == 400 + 100  # train_limit=400 per language; yo has only 100
    assert record.data.train_sentences_per_lang == {"sw": 400, "yo": 100}
    assert sorted(record.test) == ["sw", "yo"] and record.data.test_sentences == {"sw": 100, "yo": 100}
    rows = read_jsonl(tmp_path / "predictions" / "test.jsonl")
    for lang in ("sw", "yo"):
        mine = [r for r in rows if r["lang"] == lang]
        assert ner_metrics([r["gold"] for r in mine], [r["pred"] for r in mine]).f1 == pytest.approx(
            record.test[lang]["clean"].f1)
        assert record.languages[lang].transfer is False


@pytest.mark.slow
def test_suite_run_scores_every_member_and_severity(tmp_path, tiny_overrides):
    from omegaconf import OmegaConf

    from sparsenlp.analysis.sweep_report import Options, analyse

    cfg = compose_run([*tiny_overrides, "lang=de", "perturbation=suite", "trainer.max_steps=6",
                       "trainer.eval_every=6"], tmp_path)
    record = run(cfg)
    members = OmegaConf.to_container(cfg.perturbation.members)
    expected = {f"{label}@{s:g}" for label, m in members.items() for s in m["severities"]}
    assert {"swap_seen@1", "swap_unseen@1"} <= expected
    assert set(record.test["de"]) == expected | {"clean"}  # German: every condition applies
    assert set(record.robustness["de"]) == expected and record.robustness_not_applicable == {}
    pools = record.entity_pools["de"]
    assert set(pools) == {"swap_seen", "swap_unseen", "swap_script", "swap_family"}
    assert pools["swap_seen"].training_data and pools["swap_seen"].split == "train"
    assert all(not p.training_data and p.split == "test" and sum(p.sizes.values()) > 0 for label, p in pools.items()
               if label != "swap_seen")
    assert "de" not in pools["swap_script"].languages and "en" in pools["swap_script"].languages
    facts = record.data.facts["de"]
    assert (facts.train_sentences, facts.dev_sentences, facts.test_sentences) == (400, 100, 100)
    for condition, gap in record.robustness["de"].items():
        assert gap.strength.sentences_changed >= 0.05 and gap.strength.characters_changed > 0
        f1 = record.test["de"][condition].f1
        assert gap.f1 == f1 and gap.gap == pytest.approx(record.test["de"]["clean"].f1 - f1)
        rows = read_jsonl(tmp_path / "predictions" / f"test.{condition}.jsonl")
        assert len(rows) == 100
        assert ner_metrics([r["gold"] for r in rows], [r["pred"] for r in rows]).f1 == pytest.approx(f1)
    dropped = read_jsonl(tmp_path / "predictions" / "test.context_drop@0.2.jsonl")
    assert all(len(r["kept"]) == len(r["tokens"]) for r in dropped)
    jsonschema.validate(json.loads((tmp_path / "results.json").read_text()), json.loads(SCHEMA_PATH.read_text()))
    report = analyse(tmp_path, Options(pie=False), draw=False)  # the report reads the strength
    noise = report.strength[report.strength["condition"] == "char_noise@0.1"]
    measured = record.robustness["de"]["char_noise@0.1"].strength
    assert noise["characters_changed"].tolist() == [measured.characters_changed]
    assert "## Perturbation strength" in report.summary and "char_noise@0.1" in report.summary


@pytest.mark.slow
def test_suite_run_records_what_does_not_apply_to_georgian_and_the_report_lists_it(tmp_path, tiny_overrides):
    from sparsenlp.analysis.sweep_report import Options, analyse

    record = run(compose_run([*tiny_overrides, "lang=ka", "perturbation=suite", "trainer.max_steps=2",
                              "trainer.eval_every=2"], tmp_path))
    missing = record.robustness_not_applicable["ka"]
    assert set(missing) == {"lower@1", "upper@1", "strip_diacritics@1", "swap_script@1", "swap_family@1"}
    assert missing["upper@1"].startswith("case: script Georgian has no letter case")
    assert "no other language shares script='Georgian'" in missing["swap_script@1"]
    assert not set(missing) & (set(record.test["ka"]) | set(record.robustness["ka"]))  # absent, never a gap of 0
    assert {"char_noise@0.1", "char_noise@0.3", "swap_seen@1", "swap_unseen@1", "context_drop@0.2"} == set(
        record.robustness["ka"])
    assert set(record.entity_pools["ka"]) == {"swap_seen", "swap_unseen"}
    summary = analyse(tmp_path, Options(pie=False), draw=False).summary
    assert "### Not applicable" in summary and "case: script Georgian has no letter case" in summary


@pytest.mark.slow
def test_zero_shot_transfer_scores_languages_never_trained_on(tmp_path, tiny_overrides, wikiann_root):
    record = run(compose_run([*tiny_overrides, "lang=en", "eval_lang=[de,sw]", "trainer.max_steps=6",
                              "trainer.eval_every=6", "perturbation=suite", "~perturbation.members.char_noise",
                              "~perturbation.members.swap_script", "~perturbation.members.swap_family"], tmp_path))
    assert record.arm.train_langs == ["en"] and record.run.eval_langs == ["de", "sw"]
    assert record.data.train_sentences_per_lang == {"en": 400}  # nothing of de or sw was trained on
    assert {lang: facts.transfer for lang, facts in record.languages.items()} == {"de": True, "sw": True}
    assert set(record.test) == {"de", "sw"} and record.data.test_sentences == {"de": 100, "sw": 100}
    rows = read_jsonl(tmp_path / "predictions" / "test.jsonl")
    for lang in ("de", "sw"):
        mine = [r for r in rows if r["lang"] == lang]
        gold = read_wikiann_file(wikiann_root / lang / "test", lang, 100)
        assert [r["tokens"] for r in mine] == [list(s.tokens) for s in gold]
        assert ner_metrics([r["gold"] for r in mine], [r["pred"] for r in mine]).f1 == pytest.approx(
            record.test[lang]["clean"].f1)
    assert "swap_unseen@1" in record.test["de"]  # pooled from de's test set, minus en's training/dev names
    assert "not a training language" in record.robustness_not_applicable["de"]["swap_seen@1"]
    assert record.data.facts["de"].train_sentences == 0 == record.data.facts["sw"].dev_sentences



@pytest.mark.slow
def test_same_config_and_seed_give_identical_results_whatever_the_cache(tmp_path, tiny_overrides):
    """Two model=tiny runs, each with its own fresh cache (tokenizer trained anew, features encoded anew),
    and a third reusing the second's warm cache: byte-identical predictions and the same metrics."""
    base = [o for o in tiny_overrides if not o.startswith("data.cache_dir")]
    base += ["lang=sw", "pruning=global_magnitude", "schedule=cubic", "trainer.max_steps=20",
             "trainer.eval_every=10", "schedule.updates=5"]
    outs = [tmp_path / name for name in ("fresh1", "fresh2", "warm2")]
    caches = [tmp_path / "cache1", tmp_path / "cache2", tmp_path / "cache2"]
    done = [run(compose_run([*base, f"data.cache_dir={cache}"], out)) for out, cache in zip(outs, caches)]
    assert [r.data.feature_cache.misses for r in done] == [3, 3, 0]
    assert len({r.data.tokenizer for r in done}) == 1
    predictions = {(out / "predictions" / "test.jsonl").read_bytes() for out in outs}
    assert len(predictions) == 1
    assert done[0].test == done[1].test == done[2].test and done[0].pruning.per_tensor == done[2].pruning.per_tensor
