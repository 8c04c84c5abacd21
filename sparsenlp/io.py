"""Atomic writes: a reader (or a relaunched sweep) never sees a half-written file or folder.

A file is written to a temporary file in the destination folder and moved into place with ``os.replace``,
which is atomic on POSIX file systems. A folder of files that belong together (a report, a saved model) is
written into a temporary sibling and swapped into place whole (:func:`atomic_folder`), so an interrupted
write leaves the previous complete folder or none, never a mix.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


# permissions a plain ``open(path, "w")`` and ``mkdir`` would give (mkstemp's files and mkdtemp's folders are private)
_MODE = 0o666 & ~_umask()
_DIR_MODE = 0o777 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path``, else delete it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, _MODE)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename not in (None, tmp):
            raise
        # name the file being written, not its temporary (a full disk raises from write(), with no name)
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# what a full disk, a quota, a read-only mount or missing permissions raise: the user's to fix, never a bug
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
PARTIAL = ".partial-"  # infix of the temporary sibling an atomic folder is written into


def unwritable(folder: Path) -> str | None:
    """Why files cannot be created in ``folder`` (or in its nearest existing parent, where ``mkdir -p``
    would start), or None. A real probe file, not ``os.access``: it also sees read-only mounts, ACLs and
    full disks, and it is right for root."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    where = "" if existing == folder else f" in {existing}"
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=".sparsenlp-write-probe-", dir=existing)
    except OSError as exc:
        return f"{exc.strerror or exc}{where}"
    os.close(fd)
    os.unlink(probe)
    return None


_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where it is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_cwd = -100
    if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # a file system or kernel without exchange
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_into_place(new: Path, path: Path) -> None:
    """Put folder ``new`` at ``path``; the folder that was there is removed."""
    if not path.exists():
        os.rename(new, path)
        return
    if _exchange(new, path):
        shutil.rmtree(new)  # now the previous folder
        return
    # two renames: an interruption between them leaves no folder at ``path`` (never a mix), and the
    # previous one beside it
    old = path.with_name(f".{path.name}{PARTIAL}{os.getpid()}-old")
    os.rename(path, old)
    try:
        os.rename(new, path)
    except BaseException:  # Ctrl-C or a failure between the two: the previous folder goes back
        os.rename(old, path)
        raise
    shutil.rmtree(old)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_partials(path: Path) -> None:
    """Temporary siblings of ``path`` (:func:`atomic_folder`) left by an interrupted writer: those whose writer's
    process (named in them) is gone, or is this one (a process writes one folder at a time). A previous folder
    that a writer killed between its two renames left aside is put back at ``path`` if nothing is there."""
    for stale in sorted(path.parent.glob(f".{path.name}{PARTIAL}*")):
        pid, _, role = stale.name.removeprefix(f".{path.name}{PARTIAL}").partition("-")
        if not pid.isdigit() or (int(pid) != os.getpid() and _alive(int(pid))):
            continue
        if role == "old" and not path.exists():
            os.rename(stale, path)
        else:
            shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of folder ``path``; on success it replaces ``path`` whole, else it is
    removed. Writers of one ``path`` must not run at the same time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}{PARTIAL}{os.getpid()}-", dir=path.parent))
    tmp.chmod(_DIR_MODE)
    try:
        yield tmp
        _swap_into_place(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
