"""The `data` group (conf/data/): where WikiANN comes from and how it is cut into windows."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sparsenlp.errors import SparseNLPError

SOURCES = ("auto", "hub", "local")


@dataclass
class DataConfig:
    name: str = "wikiann"
    # auto: local files when `root` is set, else the Hugging Face Hub; hub; local
    source: str = "auto"
    root: Optional[str] = None  # folder with <lang>/{train,dev,test} ('TOKEN<TAB>TAG' lines)
    max_length: int = 128  # subwords per window incl. special tokens; longer sentences become several windows
    train_limit: Optional[int] = None  # first N sentences per language (null: all)
    dev_limit: Optional[int] = None
    test_limit: Optional[int] = None
    # encoded splits + trained tokenizers; null: no cache
    cache_dir: Optional[str] = "${oc.env:SPARSENLP_CACHE,${oc.env:HOME,.}/.cache/sparsenlp}"
    hub_cache_dir: Optional[str] = None  # datasets' own cache (null: its default)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise SparseNLPError(f"data.source={self.source!r} is unknown; use one of {', '.join(SOURCES)}")
        if self.source == "local" and self.root is None:
            raise SparseNLPError("data.source=local needs data.root=/path/to/wikiann")
        for split in ("train", "dev", "test"):
            limit = getattr(self, f"{split}_limit")
            if limit is not None and limit <= 0:
                raise SparseNLPError(f"data.{split}_limit={limit} must be a positive number of sentences or null")
        if self.max_length < 8:
            raise SparseNLPError(f"data.max_length={self.max_length} is too short; use e.g. 128")

    @property
    def resolved_source(self) -> str:
        """``hub`` or ``local``: what ``auto`` means for this config."""
        if self.source == "auto":
            return "local" if self.root is not None else "hub"
        return self.source

    def limit(self, split: str) -> Optional[int]:
        return getattr(self, f"{split}_limit")
