"""The cross-language report on a small real sweep: tidy table, significance vs dense, PIEs with their
noise floor, figures, provenance, CLI, notebook; and on a synthetic sweep of several arms, that no
aggregate ever mixes two arms.

The real sweep is made once per module by in-process runs (tiny BERT, real WikiANN): de (high resource)
and sw (low resource) × {dense seeds 1 and 2, global_magnitude 0.5 seeds 1 and 2, layerwise_magnitude 0.5
seed 1} → 10 runs, each scored on the clean test set and two perturbations; next to them, the sweep's
``multirun.yaml`` and two records a report must skip. Every expectation is recomputed from the records
and the JSONL prediction files.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from seqeval.metrics import f1_score
from statsmodels.stats.multitest import multipletests

from sparsenlp.analysis import collect, stats, sweep_report
from sparsenlp.analysis.pie_floor import pie_floor_table
from sparsenlp.analysis.report import main
from sparsenlp.analysis.sweep_comparison import baseline_runs
from sparsenlp.analysis.sweep_report import Options
from sparsenlp.evaluation.pie import load_predictions
from sparsenlp.tracking import compact
from sparsenlp.tracking.compact import CompactPredictions
from sparsenlp.train import run
from tests.conftest import REPO
from tests.helpers import compose_run
from sparsenlp.analysis.synthetic import make_test_set, predict, write_run

pytestmark = pytest.mark.slow  # a sweep of ten tiny end-to-end runs (≈20 s) and reports over it

LANGS = ("de", "sw")
CONDITIONS = ("clean", "char_noise@0.1", "context_drop@0.2")
# (label, pruning overrides, seed)
ARMS = (
    ("dense-s1", ["pruning=dense"], 1),
    ("dense-s2", ["pruning=dense"], 2),
    ("global-s1", ["pruning=global_magnitude", "pruning.sparsity=0.5"], 1),
    ("global-s2", ["pruning=global_magnitude", "pruning.sparsity=0.5"], 2),
    ("layerwise-s1", ["pruning=layerwise_magnitude", "pruning.sparsity=0.5"], 1),
)
GLOBAL, LAYERWISE = "tiny/per_language/global_magnitude·oneshot", "tiny/per_language/layerwise_magnitude·oneshot"
SUITE = ["perturbation=suite", "perturbation.members.char_noise.severities=[0.1]",
         *(f"~perturbation.members.{m}" for m in
           ("lower", "upper", "strip_diacritics", "swap_seen", "swap_unseen", "swap_script", "swap_family"))]
# 40 steps at lr 2e-3: enough for the tiny model to tag some entities in both languages (F1 ≈ 0.05-0.3),
# so populations disagree on some sentences
COMMON = ["data.train_limit=300", "data.dev_limit=50", "data.test_limit=60", "trainer.max_steps=40",
          "trainer.lr=2e-3", "trainer.eval_every=40", "trainer.cpu_threads=1"]
COMMAND = ["model=tiny", "lang=de,sw", "pruning=dense,global_magnitude,layerwise_magnitude", "pruning.sparsity=0.5"]
FIGURES = {"delta_vs_dense", "delta_vs_dense_relative", "delta_heatmap", "f1_by_tier", "f1_by_script",
           "f1_by_family", "pie_vs_sparsity",
           *(f"robustness_{m}_tiny_per_language_{a}_magnitude_oneshot" for m in ("f1", "relative_gap")
             for a in ("global", "layerwise"))}
SIGNIFICANCE = ("lang", "arm", "sparsity", "n_seeds", "delta_f1", "ci_low", "ci_high", "p_value", "p_adjusted",
                "correction")
PIE = ("lang", "arm", "sparsity", "level", "pie_rate", "noise_floor", "excess", "excess_ci_low", "excess_ci_high",
       "too_small")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_overrides) -> dict:
    """SWEEP/<job_num>/ as Hydra multirun lays it out, with its multirun.yaml and two records to skip;
    returns the dir and each job's (lang, label)."""
    root = tmp_path_factory.mktemp("sweep")
    jobs = {}
    # one thread: on a loaded 2-core box, two torch threads per tiny run are up to 10× slower than one
    common = [*tiny_overrides, *SUITE, *COMMON]  # the magnitude methods' own schedule: oneshot
    threads = torch.get_num_threads()
    try:
        for num, (lang, (label, pruning, seed)) in enumerate((lang, arm) for lang in LANGS for arm in ARMS):
            out = root / str(num)
            run(compose_run([*common, *pruning, f"lang={lang}", f"seed={seed}"], out))
            jobs[str(out)] = (lang, label)
    finally:
        torch.set_num_threads(threads)  # run() sets it process-wide
    multirun = {"hydra": {"overrides": {"hydra": ["hydra.mode=MULTIRUN"], "task": COMMAND},
                          "runtime": {"choices": {"model": "tiny", "pruning": "dense", "hydra/launcher": "basic"}}}}
    (root / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    (root / "98").mkdir()
    (root / "98" / "results.json").write_text('{"status": "comp')  # a job killed while writing
    incomplete = _record(str(root / "1"))
    del incomplete["test"]
    (root / "99").mkdir()
    (root / "99" / "results.json").write_text(json.dumps(incomplete))
    return {"dir": root, "jobs": jobs, "skipped": [root / "98" / "results.json", root / "99" / "results.json"]}


@pytest.fixture(scope="module")
def report(sweep, tmp_path_factory) -> Path:
    """`sparsenlp-report SWEEP --out DIR` once for the module: the output dir."""
    out = tmp_path_factory.mktemp("report")
    assert main([str(sweep["dir"]), "--out", str(out)]) == 3  # written; the two broken records make it 3
    return out


@pytest.fixture(scope="module")
def table(sweep) -> pd.DataFrame:
    return collect.runs_table(sweep["dir"])


def _record(run_dir: str) -> dict:
    return json.loads((Path(run_dir) / "results.json").read_text())


def _run_dirs(sweep: dict, lang: str, *labels: str) -> list[str]:
    return sorted(d for d, (lg, lb) in sweep["jobs"].items() if lg == lang and lb in labels)


def _same(a: float, b: float | None) -> bool:
    return (b is None and math.isnan(a)) or a == pytest.approx(b, abs=1e-12)


# --- tidy table ------------------------------------------------------------------------------------------


def test_one_row_per_run_language_condition(sweep, table):
    expected = {(d, lang, c) for d, (lang, _) in sweep["jobs"].items() for c in CONDITIONS}
    assert len(table) == len(expected) == 30
    assert set(zip(table["run_dir"], table["lang"], table["condition"])) == expected
    assert set(collect.COLUMNS) <= set(table.columns)
    assert {"run_dir", "arm", "setting", "lang", "tier", "script", "family", "train_size", "split_train_size",
            "subwords_per_word", "seen_entity_share", "transfer", "model",
            "regime", "method", "scope", "structure", "schedule", "embedding_sparsity", "target_sparsity", "quantization",
            "selection", "length",
            "achieved_sparsity", "seed", "condition", "perturbation", "severity", "precision", "recall", "f1",
            "f1_PER", "f1_ORG", "f1_LOC", "gap", "gap_ratio", "dev_f1", "train_seconds", "steps",
            "train_sentences"} <= set(table.columns)


def test_values_equal_the_records(table):
    for row in table.itertuples():
        rec = _record(row.run_dir)
        metrics = rec["test"][row.lang][row.condition]
        assert (row.precision, row.recall, row.f1) == (metrics["precision"], metrics["recall"], metrics["f1"])
        for etype in ("PER", "ORG", "LOC"):
            assert _same(getattr(row, f"f1_{etype}"), metrics["per_type"].get(etype, {}).get("f1"))
        gap = rec["robustness"].get(row.lang, {}).get(row.condition, {})
        assert _same(row.gap, gap.get("gap")) and _same(row.gap_ratio, gap.get("gap_ratio"))
        if row.condition != "clean":  # gap = clean F1 − perturbed F1 of the same run and language
            assert row.gap == pytest.approx(rec["test"][row.lang]["clean"]["f1"] - row.f1)
        assert row.dev_f1 == rec["dev"]["f1"] and row.seed == rec["arm"]["seed"] == rec["config"]["seed"]
        assert row.steps == rec["training"]["steps"] == 40
        assert row.train_seconds == rec["training"]["train_seconds"]
        assert row.train_sentences == rec["data"]["train_sentences"]
        assert row.model == rec["model"]["name"] == "tiny"
    noise = table[table["condition"] == "char_noise@0.1"]
    assert set(noise["perturbation"]) == {"char_noise"} and set(noise["severity"]) == {0.1}
    assert set(table.loc[table["condition"] == "clean", "severity"]) == {0.0}


def test_language_facts_follow_the_languages_config(table):
    for row in table.drop_duplicates("lang").itertuples():
        languages = _record(row.run_dir)["config"]["languages"]
        entry = languages["langs"][row.lang]
        assert row.tier == ("high" if entry["train_size"] >= languages["tier_min_train_sentences"] else "low")
        assert (row.script, row.family, row.lang_name) == (entry["script"], entry["family"], entry["name"])
        assert row.split_train_size == entry["train_size"] and not row.transfer
        assert row.train_size == _record(row.run_dir)["data"]["train_sentences_per_lang"][row.lang] == 300
    assert dict(zip(table["lang"], table["tier"])) == {"de": "high", "sw": "low"}


def test_dense_and_sparse_classification(sweep, table):
    runs = table.drop_duplicates("run_dir").set_index("run_dir")
    for run_dir, (lang, label) in sweep["jobs"].items():
        row, rec = runs.loc[run_dir], _record(run_dir)
        assert row.method == rec["config"]["pruning"]["method"] == rec["arm"]["method"]
        if label.startswith("dense"):
            assert rec["pruning"] is None
            assert (row.method, row.arm, row.target_sparsity, row.achieved_sparsity) == ("dense", "dense", 0.0, 0.0)
        else:
            assert row.method == label.split("-")[0] + "_magnitude"
            assert row.schedule == "oneshot" and row.arm == f"{row.method}·oneshot@0.5"
            assert row.target_sparsity == rec["pruning"]["target"] == 0.5
            assert row.achieved_sparsity == rec["pruning"]["achieved"] == pytest.approx(0.5, abs=1e-3)


# --- significance vs dense -----------------------------------------------------------------------------------


def _predictions(sweep: dict, lang: str, condition: str, *labels: str) -> list[list[dict]]:
    """The JSONL rows of a language's runs (labels in seed order), read without the analysis."""
    name = "test.jsonl" if condition == "clean" else f"test.{condition}.jsonl"
    return [[r for r in load_predictions(Path(d) / "predictions" / name) if r["lang"] == lang]
            for d in _run_dirs(sweep, lang, *labels)]


def _seqeval(run: list[dict]) -> float:
    return float(f1_score([r["gold"] for r in run], [r["pred"] for r in run], zero_division=0))


def test_significance_has_one_row_per_language_arm_sparsity_and_condition(report):
    sig = pd.read_csv(report / "significance.csv")
    assert set(SIGNIFICANCE) <= set(sig.columns)
    assert len(sig) == len(LANGS) * 2 * len(CONDITIONS)
    assert not sig.duplicated(["lang", "arm", "sparsity", "condition"]).any()
    assert set(sig["arm"]) == {GLOBAL, LAYERWISE} and set(sig["sparsity"]) == {0.5}
    assert set(sig["correction"]) == {"holm"}
    assert dict(zip(sig["arm"], sig["n_seeds"])) == {GLOBAL: 2, LAYERWISE: 1} and set(sig["n_dense_seeds"]) == {2}
    # one layer-wise seed: unreplicated, out of every family and verdict
    assert dict(zip(sig["arm"], sig["replicated"])) == {GLOBAL: True, LAYERWISE: False}
    assert dict(zip(sig["arm"], sig["family_size"])) == {GLOBAL: len(LANGS), LAYERWISE: 0}
    assert set(sig.loc[sig["arm"] == LAYERWISE, "verdict"]) == {"unreplicated"}
    # what the runs trained on, not the WikiANN split: 300 sentences of each language (data.train_limit)
    assert set(sig["train_size"]) == {300} and set(sig["split_train_size"]) == {20000, 1000}
    assert (sig["ci_low"] <= sig["delta_f1"]).all() and (sig["delta_f1"] <= sig["ci_high"]).all()
    assert set(sig["tier"]) == {"high", "low"} and set(sig["method"]) == {"global_magnitude", "layerwise_magnitude"}


@pytest.mark.parametrize("condition", ["clean", "context_drop@0.2"])
def test_significance_values_equal_seqeval_and_stats_on_the_prediction_files(sweep, report, condition):
    sig = pd.read_csv(report / "significance.csv")
    rows = sig[(sig["arm"] == GLOBAL) & (sig["condition"] == condition)].set_index("lang")
    for lang in LANGS:
        dense = _predictions(sweep, lang, condition, "dense-s1", "dense-s2")
        sparse = _predictions(sweep, lang, condition, "global-s1", "global-s2")
        row = rows.loc[lang]
        # ΔF1 from seqeval itself, the seed means of each population
        by_seqeval = np.mean([_seqeval(r) for r in sparse]) - np.mean([_seqeval(r) for r in dense])
        assert row["delta_f1"] == pytest.approx(by_seqeval, abs=1e-12)
        # interval and p-value: the statistics on the JSONL rows, as a user calls them
        ref = stats.significance_table([stats.Cell(lang, GLOBAL, 0.5, condition, dense, sparse)]).iloc[0]
        for column in ("f1_dense", "f1_sparse", "ci_low", "ci_high", "rel_ci_low", "rel_ci_high", "p_value"):
            assert row[column] == pytest.approx(ref[column], abs=1e-12), column
    # Holm across the two languages of the family, by statsmodels
    adjusted = multipletests(rows.loc[list(LANGS), "p_value"], method="holm")[1]
    assert rows.loc[list(LANGS), "p_adjusted"].tolist() == pytest.approx(adjusted.tolist())


def test_the_correction_can_be_benjamini_hochberg(sweep, tmp_path):
    assert main([str(sweep["dir"]), "--out", str(tmp_path), "--correction", "bh", "--no-pie"]) == 3
    sig = pd.read_csv(tmp_path / "significance.csv")
    assert set(sig["correction"]) == {"fdr_bh"}
    for _, family in sig[sig["replicated"]].groupby(["arm", "sparsity", "condition"]):
        assert family["p_adjusted"].tolist() == pytest.approx(multipletests(family["p_value"], method="fdr_bh")[1])
    assert sig.loc[~sig["replicated"], "p_adjusted"].isna().all()
    assert "Benjamini–Hochberg" in (tmp_path / "summary.md").read_text()
    assert not (tmp_path / "pie.csv").exists()  # --no-pie: no PIE table


# --- PIEs ---------------------------------------------------------------------------------------------------


def test_pie_rates_and_floors_equal_pie_floor_on_the_prediction_files(sweep, report):
    pie = pd.read_csv(report / "pie.csv")
    assert set(PIE) <= set(pie.columns) and set(pie["condition"]) == set(CONDITIONS)
    assert len(pie) == len(LANGS) * 2 * len(CONDITIONS) * 2  # × sentence and token level
    # 3 dense and 2 sparse seeds are needed: with 2 dense seeds the floor has no seed spread (pie_floor.py)
    assert (pie["too_small"] == ((pie["n_sparse"] < 2) | (pie["n_dense"] < 3))).all()
    for lang in LANGS:
        dense = _predictions(sweep, lang, "char_noise@0.1", "dense-s1", "dense-s2")
        sparse = _predictions(sweep, lang, "char_noise@0.1", "layerwise-s1")
        ref = pie_floor_table([stats.Cell(lang, LAYERWISE, 0.5, "char_noise@0.1", dense, sparse)]).set_index("level")
        got = pie[(pie["lang"] == lang) & (pie["arm"] == LAYERWISE) & (pie["condition"] == "char_noise@0.1")]
        for row in got.itertuples():
            for column in ("pie_rate", "noise_floor", "excess", "excess_ci_low", "excess_ci_high", "n_units"):
                assert getattr(row, column) == pytest.approx(ref.loc[row.level, column], abs=1e-9), column


def _modal_of_two(a: list[str], b: list[str]) -> tuple:
    """The modal prediction of two runs by pie.py's documented rule: a tie goes to the smallest label."""
    return min(tuple(a), tuple(b))


def test_pie_examples_are_sentences_whose_modes_differ(sweep, report):
    examples = pd.read_csv(report / "pie_examples.csv")
    shown = examples[(examples["arm"] == GLOBAL) & (examples["condition"] == "clean")]
    assert set(shown["lang"]) <= set(LANGS) and not shown.empty
    for lang, rows in shown.groupby("lang"):
        (d0, d1), (s0, s1) = (_predictions(sweep, lang, "clean", *labels)
                              for labels in (("dense-s1", "dense-s2"), ("global-s1", "global-s2")))
        pies = [i for i, (a, b, c, d) in enumerate(zip(d0, d1, s0, s1))
                if _modal_of_two(a["pred"], b["pred"]) != _modal_of_two(c["pred"], d["pred"])]
        assert rows["id"].tolist() == [d0[i]["id"] for i in pies[:5]]
        for row, i in zip(rows.itertuples(), pies):
            assert row.tokens.split(" ") == d0[i]["tokens"] and row.gold.split(" ") == d0[i]["gold"]
            assert tuple(row.dense.split(" ")) == _modal_of_two(d0[i]["pred"], d1[i]["pred"])


# --- summary, figures, files ----------------------------------------------------------------------------------


def test_report_writes_every_table_and_figure(sweep, table, report):
    assert {p.name for p in report.iterdir()} == {"runs.csv", "runs.parquet", "significance.csv", "pie.csv",
                                                   "pie_examples.csv", "strength.csv", "summary.md", "figures"}
    pd.testing.assert_frame_equal(pd.read_csv(report / "runs.csv"), table, check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_parquet(report / "runs.parquet"), table)
    assert {p.stem for p in (report / "figures").glob("*.png")} == FIGURES
    for png in (report / "figures").glob("*.png"):
        image = matplotlib.image.imread(png)
        assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0  # a drawn, non-blank image


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}")[1].split("\n## ")[0]


def test_summary_opens_with_provenance_and_names_skipped_records(sweep, report):
    summary = (report / "summary.md").read_text()
    titles = re.findall(r"^## (.+)$", summary, flags=re.M)
    assert titles[0] == "What was run" and titles[-1] == "Skipped records"
    assert titles[titles.index("Robustness, per perturbation") + 1] == "Perturbation strength"  # next to the gaps
    opening = _section(summary, "What was run")
    assert "10 complete runs" in opening
    assert "`sparsenlp-train -m model=tiny lang=de,sw pruning=dense,global_magnitude,layerwise_magnitude " \
           "pruning.sparsity=0.5`" in opening and "model=tiny, pruning=dense" in opening
    assert "**model**: tiny (built from its config" in opening
    for lang in LANGS:  # data sizes and training steps per language, from the records
        records = [_record(d) for d in _run_dirs(sweep, lang, *(label for label, _, _ in ARMS))]
        sizes = {r["data"]["train_sentences_per_lang"][lang] for r in records}
        steps = {r["training"]["steps"] for r in records}
        assert len(sizes) == len(steps) == 1
        assert re.search(rf"\|\s*{lang}\s*\|[^\n]*\|\s*5\s*\|\s*{sizes.pop()}\s*\|\s*50\s*\|\s*60\s*\|\s*"
                         rf"{steps.pop()}\s*\|", opening), lang
    seeds = opening.split("### Seeds per comparison")[1]
    assert re.search(rf"\|\s*{re.escape(GLOBAL)}\s*\|\s*0.5\s*\|\s*2\s*\|\s*3\s*\|\s*2\s*\|\s*2\s*\|", seeds)
    assert re.search(rf"\|\s*{re.escape(LAYERWISE)}\s*\|\s*0.5\s*\|\s*2\s*\|\s*3\s*\|\s*2\s*\|\s*1\s*\|", seeds)
    skipped = _section(summary, "Skipped records").strip().splitlines()
    assert len(skipped) == 2
    assert str(sweep["skipped"][0]) in skipped[0] and "Invalid JSON" in skipped[0]
    assert str(sweep["skipped"][1]) in skipped[1] and "test: Field required" in skipped[1]


def test_summary_counts_verdicts_per_arm_and_sparsity_overall_and_per_tier(report):
    sig = pd.read_csv(report / "significance.csv")
    verdicts = _section((report / "summary.md").read_text(), "Sparse vs dense")
    assert "Holm" in verdicts and "comparisons are unreplicated" in verdicts
    header = next(line for line in verdicts.splitlines() if line.startswith("| condition"))
    names = [c.strip() for c in header.strip("|").split("|")]
    lines = [line for line in verdicts.splitlines() if line.startswith("| ") and "0.500" in line]
    assert len(lines) == 2 * len(CONDITIONS)  # one per arm × sparsity × condition
    for line in lines:
        cells = dict(zip(names, (c.strip() for c in line.strip("|").split("|"))))
        rows = sig[(sig["condition"] == cells["condition"]) & (sig["arm"] == cells["arm"])]
        expected = [" / ".join(str(int((g["verdict"] == v).sum())) for v in ("better", "worse", "indistinguishable"))
                    for g in (rows, rows[rows["tier"] == "high"], rows[rows["tier"] == "low"])]
        assert [cells["all: better / worse / indistinguishable"], cells["high"], cells["low"]] == expected
        tested = rows[rows["replicated"] & rows["rel_delta_f1"].notna()]
        assert cells["not tested: unreplicated / no F1"] == f"{int((~rows['replicated']).sum())} / 0"
        assert int(cells["languages in the means"]) == len(tested)
        if tested.empty:
            assert cells["mean ΔF1"] == cells["mean relative ΔF1"] == "–"
        else:
            assert float(cells["mean ΔF1"]) == pytest.approx(tested["delta_f1"].mean(), abs=5e-4)
            assert float(cells["mean relative ΔF1"]) == pytest.approx(tested["rel_delta_f1"].mean(), abs=5e-4)


def test_reports_never_mix_arms_rows_per_arm(sweep, report, table):
    """The real sweep: every table has, per arm, exactly the rows of that arm's comparisons."""
    sig = pd.read_csv(report / "significance.csv")
    pie = pd.read_csv(report / "pie.csv")
    assert sig.groupby("arm").size().to_dict() == {GLOBAL: 6, LAYERWISE: 6}
    assert pie.groupby("arm").size().to_dict() == {GLOBAL: 12, LAYERWISE: 12}
    runs = baseline_runs(table)
    # each arm: its own runs at 0.5, and the dense runs of the same languages at 0 (2 seeds × 2 languages × 3)
    assert runs.groupby(["arm", "sparsity"]).size().to_dict() == {
        (GLOBAL, 0.0): 12, (GLOBAL, 0.5): 12, (LAYERWISE, 0.0): 12, (LAYERWISE, 0.5): 6}


def test_figures_count_a_relaunched_sparse_seed_once(table):
    """A sparse seed trained twice (a relaunched job) is drawn from its first run only, as the comparisons
    use it: the figures' runs are those of the table without the repeat."""
    sparse = table[table["method"] != "dense"]
    first = sparse["run_dir"].iloc[0]
    again = sparse[sparse["run_dir"] == first].assign(run_dir=first + "-relaunched")
    with_repeat = baseline_runs(pd.concat([table, again], ignore_index=True))
    without = baseline_runs(table)
    assert with_repeat.groupby(["arm", "sparsity"]).size().to_dict() == without.groupby(["arm", "sparsity"]).size().to_dict()
    assert set(with_repeat["run_dir"]) == set(without["run_dir"])


def test_runs_figures_are_drawn_without_a_dense_baseline(sweep, tmp_path):
    """No dense run, so no comparison: the figures of the runs alone (F1 by tier, script, family; robustness)
    are still drawn, and the note says only the comparison figures are missing."""
    sparse_only = tmp_path / "sweep"
    for run_dir, (_, label) in sweep["jobs"].items():
        if not label.startswith("dense"):
            shutil.copytree(run_dir, sparse_only / Path(run_dir).name)
    report = sweep_report.analyse(sparse_only, Options(jobs=1))
    assert set(report.figures) == {name for name in FIGURES if name.startswith(("f1_by_", "robustness_"))}
    assert any(note.startswith("no comparison figure drawn") for note in report.notes)


# --- several arms on disk: never mixed ---------------------------------------------------------------------------


def _several_arms(root: Path) -> dict:
    """de and sw, two seeds each of: mBERT per language (dense, global 0.5 and 0.9, global 0.5 with
    embeddings), XLM-R per language (dense, global 0.5), mBERT jointly on de+sw (dense, global 0.5). Each
    dense population misses entities at its own rate, so a comparison with the wrong baseline shows."""
    tests = {lang: make_test_set(np.random.default_rng(k), 150) for k, lang in enumerate(("de", "sw"))}
    miss = {("mbert", "per_language"): 0.1, ("xlmr", "per_language"): 0.3, ("mbert", "joint"): 0.5}
    plan = [("mbert", "dense", 0.0, False), ("mbert", "global_magnitude", 0.5, False),
            ("mbert", "global_magnitude", 0.9, False), ("mbert", "global_magnitude", 0.5, True),
            ("xlmr", "dense", 0.0, False), ("xlmr", "global_magnitude", 0.5, False)]
    job, dense_f1 = 0, {}
    for seed in (1, 2):
        for model, method, sparsity, emb in plan:
            for lang, test in tests.items():
                rng = np.random.default_rng([seed, job])
                rows = predict(rng, test, lang, miss[(model, "per_language")] + sparsity / 4, 0.05, 0.05)
                write_run(root / str(job), rows, [lang], method=method, sparsity=sparsity, seed=seed, model=model,
                          embedding_sparsity=sparsity if emb else 0.0)
                if method == "dense":
                    dense_f1.setdefault((model, "per_language", lang), []).append(_seqeval(rows))
                job += 1
        for method, sparsity in (("dense", 0.0), ("global_magnitude", 0.5)):
            rng = np.random.default_rng([seed, job])
            rows = [r for lang, test in tests.items()
                    for r in predict(rng, test, lang, miss[("mbert", "joint")] + sparsity / 4, 0.05, 0.05)]
            write_run(root / str(job), rows, ["de", "sw"], method=method, sparsity=sparsity, seed=seed)
            if method == "dense":
                for lang in tests:
                    dense_f1.setdefault(("mbert", "joint", lang), []).append(
                        _seqeval([r for r in rows if r["lang"] == lang]))
            job += 1
    return dense_f1


def test_a_sweep_of_several_arms_never_mixes_them(tmp_path):
    dense_f1 = _several_arms(tmp_path)
    result = sweep_report.analyse(tmp_path, Options(), draw=False)
    sig, pie = result.comparison.significance, result.comparison.pie
    arms = {"mbert/per_language/global_magnitude·cubic": {0.5, 0.9},
            "mbert/per_language/global_magnitude·cubic+emb": {0.5},
            "xlmr/per_language/global_magnitude·cubic": {0.5}, "mbert/joint:de+sw/global_magnitude·cubic": {0.5}}
    assert {arm: set(g["sparsity"]) for arm, g in sig.groupby("arm")} == arms
    # rows per arm: one per language and sparsity (significance), × 2 levels (PIEs); families never span arms
    assert sig.groupby("arm").size().to_dict() == {arm: 2 * len(s) for arm, s in arms.items()}
    assert pie.groupby("arm").size().to_dict() == {arm: 4 * len(s) for arm, s in arms.items()}
    assert set(sig["family_size"]) == {2}
    # each comparison's dense side is the dense runs of its own model and regime
    for row in sig.itertuples():
        assert row.f1_dense == pytest.approx(np.mean(dense_f1[(row.model, row.regime, row.lang)]), abs=1e-12)
    assert set(sig.loc[sig["regime"] == "joint", "train_langs"]) == {"de+sw"}
    # the figures' runs: each arm with its own baseline at 0, seeds and languages counted
    runs = result.runs[result.runs["condition"] == "clean"]
    assert runs.groupby(["arm", "sparsity"]).size().to_dict() == {
        (arm, s): 4 for arm, levels in arms.items() for s in {0.0, *levels}}
    verdicts = result.summary.split("## Sparse vs dense")[1].split("\n## ")[0]
    assert sum(line.startswith("| clean ") for line in verdicts.splitlines()) == 5  # arm × sparsity


def test_a_protocol_ablation_is_compared_with_the_dense_runs_of_its_own_protocol(tmp_path):
    """The controls' ablations in one sweep: the same arm under two model-selection rules, each with its dense
    runs. Dense runs under `final` miss more entities than those under `best@0.7`, so a comparison with the
    other protocol's baseline shows; the comparison arms name their protocol."""
    tests = {lang: make_test_set(np.random.default_rng(k), 150) for k, lang in enumerate(("de", "sw"))}
    miss = {"best@0.7": 0.1, "final": 0.3}
    job, dense_f1 = 0, {}
    for seed in (1, 2):
        for selection, base in miss.items():
            for method, sparsity in (("dense", 0.0), ("global_magnitude", 0.5)):
                for lang, test in tests.items():
                    rows = predict(np.random.default_rng([seed, job]), test, lang, base + sparsity / 4, 0.05, 0.05)
                    write_run(tmp_path / str(job), rows, [lang], method=method, sparsity=sparsity, seed=seed,
                              selection=selection)
                    if method == "dense":
                        dense_f1.setdefault((selection, lang), []).append(_seqeval(rows))
                    job += 1
    sig = sweep_report.analyse(tmp_path, Options(), draw=False).comparison.significance
    assert set(sig["arm"]) == {"mbert/per_language/global_magnitude·cubic (best@0.7; epochs=10)",
                               "mbert/per_language/global_magnitude·cubic (final; epochs=10)"}
    assert set(sig["family_size"]) == {2}
    for row in sig.itertuples():
        assert row.f1_dense == pytest.approx(np.mean(dense_f1[(row.selection, row.lang)]), abs=1e-12)


# --- CLI -----------------------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sparsenlp.analysis.report", *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO)


def test_default_output_dir_and_help(sweep, tmp_path, capsys):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep["dir"] / "0", copy / "0")
    (copy / "report" / "figures").mkdir(parents=True)
    (copy / "report" / "figures" / "robustness_gap.png").write_bytes(b"an earlier report's figure")
    assert main([str(copy), "--no-pie"]) == 0
    assert not (copy / "report" / "figures" / "robustness_gap.png").exists()  # no figure outlives its data
    assert (copy / "report" / "runs.csv").is_file() and (copy / "report" / "summary.md").is_file()
    assert len(pd.read_csv(copy / "report" / "runs.csv")) == len(CONDITIONS)
    assert "No comparison" in (copy / "report" / "summary.md").read_text()
    with pytest.raises(SystemExit) as help_exit:
        main(["--help"])
    assert help_exit.value.code == 0
    assert "{table,pie,dashboard,sync,status}" in capsys.readouterr().out


def test_bad_sweep_dir_is_one_line_error_and_writes_nothing(tmp_path, capsys):
    missing = _cli(str(tmp_path / "nope"))  # the real process: exit status and stderr
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [missing.stderr.strip()]
    assert missing.stderr.startswith("sparsenlp error:") and "does not exist" in missing.stderr
    (tmp_path / "broken" / "0").mkdir(parents=True)
    (tmp_path / "broken" / "0" / "results.json").write_text('{"status": "comp')
    assert main([str(tmp_path / "broken")]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("sparsenlp error: no complete results.json")
    assert not (tmp_path / "broken" / "report").exists()


def test_corrupt_and_incomplete_records_are_skipped_with_a_warning(sweep, caplog):
    with caplog.at_level("WARNING", logger="sparsenlp"):
        got = collect.runs_table(sweep["dir"])
    assert set(got["run_dir"]) == set(sweep["jobs"])
    skipped = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(skipped) == 2 and "98/results.json" in skipped[0] and "99/results.json" in skipped[1]
    assert "test: Field required" in skipped[1]  # the record names what it lacks


def test_truncated_record_is_named_in_the_summary_and_the_exit_status(tmp_path, tiny_overrides):
    """A report is still written, but a skipped record must not go unnoticed: not by a researcher reading
    summary.md, not by a script checking the exit status."""
    sweep = tmp_path / "sweep"
    threads = torch.get_num_threads()
    try:
        for num in ("0", "1"):
            run(compose_run([*tiny_overrides, "lang=sw", "trainer.max_steps=5", "trainer.eval_every=5",
                             "trainer.cpu_threads=1", f"seed={num}"], sweep / num))
    finally:
        torch.set_num_threads(threads)
    assert _cli(str(sweep), "--no-pie").returncode == 0  # nothing skipped: exit 0, and the summary says so
    assert "None: every results.json under the sweep was read" in (sweep / "report" / "summary.md").read_text()

    truncated = sweep / "1" / "results.json"
    truncated.write_text(truncated.read_text()[:300])
    result = _cli(str(sweep), "--no-pie")
    assert result.returncode == 3, result.stderr[-2000:]
    assert str(truncated) in result.stderr and "exit status 3" in result.stderr
    summary = (sweep / "report" / "summary.md").read_text()
    assert "## Skipped records" in summary and f"- {truncated}: not readable JSON" in summary
    assert "1 complete runs" in summary
    assert set(pd.read_csv(sweep / "report" / "runs.csv")["run_dir"]) == {str(sweep / "0")}


def test_every_companion_equals_its_jsonl(sweep):
    files = sorted(f for d in sweep["jobs"] for f in Path(d).glob("predictions/*.jsonl"))
    assert len(files) == len(sweep["jobs"]) * len(CONDITIONS)
    for jsonl in files:
        got, ref = compact.read(compact.companion_path(jsonl)), CompactPredictions.from_rows(load_predictions(jsonl))
        for name in ("ids", "lang", "offsets", "gold", "pred", "token_hash"):
            assert np.array_equal(getattr(got, name), getattr(ref, name)), (jsonl, name)
        assert got.labels == ref.labels


def test_pie_command_writes_its_outputs_for_chosen_conditions(sweep, report, tmp_path):
    assert main(["pie", str(sweep["dir"]), "--out", str(tmp_path), "--condition", "clean", "--examples", "2"]) == 3
    pies = pd.read_csv(tmp_path / "pie.csv")
    assert set(pies["condition"]) == {"clean"} and len(pies) == len(LANGS) * 2 * 2
    full = pd.read_csv(report / "pie.csv")
    pd.testing.assert_frame_equal(pies, full[full["condition"] == "clean"].reset_index(drop=True))
    assert pd.read_csv(tmp_path / "pie_examples.csv").groupby(["lang", "arm"]).size().max() <= 2
    assert (tmp_path / "figures" / "pie_vs_sparsity.png").stat().st_size > 0
    page = (tmp_path / "pie.md").read_text()
    assert "noise floor" in page and "too few seeds" in page


def test_pie_without_any_comparison_fails_on_one_line(sweep, tmp_path, capsys):
    for src in _run_dirs(sweep, "de", "dense-s1", "dense-s2"):
        shutil.copytree(src, tmp_path / "sweep" / Path(src).name)
    assert main(["pie", str(tmp_path / "sweep")]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("sparsenlp error: no sparse run") and "dense and sparse" in last
    assert not (tmp_path / "sweep" / "report").exists()


# --- notebook ------------------------------------------------------------------------------------------------


def test_notebook_runs_on_the_sweep(sweep, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = REPO / "notebooks" / "analysis.ipynb"
    monkeypatch.setenv("SPARSENLP_SWEEP_DIR", str(sweep["dir"]))
    # the kernel imports the sparsenlp of this checkout, whatever an editable install points at
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                      for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "10 runs" in outputs
    assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_rows_carry_the_records_arm_whatever_the_method():
    """Structured and embedding arms are arms of their own, never dense and never merged with their siblings."""
    from tests.records import make_record

    base = make_record()
    structured = make_record(arm={**base.arm.model_dump(), "method": "structured_heads", "criterion": "l1",
                                  "scope": "layerwise", "schedule": "none", "sparsity": 0.25,
                                  "structure": "heads=0.5,ffn=0"})
    emb = make_record(arm={**base.arm.model_dump(), "embedding_sparsity": 0.5})
    control = make_record(arm={**structured.arm.model_dump(), "criterion": "random"})
    rows = collect.table_from_records([(Path("a"), base), (Path("b"), structured), (Path("c"), emb),
                                       (Path("d"), control)])
    arms = rows.drop_duplicates("run_dir").set_index("run_dir")["arm"].to_dict()
    assert arms == {"a": "global_magnitude·cubic@0.5", "b": "structured_heads:l1[layerwise](heads=0.5,ffn=0)·none@0.25",
                    "c": "global_magnitude·cubic@0.5+emb",
                    "d": "structured_heads:random[layerwise](heads=0.5,ffn=0)·none@0.25"}
    assert rows.groupby(list(collect.ARM), dropna=False).ngroups == 4


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _readme_notebook_command() -> list[str]:
    line = next(line for line in (REPO / "README.md").read_text().splitlines() if "jupyter lab" in line)
    assignment, _, command = line.strip().partition(" ")
    assert assignment.startswith("SPARSENLP_SWEEP_DIR="), line
    return command.split()


def test_readme_notebook_command_finds_a_sweep_named_relative_to_where_jupyter_started(sweep, tmp_path):
    """The README's `SPARSENLP_SWEEP_DIR=<relative> jupyter lab notebooks/analysis.ipynb`, run as written from the
    repository (headless): the kernel Jupyter starts runs in notebooks/, and the notebook still finds the sweep
    named relative to the repository."""
    import urllib.request

    import psutil
    from jupyter_client import BlockingKernelClient

    pytest.importorskip("jupyterlab")
    port, token = _free_port(), "sparsenlp-test"
    env = {**os.environ, "SPARSENLP_SWEEP_DIR": os.path.relpath(sweep["dir"], REPO), "PWD": str(REPO),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "PYTHONPATH": str(REPO)}
    headless = ["--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
                *(["--allow-root"] if os.geteuid() == 0 else [])]
    server = subprocess.Popen([*_readme_notebook_command(), *headless], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        api = f"http://127.0.0.1:{port}/api"
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{api}/status?token={token}", timeout=2)
                break
            except OSError:
                assert server.poll() is None, "jupyter lab exited"
                time.sleep(0.2)
        body = json.dumps({"path": "notebooks/analysis.ipynb", "type": "notebook", "kernel": {"name": "python3"}})
        urllib.request.urlopen(urllib.request.Request(f"{api}/sessions?token={token}", data=body.encode(),
                                                      method="POST", headers={"Content-Type": "application/json"}))
        kernel = None
        for _ in range(300):
            kernel = next((p for p in psutil.Process(server.pid).children(recursive=True)
                           if "ipykernel_launcher" in " ".join(p.cmdline())), None)
            if kernel is not None:
                break
            time.sleep(0.1)
        assert kernel is not None and Path(kernel.cwd()) == REPO / "notebooks"  # what broke the relative path
        connection = kernel.cmdline()[kernel.cmdline().index("-f") + 1]
        client = BlockingKernelClient(connection_file=connection)
        client.load_connection_file()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        nb = json.loads((REPO / "notebooks" / "analysis.ipynb").read_text())
        printed: list[str] = []
        for cell in [c for c in nb["cells"] if c["cell_type"] == "code"][:2]:  # parameters, then the records
            reply = client.execute_interactive("".join(cell["source"]), timeout=300,
                                               output_hook=lambda m: printed.append(m["content"].get("text", "")))
            assert reply["content"]["status"] == "ok", reply["content"]
        client.stop_channels()
    finally:
        server.terminate()
        server.wait(30)
    text = "".join(printed)
    assert f"sweep: {Path(sweep['dir']).resolve()}" in text and "10 runs" in text


def test_a_missing_sweep_folder_names_where_it_was_looked_for(tmp_path, monkeypatch):
    from sparsenlp.analysis.notebook_paths import sweep_dir
    from sparsenlp.errors import SparseNLPError

    monkeypatch.setenv("PWD", str(tmp_path / "launch"))
    (tmp_path / "launch" / "multirun" / "x").mkdir(parents=True)
    (tmp_path / "nb").mkdir()
    assert sweep_dir("multirun/x", cwd=tmp_path / "nb") == tmp_path / "launch" / "multirun" / "x"
    with pytest.raises(SparseNLPError, match=r"'multirun/y' not found \(looked in: .*launch/multirun/y, .*nb/multirun/y"):
        sweep_dir("multirun/y", cwd=tmp_path / "nb")
