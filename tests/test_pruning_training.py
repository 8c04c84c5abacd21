"""Pruning inside a real training run (tiny BERT, real WikiANN data, sparsenlp's own Trainer)."""
from __future__ import annotations

import pytest
import torch
from torch.nn.utils import prune

from sparsenlp.data.datamodule import encode_all, load_sentences
from sparsenlp.data.wikiann import LABELS
from sparsenlp.evaluation.metrics import ner_metrics
from sparsenlp.models import build_model, build_tokenizer
from sparsenlp.pruning.engine import build_pruner
from sparsenlp.train import run
from sparsenlp.training.callbacks import Callback
from sparsenlp.training.trainer import Trainer
from tests.helpers import compose_run

pytestmark = pytest.mark.slow


class ZeroWatcher(Callback):
    """Runs after the pruner: checks the invariants after every optimizer step."""

    def __init__(self, pruner) -> None:
        self.pruner, self.previous, self.checked = pruner, None, 0

    def on_step_end(self, trainer, step: int) -> None:
        masks = {n: m.clone() for n, m in self.pruner.masks.masks.items()}
        for name, param in self.pruner.masks.params.items():
            assert torch.count_nonzero(param.detach()[~masks[name]]) == 0, f"step {step}: pruned weights of {name}"
        if self.previous is not None:
            for name, mask in masks.items():
                assert not (mask & ~self.previous[name]).any(), f"step {step}: {name} regrew a pruned weight"
        self.previous, self.checked = masks, self.checked + 1


@pytest.mark.parametrize("method", ["global_magnitude", "layerwise_magnitude"])
def test_gradual_pruning_keeps_zeros_after_every_step(method, tmp_path, tiny_overrides):
    cfg = compose_run([*tiny_overrides, "lang=sw", f"pruning={method}", "schedule=cubic", "pruning.sparsity=0.7",
                       "schedule.start_step=3", "schedule.end_step=21", "schedule.frequency=3",
                       "trainer.max_steps=30"], tmp_path)
    data_cfg = dict(cfg.data)
    data = load_sentences(data_cfg, ["sw"])
    tokenizer = build_tokenizer(cfg.model, data.train_corpus, "sw-test", None)
    encode_all(data, data_cfg, tokenizer)
    torch.manual_seed(0)
    trainer = Trainer(build_model(cfg.model, tokenizer, LABELS), data.train, data.dev, LABELS, cfg.trainer, seed=0,
                      pad_id=tokenizer.pad_token_id)
    pruner = build_pruner(cfg.pruning, cfg.schedule, trainer.model, trainer.total_steps)
    watcher = ZeroWatcher(pruner)
    trainer.add_callback(pruner)
    trainer.add_callback(watcher)
    trainer.fit()
    assert watcher.checked == 30
    report = pruner.report()
    assert [e["step"] for e in report["trace"]] == [3, 6, 9, 12, 15, 18, 21]
    per_tensor = report["per_tensor"].values()
    if method == "layerwise_magnitude":  # every tensor to within one element of the target
        assert all(abs(t["pruned"] - 0.7 * t["numel"]) <= 1 for t in per_tensor)
    total = sum(t["numel"] for t in per_tensor)
    assert abs(sum(t["pruned"] for t in per_tensor) - 0.7 * total) <= len(per_tensor)
    # the selected model is one at the final sparsity: its zeros are the masks'
    for name, param in pruner.masks.params.items():
        assert torch.equal(param.detach() == 0, ~pruner.masks.masks[name])


def test_final_global_mask_is_torch_global_unstructured_of_the_pre_update_weights(tmp_path, tiny_overrides):
    """One-shot at step 0 on the freshly built model: the mask is torch's own global L1 mask."""
    cfg = compose_run([*tiny_overrides, "lang=sw", "pruning=global_magnitude", "schedule=oneshot",
                       "pruning.sparsity=0.6"], tmp_path)
    data_cfg = dict(cfg.data)
    data = load_sentences(data_cfg, ["sw"])
    tokenizer = build_tokenizer(cfg.model, data.train_corpus, "sw-test", None)
    torch.manual_seed(0)
    model = build_model(cfg.model, tokenizer, LABELS)
    pruner = build_pruner(cfg.pruning, cfg.schedule, model, total_steps=10)
    reference = {n: torch.nn.Linear(1, 1) for n in pruner.masks.params}
    for name, module in reference.items():
        module.weight = torch.nn.Parameter(pruner.masks.params[name].detach().clone())
    prune.global_unstructured([(m, "weight") for m in reference.values()], prune.L1Unstructured, amount=0.6)
    pruner.on_train_begin(None)
    for name, module in reference.items():
        assert torch.equal(module.weight_mask.bool(), pruner.masks.masks[name])


def test_saved_pruned_model_reloads_with_its_zeros_and_f1(tmp_path, tiny_overrides, wikiann_root):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from sparsenlp.data.align import encode
    from sparsenlp.data.wikiann import read_wikiann_file
    from sparsenlp.evaluation.predict import predict_tags

    out = tmp_path / "run"
    record = run(compose_run([*tiny_overrides, "lang=sw", "pruning=global_magnitude", "schedule=cubic",
                              "pruning.sparsity=0.8", "trainer.max_steps=40", "trainer.save_model=true"], out))
    model = AutoModelForTokenClassification.from_pretrained(out / "model")
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    per_tensor = record["sparsity"]["per_tensor"]
    params = dict(model.named_parameters())
    for name, entry in per_tensor.items():
        assert int((params[name] == 0).sum()) == entry["pruned"]
    test = read_wikiann_file(wikiann_root / "sw" / "test", "sw", 100)
    pred = predict_tags(model, encode(test, tokenizer, 128), test, LABELS, 64, torch.device("cpu"))
    assert ner_metrics([list(s.tags) for s in test], pred)["f1"] == pytest.approx(record["test"]["sw"]["clean"]["f1"])

