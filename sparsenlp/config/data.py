"""The `data` group (conf/data/): where WikiANN comes from and how it is cut into windows."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

import hydra.utils

from sparsenlp.errors import SparseNLPError
from sparsenlp.options import Free, Group, OneOf, Range, at_least, option

SOURCES = ("auto", "hub", "local")
LIMIT = at_least(1)
PATH = Free("a folder; whether it exists is checked when the data is read, with the fix")


@dataclass
class DataConfig(Group):
    KEY: ClassVar[str] = "data"

    name: str = option("wikiann", "the dataset (WikiANN / PAN-X NER)", OneOf(("wikiann",)))
    source: str = option("auto", "auto: local files when `root` is set, else the Hugging Face Hub; hub; local",
                         OneOf(SOURCES))
    root: Optional[str] = option(None, "folder with <lang>/{train,dev,test} ('TOKEN<TAB>TAG' lines)", PATH)
    max_length: int = option(128, "subwords per window incl. special tokens; longer sentences become several "
                             "windows (never truncated)", Range(low=8, integer=True))
    train_limit: Optional[int] = option(None, "first N training sentences per language (null: all)", LIMIT)
    dev_limit: Optional[int] = option(None, "first N dev sentences per language (null: all)", LIMIT)
    test_limit: Optional[int] = option(None, "first N test sentences per language (null: all)", LIMIT)
    cache_dir: Optional[str] = option("${oc.env:SPARSENLP_CACHE,${oc.env:HOME,.}/.cache/sparsenlp}",
                                      "encoded splits and trained tokenizers (null: no cache)", PATH)
    hub_cache_dir: Optional[str] = option(None, "the datasets library's own cache (null: its default)", PATH)

    def check(self, path: str) -> None:
        if self.source == "local" and self.root is None:
            raise SparseNLPError(f"{path}source=local needs {path}root=/path/to/wikiann")

    @property
    def resolved_source(self) -> str:
        """``hub`` or ``local``: what ``auto`` means for this config."""
        if self.source == "auto":
            return "local" if self.root is not None else "hub"
        return self.source

    def missing_languages(self, codes: Sequence[str]) -> list[str]:
        """The codes that have no folder under ``root`` when the data is read from local files (none when it comes
        from the Hub): ``lang=all`` and ``lang=each`` leave them out offline, instead of failing at the first read
        hours into a sweep. A relative ``root`` is taken from where the run was launched."""
        if self.resolved_source == "hub":
            return []
        root = Path(hydra.utils.to_absolute_path(str(self.root)))
        return [code for code in codes if not (root / code).is_dir()]

    def limit(self, split: str) -> Optional[int]:
        return getattr(self, f"{split}_limit")
