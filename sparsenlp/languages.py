"""The one type of a language's facts.

Config entries (``languages.langs.<code>``) are ``Language``s, the record's per-language section is generated
from its fields (``tracking/schema.py``), and the analysis reads them from records; ``LanguagesConfig``
(``sparsenlp/config/languages.py``) holds them and says which codes exist and each one's tier.
"""
from __future__ import annotations

from dataclasses import dataclass

from sparsenlp.options import Free, at_least, option

HIGH, LOW = "high", "low"
TIERS = (HIGH, LOW)


@dataclass
class Language:
    """Facts about one WikiANN language."""

    name: str = option(help="English name, e.g. Swahili", check=Free("a display name"))
    script: str = option(help="main writing system, e.g. Latin, Devanagari", check=Free("a script name"))
    family: str = option(help="top-level language family (Glottolog)", check=Free("a family name"))
    genus: str = option(help="sub-branch of the family", check=Free("a genus name"))
    train_size: int = option(help="sentences in the WikiANN training split", check=at_least(1))
