"""One-shot pruning of a trained encoder from calibration data, layer by layer.

The driver shared by Wanda (``wanda``), SparseGPT (``sparsegpt``) and their data-free control
(``magnitude``), for BERT-family encoders (mBERT, MiniLM, XLM-R, the tiny model): after fine-tuning,
without retraining, every selected encoder Linear weight is pruned to the target from statistics of its
inputs on a few calibration sequences.

Sequential, as both reference implementations are (``prune_wanda`` in github.com/locuslab/wanda,
``opt_sequential`` in github.com/IST-DASLab/sparsegpt):
1. the inputs of encoder layer 0 are captured once (a forward pre-hook with kwargs on that layer
   records its hidden states, attention mask and other arguments, then stops the forward there);
2. for each layer in order: hooks on its selected Linear sublayers accumulate statistics while the
   still-dense layer runs on the current inputs (all sublayers of a layer from the same dense forward);
   the sublayers are pruned; the pruned layer runs again and its outputs are the next layer's inputs.
So layer l is calibrated on what the pruned layers below it produce, and errors do not compound
unseen. Statistics are added batch by batch (Σx² per input feature for Wanda, Σxxᵀ for SparseGPT),
so memory is the hidden states of the calibration set for one layer plus one layer's statistics, never
tokens × features for the whole model. Padding positions (attention_mask = 0) are left out of every
statistic, so padding a batch differently changes nothing.

Comparison groups: Wanda compares the weights of one output row; the magnitude control uses the same
row groups, so that ``none`` and a calibrated Wanda differ only in the criterion (|W| versus |W|·||X||),
i.e. in whether data was used. (The Wanda reference's own magnitude baseline, ``prune_magnitude``, uses
one threshold per tensor; that is the library's ``layerwise_magnitude``.) SparseGPT compares within its
blocks of ``blocksize`` columns (all rows), as its reference does. N:M: every method keeps N of each M
consecutive inputs of a row.

The model is pruned in place (on its own device, in eval mode, training mode restored afterwards); the
returned keep-masks fit ``sparsenlp.pruning.masks.MaskSet`` (``update_`` + ``apply_``), so a recovery
fine-tune keeps the pruned weights at exactly 0.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.grouped import Target, target_masks
from sparsenlp.pruning.methods.calibrated import (
    OneShotReport,
    OneShotSeconds,
    OneShotTensor,
)
from sparsenlp.pruning.params import select_prunable
from sparsenlp.pruning.sparsegpt import (
    BLOCKSIZE,
    PERCDAMP,
    Hessian,
    check_sparsegpt_options,
    sparsegpt_prune,
)
from sparsenlp.pruning.wanda import InputNorms, wanda_masks

MAGNITUDE, WANDA, SPARSEGPT = "magnitude", "wanda", "sparsegpt"
METHODS = (MAGNITUDE, WANDA, SPARSEGPT)
Batch = Mapping[str, torch.Tensor]
Statistic = Union[InputNorms, Hessian]
_NAME = re.compile(r"^(?P<stack>.+?)\.(?P<index>\d+)\.(?P<module>.+)\.weight$")


@dataclass
class OneShotResult:
    """Keep-masks (True = kept) per pruned parameter, on its device, and the report."""

    masks: dict[str, torch.Tensor]
    report: OneShotReport


# ---------------------------------------------------------------------------------------------- layers
@dataclass
class _Layer:
    module: torch.nn.Module
    linears: dict[str, torch.nn.Linear] = field(default_factory=dict)  # parameter name -> its Linear


def _encoder_layers(model: torch.nn.Module, names: Sequence[str]) -> tuple[torch.nn.ModuleList, dict[int, _Layer]]:
    """The encoder's layer stack and, by index, the layers holding the selected weights; every weight must
    belong to an ``nn.Linear`` inside one layer of a single stack (``...encoder.layer.N``)."""
    stacks: set[str] = set()
    layers: dict[int, _Layer] = {}
    for name in names:
        match = _NAME.match(name)
        linear = model.get_submodule(name.rsplit(".", 1)[0]) if match else None
        if match is None or not isinstance(linear, torch.nn.Linear):
            raise SparseNLPError(
                f"{name} is not a Linear weight inside an encoder layer; one-shot pruning covers the encoder's "
                "Linear weights only (leave embeddings and classifier out of pruning.params)"
            )
        stacks.add(match["stack"])
        index = int(match["index"])
        layer = layers.setdefault(index, _Layer(model.get_submodule(f"{match['stack']}.{index}")))
        layer.linears[name] = linear
    if len(stacks) != 1:
        raise SparseNLPError(f"the selected weights lie in {len(stacks)} layer stacks ({sorted(stacks)}); select one encoder")
    stack = model.get_submodule(stacks.pop())
    if not isinstance(stack, torch.nn.ModuleList):
        raise SparseNLPError(f"{type(stack).__name__} is not a list of encoder layers; one-shot pruning needs one")
    return stack, dict(sorted(layers.items()))


# ---------------------------------------------------------------------------------------------- layer inputs
@dataclass
class _Call:
    """One calibration batch at the current layer: its arguments (hidden states first) and which
    positions are real tokens."""

    args: list[Any]
    kwargs: dict[str, Any]
    tokens: torch.Tensor  # bool (batch, sequence)
    hidden_key: Optional[str] = field(default=None)  # set when the hidden states came as a keyword

    @property
    def hidden(self) -> torch.Tensor:
        return self.kwargs[self.hidden_key] if self.hidden_key else self.args[0]

    @hidden.setter
    def hidden(self, value: torch.Tensor) -> None:
        if self.hidden_key:
            self.kwargs[self.hidden_key] = value
        else:
            self.args[0] = value

    def run(self, layer: torch.nn.Module) -> torch.Tensor:
        out = layer(*self.args, **self.kwargs)
        return out[0] if isinstance(out, (tuple, list)) else out


class _Reached(Exception):
    """Raised by a hook to stop a forward pass once it has what it needs."""


def _capture(model: torch.nn.Module, first: torch.nn.Module, batches: Sequence[Batch],
             device: torch.device) -> list[_Call]:
    calls: list[_Call] = []
    tokens: list[torch.Tensor] = []

    def grab(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        del module
        hidden_key = None if args else "hidden_states"
        if hidden_key and hidden_key not in kwargs:
            raise SparseNLPError("the first encoder layer was called without hidden states; unsupported model")
        calls.append(_Call(list(args), dict(kwargs), tokens[-1], hidden_key))
        raise _Reached

    handle = first.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        for batch in batches:
            inputs = _model_inputs(batch, device)
            tokens.append(inputs["attention_mask"].bool())
            try:
                model(**inputs)
            except _Reached:
                continue
            raise SparseNLPError("the forward pass never reached the first encoder layer; unsupported model")
    finally:
        handle.remove()
    return calls


def _model_inputs(batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
    missing = {"input_ids", "attention_mask"} - set(batch)
    if missing:
        raise SparseNLPError(
            f"a calibration batch lacks {sorted(missing)}; pass batches from sparsenlp.data.calibration.calibration_batches"
        )
    keys = ("input_ids", "attention_mask", "token_type_ids")
    return {key: batch[key].to(device) for key in keys if key in batch}


def _collect(layer: _Layer, calls: Sequence[_Call], new_statistic: Callable[[int], Statistic]) -> dict[str, Statistic]:
    """Run the (dense) layer on every batch with pre-hooks adding each sublayer's non-padding inputs.

    The rest of a forward is not needed once every hooked sublayer has read its input (its output is
    thrown away), so the forward stops there: in a BERT layer that skips the FFN output projection, a
    third of the layer's weights. Each Linear of a layer runs once per forward in BERT-family encoders."""
    stats = {name: new_statistic(linear.in_features) for name, linear in layer.linears.items()}
    current: list[torch.Tensor] = []
    seen: set[str] = set()

    def hook_for(name: str) -> Callable[..., None]:
        def add(module: torch.nn.Module, inputs: tuple) -> None:
            del module
            x, tokens = inputs[0], current[-1]
            if x.shape[:-1] != tokens.shape:
                raise SparseNLPError(
                    f"{name} received inputs of shape {tuple(x.shape)} for a batch of {tuple(tokens.shape)} tokens "
                    "(feed-forward chunking? set the model config's chunk_size_feed_forward=0)"
                )
            stats[name].add(x.reshape(-1, x.shape[-1]) if bool(tokens.all()) else x[tokens])
            seen.add(name)
            if len(seen) == len(stats):
                raise _Reached
        return add

    handles = [linear.register_forward_pre_hook(hook_for(name)) for name, linear in layer.linears.items()]
    try:
        for call in calls:
            current.append(call.tokens)
            seen.clear()
            try:
                call.run(layer.module)
            except _Reached:
                continue
            raise SparseNLPError(f"layer {layer.module.__class__.__name__} did not run all its selected Linear layers")
    finally:
        for handle in handles:
            handle.remove()
    return stats


# ---------------------------------------------------------------------------------------------- driver
@dataclass
class _Options:
    method: str
    target: Target
    blocksize: int
    percdamp: float
    dtype: torch.dtype


def _prune_linear(name: str, linear: torch.nn.Linear, stat: Statistic | None, opts: _Options) -> torch.Tensor:
    """Prune one weight in place; its keep-mask."""
    weight = linear.weight
    if opts.method == MAGNITUDE:
        keep = target_masks(weight.detach().to(opts.dtype).abs(), opts.target)
    elif opts.method == WANDA:
        assert isinstance(stat, InputNorms)
        keep = wanda_masks(weight, stat.norms(), opts.target, name)
    else:
        assert isinstance(stat, Hessian)
        updated, keep = sparsegpt_prune(weight, stat.matrix(), opts.target, opts.blocksize, opts.percdamp,
                                        opts.dtype, name)
        weight.data.copy_(updated)
    weight.data.mul_(keep)
    return keep


class _Timer:
    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds = {"capture": 0.0, "statistics": 0.0, "prune": 0.0, "propagate": 0.0}

    def phase(self, name: str, start: float) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.seconds[name] += now - start
        return now


@torch.no_grad()
def one_shot_prune(
    model: torch.nn.Module,
    method: str,
    target: Target,
    batches: Sequence[Batch] = (),
    params: Mapping[str, torch.nn.Parameter] | Sequence[str] | None = None,
    blocksize: int = BLOCKSIZE,
    percdamp: float = PERCDAMP,
    dtype: torch.dtype = torch.float32,
) -> OneShotResult:
    """Prune ``model`` in place, layer by layer, to ``target``; the keep-masks and the report.

    ``method``: ``wanda``, ``sparsegpt`` or ``magnitude`` (the data-free control: no batches).
    ``batches``: calibration batches with ``input_ids`` and ``attention_mask`` (e.g.
    ``sparsenlp.data.calibration.calibration_batches``). ``params``: the selected parameters or regexes
    for ``select_prunable`` (None: the encoder Linear weights). ``blocksize``/``percdamp``: SparseGPT's.
    ``dtype``: of the statistics, scores and SparseGPT's arithmetic (float32; float64 for tests).

    Bad arguments are rejected before anything changes; a failure while pruning (a Hessian that is not
    positive definite even when dampened) leaves the lower layers pruned: discard that model."""
    if method not in METHODS:
        raise SparseNLPError(f"one-shot method {method!r} is unknown; use one of {list(METHODS)}")
    if method == MAGNITUDE and batches:
        raise SparseNLPError("the magnitude control reads no calibration data; pass no batches (calibration.lang=none)")
    if method != MAGNITUDE and not batches:
        raise SparseNLPError(f"{method} needs calibration batches; for a data-free control use method magnitude")
    if params is None or not isinstance(params, Mapping):
        params = select_prunable(model, params)
    if method == SPARSEGPT:
        check_sparsegpt_options(target, blocksize, percdamp)
    stack, layers = _encoder_layers(model, list(params))
    for layer in layers.values():
        for name, linear in layer.linears.items():
            target.check_columns(linear.in_features, name)
    device = next(iter(params.values())).device
    opts = _Options(method, target, blocksize, percdamp, dtype)
    timer = _Timer(device)
    begin = time.perf_counter()
    masks: dict[str, torch.Tensor] = {}
    calls: list[_Call] = []
    was_training = model.training
    model.eval()
    try:
        if method == MAGNITUDE:
            for layer in layers.values():
                masks.update({name: _prune_linear(name, linear, None, opts) for name, linear in layer.linears.items()})
            timer.phase("prune", begin)
        else:
            calls = _capture(model, stack[0], batches, device)
            timer.phase("capture", begin)
            _sequential(stack, layers, calls, opts, timer, masks)
    finally:
        model.train(was_training)
    seconds = OneShotSeconds(**timer.seconds, total=time.perf_counter() - begin)
    return OneShotResult({name: masks[name] for name in params}, _report(masks, len(layers), calls, opts, device, seconds))


def _sequential(stack: torch.nn.ModuleList, layers: Mapping[int, _Layer], calls: list[_Call], opts: _Options,
                timer: _Timer, masks: dict[str, torch.Tensor]) -> None:
    """Steps 2 of the module docstring, up to the last layer with selected weights."""
    statistic: Callable[[int], Statistic] = {WANDA: InputNorms, SPARSEGPT: Hessian}[opts.method]
    device = timer.device
    for index in range(max(layers) + 1):
        start = time.perf_counter()
        layer = layers.get(index)
        if layer is not None:
            stats = _collect(layer, calls, lambda features: statistic(features, device=device, dtype=opts.dtype))
            start = timer.phase("statistics", start)
            for name, linear in layer.linears.items():
                masks[name] = _prune_linear(name, linear, stats.pop(name), opts)
            start = timer.phase("prune", start)
        if index < max(layers):
            for call in calls:
                call.hidden = call.run(stack[index])
            timer.phase("propagate", start)


def _report(masks: Mapping[str, torch.Tensor], layers: int, calls: Sequence[_Call], opts: _Options,
            device: torch.device, seconds: OneShotSeconds) -> OneShotReport:
    per_tensor = {}
    for name, keep in masks.items():
        pruned = keep.numel() - int(keep.count_nonzero())
        per_tensor[name] = OneShotTensor(numel=keep.numel(), pruned=pruned, achieved=pruned / keep.numel())
    prunable = sum(t.numel for t in per_tensor.values())
    pruned_total = sum(t.pruned for t in per_tensor.values())
    target = opts.target
    if target.is_nm:
        group = f"{target.m} consecutive inputs of an output row"
    elif opts.method == SPARSEGPT:
        group = f"block of {opts.blocksize} columns (all output rows)"
    else:
        group = "output row"
    sparsegpt = opts.method == SPARSEGPT
    return OneShotReport(
        method=opts.method, structure=target.structure, target=target.fraction, comparison_group=group,
        achieved=pruned_total / prunable, prunable_parameters=prunable, pruned_parameters=pruned_total,
        layers=layers, calibration_sequences=sum(call.tokens.shape[0] for call in calls),
        calibration_tokens=sum(int(call.tokens.count_nonzero()) for call in calls),
        blocksize=opts.blocksize if sparsegpt else None, percdamp=opts.percdamp if sparsegpt else None,
        dtype=str(opts.dtype).removeprefix("torch."), device=str(device), seconds=seconds, per_tensor=per_tensor,
    )
