"""Movement pruning, N:M sparsity and int8 quantization through the whole job (config → record → table)."""
from __future__ import annotations

import pytest
import torch

from sparsenlp.analysis import collect
from sparsenlp.errors import SparseNLPError
from sparsenlp.evaluation.metrics import ner_metrics
from sparsenlp.io import read_jsonl
from sparsenlp.pruning.semi_structured import is_nm_sparse
from sparsenlp.tracking.records import predictions_path
from sparsenlp.train import build_job, run
from tests.helpers import compose_run, compose_settings

GRADUAL = ["schedule=cubic", "schedule.start=0.1", "schedule.end=0.7", "schedule.updates=4", "trainer.max_steps=20",
           "trainer.eval_every=10", "lang=sw"]


@pytest.mark.slow
def test_movement_run_records_its_criterion_scope_and_zeros(tmp_path, tiny_overrides):
    out = tmp_path / "run"
    record = run(compose_run([*tiny_overrides, *GRADUAL, "pruning=movement", "pruning.sparsity=0.6",
                              "pruning.scope=layerwise", "trainer.save_model=true"], out))
    assert (record.arm.method, record.arm.criterion, record.arm.scope) == ("movement", "movement", "layerwise")
    assert record.arm.label() == "movement[layerwise]·cubic@0.6"
    info = record.pruning
    assert record.method_report().score_steps == info.schedule.end_step  # scores stop at the last update
    for entry in info.per_tensor.values():  # layer-wise: every tensor at the target, to within one element
        assert abs(entry.pruned - 0.6 * entry.numel) <= 1

    from safetensors.torch import load_file

    weights = load_file(out / "model" / "model.safetensors")
    for name, entry in info.per_tensor.items():  # the saved model carries the zeros
        assert int((weights[name] == 0).sum()) >= entry.pruned


@pytest.mark.slow
def test_semi_structured_run_leaves_every_selected_matrix_2_4_sparse(tmp_path, tiny_overrides):
    job = build_job(compose_run([*tiny_overrides, *GRADUAL, "pruning=semi_structured"], tmp_path))
    assert job.arm.structure == "2:4" and job.arm.sparsity == 0.5 and job.arm.criterion == "magnitude"
    job.trainer.add_callback(job.pruner)
    job.trainer.fit()
    for name, param in job.pruner.masks.params.items():
        assert is_nm_sparse(param.detach(), 2, 4), name
    report = job.pruner.pruning_report()
    assert report.details["converted_fraction"] == 1.0 and report.achieved == 0.5


@pytest.mark.slow
def test_int8_quantization_is_scored_on_every_condition_and_recorded(tmp_path, tiny_overrides):
    record = run(compose_run([*tiny_overrides, "lang=sw", "trainer.max_steps=40", "trainer.lr=2e-3",
                              "trainer.eval_every=40", "pruning=global_magnitude", "pruning.sparsity=0.5",
                              "schedule=oneshot", "quantization=dynamic_int8", "perturbation=suite",
                              "perturbation.members.char_noise.severities=[0.1]",
                              *(f"~perturbation.members.{m}" for m in ("lower", "upper", "strip_diacritics",
                                                                       "swap_seen", "swap_unseen", "swap_script",
                                                                       "swap_family"))], tmp_path))
    q = record.quantization
    assert record.arm.quantization == "dynamic_int8" and q is not None
    assert set(q.test["sw"]) == set(record.test["sw"]) == {"clean", "char_noise@0.1", "context_drop@0.2"}
    assert q.int8_bytes < q.fp32_bytes and q.size_ratio == pytest.approx(q.int8_bytes / q.fp32_bytes)
    assert q.per_language["sw"].f1_change == pytest.approx(q.test["sw"]["clean"].f1 - record.test["sw"]["clean"].f1)
    for condition in q.test["sw"]:
        fp32 = read_jsonl(predictions_path(tmp_path, condition))
        int8 = read_jsonl(predictions_path(tmp_path, condition, "dynamic_int8"))
        assert [r["tokens"] for r in int8] == [r["tokens"] for r in fp32]  # the same (perturbed) sentences
        # the recorded int8 F1 is seqeval's on the saved int8 predictions
        assert ner_metrics([r["gold"] for r in int8], [r["pred"] for r in int8]).f1 == pytest.approx(
            q.test["sw"][condition].f1)
        same = sum(a == b for x, y in zip(fp32, int8) for a, b in zip(x["pred"], y["pred"]))
        assert same / sum(len(r["pred"]) for r in fp32) > 0.9  # int8 agrees with fp32 on most words
    rows = collect.table_from_records([(tmp_path, record)])
    assert set(rows["quantization"]) == {"none", "dynamic_int8"}
    assert set(rows.loc[rows["quantization"] == "dynamic_int8", "arm"]) == {"global_magnitude·oneshot@0.5+dynamic_int8"}
    assert set(rows.loc[rows["quantization"] == "none", "arm"]) == {"global_magnitude·oneshot@0.5"}


@pytest.mark.parametrize("overrides,match", [
    (["pruning=movement", "schedule=oneshot"], "cannot prune before training"),
    (["pruning=movement", "pruning.scope=local"], "pruning.scope='local' is not one of global, layerwise"),
    (["pruning=semi_structured", "pruning.sparsity=0.7"], r"pruning.sparsity=0.7 must be at most 0.5 for 2:4"),
    (["pruning=semi_structured", "pruning.n=4"], "pruning.n=4 and pruning.m=4 must satisfy n < m"),
    (["pruning=global_magnitude", "pruning.scope=global"], "no effect with pruning=global_magnitude"),
    (["pruning=semi_structured", "pruning.monotone=false"], "no effect with pruning=semi_structured"),
    (["quantization.name=int4"], "quantization.name='int4' is not one of none, dynamic_int8"),
])
def test_method_configs_fail_before_any_data(overrides, match):
    with pytest.raises(SparseNLPError, match=match):
        compose_settings(overrides)


def test_semi_structured_sparsity_defaults_to_every_group_converted():
    s = compose_settings(["pruning=semi_structured", "pruning.n=1", "pruning.m=4"])
    assert s.method.sparsity(s.pruning, None) == 0.75 and s.method.structure(s.pruning) == "1:4"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_tiny_job_trains_on_cuda(tmp_path, tiny_overrides):
    record = run(compose_run([*tiny_overrides, *GRADUAL, "pruning=global_magnitude"], tmp_path))
    assert record.training.device == "cuda" and record.training.precision in ("bfloat16", "fp32")
