"""File-system faults under a job, made for real: a read-only cache (empty and warm), a cache path or data root
that is a file, a full disk under the run folder or the cache. Each through the real CLI: one line naming the
path and the fix, a non-zero exit, no partial run folder; a warm read-only cache is simply read."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults import read_only_for_command, small_disk_for_command
from tests.helpers import assert_one_line_error, cli

pytestmark = pytest.mark.slow


def _job(tiny_overrides: list[str], out: Path, cache: Path | None, *extra: str) -> list[str]:
    return [*(o for o in tiny_overrides if not o.startswith("data.cache_dir=")),
            f"data.cache_dir={cache}" if cache is not None else "data.cache_dir=null", "lang=sw",
            "trainer.max_steps=10", "trainer.eval_every=10", "trainer.cpu_threads=1", f"hydra.run.dir={out}", *extra]


def test_an_empty_read_only_cache_is_one_line_error(tmp_path, tiny_overrides):
    cache = tmp_path / "cache"
    cache.mkdir()
    out = tmp_path / "run"
    with read_only_for_command(cache) as prefix:
        result = cli(_job(tiny_overrides, out, cache), prefix=prefix)
    assert_one_line_error(result, f"cannot write to the cache folder {cache}", "data.cache_dir=null")
    assert result.returncode == 1
    assert not out.exists() and not any(cache.iterdir())


def test_a_warm_read_only_cache_is_read_as_it_is(tmp_path, tiny_overrides):
    """A shared, pre-built cache on a cluster: every entry there, nothing to write, so the job just reads it
    (the entries' lock files cannot be opened for writing there, and are not needed)."""
    cache = tmp_path / "cache"
    first = cli(_job(tiny_overrides, tmp_path / "warm-up", cache))
    assert first.returncode == 0, first.stderr[-3000:]
    out = tmp_path / "run"
    with read_only_for_command(cache) as prefix:
        result = cli(_job(tiny_overrides, out, cache), prefix=prefix)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "results.json").read_text())
    assert record["data"]["feature_cache"] == {"hits": 3, "misses": 0}
    assert record["test"] == json.loads((tmp_path / "warm-up" / "results.json").read_text())["test"]


@pytest.mark.parametrize("key", ["data.cache_dir", "data.root"])
def test_a_file_where_a_folder_belongs_is_one_line_error(tmp_path, tiny_overrides, key):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n")
    out = tmp_path / "run"
    extra = [f"{key}={a_file}"]
    result = cli(_job(tiny_overrides, out, tmp_path / "cache", *extra))
    fragment = f"{key}={a_file} is a file, not a folder" if key == "data.cache_dir" else f"data.root {a_file} is a file"
    assert_one_line_error(result, fragment)  # was: "does not exist" (data.root), a traceback (data.cache_dir)
    assert not out.exists()


@pytest.mark.parametrize("free_kb", [0, 256], ids=["full", "room-for-hydra-only"])
def test_a_full_disk_under_the_run_folder_is_one_line_and_leaves_nothing(tmp_path, tiny_overrides, free_kb):
    """0 KiB free: Hydra's own first writes fail; 256 KiB: Hydra's config copy, the log and the marker fit, the
    job's checkpoint (a few MiB) does not."""
    disk, listing = tmp_path / "disk", tmp_path / "left.txt"
    out = disk / "run"
    prefix = small_disk_for_command(disk, free_kb, listing)
    result = cli(_job(tiny_overrides, out, tmp_path / "cache", "trainer.checkpoint_every=5"), prefix=prefix)
    assert_one_line_error(result, "No space left on device", str(out), "free space")
    assert result.returncode == 1
    assert listing.read_text() == "", listing.read_text()  # no partial run folder (and no temporary file)


def test_a_full_disk_under_the_cache_is_one_line_and_leaves_no_run_folder(tmp_path, tiny_overrides):
    disk, listing = tmp_path / "disk", tmp_path / "left.txt"
    cache = disk / "cache"
    out = tmp_path / "run"
    prefix = small_disk_for_command(disk, 0, listing)
    result = cli(_job(tiny_overrides, out, cache), prefix=prefix)
    assert_one_line_error(result, "No space left on device", f"cache folder {cache}", "data.cache_dir=")
    assert result.returncode == 1
    assert not out.exists()
    left = listing.read_text().split()
    assert not [p for p in left if ".tmp" in p or ".partial-" in p], left  # no half-written entry
