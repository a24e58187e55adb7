"""The Training panel's warm start (issue 23): "Pretrain on every body part first" for a classifier.

Real widgets on the demo project. Ticking the box puts ``warm_start_parts: [all]`` and the chosen
epochs into the classifier config the job trains with; unticked there is none; a GAN run is not
offered it; a paused run resumes with the warm start it was set up with, whatever the form says;
the estimate counts the warm start's training images; and a tiny run trains with it end to end.
"""

from __future__ import annotations

import json

import pytest

from lesion_studio.classifier.config import WARM_START_EPOCHS, preset
from lesion_studio.classifier.data import split_records
from lesion_studio.config import to_dict
from lesion_studio.gui.job_queue import JobState


@pytest.fixture(autouse=True)
def _rates_known():  # noqa: ANN202
    """Classifier rates stored for the forms used here, so no panel times steps in the background
    (a torch job these tests do not need); none left for the tests after these."""
    from lesion_studio.gui import settings as prefs
    from lesion_studio.training.estimates import ClassifierRates

    rates = ClassifierRates(prefs.app_settings().value, prefs.set_value)
    for name, size in (("tiny", 64), ("tiny", 96), ("cpu", 160), ("cpu-map", 128)):
        rates.store_probe(preset(name, input_size=size), "cpu", 100.0)
    yield
    prefs.app_settings().remove("training")


def _drn_panel(window, name: str = "warm"):  # noqa: ANN001, ANN202
    panel = window.panels["training"]
    panel.raise_panel()
    panel.kind_combo.setCurrentIndex(panel.kind_combo.findData("drn"))
    panel.preset_combo.setCurrentText("tiny")
    panel.parts_list.set_checked(["femur"])
    panel.device_combo.setCurrentIndex(panel.device_combo.findData("cpu"))
    panel.name_edit.setText(name)
    return panel


def test_ticking_warm_start_puts_it_in_the_classifier_config(qtbot, window) -> None:  # noqa: ANN001
    panel = _drn_panel(window)
    warm = panel.warm_start
    assert warm.check.isVisibleTo(panel) and warm.epochs_spin.isVisibleTo(panel) and not warm.check.isChecked()
    assert not warm.epochs_spin.isEnabled() and warm.epochs() == WARM_START_EPOCHS == 6
    assert "validation and test images" in warm.check.toolTip().lower()
    cfg = panel.request_from_form().classifier_config()
    assert cfg.warm_start_parts == []  # unticked: no warm start

    warm.check.click()
    assert warm.epochs_spin.isEnabled()
    warm.epochs_spin.setValue(3)
    request = panel.request_from_form()
    cfg = request.classifier_config()
    assert (cfg.warm_start_parts, cfg.warm_start_epochs) == (["all"], 3)
    assert cfg.warm_start_body_parts is None  # every body part
    assert request.body_parts == ("femur",) and cfg.epochs == panel.length_spin.value()  # the run itself as before

    warm.check.click()
    assert not warm.epochs_spin.isEnabled()
    assert panel.request_from_form().classifier_config().warm_start_parts == []


def test_a_gan_run_is_not_offered_a_warm_start(qtbot, window) -> None:  # noqa: ANN001
    panel = _drn_panel(window)
    panel.warm_start.check.setChecked(True)
    panel.kind_combo.setCurrentIndex(panel.kind_combo.findData("unit"))
    warm = panel.warm_start
    assert not any(w.isVisibleTo(panel) for w in (warm.check, warm.label, warm.epochs_spin))
    request = panel.request_from_form()
    assert request.kind == "unit" and request.warm_start_parts == () and request.warm_start_epochs is None
    panel.kind_combo.setCurrentIndex(panel.kind_combo.findData("drn"))
    assert all(w.isVisibleTo(panel) for w in (warm.check, warm.label, warm.epochs_spin))


def test_a_paused_warm_start_run_resumes_with_its_own_warm_start(qtbot, window, monkeypatch) -> None:  # noqa: ANN001
    """The paused run's checkpoint holds its config; the form shows its warm start, and Resume
    submits it whatever the form says now (nothing is trained here: the request is captured)."""
    from lesion_studio.models import layout

    project = window.session.project
    saved = to_dict(preset("tiny", epochs=3, input_size=64, device="cpu", warm_start_parts=["all"],
                           warm_start_epochs=2))
    folder = layout.classifier_dir(project.folder, "paused-warm")
    folder.mkdir(parents=True)
    layout.sidecar_path(folder / layout.LAST).write_text(json.dumps(
        {"epoch": 1, "name": "paused-warm", "body_parts": ["femur"], "config": saved}))
    panel = _drn_panel(window, "other")
    panel.refresh_paused(select="paused-warm")
    panel._paused_chosen()
    assert panel.warm_start.check.isChecked() and panel.warm_start.epochs() == 2  # shown as it was set up

    panel.warm_start.check.setChecked(False)  # the form's choice must not leak into Resume
    submitted = []
    monkeypatch.setattr(panel, "_request", submitted.append)
    monkeypatch.setattr("lesion_studio.gui.panels.training.training_available", lambda: True)
    panel.resume()
    (request,) = submitted
    assert request.resume and request.name == "paused-warm" and request.warm_start_parts == ("all",)
    cfg = request.classifier_config()
    assert (cfg.warm_start_parts, cfg.warm_start_epochs, cfg.epochs) == (["all"], 2, 3)


def test_the_estimate_counts_the_warm_starts_training_images(qtbot, window) -> None:  # noqa: ANN001
    """With a stored rate, ticking the box adds every body part's training images × its epochs."""
    panel = _drn_panel(window)
    panel.input_spin.setValue(64)
    panel.estimates.rates.store_probe(panel.request_from_form().classifier_config(), "cpu", 40.0)
    plain, _disk, _source = panel.estimate()
    panel.warm_start.check.setChecked(True)
    panel.warm_start.epochs_spin.setValue(4)
    warm, _disk, _source = panel.estimate()
    images = len(split_records(window.session.project, "train", None))
    assert images > len(split_records(window.session.project, "train", ["femur"])) > 0
    assert warm - plain == pytest.approx(images * 4 / 40.0)
    panel.warm_start.epochs_spin.setValue(8)  # the estimate follows the warm start's epochs
    assert panel.estimate()[0] - plain == pytest.approx(images * 8 / 40.0)
    assert panel.estimate_label.text().startswith("About ")


def test_a_tiny_run_from_the_panel_trains_with_the_warm_start(qtbot, window) -> None:  # noqa: ANN001
    """End to end (tiny, 1 epoch, 64 px): the warm start trains first, on its own loss curve and
    without validation points, then the run; the model's config and checkpoint record it."""
    pytest.importorskip("torch")
    from lesion_studio.models import layout

    panel = _drn_panel(window, "warm-gui")
    panel.length_spin.setValue(1)
    panel.input_spin.setValue(64)
    panel.warm_start.check.setChecked(True)
    panel.warm_start.epochs_spin.setValue(1)
    panel.overrides = {"batch_size": 8}
    job = panel.start()
    assert job is not None
    with qtbot.waitSignal(job.finished, timeout=180_000):
        pass
    assert job.state == JobState.DONE, job.error
    project = window.session.project
    record = project.model("warm-gui")
    assert record.config["warm_start_parts"] == ["all"] and record.config["warm_start_epochs"] == 1
    meta = json.loads(layout.sidecar_path(record.weights(project.folder)).read_text())
    assert meta["warm_start"]["body_parts"] == ["all"] and meta["warm_start"]["epochs"] == 1
    assert meta["warm_start"]["images"] == len(split_records(project, "train", None))
    assert list((project.folder / "cache" / "warm-start").iterdir())  # cached for later runs
    assert len(panel.tabs.loss_plot.points("warm-start loss")) > 0 and len(panel.tabs.loss_plot.points("train loss")) > 0
    assert list(panel.tabs.auc_plot.points("val AUC")[:, 0]) == [1]  # the run's epoch only
    assert not panel._warming

