"""How strongly a perturbation changed a test set: the dose its robustness gap is a response to.

Two languages' gaps compare only when their test sets were changed as much, so every condition's
strength is measured on the text itself, per language:

- ``sentences_changed``: share of sentences whose tokens differ from the clean ones;
- ``characters_changed``: Levenshtein distance between the clean and the perturbed sentence, counted in
  user-perceived characters (grapheme clusters) of its words, summed over sentences, over the clean
  sentences' characters. Spaces between words are not counted: WikiANN writes Chinese and Japanese one
  character a word, so spaces would be half their text;
- ``subwords_changed``: the same over the run's tokenizer's subword ids (what the model reads);
- ``unk_before`` / ``unk_after``: share of those subwords that are the unknown token, clean / perturbed.

Distances above the length (an entity swapped for a longer one) make a share above 1; a deletion
counts as one change, so dropping words (``context_drop``) changes their characters' share.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from sparsenlp.perturb.scripts import clusters


@dataclass(frozen=True)
class Strength:
    sentences_changed: float
    characters_changed: float
    subwords_changed: float
    unk_before: float
    unk_after: float


def _characters(tokens: Sequence[str]) -> list[str]:
    return [c for token in tokens for c in clusters(token)]


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def measure(clean: Sequence[Sequence[str]], perturbed: Sequence[Sequence[str]],
            clean_ids: Sequence[Sequence[int]], perturbed_ids: Sequence[Sequence[int]],
            unk_id: int | None) -> Strength:
    """The strength of one condition on one test set: ``clean`` / ``perturbed`` tokens per sentence and
    their subword ids (``unk_id``: the tokenizer's unknown token, None when it has none)."""
    if not len(clean) == len(perturbed) == len(clean_ids) == len(perturbed_ids):
        raise ValueError("clean and perturbed sentences and their subword ids must be parallel")
    changed = chars = char_edits = subwords = subword_edits = unk_clean = unk_perturbed = 0
    for before, after, ids_before, ids_after in zip(clean, perturbed, clean_ids, perturbed_ids):
        text = _characters(before)
        chars += len(text)
        subwords += len(ids_before)
        unk_clean += sum(i == unk_id for i in ids_before)
        unk_perturbed += sum(i == unk_id for i in ids_after)
        if tuple(before) == tuple(after):
            continue
        changed += 1
        char_edits += Levenshtein.distance(text, _characters(after))
        subword_edits += Levenshtein.distance(list(ids_before), list(ids_after))
    return Strength(
        sentences_changed=_share(changed, len(clean)), characters_changed=_share(char_edits, chars),
        subwords_changed=_share(subword_edits, subwords), unk_before=_share(unk_clean, subwords),
        unk_after=_share(unk_perturbed, sum(len(ids) for ids in perturbed_ids)),
    )
