"""WikiANN (PAN-X) loading: the Hugging Face Hub dataset, or local files in the original format.

Local layout: ``<root>/<lang>/{train,dev,test}``, one ``TOKEN<TAB>TAG`` per line (the original PAN-X
files prefix every token with ``<lang>:``; both forms are read), a blank line between sentences.
Both sources produce the same ``Sentence`` objects, so everything downstream is source-agnostic.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sparsenlp.errors import SparseNLPError

LABELS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
LABEL2ID: dict[str, int] = {label: i for i, label in enumerate(LABELS)}
SPLITS: tuple[str, ...] = ("train", "dev", "test")
HUB_DATASET = "unimelb-nlp/wikiann"
_HUB_SPLIT = {"train": "train", "dev": "validation", "test": "test"}


@dataclass(frozen=True)
class Sentence:
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    lang: str


@contextlib.contextmanager
def _utf8_file(path: Path) -> Iterator[TextIO]:
    """The open file; a byte that is not UTF-8 is an error naming the line, not a 30-line traceback."""
    with path.open(encoding="utf-8") as handle:
        try:
            yield handle
        except UnicodeDecodeError:
            raise _not_utf8(path) from None


def _not_utf8(path: Path) -> SparseNLPError:
    """Where the first invalid byte is (the text reader decodes in chunks, so its error cannot say)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return SparseNLPError(
            f"line {line} of {path} is not UTF-8 (byte 0x{data[exc.start]:02x} at column {column}); WikiANN files "
            f"are UTF-8: fix that line or re-encode the file (iconv -f <its encoding> -t UTF-8)"
        )
    return SparseNLPError(f"{path} changed while it was read; run again")


def read_wikiann_file(path: Path, lang: str, limit: int | None = None) -> list[Sentence]:
    """Read one split file; a malformed line is an error naming the file and the line number."""
    if not path.is_file():
        raise _missing_split(path)
    prefix = f"{lang}:"
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    prefixed: bool | None = None

    def flush() -> None:
        if tokens:
            sentences.append(Sentence(tuple(tokens), tuple(tags), lang))
            tokens.clear()
            tags.clear()

    with _utf8_file(path) as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip():
                flush()
                if limit is not None and len(sentences) >= limit:
                    break
                continue
            fields = line.split("\t")
            if len(fields) != 2 or not fields[0] or fields[1] not in LABEL2ID:
                raise SparseNLPError(
                    f"malformed line {number} in {path}: expected 'TOKEN<TAB>TAG' with TAG in "
                    f"{' '.join(LABELS)}, got {line[:60]!r}; fix or remove that line"
                )
            token, tag = fields
            if prefixed is None:
                prefixed = token.startswith(prefix)
            if prefixed:
                if not token.startswith(prefix) or len(token) == len(prefix):
                    raise SparseNLPError(
                        f"malformed line {number} in {path}: this file prefixes tokens with '{prefix}' "
                        f"but this line does not ({line[:60]!r}); fix that line"
                    )
                token = token[len(prefix):]
            tokens.append(token)
            tags.append(tag)
    if limit is None or len(sentences) < limit:
        flush()
    if not sentences:
        raise SparseNLPError(f"no sentences in {path}; is it a WikiANN file?")
    return sentences


def _missing_split(path: Path) -> SparseNLPError:
    return SparseNLPError(f"WikiANN split not found: {path}; point data.root at a folder with <lang>/{{train,dev,test}} "
                          f"or use data.source=hub")


def local_split(root: Path, lang: str, split: str) -> Path:
    """The file of a local split; SparseNLPError naming what is missing and the fix (checked before a sweep
    starts, and by every job before it reads anything)."""
    lang_dir = root / lang
    if root.exists() and not root.is_dir():
        raise SparseNLPError(f"data.root {root} is a file, not a folder; set data.root to the folder that holds "
                             "<lang>/train, dev and test, or use data.source=hub")
    if not root.is_dir():
        raise SparseNLPError(f"data.root {root} does not exist; set data.root to the WikiANN folder or use data.source=hub")
    if not lang_dir.is_dir():
        raise SparseNLPError(
            f"no WikiANN folder for language '{lang}' under {root}; add {lang_dir}/{{train,dev,test}}, "
            f"drop '{lang}' from lang, or use data.source=hub"
        )
    if not (lang_dir / split).is_file():
        raise _missing_split(lang_dir / split)
    return lang_dir / split


def load_local(root: Path, lang: str, split: str, limit: int | None = None) -> list[Sentence]:
    return read_wikiann_file(local_split(root, lang, split), lang, limit)


def load_hub(lang: str, split: str, limit: int | None = None, cache_dir: str | None = None) -> list[Sentence]:
    """The default for users with network access: ``datasets.load_dataset('unimelb-nlp/wikiann', lang)``."""
    import datasets

    hub_split = _HUB_SPLIT[split] if limit is None else f"{_HUB_SPLIT[split]}[:{limit}]"
    try:
        ds = datasets.load_dataset(HUB_DATASET, lang, split=hub_split, cache_dir=cache_dir)
    except Exception as exc:  # noqa: BLE001 - any failure here means "cannot reach or read the hub copy"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SparseNLPError(
            f"could not load WikiANN '{lang}' from the Hugging Face Hub ({reason[:160]}); without network "
            f"use data.source=local data.root=/path/to/wikiann (folders <lang>/train|dev|test)"
        ) from None
    names = ds.features["ner_tags"].feature.names
    return [
        Sentence(tuple(row["tokens"]), tuple(names[t] for t in row["ner_tags"]), lang)
        for row in ds
    ]


def load_split(source: str, root: str | Path | None, lang: str, split: str, limit: int | None = None,
               cache_dir: str | None = None) -> list[Sentence]:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}")
    if limit is not None and limit <= 0:
        raise SparseNLPError(f"data.{split}_limit must be a positive number of sentences or null, got {limit}")
    if source == "local":
        if root is None:
            raise SparseNLPError("data.source=local needs data.root=/path/to/wikiann")
        return load_local(Path(root), lang, split, limit)
    if source == "hub":
        return load_hub(lang, split, limit, cache_dir)
    raise SparseNLPError(f"unknown data.source '{source}'; use data.source=hub or data.source=local")


def fingerprint(source: str, root: str | Path | None, lang: str, split: str) -> str:
    """Identity of the raw split for cache keys: local files by path, size and mtime; hub by name."""
    if source == "local" and root is not None:
        path = Path(root) / lang / split
        stat = path.stat()
        return f"local:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return f"hub:{HUB_DATASET}:{lang}:{split}"
