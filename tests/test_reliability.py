"""Faults of a study run at scale: unwritable output folders, relaunches over jobs that still run, a
sweep's main process killed under its workers. Each through the real CLI, asserting the exit status,
the one-line message and what is left on disk."""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, cli

# --- an output folder that cannot be written -------------------------------------------------------------------


@pytest.fixture
def read_only(tmp_path) -> Iterator[tuple[Path, list[str]]]:
    """A folder, and a command prefix under which it is read-only. Root ignores permission bits, so as
    root the folder becomes a read-only bind mount in a private mount namespace of the command (nothing
    changes for any other process); otherwise it is chmod 0o555."""
    folder = tmp_path / "ro"
    (folder / "existing").mkdir(parents=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        (folder / "existing").chmod(0o555)
        yield folder, []
        (folder / "existing").chmod(0o755)
        folder.chmod(0o755)
        return
    if shutil.which("unshare") is None:
        pytest.skip("running as root, and without unshare(1) root cannot make a folder read-only for a test")
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
              'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', str(folder)]
    probe = subprocess.run([*prefix, "touch", str(folder / "probe")], capture_output=True, text=True)
    if probe.returncode == 0 or (folder / "probe").exists():
        pytest.fail(f"the read-only mount did not stop a write: {probe.stderr}")
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"running as root, and root cannot make a read-only mount here: {probe.stderr.strip()}")
    yield folder, prefix


@pytest.mark.parametrize("case", ["run dir exists", "run dir to create", "sweep dir"])
def test_unwritable_output_folder_is_one_line_error(read_only, case, tiny_overrides):
    folder, prefix = read_only
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    if case == "sweep dir":
        target, key = folder / "sweep", "hydra.sweep.dir"
        args = ["-m", f"hydra.sweep.dir={target}", "lang=de,sw"]
    else:
        target, key = (folder / "existing" if case == "run dir exists" else folder / "new" / "run"), "hydra.run.dir"
        args = [f"hydra.run.dir={target}"]
    result = cli([*args[:1], *tiny_overrides, *args[1:]], prefix=prefix)  # Hydra wants -m before overrides
    assert_one_line_error(result, f"cannot write to the output folder {target}", f"{key}=")
    assert result.returncode == 1
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
