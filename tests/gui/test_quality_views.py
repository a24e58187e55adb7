"""The generator quality report in the GUI: the Training panel's Quality curves, the gallery's
header line and its localisation-map overlay on the viewer (lesion map or CAM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lesion_studio.jobs import ProgressEvent
from lesion_studio.store import Project
from tests.gui.conftest import dispose, open_window
from tests.stub_models import register_stub_classifier

REPORT = {"iteration": 40, "headline": {"realism_auc": 0.8, "lesion_rate_ratio": 0.25, "intensity_drift": 0.03,
                                        "kid": 5.0, "localisation": None}}


def test_training_panel_draws_quality_per_checkpoint_and_continues_it_on_resume(qtbot, window,  # noqa: ANN001
                                                                                tmp_path: Path) -> None:
    from lesion_studio.gui.panels.training_presenter import previous_quality
    from lesion_studio.training.runs import TrainingRequest

    panel = window.panels["training"]
    assert panel.tabs.indexOf(panel.tabs.quality_plot) >= 0
    panel._progressed(ProgressEvent("train-gan", 40, 100, "", data={"iteration": 40, "losses": {"recon": 1.0},
                                                                    "quality": REPORT}))
    later = {**REPORT, "iteration": 80, "headline": {**REPORT["headline"], "realism_auc": 0.7}}
    panel._progressed(ProgressEvent("train-gan", 80, 100, "", data={"iteration": 80, "losses": {}, "quality": later}))
    assert panel.tabs.quality_plot.points("realism AUC").tolist() == [[40, 0.8], [80, 0.7]]
    assert panel.tabs.quality_plot.points("drift").tolist() == [[40, 0.03], [80, 0.03]]
    assert panel.tabs.quality_plot.points("realism, untouched").tolist() == []  # older reports: no floor drawn
    floored = {**later, "iteration": 120, "realism": {"auc": 0.7, "untouched_auc": 0.74}}
    panel._progressed(ProgressEvent("train-gan", 120, 100, "", data={"iteration": 120, "losses": {},
                                                                     "quality": floored}))
    assert panel.tabs.quality_plot.points("realism, untouched").tolist() == [[120, 0.74]]
    # a resumed run reads what the trainer kept in quality_history.json
    (tmp_path / "models" / "g").mkdir(parents=True)
    (tmp_path / "models" / "g" / "quality_history.json").write_text(json.dumps([REPORT, later]))
    request = TrainingRequest(kind="unit", name="g", preset="tiny", length=100, body_parts=(), splits=(),
                              device="cpu")
    assert [x for x, _ in previous_quality(tmp_path, request)] == [40, 80]
    assert previous_quality(tmp_path / "nowhere", request) == []


@pytest.fixture
def gallery_window(qtbot, tiny_unit_project):  # noqa: ANN001, ANN201
    with Project.open(tiny_unit_project) as p:
        register_stub_classifier(p, name="stub-cam", cam=True)
        # a map-head detector's record, for the overlay's name only (never opened here)
        p.register_model("stub-map", "drn", p.folder / "models" / "stub-cam" / "model.safetensors",
                         sha256="0" * 64, config={"head": "image+map"})
    w = open_window(qtbot, tiny_unit_project)
    yield w
    w.close()
    dispose(w)


def test_gallery_shows_the_generators_report_and_the_cam_overlay(qtbot, gallery_window) -> None:  # noqa: ANN001
    w = gallery_window
    panel = w.panels["gallery"]
    w.docks["gallery"].show()
    panel.model_combo.setCurrentIndex(panel.model_combo.find_name("tiny-unit"))
    # the session's tiny-unit was trained with the quality report on: its last report is the header
    quality = w.session.project.model("tiny-unit").metadata["quality"]
    assert f"realism AUC {quality['headline']['realism_auc']:.2f}" in panel.quality_label.text()
    assert "localisation map" in panel.cam_check.text()  # no classifier chosen yet
    panel.classifier_combo.setCurrentIndex(panel.classifier_combo.findData("stub-map"))
    assert "lesion map" in panel.cam_check.text()  # the map head's map, learnt from the boxes
    panel.classifier_combo.setCurrentIndex(panel.classifier_combo.findData("stub-cam"))
    assert "(CAM)" in panel.cam_check.text()  # an image-only classifier: its class-activation map
    panel.source_combo.setCurrentIndex(panel.source_combo.findData("patches"))
    panel.count_spin.setValue(2)
    panel.generate()
    qtbot.waitUntil(lambda: not panel.busy and len(panel.model.samples()) == 2, timeout=60_000)
    sample = panel.model.samples()[0]
    panel.select_sample(sample.id)
    panel.view.setFocus()
    panel.show_current()
    qtbot.waitUntil(lambda: w.canvas.radiograph is not None and "Synthetic" in w.canvas.radiograph.tags,
                    timeout=10_000)
    assert panel.in_viewer.cam_item is None
    panel.cam_check.setChecked(True)  # on: the map over the shown sample
    assert panel.in_viewer.cam_item is not None, w.banner.text.text()
    heat = panel.in_viewer.cam_item.image
    assert heat.shape == w.canvas.radiograph.pixels.shape and 0.0 <= heat.min() < heat.max() <= 1.0
    panel.cam_check.setChecked(False)  # off: gone
    assert panel.in_viewer.cam_item is None
