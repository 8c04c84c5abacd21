"""Subword encoding with first-subword labels, and windowing of long sentences.

Label alignment follows the standard recipe (HF ``run_ner.py``): the first subword of each word carries
the word's label, every other position gets -100 so the loss and the metrics ignore it. A sentence
longer than ``max_length`` is cut into consecutive windows at word boundaries instead of being
truncated, so every word of the test set gets exactly one prediction.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sparsenlp.data.wikiann import LABEL2ID, Sentence

IGNORE = -100


@dataclass
class Features:
    """Encoded windows stored flat (one array each plus offsets): compact, fast to cache and to slice.

    ``word_index[j]`` is the index (within its sentence) of the word whose first subword sits at
    position j, or -1; ``sentence[i]`` is the sentence a window came from.
    """

    input_ids: np.ndarray
    labels: np.ndarray
    word_index: np.ndarray
    offsets: np.ndarray
    sentence: np.ndarray
    n_sentences: int

    def __len__(self) -> int:
        return len(self.sentence)

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def window(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo, hi = self.offsets[i], self.offsets[i + 1]
        return self.input_ids[lo:hi], self.labels[lo:hi], self.word_index[lo:hi]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "input_ids": self.input_ids, "labels": self.labels, "word_index": self.word_index,
            "offsets": self.offsets, "sentence": self.sentence, "n_sentences": np.array(self.n_sentences),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Features":
        return cls(arrays["input_ids"], arrays["labels"], arrays["word_index"], arrays["offsets"],
                   arrays["sentence"], int(arrays["n_sentences"]))

    @classmethod
    def concat(cls, parts: Sequence["Features"]) -> "Features":
        """Concatenate feature sets (multi-language training); sentence ids are renumbered."""
        offsets = [np.zeros(1, dtype=np.int64)]
        sentence, shift_tok, shift_sent = [], 0, 0
        for part in parts:
            offsets.append(part.offsets[1:] + shift_tok)
            sentence.append(part.sentence + shift_sent)
            shift_tok += int(part.offsets[-1])
            shift_sent += part.n_sentences
        return cls(
            np.concatenate([p.input_ids for p in parts]), np.concatenate([p.labels for p in parts]),
            np.concatenate([p.word_index for p in parts]), np.concatenate(offsets),
            np.concatenate(sentence), shift_sent,
        )


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a single sequence is wrapped in ([CLS] / [SEP] for BERT, <s> / </s> for XLM-R)."""
    wrapped = tokenizer("", add_special_tokens=True)["input_ids"]
    return list(wrapped[:1]), list(wrapped[1:])


def word_pieces(tokenizer, sentences: Sequence[Sentence]) -> list[list[list[int]]]:
    """Subword ids per word per sentence, in one batched fast-tokenizer call: what the model reads (the
    data facts and the perturbations' measured strength count these).

    A word the tokenizer maps to nothing (zero-width or control characters) is replaced by the unknown
    token, so it still gets a position and a prediction.
    """
    batch = tokenizer([list(s.tokens) for s in sentences], is_split_into_words=True,
                      add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False)
    unk = tokenizer.unk_token_id
    result = []
    for i, sentence in enumerate(sentences):
        pieces: list[list[int]] = [[] for _ in sentence.tokens]
        for token_id, word in zip(batch["input_ids"][i], batch.word_ids(i)):
            if word is not None:
                pieces[word].append(token_id)
        for word_ids in pieces:
            if not word_ids:
                word_ids.append(unk)
        result.append(pieces)
    return result


def encode(sentences: Sequence[Sentence], tokenizer, max_length: int,
           label2id: dict[str, int] = LABEL2ID) -> Features:
    """Encode sentences into windows of at most ``max_length`` subwords (special tokens included)."""
    prefix, suffix = special_tokens(tokenizer)
    budget = max_length - len(prefix) - len(suffix)
    if budget < 1:
        raise ValueError(f"max_length={max_length} leaves no room for subwords")
    ids: list[int] = []
    labels: list[int] = []
    words: list[int] = []
    offsets = [0]
    owner: list[int] = []

    def open_window() -> None:
        ids.extend(prefix)
        labels.extend([IGNORE] * len(prefix))
        words.extend([-1] * len(prefix))

    def close_window(sentence_index: int) -> None:
        ids.extend(suffix)
        labels.extend([IGNORE] * len(suffix))
        words.extend([-1] * len(suffix))
        offsets.append(len(ids))
        owner.append(sentence_index)

    for s_index, (sentence, pieces) in enumerate(zip(sentences, word_pieces(tokenizer, sentences))):
        open_window()
        used = 0
        for w_index, (tag, word_ids) in enumerate(zip(sentence.tags, pieces)):
            word_ids = word_ids[:budget]  # a single word longer than a window keeps its first subwords
            if used and used + len(word_ids) > budget:
                close_window(s_index)
                open_window()
                used = 0
            ids.extend(word_ids)
            labels.append(label2id[tag])
            labels.extend([IGNORE] * (len(word_ids) - 1))
            words.append(w_index)
            words.extend([-1] * (len(word_ids) - 1))
            used += len(word_ids)
        close_window(s_index)

    return Features(
        input_ids=np.asarray(ids, dtype=np.int64), labels=np.asarray(labels, dtype=np.int64),
        word_index=np.asarray(words, dtype=np.int32), offsets=np.asarray(offsets, dtype=np.int64),
        sentence=np.asarray(owner, dtype=np.int64), n_sentences=len(sentences),
    )
