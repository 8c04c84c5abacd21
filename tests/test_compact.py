"""The prediction files' compact companions: written with every record, equal to the JSONL, read by the
analysis in its place, and refused when they do not fit."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sparsenlp.analysis.encode import TestSet
from sparsenlp.analysis.stats import Cell, significance_table
from sparsenlp.analysis.sweep_comparison import read_predictions
from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.pie import load_predictions
from sparsenlp.tracking import compact, records
from sparsenlp.tracking.compact import CompactPredictions
from sparsenlp.analysis.synthetic import seed_runs as _runs
from tests.records import make_record


def _equals_rows(arrays: CompactPredictions, rows: list[dict]) -> None:
    """Every row of the JSONL, rebuilt from the arrays alone (independent of from_rows)."""
    assert len(arrays) == len(rows)
    for k, row in enumerate(rows):
        start, end = arrays.offsets[k], arrays.offsets[k + 1]
        assert arrays.ids[k] == row["id"] and arrays.lang[k] == row["lang"]
        assert [arrays.labels[t] for t in arrays.gold[start:end]] == row["gold"]
        assert [arrays.labels[t] for t in arrays.pred[start:end]] == row["pred"]
        assert arrays.token_hash[k] == compact.token_hash(row["tokens"]) and end - start == len(row["tokens"])


def test_records_write_a_companion_equal_to_each_jsonl(tmp_path):
    de, af = _runs(50, [1])[0], _runs(40, [2], "af")[0]
    rows = {"test": de + af, "test.char_noise@0.1": de[:10]}
    records.write(tmp_path, make_record(), rows)
    for name, written in rows.items():
        jsonl = tmp_path / "predictions" / f"{name}.jsonl"
        assert compact.companion_path(jsonl) == tmp_path / "predictions" / f"{name}.npz"
        assert load_predictions(jsonl) == written
        _equals_rows(compact.read(compact.companion_path(jsonl)), written)
    both = compact.read(tmp_path / "predictions" / "test.npz")
    only_af = both.select("af")
    _equals_rows(only_af, af)
    assert only_af.tokens_at([0, 39]) == [af[0]["tokens"], af[39]["tokens"]]  # read back from the JSONL by line
    assert both.select("de") is not both and len(both.select("de")) == 50


def test_the_analysis_reads_the_companion_and_falls_back_on_the_jsonl(tmp_path):
    runs = _runs()
    for k, run in enumerate(runs):
        records.write(tmp_path / str(k), make_record(), {"test": run})
    from_npz = [read_predictions(tmp_path / str(k), "clean") for k in range(3)]
    assert all(p.tokens is None for p in from_npz)  # the companion was read, not the JSONL
    for k in range(3):
        (tmp_path / str(k) / "predictions" / "test.npz").unlink()
    from_jsonl = [read_predictions(tmp_path / str(k), "clean") for k in range(3)]
    assert all(p.tokens is not None for p in from_jsonl)
    tables = [significance_table([Cell("de", "a", 0.5, "clean", runs[:1], runs[1:])])]
    for loaded in (from_npz, from_jsonl):
        tables.append(significance_table([Cell("de", "a", 0.5, "clean", loaded[:1], loaded[1:])]))
    pd.testing.assert_frame_equal(tables[1], tables[0])
    pd.testing.assert_frame_equal(tables[2], tables[0])


def test_arrays_encode_as_rows_do_in_any_order_and_against_either_reference():
    runs = _runs(400, range(4), miss=0.3)
    arrays = [CompactPredictions.from_rows(run) for run in runs]
    shuffled = np.random.default_rng(1).permutation(400)
    arrays.append(CompactPredictions.from_rows([runs[3][i] for i in shuffled]))
    by_rows, by_arrays = TestSet(runs[0], "de", "clean"), TestSet(arrays[0], "de", "clean")
    assert by_rows.ids == by_arrays.ids and (by_rows.gold == by_arrays.gold).all()
    for run, array in zip([*runs, runs[3]], arrays):
        reference = by_rows.encode(run)
        for test, given in ((by_rows, array), (by_arrays, array), (by_arrays, run)):
            got = test.encode(given)
            assert (got.tp == reference.tp).all() and (got.pred == reference.pred).all()
            assert [test.sequence(c) for c in got.codes] == [by_rows.sequence(c) for c in reference.codes]
    assert by_arrays.sentence_tokens([0, 7]) == by_rows.sentence_tokens([0, 7])


def test_arrays_of_another_test_set_are_refused():
    runs = _runs(100, range(2))
    test = TestSet(CompactPredictions.from_rows(runs[0]), "de", "clean")
    other_tokens = [{**r, "tokens": [t + "x" for t in r["tokens"]]} if r["id"] == 5 else r for r in runs[1]]
    other_gold = [{**r, "gold": ["O"] * len(r["gold"])} if r["id"] == 6 else r for r in runs[1]]
    missing = runs[1][:-1] + [{**runs[1][-1], "id": 999}]
    for rows, message in ((other_tokens, "'tokens' of sentence id=5"), (other_gold, "'gold' of sentence id=6"),
                          (missing, "id=999, which the test set lacks"), (runs[1][:-1], "has 99 sentences")):
        with pytest.raises(SparseNLPError, match=message):
            test.encode(CompactPredictions.from_rows(rows))


def test_a_broken_companion_is_one_line_error_naming_the_fix(tmp_path):
    records.write(tmp_path, make_record(), {"test": _runs(20, [1])[0]})
    path = tmp_path / "predictions" / "test.npz"
    with np.load(path) as data:
        arrays = dict(data)
    np.savez(tmp_path / "cut.npz", **{**arrays, "pred": arrays["pred"][:-1]})
    np.savez(tmp_path / "old.npz", **{**arrays, "format": np.array(99)})
    (tmp_path / "junk.npz").write_text(json.dumps({"not": "numpy"}))
    for name, why in (("cut", "array lengths disagree"), ("old", "format 99"), ("junk", "")):
        with pytest.raises(SparseNLPError, match=f"{name}.npz is not a valid prediction companion.*{why}.*delete it"):
            compact.read(tmp_path / f"{name}.npz")


def test_mixed_id_types_are_refused():
    rows = _runs(3, [1])[0]
    rows[1] = {**rows[1], "id": "b"}
    with pytest.raises(SparseNLPError, match="mix types"):
        CompactPredictions.from_rows(rows)
