"""The stages' typed outputs: their JSON form is the dict the runner always stored (so old results
folders resume), it survives the stage cache's JSON both ways, and a marker that is not of the
stage's type is run again rather than trusted."""

from __future__ import annotations

import json

import pytest

from lesion_studio.experiment.outputs import (
    AugmentedRun,
    BaselineRun,
    CandidateBatch,
    Evaluation,
    FilterDecision,
    GeneratorInfo,
    ModelRow,
    ScoredCandidates,
    Selection,
)
from lesion_studio.experiment.stages import StageCache

# Stage outputs as the runner stored them before the types existed (keys and shapes as in the
# markers of a results folder made then).
LEGACY = [
    (BaselineRun, {"path": "/r/models/baseline-femur/classifier.safetensors", "sha256": "ab" * 32, "val_auc": 0.71,
                   "seed": 1, "epoch": 4, "model_id": 3, "model_name": "t-baseline-femur-s1",
                   "val_scores": [0.25, 0.5, 0.75], "val_labels": [0, 0, 1]}),
    (BaselineRun, {"path": "/r/m.safetensors", "sha256": "cd" * 32, "val_auc": None, "seed": 0, "epoch": 1,
                   "model_id": 4, "model_name": "x", "val_scores": None, "val_labels": None}),
    (GeneratorInfo, {"kind": "unit", "model_id": 7, "model_name": "unit-femur", "sha256": "ef" * 32,
                     "trained": True}),
    (GeneratorInfo, {"kind": "stub", "version": 1, "strength": 0.45}),
    (CandidateBatch, {"batch": "t:femur<-femur:0a1b2c3d", "sample_ids": [5, 3, 11]}),
    (ScoredCandidates, {"scores": {"5": 0.5, "3": 0.25, "11": 0.875}, "seed_scores": [[0.5, 0.25, 0.875]],
                        "filter_model": "t-baseline-femur", "filter_models": ["t-baseline-femur"],
                        "filter_sha256": "0123456789abcdef", "backend": "onnx"}),
    (AugmentedRun, {"t": 0.5, "cut": 0.61, "seed": 0, "kept": 0, "kept_ids": [], "val_auc": None,
                    "skipped": True}),
    (AugmentedRun, {"t": 0.0, "cut": 0.2, "seed": 1, "kept": 2, "kept_ids": [3, 5], "val_auc": 0.8,
                    "path": "/r/models/aug/classifier.safetensors", "sha256": "12" * 32, "model_id": 9,
                    "model_name": "t-aug-femur_from_femur-t0-s1", "skipped": False,
                    "val_scores": [0.1, 0.9], "val_labels": [0, 1]}),
    (Evaluation, {"test_set": "project-test-split", "evaluations": [{"target": "femur", "auc": None,
                                                                     "line": "headline"}]}),
]


@pytest.mark.parametrize(("kind", "stored"), LEGACY, ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_the_stored_dict_round_trips_through_the_type(kind, stored) -> None:
    value = kind.from_dict(stored)
    assert value.to_dict() == stored
    # As the stage cache writes and reads it: sorted keys, JSON text.
    again = kind.from_dict(json.loads(json.dumps(value.to_dict(), sort_keys=True)))
    assert again == value
    assert json.dumps(again.to_dict(), sort_keys=True) == json.dumps(stored, sort_keys=True)


def test_typed_fields_are_read_as_their_types() -> None:
    scored = ScoredCandidates.from_dict(LEGACY[5][1])
    assert scored.scores == {5: 0.5, 3: 0.25, 11: 0.875}
    assert list(scored.scores) == [5, 3, 11]  # the order of the stored scores is kept
    assert scored.json_scores == {"5": 0.5, "3": 0.25, "11": 0.875}

    stub = GeneratorInfo.from_dict({"kind": "stub", "version": 1, "strength": 0.45})
    assert stub.model_id is None and stub.settings == {"version": 1, "strength": 0.45}
    assert list(stub.to_dict()) == ["kind", "version", "strength"]  # results.json lists it as before
    unit = GeneratorInfo(kind="unit", model_id=7, model_name="u", sha256="s", trained=False)
    assert unit.to_dict() == {"kind": "unit", "model_id": 7, "model_name": "u", "sha256": "s", "trained": False}

    skipped = AugmentedRun.from_dict(LEGACY[6][1])
    assert not skipped.trained and skipped.path is None and "path" not in skipped.to_dict()
    assert AugmentedRun.from_dict(LEGACY[7][1]).trained
    assert BaselineRun.from_dict(LEGACY[0][1]).trained


def test_outputs_that_never_reach_the_cache_round_trip_too() -> None:
    decision = FilterDecision(refused=False, val_auc=0.8, cuts={0.0: 0.125, 0.5: 0.625}, reason="")
    assert list(decision.to_dict()) == ["refused", "val_auc", "cuts", "reason"]
    assert FilterDecision.from_dict(json.loads(json.dumps(decision.to_dict()))) == decision  # "0.5" -> 0.5
    selection = Selection(compared=[{"t": 0.5, "kept": 3, "note": "no validation set with both classes"}],
                          best_t=None, accepted=False, reason="no validation set with both classes")
    assert Selection.from_dict(selection.to_dict()) == selection
    assert selection.compared_at(0.5)["kept"] == 3 and selection.compared_at(0.9) == {}
    row = ModelRow(id="femur|Baseline|None", target="femur", parts=["femur"], type="Baseline", status="baseline",
                   transfer_from=None, selection_reason=None, t=None, cut=None, augmented_samples=0, seeds=[0, 1],
                   paths=["a", "b"], sha256=["x", "y"], model_name=["m0", "m1"], val_auc=0.7)
    assert ModelRow.from_dict(json.loads(json.dumps(row.to_dict()))) == row


def test_to_dict_does_not_alias_the_value() -> None:
    batch = CandidateBatch(batch="b", sample_ids=[1, 2])
    batch.to_dict()["sample_ids"].append(3)
    assert batch.sample_ids == [1, 2]


def test_a_missing_key_is_an_error_not_a_half_filled_output() -> None:
    stored = dict(LEGACY[0][1])
    del stored["sha256"]
    with pytest.raises(TypeError):
        BaselineRun.from_dict(stored)


def test_stage_cache_stores_the_dict_form_and_gives_back_the_type(tmp_path) -> None:
    cache = StageCache(tmp_path / "stages")
    calls = []

    def make() -> CandidateBatch:
        calls.append(1)
        return CandidateBatch(batch="b", sample_ids=[3, 1, 2])

    first = cache.run_as("synthesize/femur<-femur", {"seed": 0}, make, CandidateBatch)
    marker = json.loads(cache.marker("synthesize/femur<-femur").read_text())
    assert marker["outputs"] == {"batch": "b", "sample_ids": [3, 1, 2]}

    again = StageCache(tmp_path / "stages")
    second = again.run_as("synthesize/femur<-femur", {"seed": 0}, make, CandidateBatch)
    assert second == first and isinstance(second, CandidateBatch) and len(calls) == 1
    assert again.events == [{"stage": "synthesize/femur<-femur", "status": "cached"}]

    # Changed inputs run the stage again.
    again.run_as("synthesize/femur<-femur", {"seed": 1}, make, CandidateBatch)
    assert len(calls) == 2 and again.events[-1]["status"] == "ran"


def test_a_marker_of_another_shape_is_run_again(tmp_path) -> None:
    cache = StageCache(tmp_path / "stages")
    cache.run("baseline/femur/seed=0", {"v": 1}, lambda: {"path": "old.pt"})  # outputs of another shape
    value = BaselineRun.from_dict(LEGACY[0][1])
    out = cache.run_as("baseline/femur/seed=0", {"v": 1}, lambda: value, BaselineRun)
    assert out == value and [e["status"] for e in cache.events] == ["ran", "ran"]
    assert json.loads(cache.marker("baseline/femur/seed=0").read_text())["outputs"] == LEGACY[0][1]
