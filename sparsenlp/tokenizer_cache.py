"""Cached tokenizers that a killed job or a damaged disk cannot poison.

Each entry is a folder written by ``save_pretrained`` plus the SHA-256 of every file in it, written into
a temporary sibling and renamed into place. Every load checks the hashes, so a truncated or altered
``tokenizer.json`` is reported with its path and rebuilt, instead of failing every later run of a sweep
with a ``JSONDecodeError`` (or, worse, loading a silently different vocabulary). Callers hold the
entry's file lock around :func:`load` and :func:`save`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
CHECKSUMS = ".sha256.json"


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file() and p.name != CHECKSUMS}


def damage(folder: Path) -> str | None:
    """Why the entry in ``folder`` cannot be trusted, or None. Entries from before checksums were
    recorded are only checked by loading them."""
    expected_path = folder / CHECKSUMS
    if not expected_path.is_file():
        return None
    try:
        expected = json.loads(expected_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{expected_path} is unreadable ({exc})"
    actual = _digests(folder)
    for name, digest in expected.items():
        if actual.get(name) != digest:
            return f"{folder / name} is {'missing' if name not in actual else 'not what was saved (SHA-256 differs)'}"
    return None


def load(folder: Path, quiet: bool = False) -> Any | None:
    """The tokenizer cached in ``folder``; None when there is none or it is damaged (with a warning, unless
    ``quiet``: a first look without the entry's lock, while a builder may be replacing it)."""
    from transformers import AutoTokenizer

    if not folder.is_dir():
        return None
    problem = damage(folder)
    if problem is None:
        try:
            return AutoTokenizer.from_pretrained(str(folder))
        except Exception as exc:  # noqa: BLE001 - tokenizers reports malformed JSON as a bare Exception
            problem = f"{folder} does not load ({type(exc).__name__}: {str(exc).strip()[:160]})"
    if not quiet:
        log.warning("damaged tokenizer cache entry: %s; rebuilding it", problem)
    return None


def save(tokenizer: Any, folder: Path) -> None:
    """Save into a temporary sibling with its checksums and rename, replacing a damaged entry."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        tokenizer.save_pretrained(str(tmp))
        (tmp / CHECKSUMS).write_text(json.dumps(_digests(tmp), indent=1) + "\n", encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
