"""The prunable parameters and their boolean keep-masks.

Masks are applied by multiplying them into the weights in place after every optimizer step (one
``torch._foreach_mul_``), not by torch.nn.utils.prune's forward pre-hooks: parameters keep their
plain names, there is no ``weight_orig``, checkpoints and HF ``save_pretrained`` carry the zeros
themselves, and forward passes pay nothing.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from sparsenlp.errors import SparseNLPError


class MaskSet:
    """One bool mask (True = kept) per selected parameter, on that parameter's device."""

    def __init__(self, params: Mapping[str, torch.nn.Parameter]) -> None:
        if not params:
            raise SparseNLPError("no prunable parameters were selected; check pruning.params")
        self.params: dict[str, torch.nn.Parameter] = dict(params)
        self.masks: dict[str, torch.Tensor] = {
            name: torch.ones_like(p, dtype=torch.bool) for name, p in self.params.items()
        }
        # masks cast to each parameter's dtype/device, refreshed only when masks change or the model
        # is moved/cast (buffers reused); only tensors with something pruned take part in the multiply
        self._factors: dict[str, torch.Tensor] = {}
        self._active: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None
        self._active_key: list[tuple[torch.dtype, torch.device]] = []

    @property
    def num_prunable(self) -> int:
        return sum(p.numel() for p in self.params.values())

    def pruned_counts(self) -> dict[str, int]:
        """Masked-out elements per tensor."""
        return {name: int(m.numel() - m.count_nonzero()) for name, m in self.masks.items()}

    def sparsity(self) -> float:
        """Achieved overall sparsity: masked-out fraction of all prunable elements."""
        return sum(self.pruned_counts().values()) / self.num_prunable

    def per_tensor_sparsity(self) -> dict[str, float]:
        counts = self.pruned_counts()
        return {name: counts[name] / m.numel() for name, m in self.masks.items()}

    def update_(self, new_masks: Mapping[str, torch.Tensor], monotone: bool = True) -> None:
        """Overwrite the masks in place; with ``monotone`` an element once pruned stays pruned (old & new)."""
        self._check_names(new_masks.keys(), "new masks")
        for name, new in new_masks.items():
            old = self.masks[name]
            if new.shape != old.shape:
                raise SparseNLPError(f"mask for {name} has shape {tuple(new.shape)}, expected {tuple(old.shape)}")
            new = new.to(device=old.device, dtype=torch.bool)
            if monotone:
                old &= new
            else:
                old.copy_(new)
        self._active = None

    @torch.no_grad()
    def apply_(self) -> None:
        """Zero every masked-out weight in place (one multi-tensor multiply)."""
        params, factors = self._cast_masks()
        if params:
            torch._foreach_mul_(params, factors)

    def _cast_masks(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        key = [(p.dtype, p.device) for p in self.params.values()]
        if self._active is None or key != self._active_key:
            params, factors = [], []
            for name, p in self.params.items():
                mask = self.masks[name] = self.masks[name].to(p.device)  # follows model.to(device)
                if int(torch.count_nonzero(mask)) == mask.numel():  # (bool .all() is much slower)
                    continue
                factor = self._factors.get(name)
                if factor is None or (factor.dtype, factor.device) != (p.dtype, p.device):
                    factor = self._factors[name] = torch.empty_like(p, memory_format=torch.contiguous_format)
                factor.copy_(mask)
                params.append(p)
                factors.append(factor)
            self._active, self._active_key = (params, factors), key
        return self._active

    def state_dict(self) -> dict[str, Any]:
        return {"masks": {name: m.detach().cpu().clone() for name, m in self.masks.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        masks = state["masks"]
        self._check_names(masks.keys(), "checkpoint masks")
        for name, mask in masks.items():
            if mask.shape != self.masks[name].shape:
                raise SparseNLPError(
                    f"checkpoint mask for {name} has shape {tuple(mask.shape)} but the parameter has "
                    f"{tuple(self.masks[name].shape)}; resume with the same model config"
                )
            self.masks[name] = mask.to(device=self.params[name].device, dtype=torch.bool).clone()
        self._active = None

    def _check_names(self, names: Any, what: str) -> None:
        missing, unexpected = set(self.masks) - set(names), set(names) - set(self.masks)
        if missing or unexpected:
            raise SparseNLPError(
                f"{what} do not match the prunable parameters (missing {sorted(missing)[:3]}, "
                f"unexpected {sorted(unexpected)[:3]}); use the same pruning.params as the run that made them"
            )
