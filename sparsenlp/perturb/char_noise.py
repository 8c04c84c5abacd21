"""Typo-like character noise whose severity means the same in every script.

``severity`` is the expected share of letters edited: each character that holds a letter (an extended
grapheme cluster, so ``दि`` or ``မြို့`` is one character, as a reader sees it) is edited with probability
``severity``, independently. A Chinese sentence (one character a word in WikiANN) and an English one
therefore lose the same share of their characters, where a per-word typo would edit ~30% of Chinese
characters but ~5% of English ones at the same severity. Digits and punctuation are never edited.

An edit is one of three single-character operations, equally likely: substitute the character by
another, delete it, or insert a character after it. Inserted and substituted characters are letters of
the same sentence *in the same script* as the edited one (sorted, so draws are reproducible), which
keeps the noise in the sentence's own script; when the sentence has no fitting one, the next letter of
that script in code point order is used. A substitute differs from the character it replaces and an
insertion from both its neighbours, so edits never cancel out: a word changed at a lower severity is
changed at any higher one. A swap of neighbours is not among the operations: it edits two characters, so
a per-character rate could not say how many it changed.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from sparsenlp.perturb.base import Perturbed
from sparsenlp.perturb.scripts import clusters, is_letter, letter_script, script

OPS = ("substitute", "delete", "insert")


def _spare(code: str, avoid: set[str], start: str) -> str:
    """The first letter of script ``code`` after ``start``'s first character in code point order (wrapping
    around) that is not in ``avoid``: an in-script letter for a sentence that offers none."""
    first = ord(start[0])
    for offset in range(1, 0x110000):
        char = chr((first + offset) % 0x110000)
        if char not in avoid and is_letter(char) and script(char) == code:
            return char
    raise ValueError(f"script {code} has no letter outside {sorted(avoid)}")


def _edit(char: str, op: str, after: str | None, code: str, alphabet: Sequence[str], u: float) -> str:
    """What one edited character becomes: nothing (delete), another letter of its script (substitute), or
    itself followed by a letter of its script that is neither itself nor the character after it (insert)."""
    if op == "delete":
        return ""
    avoid = {char} if op == "substitute" else {char, after or char}
    options = [c for c in alphabet if c not in avoid] or [_spare(code, avoid, char)]
    new = options[int(u * len(options))]
    return new if op == "substitute" else char + new


def _noisy_word(word: list[str], draws: np.ndarray, severity: float, alphabets: dict[str, list[str]]) -> str:
    scripts = [letter_script(c) for c in word]
    hit = [s is not None and d[0] < severity for s, d in zip(scripts, draws)]
    ops = [OPS[int(d[1] * len(OPS))] for d in draws]
    if word and all(h and op == "delete" for h, op in zip(hit, ops)):
        # the word would vanish: its last character to be hit as severity rises is substituted instead,
        # so the characters hit at a lower severity keep their edits
        ops[int(np.argmax(draws[:, 0]))] = "substitute"
    return "".join(
        _edit(c, op, word[i + 1] if i + 1 < len(word) else None, s, alphabets[s], d[2]) if h else c
        for i, (c, s, h, op, d) in enumerate(zip(word, scripts, hit, ops, draws))
    )


def char_noise(
    tokens: Sequence[str], tags: Sequence[str], rng: np.random.Generator, severity: float
) -> Perturbed:
    """Edit each letter-bearing character with probability ``severity`` (see the module docstring).

    Three draws per character are taken whatever the severity, so a character edited at a lower severity
    gets the same edit at any higher one. Words never become empty.
    """
    words = [clusters(t) for t in tokens]
    alphabets: dict[str, set[str]] = {}
    for word in words:
        for c in word:
            s = letter_script(c)
            if s is not None:
                alphabets.setdefault(s, set()).add(c)
    ordered = {s: sorted(chars) for s, chars in alphabets.items()}
    draws = rng.random((sum(len(w) for w in words), 3))
    out, start = [], 0
    for word in words:
        out.append(_noisy_word(word, draws[start : start + len(word)], severity, ordered))
        start += len(word)
    return Perturbed(tokens=tuple(out), tags=tuple(tags))
