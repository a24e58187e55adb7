"""Retrain on the current labels: a real (tiny) training run on the phantom project registers a new
detector, stores its operating point, and refreshes the queue's scores under its id."""

from __future__ import annotations

import pytest

from lesion_studio.assist.queue import find_operating_point, review_order, unreviewed_ids
from lesion_studio.assist.retrain import next_model_name, retrain_config, retrain_detector
from lesion_studio.classifier.config import preset
from lesion_studio.store import proposals as store
from lesion_studio.store import readers

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")


def test_next_model_name(demo_project) -> None:  # noqa: ANN001
    assert next_model_name(demo_project) == "assist-1"
    for name in ("assist-1", "assist-7", "assist-x", "assistant-9"):
        demo_project.register_model(name, "drn", demo_project.folder / f"{name}.safetensors", sha256="0" * 64)
    assert next_model_name(demo_project) == "assist-8"
    assert retrain_config().arch == "drn_d_22_half" and retrain_config(epochs=2).epochs == 2
    # the cpu-map detector, shortened for a reader who waits
    assert retrain_config() == preset("cpu-map", epochs=8) and retrain_config().head == "image+map"


@pytest.mark.slow
def test_retrain_registers_a_model_and_refreshes_the_scores(demo_project) -> None:  # noqa: ANN001
    project = demo_project
    train = [r for r in project.images(split="train", include_excluded=False)]
    for rec in train[:8]:  # eight training images not read yet: the queue
        project.update_image(rec.id, label="unreviewed")
    todo = unreviewed_ids(project)
    assert len(todo) == 8
    # an older model's scores: the queue follows them until retraining
    old = project.register_model("older", "drn", project.folder / "older.safetensors", sha256="0" * 64)
    store.store_image_scores(project, old, dict.fromkeys(todo, 0.5))
    boxes, labels = project.boxes(), readers.reader_labels(project)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = retrain_config(arch="drn_d_tiny", input_size=64, crop_to_body=False, epochs=1)
        result = retrain_detector(project, config=cfg, propose=True)
    finally:
        torch.set_num_threads(threads)

    model = project.model(result.model_id)
    assert (result.model_name, model.name, model.kind) == ("assist-1", "assist-1", "drn")
    assert model.config["head"] == "image+map" and model.metadata["onnx_sha256"]  # exported and hash-registered
    # the operating point from the validation images' scores, stored with the model
    assert model.metadata["operating_point"]["source"] == "youden_val"
    assert find_operating_point(project, model.id).value == result.operating_point.value
    # scores refreshed under the new model id: every unreviewed image, and the labelled validation images
    scores = store.image_scores(project, model.id)
    val = {r.id for r in project.images(split="val", include_excluded=False) if r.label != "unreviewed"}
    assert set(scores) == todo | val and result.scored == 8
    assert all(0.0 <= s.score <= 1.0 and s.model_name == "assist-1" for s in scores.values())
    assert store.latest_scoring_model(project) == model.id
    want = sorted(todo, key=lambda i: (abs(scores[i].score - result.operating_point.value), i))
    assert review_order(project, "uncertainty") == want
    # proposals from the new model's lesion map, on the unreviewed images only; nothing annotated
    found = store.proposals(project, model_id=model.id)
    assert found and {p.image_id for p in found} <= todo and {p.state for p in found} == {"pending"}
    assert project.boxes() == boxes and readers.reader_labels(project) == labels
    assert unreviewed_ids(project) == todo
