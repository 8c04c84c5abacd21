"""Language metadata (conf/languages/): which codes exist, and each one's tier, script and family.

The study compares languages by resource tier, script and family, so those facts live in config next
to the code list, and every consumer (data loading, entity-swap pools, W&B tags, the report) asks here.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sparsenlp.errors import SparseNLPError


@dataclass(frozen=True)
class LanguageInfo:
    code: str
    name: str
    script: str
    family: str
    genus: str
    train_size: int
    tier: str


def _langs(languages: Mapping[str, Any]) -> Mapping[str, Any]:
    return languages["langs"]


def tier(languages: Mapping[str, Any], code: str) -> str:
    """'high' when the WikiANN training set reaches the configured size, else 'low'."""
    size = int(info_entry(languages, code)["train_size"])
    return "high" if size >= int(languages["tier_min_train_sentences"]) else "low"


def info_entry(languages: Mapping[str, Any], code: str) -> Mapping[str, Any]:
    langs = _langs(languages)
    if code not in langs:
        known = " ".join(sorted(langs))
        raise SparseNLPError(f"unknown language code '{code}'; use one of: {known} (or lang=all)")
    return langs[code]


def info(languages: Mapping[str, Any], code: str) -> LanguageInfo:
    entry = info_entry(languages, code)
    return LanguageInfo(
        code=code,
        name=str(entry["name"]),
        script=str(entry["script"]),
        family=str(entry["family"]),
        genus=str(entry.get("genus", entry["family"])),
        train_size=int(entry["train_size"]),
        tier=tier(languages, code),
    )


def resolve_langs(lang: str | Sequence[str], languages: Mapping[str, Any]) -> list[str]:
    """Turn the `lang` config value (a code, a list of codes, or 'all') into a checked list of codes."""
    if isinstance(lang, str):
        if lang == "all":
            subset = languages.get("subset")
            codes = list(subset) if subset else list(_langs(languages))
            excluded = set(languages.get("exclude") or [])
            codes = [c for c in codes if c not in excluded]
        else:
            codes = [c.strip() for c in lang.split(",")] if "," in lang else [lang]
    else:
        codes = [str(c) for c in lang]
    if not codes:
        raise SparseNLPError("`lang` selects no language; give a code (lang=de), a list (lang=[de,fr]) or lang=all")
    for code in codes:
        info_entry(languages, code)
    return list(dict.fromkeys(codes))


def same_script(languages: Mapping[str, Any], code: str) -> list[str]:
    """Other languages written in the same script (entity-swap pools)."""
    me = info_entry(languages, code)
    return [c for c, e in _langs(languages).items() if c != code and e["script"] == me["script"]]


def same_family(languages: Mapping[str, Any], code: str) -> list[str]:
    """Other languages of the same top-level family (entity-swap pools)."""
    me = info_entry(languages, code)
    return [c for c, e in _langs(languages).items() if c != code and e["family"] == me["family"]]
