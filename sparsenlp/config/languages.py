"""The `languages` group (conf/languages/): the language codes that exist and the facts compared by.

Entries are ``sparsenlp.languages.Language``, the one type of a language's facts; every consumer (data loading,
entity-swap pools, W&B tags, the record, the report) asks ``LanguagesConfig`` for codes, facts and tiers.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Dict, List, Optional

from sparsenlp.errors import SparseNLPError
from sparsenlp.languages import HIGH, LOW, Language
from sparsenlp.options import Each, Free, Group, OneOf, Pattern, at_least, option

ALL = "all"
GROUPINGS = ("script", "family")
CODE = Pattern(r"[a-z]{2,3}", "de")


@dataclass
class LanguagesConfig(Group):
    KEY: ClassVar[str] = "languages"

    tier_min_train_sentences: int = option(
        20000, "a language is high-resource when its WikiANN training set has at least this many sentences",
        at_least(1))
    subset: Optional[List[str]] = option(None, "lang=all: only these codes (null: every code in langs)",
                                         Each(CODE, non_empty=True))
    exclude: List[str] = option(help="lang=all: minus these codes", check=Each(CODE), factory=list)
    langs: Dict[str, Language] = option(help="code -> facts of every language a run may name",
                                        check=Free("checked entry by entry"), factory=dict, nested=True)

    def check(self, path: str) -> None:
        for code in [*self.langs, *(self.subset or ()), *self.exclude]:
            problem = CODE.problem(code)
            if problem:
                raise SparseNLPError(f"{path}langs: language code {code!r} {problem}")
        unknown = [c for c in [*(self.subset or ()), *self.exclude] if c not in self.langs]
        if unknown:
            raise SparseNLPError(f"{path}subset/exclude name {', '.join(unknown)}, not in {path}langs; fix the codes")

    # ------------------------------------------------------------------ lookups
    def facts(self, code: str) -> Language:
        """The facts of one language; an unknown code is a user error naming the known ones."""
        if code not in self.langs:
            raise SparseNLPError(f"unknown language code '{code}'; use one of: {' '.join(sorted(self.langs))} "
                                 "(or lang=all)")
        return self.langs[code]

    def tier(self, code: str) -> str:
        """``high`` when the language's training set reaches ``tier_min_train_sentences``, else ``low``."""
        return HIGH if self.facts(code).train_size >= self.tier_min_train_sentences else LOW

    def codes(self) -> list[str]:
        """What `lang=all` means: every code of `langs`, restricted to `subset` when set, minus `exclude`."""
        codes = list(self.subset) if self.subset else list(self.langs)
        excluded = set(self.exclude)
        return [c for c in codes if c not in excluded]

    def resolve(self, value: str | Sequence[str], key: str = "lang") -> list[str]:
        """A `lang`-style value (a code, a list of codes, or 'all') as a checked list of codes."""
        if isinstance(value, str):
            codes = self.codes() if value == ALL else [c.strip() for c in value.split(",")]
        else:
            codes = [str(c) for c in value]
        if not codes:
            raise SparseNLPError(f"`{key}` selects no language; give a code ({key}=de), a list ({key}=[de,fr]) "
                                 f"or {key}=all")
        for code in codes:
            self.facts(code)
        return list(dict.fromkeys(codes))

    def sharing(self, code: str, attribute: str) -> list[str]:
        """The other languages with the same ``script`` or ``family`` as ``code``, sorted (entity-swap pools)."""
        problem = OneOf(GROUPINGS).problem(attribute)
        if problem:
            raise SparseNLPError(f"languages can be grouped by {' or '.join(GROUPINGS)}, not {attribute!r}")
        mine = getattr(self.facts(code), attribute)
        return sorted(c for c, e in self.langs.items() if c != code and getattr(e, attribute) == mine)
