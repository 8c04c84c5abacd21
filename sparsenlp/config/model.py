"""The `model` group (conf/model/): which encoder is fine-tuned, and its tokenizer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from omegaconf import MISSING

from sparsenlp.errors import SparseNLPError

TRAIN_TOKENIZER = "train"


@dataclass
class ArchitectureConfig:
    """A BERT built from scratch (random weights) when ``model.name_or_path`` is null."""

    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 512
    max_position_embeddings: int = 512
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise SparseNLPError(
                f"model.architecture.hidden_size={self.hidden_size} is not a multiple of num_attention_heads="
                f"{self.num_attention_heads}; change one of them"
            )


@dataclass
class ModelConfig:
    name: str = MISSING
    # Hub id, local folder, or pkg://<package>/<folder>; null: build `architecture` with random weights
    name_or_path: Optional[str] = None
    lr: float = 5.0e-5  # the model's recommended fine-tuning LR (trainer.lr defaults to it)
    # null: the model's own; a folder or Hub id; `train`: WordPiece trained on the run's training text
    tokenizer: Optional[str] = None
    vocab_size: int = 8000  # for tokenizer=train
    revision: Optional[str] = None  # Hub revision (branch, tag or commit)
    attn_implementation: Optional[str] = None  # null: transformers' default (sdpa); eager for debugging
    architecture: Optional[ArchitectureConfig] = None

    def __post_init__(self) -> None:
        if (self.name_or_path is None) == (self.architecture is None):
            raise SparseNLPError(
                "set exactly one of model.name_or_path (a pretrained model) and model.architecture (a model "
                "from scratch, see conf/model/tiny.yaml)"
            )
        if self.tokenizer == TRAIN_TOKENIZER and self.name_or_path is not None:
            raise SparseNLPError(
                f"model.tokenizer=train would not match the vocabulary of {self.name_or_path}; "
                "use model.tokenizer=null (the model's own) or model=tiny"
            )
        if self.name_or_path is None and self.tokenizer is None:
            raise SparseNLPError("a model built from model.architecture needs model.tokenizer (train or a folder)")
        if not self.lr > 0:
            raise SparseNLPError(f"model.lr={self.lr} must be positive, e.g. 5e-5")
        if self.vocab_size < 100:
            raise SparseNLPError(f"model.vocab_size={self.vocab_size} is too small; use at least 100")
