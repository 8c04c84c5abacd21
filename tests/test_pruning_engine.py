"""MagnitudePruner in a hand-written AdamW loop on a tiny BERT, with a duck-typed trainer."""
from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import pytest
import torch
from torch.nn.utils import prune
from transformers import BertConfig, BertForTokenClassification

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.engine import MagnitudePruner
from sparsenlp.pruning.methods import Context
from sparsenlp.pruning.params import select_prunable
from sparsenlp.pruning.schedules import Schedule
from sparsenlp.tracking.schema import PruningInfo
from tests.helpers import compose_settings

STEPS = 30
SCHEDULE = Schedule("cubic", 0.8, (0, 3, 6, 9, 12, 15, 18, 20), STEPS, initial_sparsity=0.2)


def tiny_bert() -> BertForTokenClassification:
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32, num_labels=7,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # resumes must replay exactly
    return BertForTokenClassification(cfg)


class Recorder(SimpleNamespace):
    """All of a trainer the pruner may use: .model and .log_metrics."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.logged.append((step, metrics))


def train(model, pruner, first: int, last: int, optimizer, trainer, check=None) -> None:
    """Optimizer steps first..last on batches that depend only on the step (so resumes replay)."""
    model.train()
    for step in range(first, last + 1):
        g = torch.Generator().manual_seed(step)
        ids = torch.randint(1, 100, (4, 12), generator=g)
        labels = torch.randint(0, 7, (4, 12), generator=g)
        loss = model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        pruner.on_step_end(trainer, step)
        if check:
            check(step)


def setup(method: str = "global", schedule: Schedule = SCHEDULE):
    model = tiny_bert()
    pruner = MagnitudePruner(model, method, None, schedule)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    trainer = Recorder(model=model, logged=[])
    return model, pruner, optimizer, trainer


@pytest.mark.parametrize("method", ["global", "layerwise"])
def test_training_keeps_pruned_weights_zero_and_hits_target(method):
    model, pruner, optimizer, trainer = setup(method)
    params = pruner.masks.params
    total = sum(p.numel() for p in params.values())
    pruner.on_train_begin(trainer)  # start_step 0: the pretrained weights are pruned before any step
    assert_counts(pruner, method, 0.2)
    pruned_before = {n: ~m.clone() for n, m in pruner.masks.masks.items()}

    def check(step: int) -> None:
        for name, p in params.items():
            mask = pruner.masks.masks[name]
            assert not p.detach()[~mask].any(), f"step {step}: masked weights of {name} are not 0"
            assert not (pruned_before[name] & mask).any(), f"step {step}: {name} regrew"
            pruned_before[name] = ~mask.clone()

    train(model, pruner, 1, STEPS, optimizer, trainer, check)

    assert_counts(pruner, method, 0.8)
    for entry in pruner.trace:  # every update hit its target exactly (monotone, non-decreasing targets)
        assert entry["target"] == pytest.approx(SCHEDULE.target(entry["step"]))
        assert abs(entry["achieved"] - entry["target"]) * total <= (0.5 if method == "global" else 0.5 * len(params))
    assert [e["step"] for e in pruner.trace] == list(SCHEDULE.update_steps) == [0, 3, 6, 9, 12, 15, 18, 20]
    assert [s for s, _ in trainer.logged] == list(SCHEDULE.update_steps)
    assert trainer.logged[-1][1] == {"sparsity/target": 0.8,
                                     "sparsity/achieved": pruner.masks.sparsity()}
    for name, p in model.named_parameters():  # biases, LayerNorm, classifier are never zeroed
        if name not in params and name != "bert.embeddings.word_embeddings.weight":  # (padding row is 0)
            assert p.count_nonzero() == p.numel(), name


def assert_counts(pruner: MagnitudePruner, method: str, sparsity: float) -> None:
    """Exactly round(s * n) pruned: over all selected elements (global) or in each tensor."""
    counts = pruner.masks.pruned_counts()
    if method == "global":
        assert sum(counts.values()) == round(sparsity * pruner.masks.num_prunable)
    else:
        assert counts == {n: round(sparsity * p.numel()) for n, p in pruner.masks.params.items()}


def test_report_is_json_ready_and_consistent():
    model, pruner, optimizer, trainer = setup("layerwise")
    pruner.on_train_begin(trainer)
    train(model, pruner, 1, STEPS, optimizer, trainer)
    report = json.loads(pruner.pruning_report().model_dump_json())
    PruningInfo.model_validate(report)  # what the record's typed definition accepts
    params = select_prunable(model)
    assert pruner.scope == "layerwise" and pruner.monotone and pruner.criterion == "magnitude"
    assert report["schedule"] == {"name": "cubic", "final_sparsity": 0.8, "initial_sparsity": 0.2,
                                  "total_steps": STEPS, "update_steps": [0, 3, 6, 9, 12, 15, 18, 20], "updates": 7,
                                  "start_step": 0, "end_step": 20, "recovery_steps": 10, "recovery_fraction": 1 / 3}
    assert report["prunable_parameters"] == sum(p.numel() for p in params.values())
    assert report["total_parameters"] == sum(p.numel() for p in model.parameters())
    zeros = sum(int((p.detach() == 0).sum()) for p in params.values())
    assert report["pruned_parameters"] == zeros  # AdamW leaves no exact zeros among kept weights here
    assert report["achieved"] == zeros / report["prunable_parameters"]
    assert report["model_sparsity"] == zeros / report["total_parameters"]
    assert report["target"] == 0.8
    assert list(report["per_tensor"]) == list(params)
    for name, entry in report["per_tensor"].items():
        assert entry["numel"] == params[name].numel() and entry["target"] == 0.8
        assert entry["pruned"] == round(0.8 * params[name].numel())
        assert entry["achieved"] == entry["pruned"] / entry["numel"]
    assert [e["step"] for e in report["trace"]] == list(SCHEDULE.update_steps)


def test_save_pretrained_keeps_zeros(tmp_path):
    model, pruner, optimizer, trainer = setup()
    pruner.on_train_begin(trainer)
    train(model, pruner, 1, STEPS, optimizer, trainer)
    model.save_pretrained(tmp_path)
    reloaded = BertForTokenClassification.from_pretrained(tmp_path)
    assert list(reloaded.state_dict()) == list(model.state_dict())  # plain names, no weight_orig/mask
    for name, p in reloaded.named_parameters():
        assert torch.equal(p, dict(model.named_parameters())[name])
        if name in pruner.masks.masks:
            assert not p[~pruner.masks.masks[name]].any()


def test_state_dict_resume_continues_identically():
    model, pruner, optimizer, trainer = setup()
    pruner.on_train_begin(trainer)
    train(model, pruner, 1, 10, optimizer, trainer)
    checkpoint = copy.deepcopy({"model": model.state_dict(), "optim": optimizer.state_dict(),
                                "pruner": pruner.state_dict()})
    train(model, pruner, 11, STEPS, optimizer, trainer)

    model2, pruner2, optimizer2, trainer2 = setup()
    model2.load_state_dict(checkpoint["model"])
    optimizer2.load_state_dict(checkpoint["optim"])
    pruner2.load_state_dict(checkpoint["pruner"])
    pruner2.on_train_begin(trainer2)  # a resuming trainer calls this again: step 0 must not re-prune
    assert len(pruner2.trace) == len(checkpoint["pruner"]["trace"]) and not trainer2.logged
    train(model2, pruner2, 11, STEPS, optimizer2, trainer2)

    assert pruner2.trace == pruner.trace
    for name, mask in pruner.masks.masks.items():
        assert torch.equal(pruner2.masks.masks[name], mask)
    for (name, p), p2 in zip(model.named_parameters(), model2.parameters()):
        assert torch.equal(p, p2), name


def test_non_monotone_lets_weights_regrow():
    model = tiny_bert()
    schedule = Schedule("oneshot", 0.5, (0,), STEPS)
    pruner = MagnitudePruner(model, "global", None, schedule, monotone=False)
    pruner.on_train_begin(SimpleNamespace(model=model))
    name, mask = next(iter(pruner.masks.masks.items()))
    index = tuple(int(i) for i in torch.nonzero(~mask)[0])
    with torch.no_grad():
        pruner.masks.params[name][index] = 10.0  # larger than any weight: must come back
    pruner.update(0)
    assert pruner.masks.masks[name][index]
    assert pruner.masks.sparsity() == round(0.5 * pruner.masks.num_prunable) / pruner.masks.num_prunable


def test_pruner_needs_only_trainer_model():
    model = tiny_bert()
    pruner = MagnitudePruner(model, "global", [r".*query\.weight"], Schedule("oneshot", 0.6, (2,), STEPS))
    bare = SimpleNamespace(model=model)
    pruner.on_train_begin(bare)
    pruner.on_step_end(bare, 1)
    assert pruner.masks.sparsity() == 0.0 and not pruner.trace
    pruner.on_step_end(bare, 2)
    n = pruner.masks.num_prunable
    assert pruner.masks.sparsity() == round(0.6 * n) / n
    assert list(pruner.masks.params) == ["bert.encoder.layer.0.attention.self.query.weight",
                                         "bert.encoder.layer.1.attention.self.query.weight"]


def test_pruner_rejects_bad_arguments():
    model = tiny_bert()
    with pytest.raises(SparseNLPError, match="unknown"):
        MagnitudePruner(model, "random", None, SCHEDULE)
    with pytest.raises(SparseNLPError, match="distinct, increasing"):
        Schedule("cubic", 0.5, (4, 2), STEPS)


# ---- build_pruner from config groups ---------------------------------------------------------


def build_pruner(s, model, total_steps: int):
    """The pruner a run of settings ``s`` trains with (None for the dense arm), as train.build_job builds it."""
    return None if s.method.is_dense(s.pruning) else s.method.build(s.pruning, Context(model, s.schedule,
                                                                                          total_steps, s.seed))


def test_build_pruner_from_the_composed_config():
    """The shipped config groups build a pruner over exactly the default encoder weights, on a schedule
    placed on the run's length."""
    model = tiny_bert()
    s = compose_settings(["pruning=global_magnitude", "pruning.sparsity=0.9", "schedule=cubic"])
    pruner = build_pruner(s, model, total_steps=200)
    assert isinstance(pruner, MagnitudePruner) and pruner.scope == "global" and pruner.monotone
    assert pruner.schedule.update_steps == tuple(round(200 * (0.1 + 0.06 * k)) for k in range(1, 11))
    assert pruner.schedule.final_sparsity == 0.9
    assert list(pruner.masks.params) == list(select_prunable(model))
    s = compose_settings(["pruning=layerwise_magnitude", "pruning.prune_embeddings=true", "schedule=oneshot",
                          "pruning.params=[.*value\\.weight]"])
    layerwise = build_pruner(s, model, total_steps=10)
    assert layerwise.scope == "layerwise" and layerwise.schedule.update_steps == (0,)
    assert list(layerwise.masks.params) == ["bert.encoder.layer.0.attention.self.value.weight",
                                            "bert.encoder.layer.1.attention.self.value.weight",
                                            "bert.embeddings.word_embeddings.weight"]
    assert {group: names for group, (names, _) in layerwise.groups.items()} == {
        "selected": ["bert.encoder.layer.0.attention.self.value.weight",
                     "bert.encoder.layer.1.attention.self.value.weight"],
        "embeddings": ["bert.embeddings.word_embeddings.weight"]}
    assert build_pruner(compose_settings([]), model, 10) is None  # pruning=dense


@pytest.mark.parametrize("overrides,match", [
    (["pruning=global_magnitude", "pruning.params=[bert\\.nothing]"], "matches no parameter"),
    (["pruning=global_magnitude", "schedule=cubic", "schedule.updates=500"], "too few for schedule.updates=500"),
])
def test_build_pruner_rejects_what_only_the_model_or_run_length_reveals(overrides, match):
    s = compose_settings(overrides)
    with pytest.raises(SparseNLPError, match=match):
        build_pruner(s, tiny_bert(), total_steps=200)


@pytest.mark.parametrize("overrides,match", [
    (["pruning=global_magnitude", "pruning.sparsity=1.0"], r"pruning.sparsity=1.0 must be in \[0, 1\)"),
    (["pruning.sparsity=0.5"], "pruning.sparsity has no effect with pruning=dense; it is read by pruning=global_mag"),
    (["pruning.prune_embeddings=true"], "no effect with pruning=dense"),
    (["pruning=global_magnitude", "pruning.embedding_sparsity=0.5"], "embedding_sparsity=0.5 has no effect without "
                                                                     "pruning.prune_embeddings=true"),
    (["pruning=global_magnitude", "schedule=cubic", "schedule.initial_sparsity=0.4", "pruning.prune_embeddings=true",
      "pruning.embedding_sparsity=0.3"], "exceeds the embedding matrix's target 0.3"),
    (["pruning=semi_structured", "pruning.prune_embeddings=true", "pruning.embedding_sparsity=0.6"],
     "embedding_sparsity=0.6 must be at most 0.5 for 2:4"),
    (["pruning=global_magnitude", "pruning.head_ratio=0.5"], "no effect with pruning=global_magnitude"),
    (["pruning=structured_heads", "pruning.sparsity=0.5"], "no effect with pruning=structured_heads"),
    (["pruning=structured_heads", "pruning.importance=taylor"], "pruning.importance='taylor' is not one of l1"),
    (["pruning=dense", "schedule=cubic"], "pruning=dense does not run under schedule=cubic; drop schedule=cubic"),
    (["pruning=movement", "schedule=oneshot"], "movement ranks weights by how fine-tuning moves them"),
    (["pruning=global_magnitude", "schedule=cubic", "schedule.initial_sparsity=0.6"], "exceeds pruning.sparsity"),
])
def test_contradictory_or_bad_pruning_configs_fail_before_any_data(overrides, match):
    with pytest.raises(SparseNLPError, match=match):
        compose_settings(overrides)


def test_a_masked_method_at_sparsity_zero_is_the_dense_arm():
    from sparsenlp.arm import build_arm

    s = compose_settings(["pruning=global_magnitude", "pruning.sparsity=0"])
    assert s.method.is_dense(s.pruning) and build_arm(s) == build_arm(compose_settings([]))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda_keeps_zeros():
    model, pruner, optimizer, trainer = setup()
    model.cuda()  # after the pruner was built: masks follow the parameters
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    pruner.on_train_begin(trainer)
    for step in range(1, 8):
        ids = torch.randint(1, 100, (4, 12), device="cuda")
        model(input_ids=ids, labels=torch.randint(0, 7, (4, 12), device="cuda")).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        pruner.on_step_end(trainer, step)
        for name, p in pruner.masks.params.items():
            assert pruner.masks.masks[name].is_cuda and not p[~pruner.masks.masks[name]].any()


@pytest.mark.parametrize("method", ["global_magnitude", "layerwise_magnitude", "random"])
def test_pruning_the_embeddings_leaves_the_other_weights_as_they_would_be(method):
    """The arm with embeddings differs from the arm without only by the embedding matrix: the selected weights get
    the very same masks (so the same sparsity, also under global ranking, where the 3,200 embedding weights of
    this model would otherwise compete with the encoder's), and the embedding matrix gets exactly its own target,
    with torch's L1 mask computed on it alone."""
    common = [f"pruning={method}", "schedule=oneshot", "pruning.sparsity=0.7", "seed=3"]
    arms = {}
    for name, extra in (("without", []), ("with", ["pruning.prune_embeddings=true"]),
                        ("own", ["pruning.prune_embeddings=true", "pruning.embedding_sparsity=0.4"])):
        s = compose_settings([*common, *extra])
        pruner = build_pruner(s, tiny_bert(), total_steps=10)
        pruner.on_train_begin(None)
        arms[name] = (pruner, pruner.pruning_report())
    without, with_, own = (arms[k][0] for k in ("without", "with", "own"))
    for pruner in (with_, own):
        assert all(torch.equal(pruner.masks.masks[n], m) for n, m in without.masks.masks.items())
    embedding = "bert.embeddings.word_embeddings.weight"
    for (pruner, report), target in ((arms["with"], 0.7), (arms["own"], 0.4)):
        assert report.target == arms["without"][1].target == 0.7
        assert report.achieved == arms["without"][1].achieved
        numel = pruner.masks.params[embedding].numel()
        assert report.embedding_target == target and report.per_tensor[embedding].target == target
        assert report.embedding_achieved == round(target * numel) / numel
        assert report.trace[-1].embedding_target == target
        if method != "random":
            reference = torch.nn.Embedding(*pruner.masks.params[embedding].shape)
            reference.weight = torch.nn.Parameter(pruner.masks.params[embedding].detach().clone())
            prune.l1_unstructured(reference, "weight", amount=target)
            assert torch.equal(reference.weight_mask.bool(), pruner.masks.masks[embedding])
    assert arms["without"][1].embedding_target is None and arms["without"][1].embedding_achieved is None


def _random_masks(seed: int, scope: str = "global", model_seed: int = 0, sparsity: float = 0.7):
    torch.manual_seed(model_seed)
    model = BertForTokenClassification(tiny_bert().config)
    s = compose_settings(["pruning=random", f"pruning.scope={scope}", "schedule=cubic", f"pruning.sparsity={sparsity}",
                          "schedule.start=0.1", "schedule.end=0.5", "schedule.updates=3", f"seed={seed}"])
    pruner = build_pruner(s, model, total_steps=20)
    for step in range(21):
        pruner.on_step_end(None, step)
    return pruner


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_random_masks_hit_the_exact_target_are_reproducible_and_differ_across_seeds(scope):
    """The control's masks: exactly round(s * n) weights pruned (per tensor when layer-wise), a pure function of
    the run's seed and the schedule (the same for another model's weights), and different for another seed."""
    pruner = _random_masks(1, scope)
    report = pruner.pruning_report()
    counts = pruner.masks.pruned_counts()
    total = sum(mask.numel() for mask in pruner.masks.masks.values())
    if scope == "layerwise":  # every tensor exactly; torch's count: round(amount * numel)
        assert all(counts[n] == round(0.7 * m.numel()) for n, m in pruner.masks.masks.items())
    else:
        assert sum(counts.values()) == round(0.7 * total)
    assert report.achieved == sum(counts.values()) / total
    assert [e.step for e in report.trace] == [5, 7, 10]  # 20 * (0.1 + 0.4 k / 3), k = 1..3
    again, other_weights = _random_masks(1, scope), _random_masks(1, scope, model_seed=5)
    other_seed = _random_masks(2, scope)
    for name, mask in pruner.masks.masks.items():
        assert torch.equal(mask, again.masks.masks[name]) and torch.equal(mask, other_weights.masks.masks[name])
    differ = sum(int((mask != other_seed.masks.masks[name]).sum()) for name, mask in pruner.masks.masks.items())
    assert differ > 0.3 * total  # two independent 70% masks disagree on 2 * 0.7 * 0.3 = 42% of the weights


def test_random_masks_keep_no_trace_of_the_weights():
    """Unlike magnitude pruning, which prunes exactly the smallest |w|, random masks prune weights as large on
    average as those they keep (about 8,000 of each here: a 10% band is over 10 standard errors)."""
    pruner = _random_masks(3, sparsity=0.5)
    torch.manual_seed(0)
    initial = dict(BertForTokenClassification(tiny_bert().config).named_parameters())  # the weights before pruning
    weights = torch.cat([initial[name].detach().abs().flatten() for name in pruner.masks.masks])
    kept = torch.cat([mask.flatten() for mask in pruner.masks.masks.values()])
    assert int(kept.sum()) == kept.numel() // 2
    assert weights[~kept].mean() / weights[kept].mean() == pytest.approx(1.0, abs=0.1)
    assert weights[~kept].max() > weights[kept].median()  # magnitude pruning would keep every weight above them
