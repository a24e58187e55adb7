"""The Training panel on the demo project: real trainers, real widgets, offscreen.

A tiny UNIT run is started from the panel, shows progress, loss curves and samples, is paused
(stopped at a checkpoint), resumed from the panel and finishes into the registry; a tiny DRN run
plots its validation AUC per epoch; closing the window while training asks and stops cleanly.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from lesion_studio.gui.job_queue import JobState

pytest.importorskip("torch")

# tiny and quick: one body part, samples and checkpoints every few iterations, no ONNX export
UNIT_OVERRIDES = {"cpu_threads": 1, "sample_every": 2, "checkpoint_every": 4, "export_onnx": False}


@pytest.fixture(autouse=True)
def _answer_yes(monkeypatch):  # noqa: ANN001, ANN202
    """Closing with jobs running asks; a test that forgets to finish its job still closes cleanly."""
    asked: list[str] = []

    def question(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        asked.append(args[2] if len(args) > 2 else "")
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return asked


def _panel(window):  # noqa: ANN001, ANN202
    panel = window.panels["training"]
    panel.raise_panel()
    return panel


def _setup_unit(qtbot, panel, name: str, iterations: int) -> None:  # noqa: ANN001
    panel.kind_combo.setCurrentIndex(panel.kind_combo.findData("unit"))
    panel.preset_combo.setCurrentText("tiny")
    panel.parts_list.set_checked(["femur"])
    panel.length_spin.setValue(iterations)
    panel.device_combo.setCurrentIndex(panel.device_combo.findData("cpu"))
    panel.name_edit.clear()
    qtbot.keyClicks(panel.name_edit, name)
    panel.overrides = dict(UNIT_OVERRIDES)


def test_unit_start_pause_resume_finishes_into_the_registry(qtbot, window) -> None:  # noqa: ANN001
    from lesion_studio.models.layout import CHECKPOINT

    panel = _panel(window)
    project = window.session.project
    qtbot.waitUntil(lambda: window.job_queue.gpu_probe.available is not None, timeout=30_000)
    gpu_item = panel.device_combo.model().item(2)
    if not window.job_queue.gpu_probe.available:
        assert not gpu_item.isEnabled() and "No CUDA GPU" in gpu_item.toolTip()

    _setup_unit(qtbot, panel, "gui-gan", 16)
    assert panel.name_edit.text() == "gui-gan"
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    job = panel.job
    assert job is not None and job.state == JobState.RUNNING and panel.stop_button.isEnabled()
    qtbot.waitUntil(lambda: panel.tabs.sample_grid.array is not None, timeout=60_000)  # iteration 2
    qtbot.waitUntil(lambda: panel.tabs.loss_plot.repaints > 0, timeout=5000)
    assert {"recon", "cycle", "gan", "dis"} <= set(panel.tabs.loss_plot.names()) and "total" not in panel.tabs.loss_plot.names()
    assert panel.progress.maximum() == 16 and panel.progress.value() >= 2
    assert panel.tabs.sample_grid.array.shape == (4 * 32 + 3 * 2, 4 * 32 + 3 * 2)  # 4 rows × 4 tiles of 32 px

    with qtbot.waitSignal(job.finished, timeout=30_000):
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
        assert panel.stop_button.text() == "Stopping…" and not panel.stop_button.isEnabled()
        assert "stopping" in window.job_queue.data(window.job_queue.index(0))
    assert job.state == JobState.PAUSED
    assert window.job_queue.data(window.job_queue.index(0)).endswith("— paused")  # the Jobs list
    stopped_at = job.result.iteration
    assert 2 <= stopped_at < 16
    assert (project.folder / "models" / "gui-gan" / CHECKPOINT).exists()
    assert project.runs("unit")[-1].status == "cancelled"
    assert project.model("gui-gan").metadata["complete"] is False
    assert "Paused gui-gan" in panel.status_label.text() and panel.resume_button.isEnabled()
    # listed with its own settings, and resumed as it was whatever the form says now
    (paused,) = panel.paused_combo.runs()
    assert (paused.kind, paused.name, paused.done, paused.total, paused.preset) == ("unit", "gui-gan", stopped_at,
                                                                                    16, "tiny")
    assert "gui-gan" in panel.paused_combo.currentText() and panel.length_spin.value() == 16
    panel.preset_combo.setCurrentText("fast")
    assert panel.length_spin.value() == 300  # the CPU default of the form: it must not leak into Resume
    qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    resumed = panel.job
    assert panel.request.length == 16 and panel.request.preset == "tiny" and panel.request.body_parts == ("femur",)
    assert resumed is not job
    with qtbot.waitSignal(resumed.finished, timeout=60_000):
        pass
    assert resumed.state == JobState.DONE, resumed.error
    assert resumed.result.iteration == 16 and resumed.result.iterations == 16
    assert panel.paused_combo.runs() == [] and not panel.resume_button.isEnabled()
    record = project.model("gui-gan")
    assert record.kind == "unit" and record.metadata["complete"] is True
    assert project.runs("unit")[-1].status == "finished"
    # the curve continues the paused run: earlier iterations from history.json, then the new ones
    xs = panel.tabs.loss_plot.points("recon")[:, 0]
    assert list(xs) == list(range(1, 17))
    assert "in the model registry" in panel.status_label.text()
    # the new model is offered in the synthesis panel at once
    synthesis = window.panels["synthesis"]
    names = [synthesis.model_combo.itemText(i) for i in range(synthesis.model_combo.count())]
    assert any(n.startswith("gui-gan") for n in names), names
    assert not window.job_queue.busy()


def test_drn_training_plots_validation_auc_per_epoch(qtbot, window) -> None:  # noqa: ANN001
    panel = _panel(window)
    panel.kind_combo.setCurrentIndex(panel.kind_combo.findData("drn"))
    assert panel.length_label.text() == "Epochs" and not panel.split_combo.isEnabled()
    panel.preset_combo.setCurrentText("tiny")
    assert panel.input_spin.value() == 96 and panel.name_edit.text() == "drn-all-tiny"
    panel.parts_list.set_checked(["femur"])
    assert panel.name_edit.text() == "drn-femur-tiny"
    panel.length_spin.setValue(2)
    panel.input_spin.setValue(32)
    panel.device_combo.setCurrentIndex(panel.device_combo.findData("cpu"))
    panel.overrides = {"batch_size": 8}
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    job = panel.job
    with qtbot.waitSignal(job.finished, timeout=90_000):
        pass
    assert job.state == JobState.DONE, job.error
    auc = panel.tabs.auc_plot.points("val AUC")
    assert list(auc[:, 0]) == [1, 2] and ((auc[:, 1] >= 0) & (auc[:, 1] <= 1)).all()
    assert len(panel.tabs.loss_plot.points("train loss")) > 0
    assert window.session.project.model("drn-femur-tiny").kind == "drn"


def test_closing_while_training_asks_and_stops_at_a_checkpoint(qtbot, demo_project, _answer_yes,
                                                               monkeypatch) -> None:  # noqa: ANN001
    from lesion_studio.models.layout import CHECKPOINT
    from tests.gui.conftest import dispose, open_window

    window = open_window(qtbot, demo_project.folder)
    panel = window.panels["training"]
    _setup_unit(qtbot, panel, "closing", 400)
    job = panel.start()
    qtbot.waitUntil(lambda: panel.tabs.loss_plot.repaints > 0, timeout=60_000)  # training, not preparing

    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.No))
    window.close()  # "No": the window stays and training goes on
    assert window.isVisible() and job.state == JobState.RUNNING

    monkeypatch.setattr(QMessageBox, "question",
                        staticmethod(lambda *a, **k: _answer_yes.append(a[2]) or QMessageBox.StandardButton.Yes))
    window.close()
    assert not window.isVisible()
    assert _answer_yes and "closing" in _answer_yes[-1]
    assert job.state == JobState.PAUSED and not window.job_queue.busy()
    assert (demo_project.folder / "models" / "closing" / CHECKPOINT).exists()
    assert demo_project.runs("unit")[-1].status == "cancelled"
    dispose(window)


def test_the_form_estimates_time_and_disk_and_defaults_to_minutes_on_a_cpu(qtbot, window, monkeypatch) -> None:  # noqa: ANN001
    from lesion_studio.gui import settings as prefs
    from lesion_studio.gui.panels.training_presenter import UNIT_PRESETS

    prefs.app_settings().remove("training")  # no rate measured here yet: reference figures
    probe = window.job_queue.gpu_probe
    monkeypatch.setattr(probe, "available", False)
    panel = _panel(window)
    panel._gpu_known(False, "")
    panel.kind_combo.setCurrentIndex(panel.kind_combo.findData("unit"))
    panel.preset_combo.setCurrentText("fast")
    assert panel.preset_combo.currentText() == "fast"
    seconds, disk, source = panel.estimate()
    assert panel.length_spin.value() < UNIT_PRESETS["fast"] and seconds < 15 * 60  # minutes, not hours
    assert disk > 0 and source == "reference measurement"
    text = panel.estimate_label.text()
    assert text.startswith("About ") and "min" in text and "on the CPU" in text and "MB on disk" in text
    panel.length_spin.setValue(6000)  # the estimate follows the form
    assert "h " in panel.estimate_label.text()

    monkeypatch.setattr(probe, "available", True)  # a GPU turns up: "auto" means it, the default grows
    panel.preset_combo.setCurrentText("tiny")
    panel.preset_combo.setCurrentText("fast")
    panel._gpu_known(True, "Test GPU")
    assert panel.length_spin.value() == UNIT_PRESETS["fast"] and "on the GPU" in panel.estimate_label.text()

    prefs.set_value("training/rate/unit/fast/cuda", 0.5)  # a rate measured on this machine wins
    panel.update_estimate()
    prep = panel.preparation()  # preparing the patches is part of the run's time
    assert prep.images > 0 and not prep.cached and prep.seconds > 0
    assert panel.estimate()[0] == pytest.approx(0.5 * UNIT_PRESETS["fast"] + prep.seconds)
    assert "measured here" in panel.estimate_label.text()
    assert f"preparing patches of {prep.images:,} images" in panel.estimate_label.text()
    prefs.app_settings().remove("training")


def test_the_classifier_form_shows_an_estimate_before_any_run(qtbot, window) -> None:  # noqa: ANN001
    """No classifier has run here and no rate is stored: a few steps are timed in a background job
    and the form shows an estimate from them, which then follows the form (issue 24)."""
    from lesion_studio.gui import settings as prefs

    prefs.app_settings().remove("training")
    project = window.session.project
    assert not project.models(kind="drn") and not project.runs("drn")
    panel = _panel(window)
    panel.device_combo.setCurrentIndex(panel.device_combo.findData("cpu"))
    panel.kind_combo.setCurrentIndex(panel.kind_combo.findData("drn"))
    panel.preset_combo.setCurrentText("tiny")
    panel.input_spin.setValue(32)
    panel.overrides = {"batch_size": 4}
    panel.update_estimate()
    qtbot.waitUntil(lambda: panel.estimate_label.text().startswith("About "), timeout=180_000)
    text = panel.estimate_label.text()
    assert "on the CPU" in text and "from 3 timed steps" in text
    probe = window.job_queue.jobs()[-1]
    assert probe.state == JobState.DONE and probe.result > 0 and "Time classifier steps" in probe.title
    seconds, _disk, source = panel.estimate()
    panel.length_spin.setValue(2 * panel.length_spin.value())  # twice the epochs, twice the time
    assert panel.estimate()[0] == pytest.approx(2 * seconds) and source == "from 3 timed steps"
    assert not project.runs("drn")  # estimated without training anything
    prefs.app_settings().remove("training")


def test_a_classifier_form_starts_from_the_box_supervised_detector(qtbot, window) -> None:  # noqa: ANN001
    """Choosing "Classifier" offers the detector that measured best on a CPU (``cpu-map``: the map
    head that learns from the user's boxes, 25 epochs at 128 px), not the paper's image-level
    DRN-D-22; the faster ``cpu-quick`` and the paper's ``cpu`` stay one click away."""
    from lesion_studio.classifier.config import preset
    from lesion_studio.gui import settings as prefs
    from lesion_studio.training.estimates import ClassifierRates

    rates = ClassifierRates(prefs.app_settings().value, prefs.set_value)
    for name in ("cpu-map", "cpu-quick"):
        rates.store_probe(preset(name), "cpu", 100.0)  # known rates: no probe job in the background
    try:
        panel = _panel(window)
        panel.kind_combo.setCurrentIndex(panel.kind_combo.findData("drn"))
        assert panel.preset_combo.currentText() == "cpu-map"
        assert (panel.length_spin.value(), panel.input_spin.value()) == (25, 128)
        cfg = panel.request_from_form().classifier_config()
        assert (cfg.head, cfg.arch, cfg.crop_to_body) == ("image+map", "drn_d_22_half", True)
        offered = [panel.preset_combo.itemText(i) for i in range(panel.preset_combo.count())]
        assert {"cpu", "cpu-quick", "gpu"} <= set(offered)
        panel.preset_combo.setCurrentText("cpu-quick")
        assert (panel.length_spin.value(), panel.input_spin.value()) == (12, 128)
        assert panel.request_from_form().classifier_config().train_crop == 112
        panel.input_spin.setValue(96)  # a smaller input keeps a crop that fits it: the run can start
        assert panel.request_from_form().classifier_config().train_crop == 80
    finally:
        prefs.app_settings().remove("training")
