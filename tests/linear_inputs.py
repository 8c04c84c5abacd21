"""What each Linear of an encoder layer reads, captured by forward hooks on full dense forwards: the
independent side of the one-shot pruning tests (no driver code involved)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch


def linear_inputs(model: torch.nn.Module, batches: Iterable[Mapping[str, torch.Tensor]], layer: int,
                  padding: bool = False) -> dict[str, torch.Tensor]:
    """Weight name -> (tokens, features) inputs of every Linear in encoder layer ``layer`` over ``batches``:
    the non-padding positions, or every position with ``padding=True``."""
    seen: dict[str, list[torch.Tensor]] = {}
    keep: list[torch.Tensor] = []
    handles = [module.register_forward_hook(
        lambda m, i, o, name=f"{name}.weight": seen.setdefault(name, []).append(i[0][keep[-1]]))
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and f".encoder.layer.{layer}." in name]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                real = batch["attention_mask"].bool()
                keep.append(torch.ones_like(real) if padding else real)
                model(**batch)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return {name: torch.cat(xs) for name, xs in seen.items()}
