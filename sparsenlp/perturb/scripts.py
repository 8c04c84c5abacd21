"""What script a character is written in, and what a reader counts as one character.

Perturbations decide per character, from Unicode, never from a language's configured script: a Georgian
test set holds Latin words, a Chinese one Latin names. ``script`` is the character's Unicode Script
property (ISO 15924 code: ``Latn``, ``Deva``, ``Hani``; ``Zyyy`` for digits and punctuation, ``Zinh`` for
marks that take their base's script), from the Scripts.txt table fontTools ships. ``clusters`` splits
text into extended grapheme clusters (the ``regex`` module's ``\\X``): what a reader sees as one character,
so that ``दि`` (a consonant and its vowel sign) or ``é`` written with a combining accent is one unit in
every script, and a character share means the same for Devanagari as for Latin.
"""
from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

import regex
from fontTools import unicodedata as ucd

NO_SCRIPT = frozenset({"Zyyy", "Zinh", "Zzzz"})  # Common, Inherited, Unknown
_CLUSTER = regex.compile(r"\X")


@lru_cache(maxsize=65536)
def script(char: str) -> str:
    """The ISO 15924 code of ``char``'s Unicode script (``Zyyy`` for digits and punctuation)."""
    return ucd.script(char)


def script_name(code: str) -> str:
    """``Deva`` -> ``Devanagari``."""
    return ucd.script_name(code)


def is_letter(char: str) -> bool:
    """Unicode general category L* (letters and syllables; not marks, digits or punctuation)."""
    return unicodedata.category(char).startswith("L")


def clusters(text: str) -> list[str]:
    """``text`` as user-perceived characters (extended grapheme clusters)."""
    return _CLUSTER.findall(text)


def letter_script(cluster: str) -> str | None:
    """The script of the first letter in ``cluster`` that belongs to a script; None when it has none (digits,
    punctuation, and letters common to several scripts such as the Arabic tatweel)."""
    for char in cluster:
        if is_letter(char) and script(char) not in NO_SCRIPT:
            return script(char)
    return None


def letters_by_script(words: Iterable[str]) -> Counter[str]:
    """How many letters of ``words`` each script has (the profile a condition's scripts are checked on);
    letters that belong to no one script are not counted."""
    counts: Counter[str] = Counter()
    for word in words:
        counts.update(code for code in map(script, filter(is_letter, word)) if code not in NO_SCRIPT)
    return counts


def main_scripts(counts: Counter[str], codes: Iterable[str] | None = None) -> list[str]:
    """The scripts among ``codes`` (default: all) that hold most letters of ``counts``, largest first, until
    they hold half of the letters of ``codes``: ``['Hani', 'Kana']`` for Japanese."""
    wanted = set(codes) if codes is not None else set(counts)
    total = sum(n for code, n in counts.items() if code in wanted)
    main, held = [], 0
    for code, n in counts.most_common():
        if code in wanted and held < total / 2:
            main.append(code)
            held += n
    return main
