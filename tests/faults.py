"""Real file-system faults for the tests: a folder that is read-only, a file system that is full.

Both come as a command prefix under which the condition holds for that command only. As root (the test
machines), the prefix runs the command in a private mount namespace (``unshare --mount``): a read-only bind
mount of the folder, or a small ``tmpfs`` mounted over it; nothing changes for any other process, and the
tmpfs (with what the command wrote into it) vanishes when the command ends, so the command itself lists what
it left (:func:`small_disk_for_command`). Without root the folder is made read-only with ``chmod``; a full
disk cannot be made, and those tests skip saying so.
"""
from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def read_only_for_command(folder: Path) -> Iterator[list[str]]:
    """A command prefix under which ``folder`` is read-only. Root ignores permission bits, so as root the
    folder becomes a read-only bind mount in a private mount namespace of the command (nothing changes for
    any other process); otherwise it and its subfolders are chmod 0o555 until the block ends."""
    if os.geteuid() != 0:
        folders = [folder, *(p for p in folder.rglob("*") if p.is_dir())]
        for each in folders:
            each.chmod(0o555)
        try:
            yield []
        finally:
            for each in folders:
                each.chmod(0o755)
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
    yield prefix



def small_disk_for_command(folder: Path, free_kb: int, listing: Path) -> list[str]:
    """A command prefix under which ``folder`` is an empty tmpfs with about ``free_kb`` KiB free (a filler file
    takes the rest of a 2 MiB disk); after the command, every path left in ``folder`` (relative, one a line) is
    written to ``listing`` (outside it), and the command's exit status is kept."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a full disk is made with a tmpfs in a private mount namespace, which needs root and unshare(1)")
    folder.mkdir(parents=True, exist_ok=True)
    filler_kb = max(0, 2048 - free_kb)
    script = (
        f'mount -t tmpfs -o size=2m tmpfs {shlex.quote(str(folder))} || exit 99; '
        f'head -c {filler_kb * 1024} /dev/zero > {shlex.quote(str(folder / ".filler"))} 2>/dev/null; '
        '"$@"; status=$?; '
        f'(cd {shlex.quote(str(folder))} && find . -mindepth 1 ! -name .filler | sort) > {shlex.quote(str(listing))}; '
        'exit $status'
    )
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", "true"],
                           capture_output=True, text=True)
    if probe.returncode == 99:
        pytest.skip(f"running as root, but a tmpfs cannot be mounted here: {probe.stderr.strip()}")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
