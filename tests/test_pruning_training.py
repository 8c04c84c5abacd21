"""Pruning inside a real training run (tiny BERT, real WikiANN data, sparsenlp's own Trainer)."""
from __future__ import annotations

import pytest
import torch
from torch.nn.utils import prune

from sparsenlp.data.wikiann import LABELS
from sparsenlp.evaluation.metrics import ner_metrics
from sparsenlp.train import build_job, run
from tests.helpers import ZeroWatcher, compose_run

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method", ["global_magnitude", "layerwise_magnitude"])
def test_gradual_pruning_keeps_zeros_after_every_step(method, tmp_path, tiny_overrides):
    cfg = compose_run([*tiny_overrides, "lang=sw", f"pruning={method}", "schedule=cubic", "pruning.sparsity=0.7",
                       "schedule.start=0.1", "schedule.end=0.7", "schedule.updates=6", "trainer.max_steps=30"],
                      tmp_path)
    job = build_job(cfg)
    trainer, pruner = job.trainer, job.pruner
    watcher = ZeroWatcher(pruner)
    trainer.add_callback(pruner)
    trainer.add_callback(watcher)
    trainer.fit()
    assert watcher.checked == 30
    report = pruner.pruning_report().model_dump()
    assert [e["step"] for e in report["trace"]] == [6, 9, 12, 15, 18, 21]  # 30 * (0.1 + 0.1 k), k = 1..6
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
    job = build_job(compose_run([*tiny_overrides, "lang=sw", "pruning=global_magnitude", "schedule=oneshot",
                                 "pruning.sparsity=0.6"], tmp_path))
    pruner = job.pruner
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
    per_tensor = record.pruning.per_tensor
    params = dict(model.named_parameters())
    for name, entry in per_tensor.items():
        assert int((params[name] == 0).sum()) == entry.pruned
    test = read_wikiann_file(wikiann_root / "sw" / "test", "sw", 100)
    pred = predict_tags(model, encode(test, tokenizer, 128), test, LABELS, 64, torch.device("cpu"))
    assert ner_metrics([list(s.tags) for s in test], pred).f1 == pytest.approx(record.test["sw"]["clean"].f1)



def test_a_100_and_a_20000_sentence_language_get_the_same_updates_and_recovery(tmp_path, tiny_overrides):
    """Schedules on real data sizes, under the min_steps ablation: yo has 100 training sentences (4 batches an
    epoch), de has 20,000 (625): under one config both get the same mask updates at the same points of training,
    and the same share of training to recover after the last one; the floor gives yo 500 steps (125 epochs), so
    its updates are >= 29 steps apart (the study's equal epochs: tests/test_protocol.py)."""
    common = [o for o in tiny_overrides if not o.startswith(("trainer.max_steps", "data.train_limit"))] + [
        "pruning=global_magnitude", "pruning.sparsity=0.9", "schedule=cubic", "schedule.start=0.1",
        "schedule.end=0.7", "schedule.updates=10", "trainer.epochs=10", "trainer.batch_size=32",
        "trainer.min_steps=500", "data.train_limit=null"]
    reports = {}
    for lang in ("yo", "de"):
        job = build_job(compose_run([*common, f"lang={lang}"], tmp_path / lang))
        reports[lang] = job.pruner.pruning_report().schedule.model_dump()
        assert job.trainer.total_steps == {"yo": 500, "de": 10 * job.trainer.steps_per_epoch}[lang]
    yo, de = reports["yo"], reports["de"]
    assert de["total_steps"] > 10 * yo["total_steps"]  # a 20k-sentence run is an order of magnitude longer
    assert yo["updates"] == de["updates"] == 10
    for report in (yo, de):
        total = report["total_steps"]
        # Zhu & Gupta's update points t0 + k*dt with t0 = 0.1 T and n*dt = 0.6 T, by hand
        assert report["update_steps"] == [round(total * (0.1 + 0.06 * k)) for k in range(1, 11)]
        assert report["recovery_fraction"] == pytest.approx(0.3, abs=1 / total)
        assert min(b - a for a, b in zip(report["update_steps"], report["update_steps"][1:])) >= 29
