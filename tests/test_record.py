"""The one typed definition of results.json: the schema file is generated from it, and it names the arm."""
from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import ValidationError

from sparsenlp.tracking.schema import SCHEMA_PATH, Arm, RunRecord, schema_text
from tests.records import make_record


def test_the_schema_file_is_generated_from_the_typed_record():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "results.schema.json is stale: run `python -m sparsenlp.tracking.schema`")


def test_a_record_validates_against_the_schema_file_and_round_trips():
    record = make_record()
    as_json = json.loads(record.model_dump_json())
    jsonschema.validate(as_json, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    assert RunRecord.model_validate(as_json) == record


@pytest.mark.parametrize("change", [
    {"arm": {**make_record().arm.model_dump(), "regime": "jointly"}},  # not a regime
    {"test": {"de": {"char noise": make_record().test["de"]["clean"].model_dump()}}},  # not a condition name
    {"unexpected_section": {}},
])
def test_records_that_do_not_follow_the_definition_are_refused(change):
    data = {**json.loads(make_record().model_dump_json()), **change}
    with pytest.raises(ValidationError):
        RunRecord.model_validate(data)


def _arm(**kw) -> Arm:
    base = dict(model="mbert", regime="per_language", train_langs=["sw"], method="global_magnitude",
                criterion="magnitude", scope="global", schedule="cubic", sparsity=0.9, embedding_sparsity=0.9,
                selection="best@0.7", length="epochs=10", seed=2)
    return Arm(**{**base, **kw})


def test_arm_labels_and_run_names_name_every_dimension():
    assert _arm().label() == "global_magnitude·cubic@0.9+emb"
    assert _arm().run_name() == "sw-global-s0.9-emb-seed2"
    other = _arm(embedding_sparsity=0.5)  # the embedding matrix at a target of its own
    assert other.label() == "global_magnitude·cubic@0.9+emb@0.5" and other.setting() == "global_magnitude·cubic+emb@0.5"
    assert other.run_name() == "sw-global-s0.9-emb0.5-seed2" and _arm().protocol() == "best@0.7; epochs=10"
    dense = _arm(method="dense", criterion="none", scope="none", schedule="none", embedding_sparsity=0.0,
                 sparsity=0.0)
    assert dense.label() == "dense" and dense.run_name() == "sw-dense-seed2"
    movement = _arm(method="movement", criterion="movement", scope="layerwise", embedding_sparsity=0.0)
    assert movement.label() == "movement[layerwise]·cubic@0.9"
    structured = _arm(method="structured_heads", criterion="l1", scope="layerwise", schedule="none",
                      embedding_sparsity=0.0, sparsity=0.25, structure="heads=0.5,ffn=0")
    assert structured.label() == "structured_heads:l1[layerwise](heads=0.5,ffn=0)·none@0.25"
    joint = _arm(train_langs=["de", "sw", "yo", "zh"], regime="joint", quantization="dynamic_int8")
    assert joint.run_name() == "4langs-global-s0.9-emb-dynamic_int8-seed2"
