"""Post-training dynamic int8 quantization of a fine-tuned model, scored on the same test sets.

``torch.ao.quantization.quantize_dynamic`` stores every ``nn.Linear`` weight as int8 (per-tensor,
symmetric, so a pruned 0 stays exactly 0) and quantizes activations on the fly at inference, on CPU.
Embeddings, LayerNorms and the classifier input stay fp32, so for mBERT, whose 92M-parameter
embedding matrix is half of the model, the file shrinks far less than 4x. The question it answers:
does a pruned model survive a second compression, language by language?

Everything is measured on CPU in this process: F1 of the fp32 model and of its int8 copy on every
test set (seqeval, the trainer's own metrics), word-level agreement of their predictions, the size of
each ``state_dict`` as written by ``torch.save``, and the wall time of predicting every test set.
"""
from __future__ import annotations

import copy
import os
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from sparsenlp.data.datamodule import Split
from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.metrics import ner_metrics
from sparsenlp.evaluation.predict import predict_tags
from sparsenlp.tracking.schema import QuantizationInfo


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A dynamically int8-quantized copy of ``model`` on CPU (Linear layers); ``model`` is untouched."""
    fp32 = copy.deepcopy(model).to("cpu").float().eval()
    with warnings.catch_warnings():
        # torch.ao.quantization warns that it is deprecated in favour of torchao (not a dependency here);
        # its dynamic int8 Linear is the method being studied and works in the supported torch versions
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*", category=UserWarning)
        try:
            from torch.ao.quantization import quantize_dynamic
        except ImportError:
            raise SparseNLPError(f"torch {torch.__version__} has no torch.ao.quantization.quantize_dynamic; "
                                 "use a torch release that still ships it (2.13 does)") from None
        return quantize_dynamic(fp32, {torch.nn.Linear}, dtype=torch.qint8)


def state_dict_bytes(model: torch.nn.Module) -> int:
    """Size on disk of ``torch.save(model.state_dict())`` (what a checkpoint of the model costs)."""
    with tempfile.TemporaryDirectory(prefix="sparsenlp-size-") as tmp:
        path = os.path.join(tmp, "model.pt")
        torch.save(model.state_dict(), path)
        return os.path.getsize(path)


def timed_predictions(model: torch.nn.Module, split: Split, labels: Sequence[str], batch_size: int,
                      pad_id: int = 0) -> tuple[list[list[str]], float]:
    """Word-level tags for ``split`` predicted on CPU in fp32 arithmetic, and the seconds it took."""
    if split.features is None:
        raise SparseNLPError("the test split is not encoded; encode it (data.encode_all) before evaluating")
    start = time.perf_counter()
    pred = predict_tags(model, split.features, split.sentences, labels, batch_size, torch.device("cpu"), None, pad_id)
    return pred, time.perf_counter() - start


def token_agreement(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]]) -> float:
    """Share of words whose predicted tags are equal (1.0 for no words)."""
    same = total = 0
    for x, y in zip(a, b, strict=True):
        if len(x) != len(y):
            raise ValueError(f"sentence lengths differ: {len(x)} vs {len(y)} tags")
        same += sum(p == q for p, q in zip(x, y))
        total += len(x)
    return same / total if total else 1.0


@dataclass
class QuantizationResult:
    """fp32 vs int8 on every test set; ``predictions[lang][variant]`` holds the word-level tags."""

    fp32_bytes: int
    int8_bytes: int
    threads: int
    engine: str
    per_language: dict[str, dict[str, Any]]
    predictions: dict[str, dict[str, list[list[str]]]] = field(repr=False)
    sentences: dict[str, Sequence[Any]] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for the record (predictions excluded: see ``prediction_rows``)."""
        fp32_s = sum(v["fp32_seconds"] for v in self.per_language.values())
        int8_s = sum(v["int8_seconds"] for v in self.per_language.values())
        return {
            "method": "dynamic_int8",
            "modules": ["Linear"],
            "dtype": "qint8",
            "engine": self.engine,
            "cpu_threads": self.threads,
            "fp32_bytes": self.fp32_bytes,
            "int8_bytes": self.int8_bytes,
            "size_ratio": self.int8_bytes / self.fp32_bytes,
            "fp32_seconds": fp32_s,
            "int8_seconds": int8_s,
            "speedup": fp32_s / int8_s if int8_s > 0 else None,
            "per_language": {lang: dict(v) for lang, v in self.per_language.items()},
        }

    def prediction_rows(self, variant: str = "int8") -> list[dict[str, Any]]:
        """One row per test sentence, in the record's prediction format (id, lang, tokens, gold, pred)."""
        rows = []
        for lang, sentences in self.sentences.items():
            for i, (s, pred) in enumerate(zip(sentences, self.predictions[lang][variant])):
                rows.append({"id": i, "lang": s.lang, "tokens": list(s.tokens), "gold": list(s.tags), "pred": pred})
        return rows


def evaluate_quantized(model: torch.nn.Module, tests: Mapping[str, Split], labels: Sequence[str], batch_size: int,
                       pad_id: int = 0, metrics_mode: str | None = None,
                       threads: int | None = None) -> QuantizationResult:
    """Quantize a copy of the fine-tuned ``model`` and score both on every test set, on CPU.

    ``threads`` sets torch's CPU threads for the measurement (restored afterwards); the fp32 model is
    a CPU copy, so a model trained on GPU is compared on the same footing.
    """
    if not tests:
        raise SparseNLPError("no test sets to evaluate the quantized model on; pass at least one language")
    previous = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise SparseNLPError(f"threads={threads} must be >= 1 (or None for torch's default)")
        torch.set_num_threads(threads)
    try:
        fp32 = copy.deepcopy(model).to("cpu").float().eval()
        int8 = quantize_int8(fp32)
        per_language, predictions = {}, {}
        for lang, split in tests.items():
            gold = [list(s.tags) for s in split.sentences]
            fp32_pred, fp32_s = timed_predictions(fp32, split, labels, batch_size, pad_id)
            int8_pred, int8_s = timed_predictions(int8, split, labels, batch_size, pad_id)
            fp32_m, int8_m = ner_metrics(gold, fp32_pred, metrics_mode), ner_metrics(gold, int8_pred, metrics_mode)
            per_language[lang] = {
                "fp32": fp32_m, "int8": int8_m,
                "f1_change": None if None in (int8_m.f1, fp32_m.f1) else int8_m.f1 - fp32_m.f1,
                "token_agreement": token_agreement(fp32_pred, int8_pred),
                "fp32_seconds": fp32_s, "int8_seconds": int8_s,
            }
            predictions[lang] = {"fp32": fp32_pred, "int8": int8_pred}
        return QuantizationResult(
            fp32_bytes=state_dict_bytes(fp32), int8_bytes=state_dict_bytes(int8), threads=torch.get_num_threads(),
            engine=str(torch.backends.quantized.engine), per_language=per_language, predictions=predictions,
            sentences={lang: split.sentences for lang, split in tests.items()},
        )
    finally:
        torch.set_num_threads(previous)


class CPUEvaluator:
    """What the robustness suite needs of a trainer (``evaluate(split) -> (metrics, predictions)``), for a
    model that runs on CPU in fp32 arithmetic, such as a dynamically quantized one."""

    def __init__(self, model: torch.nn.Module, labels: Sequence[str], batch_size: int, pad_id: int = 0,
                 metrics_mode: str | None = None) -> None:
        self.model, self.labels, self.batch_size = model, list(labels), batch_size
        self.pad_id, self.metrics_mode = pad_id, metrics_mode

    def evaluate(self, split: Split) -> tuple[dict[str, Any], list[list[str]]]:
        pred, _ = timed_predictions(self.model, split, self.labels, self.batch_size, self.pad_id)
        return ner_metrics([list(s.tags) for s in split.sentences], pred, self.metrics_mode), pred


def score_quantized(model: torch.nn.Module, suite: Any, data: Any, labels: Sequence[str], batch_size: int,
                    pad_id: int = 0, metrics_mode: str | None = None,
                    threads: int | None = None) -> tuple[QuantizationInfo, dict[str, list[dict[str, Any]]]]:
    """The record's ``quantization`` section and the int8 prediction files: sizes, CPU times and agreement on
    the clean test sets (``evaluate_quantized``), and the int8 model's metrics on every condition of the
    robustness ``suite`` (the same perturbed sentences as the fp32 model, so PIE populations line up)."""
    summary = evaluate_quantized(model, {lang: data.test[lang] for lang in suite.langs}, labels, batch_size, pad_id,
                                 metrics_mode, threads)
    evaluator = CPUEvaluator(quantize_int8(model), labels, batch_size, pad_id, metrics_mode)
    test, robustness, predictions = suite.evaluate(evaluator, data)
    section = summary.to_dict()
    section["per_language"] = {
        lang: {k: v for k, v in entry.items() if k not in ("fp32", "int8")} for lang, entry in
        section["per_language"].items()}
    return QuantizationInfo(**section, test=test, robustness=robustness), predictions
