"""Messages in the user's terms and the small things: skipped files all named, a missing project
folder offers a new project, decoder jargon stays in the log; ROC axes, loss legend and colours,
wheel and focus on form inputs, the zoom readout without an image, filter menus that say what they
filter, the F1 list, gallery defaults, and QSettings under LESION_STUDIO_HOME."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.gui.conftest import dispose, open_window, show


def test_import_names_every_skipped_file_in_plain_words(qtbot, tmp_path, demo_project_master) -> None:  # noqa: ANN001
    from lesion_studio.store.project import Project

    images = tmp_path / "images"
    images.mkdir()
    for src in sorted((demo_project_master / "images").iterdir())[:2]:
        shutil.copy(src, images)
    broken = [f"broken_{i}.dcm" for i in range(3)]
    for name in broken:
        (images / name).write_bytes(b"not a dicom" * 50)
    Project.create(tmp_path / "fresh").close()
    window = open_window(qtbot, tmp_path / "fresh", wait_image=False)
    try:
        job = window.import_images(images)
        with qtbot.waitSignal(job.finished, timeout=60_000):
            pass
        text = window.banner.text.text()
        assert "Skipped 3 unreadable file(s)" in text and all(name in text for name in broken), text
        assert window.banner.action_button.text() == "Details…"
        window.banner.action_button.click()
        box = window.findChild(QMessageBox, "skipped_files")
        assert box is not None and box.isVisible()
        lines = box.detailedText().splitlines()
        assert sorted(line.split(":")[0] for line in lines) == broken
        assert all("not a DICOM file" in line for line in lines)
        assert "force=True" not in box.detailedText() and "pydicom" not in box.detailedText()
        box.close()
    finally:
        window.close()
        dispose(window)


def test_a_missing_project_folder_offers_a_new_project(qtbot, window, tmp_path) -> None:  # noqa: ANN001
    opened = window.session.folder
    assert not window.open_project(tmp_path / "gone")
    assert "does not exist" in window.banner.text.text() and "project.sqlite" not in window.banner.text.text()
    assert window.banner.action_button.text() == "New project…"
    assert window.session.folder == opened  # the open project stays open

    plain = tmp_path / "plain-folder"
    plain.mkdir()
    assert not window.open_project(plain)
    assert window.banner.action_button.text() == "Make it a project"
    window.banner.action_button.click()
    assert window.session is not None and window.session.folder == plain.resolve()
    assert (plain / "project.sqlite").exists()


def test_roc_axes_stay_on_the_unit_square(qtbot, demo_project, tmp_path) -> None:  # noqa: ANN001
    from tests.gui.test_results_view import write_results

    write_results(tmp_path / "run")
    window = open_window(qtbot, demo_project.folder)
    try:
        window.resize(1440, 900)
        window.docks["results"].show()
        window.docks["results"].raise_()
        panel = window.panels["results"]
        assert panel.add_folder(tmp_path / "run")
        qtbot.waitUntil(lambda: panel.plot.isVisible() and panel.plot.width() > 300)
        qtbot.wait(100)
        (x0, x1), (y0, y1) = panel.plot.getViewBox().viewRange()
        assert min(x0, y0) >= -0.05 and max(x1, y1) <= 1.05, (x0, x1, y0, y1)
    finally:
        window.close()
        dispose(window)
        from lesion_studio.gui import settings as prefs
        from lesion_studio.gui.panels.results import FOLDERS_KEY

        prefs.app_settings().remove(FOLDERS_KEY)  # leave no added folder to later tests


def test_loss_colours_follow_names_and_the_legend_stays_off_the_curves(qtbot) -> None:  # noqa: ANN001
    from lesion_studio.gui.panels.loss_plot import CurvePlot

    plot = CurvePlot("Losses", "iteration", "loss")
    qtbot.addWidget(plot)
    plot.resize(600, 300)
    plot.show()
    plot.extend([(1, {"recon": 1.0, "gan": 2.0, "dis": 0.5})])
    first = {n: c.opts["pen"].color().name() for n, c in plot.curves.items()}
    plot.clear_curves()
    plot.extend([(5, {"dis": 0.4, "gan": 1.5, "recon": 0.9})])  # a resumed run: another order
    assert {n: c.opts["pen"].color().name() for n, c in plot.curves.items()} == first
    assert len(set(first.values())) == 3
    qtbot.wait(50)
    legend = plot.plotItem.legend.sceneBoundingRect()
    view = plot.plotItem.vb.sceneBoundingRect()
    assert legend.bottom() <= view.top() + 1, (legend, view)


def _wheel(widget, steps: int = -3) -> None:  # noqa: ANN001
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(centre, widget.mapToGlobal(centre), QPoint(), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_the_wheel_over_a_panel_leaves_its_settings_alone(qtbot, window) -> None:  # noqa: ANN001
    panel = window.panels["training"]
    window.docks["training"].raise_()
    qtbot.waitUntil(panel.isVisible)
    combo = panel.device_combo
    combo.setCurrentIndex(0)
    window.canvas.setFocus()
    _wheel(combo)
    assert combo.currentIndex() == 0  # scrolled past: Auto stays Auto
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus)
    _wheel(combo)
    assert combo.currentIndex() != 0  # clicked into, the wheel still picks


def test_single_keys_work_again_after_typing_a_number(qtbot, window, demo_project) -> None:  # noqa: ANN001
    rec = next(r for r in demo_project.images(label="normal") if not demo_project.boxes(r.id))
    show(qtbot, window, rec.id)
    spin = window.patch_spin
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus)
    spin.selectAll()
    qtbot.keyClicks(spin, "48")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert window.controller.patch_size == 48 and window.canvas.hasFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_L)
    assert demo_project.image(rec.id).label == "lesion"


def test_no_zoom_readout_without_an_image(qtbot, window) -> None:  # noqa: ANN001
    assert window.status_fields["zoom"].text().startswith("zoom ")
    window.close_project()
    window.canvas.resize(300, 200)
    window.canvas.fit()
    assert window.status_fields["zoom"].text() == "" and window.status_fields["window"].text() == ""


def test_filter_menus_say_what_they_filter_and_the_selection_stays_in_view(qtbot, window, demo_project) -> None:  # noqa: ANN001
    from lesion_studio.gui.panels.browser import COL_BODY, COL_LABEL

    browser = window.browser
    assert [c.itemText(0) for c in browser.combos.values()] == ["Label: any", "Body part: any", "Split: any",
                                                                 "Status: any"]
    assert browser.combos[COL_BODY].count() > 1
    last = browser.visible_image_ids()[-1]
    browser.select_image(last)
    browser.table.scrollToTop()
    browser.set_filter(COL_LABEL, demo_project.image(last).label)
    index = browser.table.currentIndex()
    assert index.isValid() and browser.current_image_id() == last
    assert browser.table.viewport().rect().intersects(browser.table.visualRect(index))


def test_f1_lists_every_shortcut_without_cutting_columns(qtbot, window) -> None:  # noqa: ANN001
    from lesion_studio.gui.dialogs import ShortcutsDialog

    dialog = ShortcutsDialog(window)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    table = dialog.table
    assert not table.horizontalScrollBar().isVisible()
    actions = {table.item(r, 1).text() for r in range(table.rowCount())}
    assert "Show synthetic image (A/B)" in actions and "Hide boxes and patches" in actions  # panels' too
    assert "Gallery: accept sample" in actions  # a panel's own keys as well


def test_gallery_prefers_a_complete_model(qtbot, demo_project, tmp_path) -> None:  # noqa: ANN001
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"0")
    demo_project.register_model("finished", "unit", weights, sha256="a" * 64, metadata={"complete": True})
    demo_project.register_model("paused", "unit", weights, sha256="b" * 64, metadata={"complete": False})
    window = open_window(qtbot, demo_project.folder)
    try:
        combo = window.panels["gallery"].model_combo
        assert combo.current_choice().name == "finished"
        labels = [combo.itemText(i) for i in range(combo.count())]
        assert labels[:2] == ["finished", "paused  (incomplete)"] and all("built-in" in t for t in labels[2:])
    finally:
        window.close()
        dispose(window)


def test_qsettings_live_under_lesion_studio_home(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from lesion_studio.gui import settings as prefs

    monkeypatch.setattr(prefs, "_redirected", False)
    monkeypatch.setenv("LESION_STUDIO_HOME", str(tmp_path / "home"))
    prefs.set_value("probe/key", 7)
    assert Path(prefs.app_settings().fileName()).is_relative_to(tmp_path / "home")
    assert (tmp_path / "home" / "settings").is_dir()
    assert int(prefs.app_settings().value("probe/key")) == 7


def test_decoder_jargon_stays_in_the_log(damaged_dicom_dir: Path) -> None:
    from lesion_studio.errors import RadiographError
    from lesion_studio.io import open_radiograph

    with pytest.raises(RadiographError) as info:
        open_radiograph(damaged_dicom_dir / "RG2_JPLY.dcm")
    text = str(info.value)
    assert "libjpeg" not in text and "error code" not in text and "pillow" not in text.lower()
    assert "JPEG Extended" in text and "Re-export" in text
