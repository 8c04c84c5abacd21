"""Language metadata (conf/languages/): which codes exist, and each one's tier, script and family.

The study compares languages by resource tier, script and family, so those facts live in config next
to the code list, and every consumer (data loading, entity-swap pools, W&B tags, the record, the
report) asks here.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sparsenlp.config.languages import LanguagesConfig
from sparsenlp.errors import SparseNLPError

ALL = "all"
HIGH, LOW = "high", "low"


@dataclass(frozen=True)
class LanguageInfo:
    code: str
    name: str
    script: str
    family: str
    genus: str
    train_size: int
    tier: str


def info(languages: LanguagesConfig, code: str) -> LanguageInfo:
    """Facts about one language; an unknown code is a user error naming the known ones."""
    if code not in languages.langs:
        known = " ".join(sorted(languages.langs))
        raise SparseNLPError(f"unknown language code '{code}'; use one of: {known} (or lang=all)")
    entry = languages.langs[code]
    tier = HIGH if entry.train_size >= languages.tier_min_train_sentences else LOW
    return LanguageInfo(code, entry.name, entry.script, entry.family, entry.genus, entry.train_size, tier)


def all_codes(languages: LanguagesConfig) -> list[str]:
    """What `lang=all` means: every code of `langs`, restricted to `subset` when set, minus `exclude`."""
    codes = list(languages.subset) if languages.subset else list(languages.langs)
    excluded = set(languages.exclude)
    return [c for c in codes if c not in excluded]


def resolve_langs(value: str | Sequence[str], languages: LanguagesConfig, key: str = "lang") -> list[str]:
    """Turn a `lang`-style config value (a code, a list of codes, or 'all') into a checked list of codes."""
    if isinstance(value, str):
        codes = all_codes(languages) if value == ALL else [c.strip() for c in value.split(",")]
    else:
        codes = [str(c) for c in value]
    if not codes:
        raise SparseNLPError(f"`{key}` selects no language; give a code ({key}=de), a list ({key}=[de,fr]) "
                             f"or {key}=all")
    for code in codes:
        info(languages, code)
    return list(dict.fromkeys(codes))


def sharing(languages: LanguagesConfig, code: str, attribute: str) -> list[str]:
    """The other languages with the same ``script`` or ``family`` as ``code``, sorted (entity-swap pools)."""
    if attribute not in ("script", "family"):
        raise SparseNLPError(f"languages can be grouped by script or family, not {attribute!r}")
    mine = getattr(info(languages, code), attribute)
    return sorted(c for c, e in languages.langs.items() if c != code and getattr(e, attribute) == mine)
