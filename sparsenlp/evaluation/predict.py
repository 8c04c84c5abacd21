"""Word-level tag predictions for encoded windows, mapped back to their sentences.

Each word is predicted at its first subword (the position that carried its label in training);
windows of one sentence are stitched back together, so every word gets exactly one tag.
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch

from sparsenlp.data.align import Features
from sparsenlp.data.batching import collate, eval_batches
from sparsenlp.data.wikiann import Sentence


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.inference_mode()
def predict_tags(model: torch.nn.Module, features: Features, sentences: Sequence[Sentence], labels: Sequence[str],
                 batch_size: int, device: torch.device, amp_dtype: torch.dtype | None = None,
                 pad_id: int = 0) -> list[list[str]]:
    was_training = model.training
    model.eval()
    predicted = [np.zeros(len(s.tokens), dtype=np.int64) for s in sentences]
    try:
        for indices in eval_batches(features, batch_size):
            batch = collate(features, indices, pad_id)
            with autocast_context(device, amp_dtype):
                logits = model(input_ids=batch["input_ids"].to(device, non_blocking=True),
                               attention_mask=batch["attention_mask"].to(device, non_blocking=True)).logits
            best = logits.argmax(-1).cpu().numpy()
            for row, i in enumerate(indices):
                _, _, words = features.window(i)
                positions = np.nonzero(words >= 0)[0]
                predicted[features.sentence[i]][words[positions]] = best[row, positions]
    finally:
        model.train(was_training)
    return [[labels[t] for t in row] for row in predicted]
