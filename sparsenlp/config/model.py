"""The `model` group (conf/model/): which encoder is fine-tuned, and its tokenizer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from sparsenlp.errors import SparseNLPError
from sparsenlp.options import POSITIVE, Free, Group, Range, at_least, option

TRAIN_TOKENIZER = "train"
SPEC = Free("a Hub id, a folder or pkg://; checked when the model is built, with the fix")


@dataclass
class ArchitectureConfig:
    """A BERT built from scratch (random weights) when ``model.name_or_path`` is null."""

    hidden_size: int = option(128, "width of the residual stream", at_least(1))
    num_hidden_layers: int = option(2, "encoder layers", at_least(1))
    num_attention_heads: int = option(2, "attention heads per layer (must divide hidden_size)", at_least(1))
    intermediate_size: int = option(512, "FFN width", at_least(1))
    max_position_embeddings: int = option(512, "longest input in subwords", at_least(8))
    hidden_dropout_prob: float = option(0.1, "dropout on hidden states", Range(0.0, 1.0, open_high=True))
    attention_probs_dropout_prob: float = option(0.1, "dropout on attention weights", Range(0.0, 1.0, open_high=True))

    def check(self, path: str) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise SparseNLPError(f"{path}hidden_size={self.hidden_size} is not a multiple of {path}num_attention_heads="
                                 f"{self.num_attention_heads}; change one of them")


@dataclass
class ModelConfig(Group):
    KEY: ClassVar[str] = "model"

    name: str = option(help="the model's name in records and reports (mbert, xlmr, minilm, tiny)",
                       check=Free("a label"))
    name_or_path: Optional[str] = option(None, "Hub id, local folder, or pkg://<package>/<folder>; null: build "
                                         "`architecture` with random weights", SPEC)
    lr: float = option(5.0e-5, "the model's recommended fine-tuning LR (trainer.lr defaults to it)", POSITIVE)
    tokenizer: Optional[str] = option(None, "null: the model's own; a folder or Hub id; `train`: WordPiece trained "
                                      "on the run's training text", SPEC)
    vocab_size: int = option(8000, "vocabulary of tokenizer=train", at_least(100))
    revision: Optional[str] = option(None, "Hub revision (branch, tag or commit)", Free("any Hub revision"))
    attn_implementation: Optional[str] = option(None, "null: transformers' default (sdpa); eager for debugging",
                                                Free("checked by transformers when the model is built"))
    architecture: Optional[ArchitectureConfig] = option(None, "a model from scratch (see conf/model/tiny.yaml)",
                                                        Free("checked key by key"), nested=True)

    def check(self, path: str) -> None:
        if (self.name_or_path is None) == (self.architecture is None):
            raise SparseNLPError(f"set exactly one of {path}name_or_path (a pretrained model) and {path}architecture "
                                 "(a model from scratch, see conf/model/tiny.yaml)")
        if self.tokenizer == TRAIN_TOKENIZER and self.name_or_path is not None:
            raise SparseNLPError(f"{path}tokenizer=train would not match the vocabulary of {self.name_or_path}; "
                                 f"use {path}tokenizer=null (the model's own) or model=tiny")
        if self.name_or_path is None and self.tokenizer is None:
            raise SparseNLPError(f"a model built from {path}architecture needs {path}tokenizer (train or a folder)")


__all__ = ["ArchitectureConfig", "ModelConfig", "TRAIN_TOKENIZER"]
