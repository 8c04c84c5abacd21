"""Atomic writes: all or nothing, and ordinary file permissions."""
from __future__ import annotations

import json
import os
import stat

import pytest

from sparsenlp.io import atomic_path, write_json


def test_written_file_has_the_permissions_of_a_plain_write(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    (tmp_path / "b.json").write_text("{}")
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(tmp_path / "a.json") == mode(tmp_path / "b.json")
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    write_json(target, {"old": True})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"new": tr')  # half-written
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_nan_is_refused_rather_than_written_as_invalid_json(tmp_path):
    with pytest.raises(ValueError):
        write_json(tmp_path / "r.json", {"f1": float("nan")})
    assert not (tmp_path / "r.json").exists()


def test_a_diverged_loss_is_recorded_as_null(tmp_path):
    from sparsenlp.tracking import records
    from tests.records import make_record

    record = make_record()
    record.training.history[0].loss = float("nan")
    records.write(tmp_path, record, {})
    assert json.loads((tmp_path / "results.json").read_text())["training"]["history"][0]["loss"] is None
