"""A small, valid run record with hand-picked numbers, for tests of the record's readers and writers.

Built through the typed definition (``RunRecord``), so a fixture can never drift from what ``train``
writes: a field added to the schema without a default makes this fail first.
"""
from __future__ import annotations

from typing import Any

from sparsenlp.tracking.schema import RunRecord

LANG_FACTS = {
    "de": {"name": "German", "script": "Latin", "family": "Indo-European", "genus": "Germanic", "train_size": 20000,
           "tier": "high", "transfer": False},
    "af": {"name": "Afrikaans", "script": "Latin", "family": "Indo-European", "genus": "Germanic",
           "train_size": 5000, "tier": "low", "transfer": False},
}


def _metrics(f1: float, sentences: int = 10) -> dict[str, Any]:
    return {"precision": f1, "recall": f1, "f1": f1, "sentences": sentences,
            "per_type": {"PER": {"precision": f1, "recall": f1, "f1": f1, "support": 3}}}


STRENGTH = {"sentences_changed": 0.9, "characters_changed": 0.1, "subwords_changed": 0.2, "unk_before": 0.01,
            "unk_after": 0.02}


def data_facts(train: int, dev: int, test: int) -> dict[str, Any]:
    """One language's ``data.facts`` entry with the given sizes and hand-picked shares."""
    return {"train_sentences": train, "dev_sentences": dev, "test_sentences": test, "single_entity_share": 0.2,
            "seen_entity_share": 0.4, "subwords_per_word": 1.5}


def make_record(**overrides: Any) -> RunRecord:
    """A global-magnitude run at 0.5 sparsity on de+af (two test languages), seed 7; ``overrides``
    replace top-level sections."""
    per_tensor = {"encoder.layer.0.attention.self.query.weight": {"numel": 100, "pruned": 49, "target": None,
                                                                  "achieved": 0.49},
                  "encoder.layer.0.output.dense.weight": {"numel": 100, "pruned": 51, "target": None,
                                                          "achieved": 0.51}}
    record = {
        "arm": {"model": "tiny", "regime": "joint", "train_langs": ["de", "af"], "method": "global_magnitude",
                "criterion": "magnitude", "scope": "global", "schedule": "cubic", "sparsity": 0.5,
                "embedding_sparsity": 0.0, "selection": "best@0.7", "length": "max_steps=4", "seed": 7},
        "config": {"lang": ["de", "af"], "seed": 7},
        "run": {"eval_langs": ["de", "af"], "output_dir": "/tmp/run",
                "started_at": "2026-11-26T10:00:00+00:00", "finished_at": "2026-11-26T10:01:00+00:00",
                "git_revision": None, "overrides": [], "sweep_dir": None, "job_num": None},
        "data": {"source": "local", "train_sentences": 200, "train_sentences_per_lang": {"de": 100, "af": 100},
                 "dev_sentences": 20, "test_sentences": {"de": 10, "af": 10}, "train_windows": 201,
                 "max_length": 128, "tokenizer": "0123456789abcdef", "feature_cache": {"hits": 0, "misses": 6},
                 "facts": {"de": data_facts(100, 10, 10), "af": data_facts(100, 10, 10)}},
        "model": {"name": "tiny", "name_or_path": None, "parameters": 1000},
        "languages": LANG_FACTS,
        "training": {"steps": 4, "steps_per_epoch": 2, "epochs": 2.0, "length_by": "max_steps",
                     "selection": {"rule": "best", "after": 0.7, "eligible_steps": [4], "candidates": 1, "step": 4,
                                   "dev_f1": 0.55},
                     "train_seconds": 1.5, "sentences_per_second": 100.0, "tokens_per_second": 1000.0,
                     "device": "cpu", "precision": "fp32", "resumed_from_step": None,
                     "history": [{"step": 2, "loss": 2.0, "lr": 1e-3, "epoch": 1.0}],
                     "dev_history": [{"step": 4, "f1": 0.55, "precision": 0.5, "recall": 0.6, "eligible": True}]},
        "dev": _metrics(0.55, 20),
        "test": {"de": {"clean": _metrics(0.8), "char_noise@0.1": _metrics(0.6)},
                 "af": {"clean": _metrics(0.6), "char_noise@0.1": _metrics(0.5)}},
        "robustness": {"de": {"char_noise@0.1": {"f1": 0.6, "gap": 0.2, "gap_ratio": 0.25, "strength": STRENGTH}},
                       "af": {"char_noise@0.1": {"f1": 0.5, "gap": 0.1, "gap_ratio": 1 / 6, "strength": STRENGTH}}},
        "robustness_not_applicable": {"de": {"lower@1": "case: script X has no letter case"}},
        "entity_pools": {"de": {"swap_unseen": {"source": "unseen", "split": "test", "languages": ["de"],
                                                "sizes": {"PER": 3}, "excluded": 1, "training_data": False}}},
        "pruning": {"target": 0.5,
                    "achieved": 0.5, "embedding_target": None, "embedding_achieved": None, "model_sparsity": 0.1, "prunable_parameters": 200, "total_parameters": 1000,
                    "pruned_parameters": 100, "per_tensor": per_tensor,
                    "trace": [{"step": 2, "target": 0.25, "achieved": 0.25}, {"step": 4, "target": 0.5,
                                                                              "achieved": 0.5}],
                    "schedule": {"name": "cubic", "initial_sparsity": 0.0, "final_sparsity": 0.5, "total_steps": 4,
                                 "update_steps": [2, 4], "updates": 2, "start_step": 2, "end_step": 4,
                                 "recovery_steps": 0, "recovery_fraction": 0.0}},
        "timings": {"total_seconds": 12.5},
        "versions": {"python": "3.11"},
    }
    record.update(overrides)
    return RunRecord.model_validate(record)
