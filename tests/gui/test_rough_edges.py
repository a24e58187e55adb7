"""The rough edges a hands-on walk through the GUI found, each held by a test (issue 27).

Real widgets on the demo project, offscreen: a missing image, the gallery on a fresh project, the
plots' size, range and colours, the filter menus, an empty import, a short review session, a queued
batch, and a model registered from another thread.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QThread
from PySide6.QtWidgets import QApplication

from lesion_studio.builtin_models import builtin_models
from lesion_studio.store.records import Box
from tests.gui.conftest import show


def test_a_missing_image_shows_a_placeholder_refuses_edits_and_is_marked(qtbot, window, tmp_path) -> None:  # noqa: ANN001
    from lesion_studio.gui.panels.browser import COL_NAME, COL_STATUS, MISSING, STATUS_COLORS

    project = window.session.project
    shown, gone = project.images()[:2]
    show(qtbot, window, shown.id)
    assert window.canvas.radiograph is not None
    gone.abs_path.rename(tmp_path / gone.abs_path.name)  # moved away behind the app's back
    window.browser.reload()

    window.browser.select_image(gone.id)
    # at once, not after a decode: the previous image is not left on screen to draw on
    assert window.record.id == gone.id and window.canvas.radiograph is None
    assert window.stack.currentWidget() is window.placeholder
    assert gone.name in window.placeholder.text() and "missing" in window.placeholder.text()
    boxes = len(project.boxes(gone.id))
    assert window.controller.create_region("lesion", Box(10, 10, 60, 60)) is None
    assert len(project.boxes(gone.id)) == boxes
    assert "cannot be shown" in window.banner.text.text() and "Re-link" in window.banner.text.text()
    # the browser marks it, in the status column (a filter value too) and in red
    model = window.browser.model
    row = model.row_of(gone.id)
    assert model.data(model.index(row, COL_STATUS)) == MISSING
    assert model.data(model.index(row, COL_NAME), Qt.ItemDataRole.ForegroundRole) == STATUS_COLORS[MISSING]
    window.browser.set_filter(COL_STATUS, MISSING)
    assert window.browser.visible_image_ids() == [gone.id]
    # back on a file that is there: the viewer, not the placeholder
    window.browser.set_filter(COL_STATUS, None)
    show(qtbot, window, shown.id)
    assert window.stack.currentWidget() is window.canvas


def test_builtin_generators_are_in_the_gallery_of_any_project(qtbot, window) -> None:  # noqa: ANN001
    from lesion_studio.gui.panels.model_combo import CHOICE_ROLE

    panel = window.panels["gallery"]
    project = window.session.project
    assert project.models("unit") == []  # a fresh project: nothing trained, no built-in copied in yet
    names = [panel.model_combo.itemData(i, CHOICE_ROLE).name for i in range(panel.model_combo.count())]
    assert {b.registered_name for b in builtin_models(kind="unit")} <= set(names)
    assert panel.model_combo.current_choice().builtin  # and one is chosen: Generate works at once
    panel.model_combo.setCurrentIndex(panel.model_combo.find_name("builtin-phantom-unit"))
    panel.source_combo.setCurrentIndex(panel.source_combo.findData("patches"))
    panel.count_spin.setValue(2)
    panel.generate()
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
    assert len(panel.model.samples()) == 2
    assert project.model("builtin-phantom-unit").metadata["builtin"] == "phantom-unit"  # copied on first use
    qtbot.waitUntil(lambda: panel.model_combo.current_choice().registered, timeout=10_000)  # models_changed


def test_plots_are_tall_start_at_zero_to_one_and_never_share_a_colour(qtbot, window) -> None:  # noqa: ANN001
    from lesion_studio.gui.panels.loss_plot import CurvePlot
    from lesion_studio.gui.panels.training_presenter import quality_point
    from lesion_studio.jobs import ProgressEvent

    empty = CurvePlot("Losses", "iteration", "loss")
    assert empty.plotItem.vb.viewRange()[1] == [0.0, 1.0]  # not −1200…−800
    panel = window.panels["training"]
    panel.raise_panel()
    window.show_dock("training")
    losses = {"dis": 1.0, "gan": 0.9, "recon": 0.5, "kl": 0.1, "cycle": 0.4, "cycle_kl": 0.05, "total": 9.0}
    report = {"headline": {"realism_auc": 0.7, "lesion_rate_ratio": 0.4, "intensity_drift": 0.02},
              "realism": {"untouched_auc": 0.6}}
    for i in (1, 2, 3):
        panel._progressed(ProgressEvent("train-gan", i, 10, "", data={"losses": losses, "iteration": i,
                                                                        "quality": report}))
    panel.tabs.loss_plot.flush()
    qtbot.waitUntil(lambda: panel.tabs.loss_plot.plotItem.vb.height() > 0, timeout=5_000)
    assert panel.tabs.loss_plot.plotItem.vb.height() >= 120  # it was about 40 px under its legend
    for plot, names in ((panel.tabs.loss_plot, set(losses) - {"total"}), (panel.tabs.quality_plot, set(quality_point(report)))):
        assert set(plot.colours) == names
        assert len(set(plot.colours.values())) == len(names), plot.colours
    panel.tabs.loss_plot.clear_curves()
    assert panel.tabs.loss_plot.plotItem.vb.viewRange()[1] == [0.0, 1.0]


def test_the_gallery_grid_is_in_sight_in_its_dock(qtbot, window) -> None:  # noqa: ANN001
    from lesion_studio.samples.thumbnails import THUMB

    window.show_dock("gallery")
    panel = window.panels["gallery"]
    qtbot.waitUntil(lambda: panel.view.isVisible(), timeout=5_000)
    QApplication.processEvents()
    visible = panel.view.visibleRegion().boundingRect()
    assert visible.height() >= THUMB  # a row of thumbnails at least, not below the fold


def test_filter_menus_say_what_they_filter_once_set(qtbot, window) -> None:  # noqa: ANN001
    from lesion_studio.gui.panels.browser import COL_BODY, COL_LABEL, COL_SPLIT

    browser = window.browser
    browser.set_filter(COL_LABEL, "lesion")
    browser.set_filter(COL_SPLIT, "train")
    part = browser.model.body_parts()[0]
    browser.set_filter(COL_BODY, part)
    assert browser.combos[COL_LABEL].currentText() == "Label: lesion"
    assert browser.combos[COL_SPLIT].currentText() == "Split: train"
    assert browser.combos[COL_BODY].currentText() == f"Body part: {part}"
    browser.set_filter(COL_LABEL, None)
    assert browser.combos[COL_LABEL].currentText() == "Label: any"


def test_importing_an_empty_folder_says_there_was_nothing_to_import(qtbot, window, tmp_path) -> None:  # noqa: ANN001
    empty = tmp_path / "nothing here"
    empty.mkdir()
    (empty / "readme.txt").write_text("not an image")
    job = window.import_images(empty)
    qtbot.waitUntil(lambda: not job.active, timeout=30_000)
    text = window.banner.text.text()
    assert text.startswith("No images found in") and str(empty) in text and "Imported 0" not in text
    assert window.banner.level == "warning"


def test_a_short_review_session_says_why_it_is_short(qtbot, window) -> None:  # noqa: ANN001
    from lesion_studio.gui.panels.review import ReviewDialog
    from lesion_studio.samples.batch import generate_candidates
    from tests.stub_models import StubTranslator

    project = window.session.project
    generate_candidates(project, StubTranslator(), count=1, batch_name="one", seed=0)
    dialog = ReviewDialog(project)
    try:
        dialog.rater_edit.setText("bob")
        dialog.count_spin.setValue(5)
        assert dialog.start()
        assert len(dialog.items) == 2  # one of each kind: the only synthetic sample sets it
        assert "Only 1 item(s) of each kind are available (5 asked)" in dialog.score_label.text()
    finally:
        dialog.close()


def test_a_queued_batch_says_what_it_waits_for(qtbot, window) -> None:  # noqa: ANN001
    queue = window.job_queue
    lane = queue.lane("auto")
    release = threading.Event()
    blocker = queue.submit(lambda progress, cancel: release.wait(60), "blocker", lane)
    panel = window.panels["gallery"]
    panel.count_spin.setValue(1)
    try:
        panel.generate()
        assert panel.job is not None and panel.job.state == "queued"
        assert panel.progress.maximum() > 0  # a busy bar shows no text at all
        assert panel.progress.text().startswith("queued: waiting for the") and "1 job(s) ahead" in panel.progress.text()
        panel.cancel()
    finally:
        release.set()
        qtbot.waitUntil(lambda: not queue.busy(), timeout=60_000)
    assert blocker.state == "done" and panel.progress.text() == ""


def test_a_model_registered_from_any_thread_is_announced_on_the_gui_thread(qtbot, window) -> None:  # noqa: ANN001
    from lesion_studio.store import Project

    folder = window.session.folder
    weights = Path(folder) / "w.safetensors"
    weights.write_bytes(b"0")
    threads: list[bool] = []
    window.session.models_changed.connect(
        lambda: threads.append(QThread.currentThread() is QApplication.instance().thread()))

    def register() -> None:  # a trainer's way: its own connection, on its own thread
        with Project.open(folder) as project:
            project.register_model("elsewhere", "unit", weights, sha256="e" * 64)

    worker = threading.Thread(target=register)
    with qtbot.waitSignal(window.session.models_changed, timeout=10_000):
        worker.start()
        worker.join()
    assert threads == [True]
    synthesis = window.panels["synthesis"]
    assert synthesis.model_combo.find_name("elsewhere") >= 0  # no panel had to be told


@pytest.mark.qt_log_level_fail("WARNING")
@pytest.mark.qt_log_ignore("propagateSizeHints")  # the offscreen platform's own note
def test_a_gan_run_in_the_gui_prints_no_qt_warning(qtbot, window) -> None:  # noqa: ANN001
    """Every timer lives on its owner's thread: a GAN run (samples, checkpoints with the quality
    report, ONNX export, the registry) through the Training panel makes Qt warn about nothing."""
    pytest.importorskip("torch")
    panel = window.panels["training"]
    panel.raise_panel()
    panel.kind_combo.setCurrentIndex(panel.kind_combo.findData("unit"))
    panel.preset_combo.setCurrentText("tiny")
    panel.parts_list.set_checked(["femur"])
    panel.length_spin.setValue(8)
    panel.device_combo.setCurrentIndex(panel.device_combo.findData("cpu"))
    panel.name_edit.setText("quiet-gan")
    panel.overrides = {"cpu_threads": 1, "sample_every": 2, "checkpoint_every": 4}
    job = panel.start()
    assert job is not None
    panel.tabs.setCurrentWidget(panel.tabs.sample_grid)  # the samples repaint while it runs
    try:
        qtbot.waitUntil(lambda: not job.active, timeout=1_200_000)  # minutes on a busy machine
    finally:
        window.job_queue.shutdown()  # never leave it running into the window's close
    assert job.state == "done", job.error
    assert panel.tabs.sample_grid.array is not None and panel.tabs.loss_plot.repaints > 0
    qtbot.waitUntil(lambda: window.panels["synthesis"].model_combo.find_name("quiet-gan") >= 0, timeout=10_000)
