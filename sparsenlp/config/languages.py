"""The `languages` group (conf/languages/): the language codes that exist and the facts compared by."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from omegaconf import MISSING


@dataclass
class LanguageEntry:
    name: str = MISSING
    script: str = MISSING  # main writing system
    family: str = MISSING  # top-level family
    genus: str = MISSING  # sub-branch
    train_size: int = MISSING  # sentences in the WikiANN training split


@dataclass
class LanguagesConfig:
    # a language is high-resource when its training set reaches this many sentences
    tier_min_train_sentences: int = 20000
    subset: Optional[List[str]] = None  # `lang=all`: only these (null: every code in `langs`)
    exclude: List[str] = field(default_factory=list)  # `lang=all`: minus these
    langs: Dict[str, LanguageEntry] = field(default_factory=dict)
