"""Batch order and padding for encoded windows.

Batches are padded to their own longest window (dynamic padding, like HF's
DataCollatorForTokenClassification). Training can optionally group windows of similar length
(shuffle, then sort inside chunks of 50 batches, then shuffle the batches — HF's `group_by_length`),
which removes most padding; evaluation always sorts by length since order doesn't matter there.
The order is a pure function of (seed, epoch), which is what makes resumed runs identical.
"""
from __future__ import annotations

import numpy as np
import torch

from sparsenlp.data.align import IGNORE, Features

_GROUP_CHUNK = 50


def train_batches(features: Features, batch_size: int, seed: int, epoch: int, group_by_length: bool) -> list[np.ndarray]:
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(features))
    if group_by_length:
        lengths = features.lengths()
        chunk = batch_size * _GROUP_CHUNK
        order = np.concatenate([
            part[np.argsort(-lengths[part], kind="stable")] for part in np.split(order, range(chunk, len(order), chunk))
        ]) if len(order) else order
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if group_by_length:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def eval_batches(features: Features, batch_size: int) -> list[np.ndarray]:
    order = np.argsort(-features.lengths(), kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def collate(features: Features, indices: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
    """input_ids / attention_mask / labels tensors padded to the batch's longest window."""
    lengths = features.lengths()[indices]
    width = int(lengths.max())
    ids = np.full((len(indices), width), pad_id, dtype=np.int64)
    labels = np.full((len(indices), width), IGNORE, dtype=np.int64)
    mask = np.zeros((len(indices), width), dtype=np.int64)
    for row, (i, n) in enumerate(zip(indices, lengths)):
        lo = features.offsets[i]
        ids[row, :n] = features.input_ids[lo:lo + n]
        labels[row, :n] = features.labels[lo:lo + n]
        mask[row, :n] = 1
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
            "labels": torch.from_numpy(labels)}
