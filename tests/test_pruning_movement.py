"""Movement pruning: scores against autograd and hand arithmetic, masks against a sort, zeros in training."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForTokenClassification

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning import magnitude
from sparsenlp.pruning.magnitude import global_masks, layerwise_masks
from sparsenlp.pruning.movement import MovementPruner, MovementScores
from sparsenlp.pruning.schedules import Schedule
from sparsenlp.tracking.schema import PruningInfo
from sparsenlp.training.callbacks import Callback
from tests.helpers import ZeroWatcher


# ---- scores --------------------------------------------------------------------------------------

def test_scalar_scores_by_hand():
    """w=2, x=1, loss=w²/2, SGD lr 0.25: grads 2, 1.5, 1.125 -> S = -(4 + 2.25 + 1.265625)."""
    layer = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(2.0)
    scores = MovementScores({"w": layer.weight})
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.25)
    expected = []
    for _ in range(3):
        (0.5 * layer(torch.ones(1, 1)).pow(2).sum()).backward()
        scores.accumulate_()
        optimizer.step()
        optimizer.zero_grad()
        expected.append(float(scores.scores["w"]))
    assert expected == [-4.0, -6.25, -7.515625]  # all exact in binary floating point
    assert scores.steps == 3


class TwoLayer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.hidden = torch.nn.Linear(6, 8)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    return torch.randn(5, 6, generator=g), torch.randint(0, 3, (5,), generator=g)


def reference_increment(weights: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """-W ⊙ dL/dW from a functional re-implementation of the model, differentiated by autograd."""
    leaves = {k: v.detach().clone().double().requires_grad_() for k, v in weights.items()}
    h = torch.relu(F.linear(x.double(), leaves["hidden.weight"], leaves["hidden.bias"]))
    loss = F.cross_entropy(F.linear(h, leaves["out.weight"], leaves["out.bias"]), y)
    names = ["hidden.weight", "out.weight"]
    grads = torch.autograd.grad(loss, [leaves[n] for n in names])
    return {n: -(leaves[n].detach() * g) for n, g in zip(names, grads)}


def drive(model, pruner, first: int, last: int, optimizer, trainer=None, clip: float = 0.0) -> None:
    """The trainer's order: backward, clipping, on_before_optimizer_step, step, zero_grad, on_step_end."""
    for step in range(first, last + 1):
        x, y = batch(step)
        F.cross_entropy(model(x), y).backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        pruner.on_before_optimizer_step(trainer, step - 1)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        pruner.on_step_end(trainer, step)


def test_two_layer_scores_equal_autograd_reference_over_three_steps():
    model = TwoLayer()
    pruner = MovementPruner(model, "global", [r"weight$"], Schedule("oneshot", 0.5, (3,), 100))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    expected = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in pruner.masks.params.items()}
    pruner.on_train_begin(None)
    for step in (1, 2, 3):
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        for name, increment in reference_increment(before, *batch(step)).items():
            expected[name] += increment
        drive(model, pruner, step, step, optimizer)
        if step < 3:  # the masks come at step 3, from the scores of steps 1-3
            assert pruner.masks.sparsity() == 0.0
    assert pruner.scores.steps == 3
    for name, score in pruner.scores.scores.items():
        assert score.dtype == torch.float32
        torch.testing.assert_close(score.double(), expected[name], rtol=1e-5, atol=1e-7)
        assert score.abs().min() > 0  # every weight moved: the comparison is not of zeros


def test_scores_use_the_clipped_gradient():
    """What the optimizer applies is what is scored: with clipping at 1e-3 the scores shrink with it."""
    model, clipped_model = TwoLayer(), TwoLayer()
    schedule = Schedule("oneshot", 0.5, (5,), 100)
    plain = MovementPruner(model, "global", [r"weight$"], schedule)
    clipped = MovementPruner(clipped_model, "global", [r"weight$"], schedule)
    drive(model, plain, 1, 1, torch.optim.SGD(model.parameters(), lr=0.0))
    drive(clipped_model, clipped, 1, 1, torch.optim.SGD(clipped_model.parameters(), lr=0.0), clip=1e-3)
    x, y = batch(1)
    F.cross_entropy(model(x), y).backward()
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in model.parameters()]))
    for name in plain.scores.scores:
        torch.testing.assert_close(clipped.scores.scores[name], plain.scores.scores[name] * (1e-3 / (norm + 1e-6)))


# ---- masks keep the top scores ---------------------------------------------------------------------

def reference_keep(scores: list[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """Keep the numel - round(s * numel) highest scores: a plain descending sort."""
    flat = torch.cat([s.reshape(-1) for s in scores])
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    keep[torch.argsort(flat, descending=True)[: flat.numel() - round(sparsity * flat.numel())]] = True
    return [chunk.view(s.shape) for chunk, s in zip(keep.split([s.numel() for s in scores]), scores)]


@pytest.mark.parametrize("method", ["global", "layerwise"])
def test_masks_keep_exactly_the_top_scores_after_training(method):
    model = TwoLayer()
    pruner = MovementPruner(model, method, [r"weight$"], Schedule("oneshot", 0.6, (3,), 100))
    pruner.on_train_begin(None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    drive(model, pruner, 1, 2, optimizer)
    original_step_end, weights = pruner.on_step_end, {}

    def snapshot_then_prune(trainer, step):  # the weights the masks are chosen for, before zeroing
        weights.update({n: p.detach().clone() for n, p in pruner.masks.params.items()})
        original_step_end(trainer, step)

    pruner.on_step_end = snapshot_then_prune
    drive(model, pruner, 3, 3, optimizer)
    scores = [s.clone() for s in pruner.scores.scores.values()]
    assert torch.cat([s.reshape(-1) for s in scores]).unique().numel() == sum(s.numel() for s in scores)  # no ties
    if method == "global":
        expected = reference_keep(scores, 0.6)
    else:
        expected = [reference_keep([s], 0.6)[0] for s in scores]
    for (name, mask), ref in zip(pruner.masks.masks.items(), expected):
        assert torch.equal(mask, ref), name
        assert not pruner.masks.params[name].detach()[~mask].any()
    # they are not the magnitude masks (else this test could not tell the criteria apart)
    magnitude_masks = (global_masks if method == "global" else layerwise_masks)(weights, 0.6)
    assert any(not torch.equal(magnitude_masks[n], m) for n, m in pruner.masks.masks.items())


@pytest.fixture(params=["default", "small-sample"])
def sample_path(request, monkeypatch):
    if request.param == "small-sample":  # the sample-bracket path of _keep_flat
        monkeypatch.setattr(magnitude, "GLOBAL_SAMPLE", 64)
        monkeypatch.setattr(magnitude, "LAYERWISE_SAMPLE", 16)
    return request.param


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.9, 1.0])
def test_selection_on_signed_scores_matches_sort(sparsity, sample_path):
    g = torch.Generator().manual_seed(7)
    shapes = [(40, 30), (64, 16), (500,)]
    params = {f"p{i}": torch.randn(s, generator=g) for i, s in enumerate(shapes)}
    scores = {n: torch.randn(p.shape, generator=g) for n, p in params.items()}  # half of them negative
    ours = global_masks(params, sparsity, scores=scores)
    for mask, ref in zip(ours.values(), reference_keep(list(scores.values()), sparsity)):
        assert torch.equal(mask, ref)
    for (name, mask) in layerwise_masks(params, sparsity, scores=scores).items():
        assert torch.equal(mask, reference_keep([scores[name]], sparsity)[0])


def test_previously_pruned_go_first_even_below_negative_scores(sample_path):
    """Monotone selection on signed scores: pruned elements rank below every score, however negative."""
    g = torch.Generator().manual_seed(8)
    params = {"a": torch.randn(30, 40, generator=g), "b": torch.randn(700, generator=g)}
    scores = {n: torch.randn(p.shape, generator=g) - 5.0 for n, p in params.items()}  # all negative
    prior = {n: torch.rand(p.shape, generator=g) > 0.2 for n, p in params.items()}  # ~20% already pruned
    new = global_masks(params, 0.5, prior, scores=scores)
    for name in params:
        assert not (new[name] & ~prior[name]).any()  # none regrows
    # the rest of the budget is the lowest scores among the still-kept elements
    alive = torch.cat([scores[n][prior[n]] for n in params])
    pruned_alive = torch.cat([scores[n][prior[n] & ~new[n]] for n in params])
    kept = torch.cat([scores[n][new[n]] for n in params])
    total = sum(p.numel() for p in params.values())
    assert total - kept.numel() == round(0.5 * total)
    assert pruned_alive.max() < kept.min() and alive.numel() == pruned_alive.numel() + kept.numel()


def test_equal_scores_prune_lowest_positions_first():
    params = {"a": torch.randn(3, 4), "b": torch.randn(6)}
    scores = {n: torch.zeros(p.shape) for n, p in params.items()}
    flat = torch.cat([m.reshape(-1) for m in global_masks(params, 0.5, scores=scores).values()])
    assert torch.equal(flat, torch.arange(18) >= 9)


# ---- the pruner in a loop ----------------------------------------------------------------------------

def tiny_bert() -> BertForTokenClassification:
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32, num_labels=7,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForTokenClassification(cfg)


def bert_steps(model, pruner, first: int, last: int, optimizer) -> None:
    for step in range(first, last + 1):
        g = torch.Generator().manual_seed(step)
        ids, labels = torch.randint(1, 100, (4, 12), generator=g), torch.randint(0, 7, (4, 12), generator=g)
        model(input_ids=ids, labels=labels).loss.backward()
        pruner.on_before_optimizer_step(None, step - 1)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        pruner.on_step_end(None, step)


SCHEDULE = Schedule("cubic", 0.7, (4, 8, 12, 16), 20)


def test_resume_from_state_dict_is_bit_identical():
    def setup():
        model = tiny_bert()
        return model, MovementPruner(model, "global", None, SCHEDULE), torch.optim.AdamW(model.parameters(), lr=1e-2)

    model, pruner, optimizer = setup()
    pruner.on_train_begin(None)
    bert_steps(model, pruner, 1, 6, optimizer)  # mid-schedule: masks and scores both matter
    checkpoint = copy.deepcopy({"model": model.state_dict(), "optim": optimizer.state_dict(),
                                "pruner": pruner.state_dict()})
    bert_steps(model, pruner, 7, 20, optimizer)

    model2, pruner2, optimizer2 = setup()
    model2.load_state_dict(checkpoint["model"])
    optimizer2.load_state_dict(checkpoint["optim"])
    pruner2.load_state_dict(checkpoint["pruner"])
    pruner2.on_train_begin(None)
    bert_steps(model2, pruner2, 7, 20, optimizer2)

    assert pruner2.trace == pruner.trace and pruner2.scores.steps == pruner.scores.steps == 16
    for name, score in pruner.scores.scores.items():
        assert torch.equal(pruner2.scores.scores[name], score)
        assert torch.equal(pruner2.masks.masks[name], pruner.masks.masks[name])
    for (name, p), p2 in zip(model.named_parameters(), model2.parameters()):
        assert torch.equal(p, p2), name


def test_report_names_the_criterion_and_hits_the_target():
    model = tiny_bert()
    pruner = MovementPruner(model, "layerwise", None, SCHEDULE)
    trainer = SimpleNamespace(logged=[], log_metrics=lambda metrics, step: trainer.logged.append(step))
    pruner.on_train_begin(trainer)
    bert_steps(model, pruner, 1, 20, torch.optim.AdamW(model.parameters(), lr=1e-2))
    report = pruner.pruning_report().model_dump()
    assert pruner.criterion == "movement" and pruner.scope == "layerwise"
    PruningInfo.model_validate(report)
    assert report["details"] == {"score_steps": 16}  # scores stop after the last update step
    assert [e["step"] for e in report["trace"]] == [4, 8, 12, 16]
    for name, entry in report["per_tensor"].items():
        assert entry["pruned"] == round(0.7 * entry["numel"])
    assert not pruner.allows_checkpoint(15) and pruner.allows_checkpoint(16)


def test_bad_input():
    model = tiny_bert()
    with pytest.raises(SparseNLPError, match="cannot prune at step 0"):
        MovementPruner(model, "global", None, Schedule("oneshot", 0.5, (0,), 100))
    with pytest.raises(SparseNLPError, match="unknown"):
        MovementPruner(model, "movement", None, SCHEDULE)
    params = {"a": torch.randn(3, 4)}
    with pytest.raises(SparseNLPError, match="shape"):
        global_masks(params, 0.5, scores={"a": torch.randn(4, 3)})
    with pytest.raises(SparseNLPError, match="one score tensor per"):
        global_masks(params, 0.5, scores={"b": torch.randn(3, 4)})
    with pytest.raises(SparseNLPError, match="NaN"):
        layerwise_masks(params, 0.5, scores={"a": torch.full((3, 4), float("nan"))})
    pruner = MovementPruner(model, "global", None, SCHEDULE)
    state = pruner.state_dict()
    state["scores"]["scores"].popitem()
    with pytest.raises(SparseNLPError, match="movement scores"):
        MovementPruner(tiny_bert(), "global", None, SCHEDULE).load_state_dict(state)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_scores_follow_the_model_to_cuda():
    model = tiny_bert()
    pruner = MovementPruner(model, "global", None, SCHEDULE)
    model.cuda()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    pruner.on_train_begin(None)
    for step in range(1, 9):
        ids = torch.randint(1, 100, (4, 12), device="cuda")
        model(input_ids=ids, labels=torch.randint(0, 7, (4, 12), device="cuda")).loss.backward()
        pruner.on_before_optimizer_step(None, step - 1)
        optimizer.step()
        optimizer.zero_grad()
        pruner.on_step_end(None, step)
    for name, p in pruner.masks.params.items():
        assert pruner.scores.scores[name].is_cuda and not p[~pruner.masks.masks[name]].any()
    assert pruner.masks.sparsity() > 0


# ---- inside sparsenlp's Trainer (tiny BERT, real WikiANN) ------------------------------------------------

class ScoreWatcher(ZeroWatcher):
    """Zeros kept and masks monotone (ZeroWatcher), and the scores moved during the pruning window only."""

    def on_step_end(self, trainer, step: int) -> None:
        super().on_step_end(trainer, step)
        assert self.pruner.scores.steps == min(step, self.pruner.final_step)


def tiny_trainer(tmp_path, tiny_overrides, output_dir=None, extra=()):
    """A tiny-BERT training on sw with pruning=movement, built as a job is (schedule updates at 3, 6, ..., 21)."""
    from sparsenlp.train import build_job
    from tests.helpers import compose_run

    cfg = compose_run([*tiny_overrides, "lang=sw", "trainer.max_steps=30", "pruning=movement", "pruning.sparsity=0.7",
                       "schedule=cubic", "schedule.start=0.1", "schedule.end=0.7", "schedule.updates=6",
                       "trainer.checkpoint_every=null", *extra], output_dir or tmp_path)
    job = build_job(cfg, output_dir)
    job.trainer.add_callback(job.pruner)
    return job.trainer, job.pruner


@pytest.mark.slow
def test_movement_pruning_in_training_keeps_zeros(tmp_path, tiny_overrides):
    trainer, pruner = tiny_trainer(tmp_path, tiny_overrides)
    watcher = ScoreWatcher(pruner)
    trainer.add_callback(watcher)
    trainer.fit()
    assert watcher.checked == 30 and pruner.scores.steps == 21
    assert [e["step"] for e in pruner.trace] == [6, 9, 12, 15, 18, 21]  # 30 * (0.1 + 0.1 k), k = 1..6
    assert sum(pruner.masks.pruned_counts().values()) == round(0.7 * pruner.masks.num_prunable)
    for name, param in pruner.masks.params.items():  # the selected (final-sparsity) model carries the masks' zeros
        assert not param.detach()[~pruner.masks.masks[name]].any()


class Kill(Exception):
    pass


class Killer(Callback):
    """Dies after optimizer step ``at`` (None: never), as a killed job would."""

    def __init__(self, at: int | None) -> None:
        self.at = at

    def on_step_end(self, trainer, step: int) -> None:
        if step == self.at:
            raise Kill


@pytest.mark.slow
def test_killed_training_resumes_bit_identically(tmp_path, tiny_overrides):
    """Trainer checkpoints carry the scores: kill after step 16, resume from the step-15 checkpoint."""
    reference, ref_pruner = tiny_trainer(tmp_path / "a", tiny_overrides)
    reference.fit()

    out = tmp_path / "b"
    extra = ["trainer.checkpoint_every=15"]
    first, _ = tiny_trainer(tmp_path / "b1", tiny_overrides, out, extra)

    first.add_callback(Killer(16))
    with pytest.raises(Kill):
        first.fit()
    assert (out / "checkpoints" / "last.pt").is_file()
    resumed, pruner = tiny_trainer(tmp_path / "b2", tiny_overrides, out, extra)
    resumed.add_callback(Killer(None))  # the checkpoint holds one state per callback
    result = resumed.fit()
    assert result.resumed_from_step == 15
    assert pruner.trace == ref_pruner.trace and pruner.scores.steps == ref_pruner.scores.steps
    for name, score in ref_pruner.scores.scores.items():
        assert torch.equal(pruner.scores.scores[name], score), name
    for (name, p), p2 in zip(reference.model.named_parameters(), resumed.model.parameters()):
        assert torch.equal(p, p2), name
