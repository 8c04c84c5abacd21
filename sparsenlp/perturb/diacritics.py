"""Diacritic stripping: text typed without its optional marks ("Sao Paulo"), common in user-written input.

Only marks a script can do without are removed, decided per mark from its code point and the script of
the letter it sits on (:data:`OPTIONAL_MARKS`):

- Latin, Greek, Cyrillic: the generic combining accents (U+0300–U+036F, U+1AB0–U+1AFF, U+1DC0–U+1DFF):
  acute, grave, circumflex, tilde, diaeresis, cedilla, ogonek, breve, tonos, the Greek breathings and iota
  subscript. ``é``, ``ş``, ``ё``, ``ά`` lose them; letters with no decomposition (``ø``, ``đ``, ``ł``, ``ı``)
  are letters of their own and stay.
- Arabic: the short-vowel, nunation, shadda and sukun signs (harakat, U+064B–U+0652), which ordinary
  Arabic, Persian and Urdu text omits. The hamza and madda that spell ``أ`` or ``آ`` stay.
- Hebrew: the niqqud and cantillation points (the nonspacing marks of U+0591–U+05C7), which unpointed
  Hebrew omits.

Every other mark stays, above all the vowel signs, viramas and nuktas of the abugidas (Devanagari,
Bengali, Tamil, Myanmar, ...), without which a word is misspelt (``दिल्ली`` stays ``दिल्ली``). Letters are
decomposed canonically (NFD, never NFKD), so ligatures and full-width forms are not touched, and a
character is recomposed (NFC) only when a mark was taken from it; everything else keeps its code points.
"""
from __future__ import annotations

import unicodedata
from typing import Sequence

import numpy as np

from sparsenlp.perturb.base import Perturbed
from sparsenlp.perturb.scripts import script

_ACCENTS = ((0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF))
# script of the base letter -> the code point ranges of the marks it can lose
OPTIONAL_MARKS: dict[str, tuple[tuple[int, int], ...]] = {
    "Latn": _ACCENTS, "Grek": _ACCENTS, "Cyrl": _ACCENTS,
    "Arab": ((0x064B, 0x0652),),
    "Hebr": ((0x0591, 0x05C7),),
}
SCRIPTS = frozenset(OPTIONAL_MARKS)


def optional(mark: str, base_script: str | None) -> bool:
    """Whether ``mark`` is a nonspacing mark that text in ``base_script`` may drop."""
    if base_script not in OPTIONAL_MARKS or unicodedata.category(mark) != "Mn":
        return False
    code = ord(mark)
    return any(lo <= code <= hi for lo, hi in OPTIONAL_MARKS[base_script])


def strip_token(token: str) -> str:
    """``token`` without its optional marks (see the module docstring); unchanged when it has none."""
    out: list[str] = []
    base: str | None = None  # script of the last letter, which a following combining mark belongs to
    for char in token:
        if unicodedata.combining(char) or unicodedata.category(char) == "Mn":
            if not optional(char, base):
                out.append(char)
            continue
        parts = unicodedata.normalize("NFD", char)
        base = script(parts[0])
        if len(parts) > 1:
            kept = parts[0] + "".join(m for m in parts[1:] if not optional(m, base))
            if len(kept) < len(parts):
                char = unicodedata.normalize("NFC", kept)
        out.append(char)
    return "".join(out)


def strip_diacritics(
    tokens: Sequence[str], tags: Sequence[str], rng: np.random.Generator, severity: float
) -> Perturbed:
    """Strip optional diacritics from each token with probability ``severity`` (1 = every token).

    One uniform draw per token whatever the severity, so the tokens changed at a lower severity are
    changed, the same way, at any higher one.
    """
    chosen = rng.random(len(tokens)) < severity
    return Perturbed(
        tokens=tuple(strip_token(t) if c else t for t, c in zip(tokens, chosen)),
        tags=tuple(tags),
    )
