"""Viewer display, browser, thumbnails, re-link and error handling."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from lesion_studio.gui.panels.browser import COL_LABEL, COL_STATUS
from lesion_studio.io import open_radiograph
from tests.gui.conftest import dispose, open_window, show
from tests.gui.helpers import drag


def test_right_drag_changes_levels_not_pixels(qtbot, window) -> None:  # noqa: ANN001
    canvas = window.canvas
    rg = canvas.radiograph
    before_pixels = rg.pixels.copy()
    lo, hi = canvas.levels()
    c = QPointF(canvas.viewport().width() / 2, canvas.viewport().height() / 2)
    drag(qtbot, canvas, c, c + QPointF(80, -40), button=Qt.MouseButton.RightButton)
    lo2, hi2 = canvas.levels()
    assert (hi2 - lo2) > (hi - lo)  # dragging right widens the window
    assert (lo2 + hi2) / 2 > (lo + hi) / 2  # dragging up raises the level
    assert np.array_equal(canvas.image_item.image, rg.pixels)
    assert np.array_equal(rg.pixels, before_pixels)
    assert np.array_equal(rg.pixels, open_radiograph(rg.path).pixels)
    assert "W " in window.status_fields["window"].text()
    window.apply_preset("auto")
    assert canvas.levels() != (lo2, hi2)
    window.apply_preset("dicom")
    assert canvas.levels() == pytest.approx(rg.window_levels())


def _rendered_gray(canvas):  # noqa: ANN001, ANN202
    image = canvas.grab().toImage().convertToFormat(canvas.grab().toImage().Format.Format_Grayscale8)
    ptr = image.constBits()
    arr = np.frombuffer(ptr, dtype=np.uint8, count=image.sizeInBytes()).reshape(image.height(),
                                                                               image.bytesPerLine())
    dpr = canvas.grab().devicePixelRatio()
    return arr, dpr


@pytest.mark.parametrize("index", [3, 4])  # demo image 4 is MONOCHROME1, 3 is MONOCHROME2
def test_bone_shows_bright(qtbot, window, demo_project, index) -> None:  # noqa: ANN001
    from lesion_studio.demo.project import DEMO_BODY_PARTS

    rec = demo_project.image_by_path(demo_project.folder / "images" / f"{DEMO_BODY_PARTS[index % 3]}_{index:03d}.dcm")
    show(qtbot, window, rec.id)
    rg = window.canvas.radiograph
    assert rg.photometric == ("MONOCHROME1" if index % 5 == 4 else "MONOCHROME2")
    window.canvas.set_regions([])  # look at the pixels only
    qtbot.wait(50)
    arr, dpr = _rendered_gray(window.canvas)

    def sample(x: float, y: float) -> float:
        p = window.canvas.to_screen(x, y)
        r, c = int(p.y() * dpr), int(p.x() * dpr)
        return float(arr[r - 2:r + 3, c - 2:c + 3].mean())

    w, h = rg.width, rg.height
    bone = np.mean([sample(w / 2 + dx, h / 2) for dx in (-15, 0, 15)])  # the shaft is central
    air = np.mean([sample(6, h / 2), sample(w - 6, h / 2)])
    assert bone > air + 40, (bone, air)


def test_zoom_wheel_fit_and_status_bar(qtbot, window) -> None:  # noqa: ANN001
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    canvas = window.canvas
    z0 = canvas.zoom()
    pos = QPointF(canvas.viewport().width() / 2 + 40, canvas.viewport().height() / 2)
    anchor = canvas.to_image(pos)
    ev = QWheelEvent(pos, canvas.viewport().mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas.viewport(), ev)
    assert canvas.zoom() == pytest.approx(z0 * 1.2, rel=1e-3)
    after = canvas.to_image(pos)
    assert (after.x(), after.y()) == pytest.approx((anchor.x(), anchor.y()), abs=0.5)  # zoom about the cursor
    window.actual_size()
    assert canvas.zoom() == pytest.approx(1.0, rel=1e-3)
    window.fit_view()
    assert "zoom" in window.status_fields["zoom"].text()
    p = canvas.to_screen(100.5, 50.5)
    qtbot.mouseMove(canvas.viewport(), p.toPoint())
    assert window.status_fields["position"].text() == "x 100  y 50"
    assert "mm" in window.status_fields["mm"].text()  # the demo DICOMs carry 0.15 mm spacing
    assert window.status_fields["value"].text().startswith("value ")


def test_browser_filters_and_search(qtbot, window, demo_project) -> None:  # noqa: ANN001
    browser = window.browser
    total = demo_project.image_count()
    assert browser.proxy.rowCount() == total
    browser.set_filter(COL_LABEL, "lesion")
    lesion_ids = {r.id for r in demo_project.images(label="lesion")}
    assert set(browser.visible_image_ids()) == lesion_ids
    browser.set_filter(COL_LABEL, "(any)")
    browser.set_filter(COL_STATUS, "excluded")
    assert set(browser.visible_image_ids()) == {r.id for r in demo_project.images() if r.excluded}
    browser.set_filter(COL_STATUS, "(any)")
    qtbot.keyClicks(browser.search, "tibia_01")
    names = [demo_project.image(i).name for i in browser.visible_image_ids()]
    assert names and all("tibia_01" in n for n in names)
    browser.search.clear()
    # Sorting by a column keeps every row.
    browser.table.sortByColumn(COL_LABEL, Qt.SortOrder.DescendingOrder)
    assert browser.proxy.rowCount() == total
    assert "of" in browser.count_label.text()


def test_next_previous_keys(qtbot, window) -> None:  # noqa: ANN001
    ids = window.browser.visible_image_ids()
    assert window.record.id == ids[0]
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)
    assert window.record.id == ids[1]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert window.record.id == ids[2]
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageUp)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Up)
    assert window.record.id == ids[0]
    qtbot.waitUntil(lambda: window.canvas.radiograph.path == window.record.abs_path)


def test_thumbnails_are_cached_on_disk(qtbot, window, demo_project) -> None:  # noqa: ANN001
    folder = demo_project.folder / "cache" / "thumbnails"
    first = window.browser.model.records[0]
    qtbot.waitUntil(lambda: (folder / f"{first.sha256}.png").is_file(), timeout=10_000)
    qtbot.waitUntil(lambda: window.thumbnails.get(first.id, first.abs_path, first.sha256) is not None)


def test_relink_moved_image_folder(qtbot, demo_project, tmp_path) -> None:  # noqa: ANN001
    folder = demo_project.folder
    demo_project.close()
    moved = tmp_path / "moved-images"
    shutil.move(str(folder / "images"), moved)
    window = open_window(qtbot, folder, wait_image=False)
    try:
        qtbot.waitUntil(lambda: window.banner.isVisible() and "missing" in window.banner.text.text())
        assert window.banner.action_button.isVisible()
        assert window.canvas.radiograph is None  # the first image could not be shown...
        worker = window.relink_images(moved)
        with qtbot.waitSignal(worker.finished, timeout=20_000):
            pass
        assert window.session.project.missing_images() == []
        qtbot.waitUntil(lambda: window.canvas.radiograph is not None, timeout=10_000)  # ...now it is
        assert "Re-linked" in window.banner.text.text()
    finally:
        window.close()
        dispose(window)


def test_unreadable_image_shows_message_and_app_keeps_running(qtbot, window, demo_project) -> None:  # noqa: ANN001
    recs = demo_project.images()
    broken = recs[7]
    broken.abs_path.write_bytes(b"not a dicom at all" * 10)
    window.loader.forget()
    window.browser.select_image(broken.id)
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.banner.level == "error", timeout=10_000)
    assert broken.name in window.banner.text.text()
    assert window.canvas.radiograph is None
    show(qtbot, window, recs[8].id)  # the next image still works
    assert not (window.banner.isVisible() and window.banner.level == "error")


def test_settings_remember_recent_projects_and_layout(qtbot, window, demo_project) -> None:  # noqa: ANN001
    from lesion_studio.gui import settings as prefs

    assert prefs.recent_projects()[0] == demo_project.folder.resolve()
    window.save_layout()
    assert prefs.app_settings().value("window/state") is not None


def test_help_lists_shortcuts_from_the_action_table(qtbot, window) -> None:  # noqa: ANN001
    from lesion_studio.gui.dialogs import ShortcutsDialog

    dialog = ShortcutsDialog(window)
    qtbot.addWidget(dialog)
    keys = {dialog.table.item(r, 2).text() for r in range(dialog.table.rowCount())}
    for key in ("B", "N", "L", "E", "Ctrl+Z", "Ctrl+Shift+Z, Ctrl+Y", "PgDown", "[", "]", "1"):
        assert key in keys
    bound = {a.objectName(): [s.toString() for s in a.shortcuts()] for a in window.actions_by_key.values()}
    assert bound["toggle_label"] == ["L"]
    assert bound["undo"] == ["Ctrl+Z"]


def test_import_and_export_from_the_window(qtbot, tmp_path, demo_project_master) -> None:  # noqa: ANN001
    from lesion_studio.store.project import Project

    Project.create(tmp_path / "fresh").close()
    window = open_window(qtbot, tmp_path / "fresh", wait_image=False)
    try:
        worker = window.import_images(demo_project_master / "images",
                                      labels_csv=demo_project_master / "labels.csv",
                                      boxes_csv=demo_project_master / "boxes.csv")
        with qtbot.waitSignal(worker.finished, timeout=60_000):
            pass
        assert window.browser.model.rowCount() == 96
        qtbot.waitUntil(lambda: window.canvas.radiograph is not None, timeout=10_000)
        worker = window.export_annotations(tmp_path / "out", "csv")
        with qtbot.waitSignal(worker.finished, timeout=20_000):
            pass
        assert (tmp_path / "out").is_dir() and any((tmp_path / "out").iterdir())
    finally:
        window.close()
        dispose(window)


def test_the_import_dialog_imports_a_yolo_folder(qtbot, tmp_path, demo_project) -> None:  # noqa: ANN001
    """File → Import images with the dialog's *YOLO labels* folder: the same import as
    ``lesion-studio import --yolo`` (boxes, types, and the sidecar's readers and rulers)."""
    from lesion_studio.dataset.exporter import export_project
    from lesion_studio.store import Box
    from lesion_studio.store.measurements import add_measurement, measurements
    from lesion_studio.store.project import Project
    from tests.gui.helpers import when_dialog_opens

    rec = next(r for r in demo_project.images(label="lesion") if demo_project.boxes(r.id))
    demo_project.add_box(rec.id, Box(20, 30, 60, 90), author="Dr Bob", lesion_type="lytic")
    add_measurement(demo_project, rec.id, (10, 10, 50, 40), spacing=(0.15, 0.15), spacing_source="PixelSpacing",
                    author="Dr Bob")
    result = export_project(demo_project, tmp_path / "yolo", "yolo")
    Project.create(tmp_path / "fresh").close()
    window = open_window(qtbot, tmp_path / "fresh", wait_image=False)

    def fill(dialog) -> None:  # noqa: ANN001
        try:
            dialog.source.setText(result["image_root"])
            dialog.yolo.setText(str(tmp_path / "yolo"))
        finally:
            dialog.accept()  # never leave the modal dialog open, whatever failed

    try:
        when_dialog_opens(fill, "source")
        job = window.import_images()
        assert job is not None
        qtbot.waitUntil(lambda: not job.active)
        assert job.state.name == "DONE", job.error
        assert window.browser.model.rowCount() == 96
        copy = window.session.project
        got = {(copy.image(b.image_id).name, b.lesion_type, b.reader) for b in copy.boxes()}
        assert (rec.name, "lytic", "Dr Bob") in got and len(copy.boxes()) == len(demo_project.boxes())
        assert [(m.author, m.spacing) for m in measurements(copy)] == [("Dr Bob", (0.15, 0.15))]
    finally:
        window.close()
        dispose(window)


def test_inspector_region_list_selects_on_canvas(qtbot, window, demo_project) -> None:  # noqa: ANN001
    rec = next(r for r in demo_project.images(label="lesion") if demo_project.boxes(r.id))
    show(qtbot, window, rec.id)
    (box,) = demo_project.boxes(rec.id)
    window.inspector.regions.setCurrentRow(0)
    assert window.controller.selected == ("lesion", box.id)
    assert window.canvas.region("lesion", box.id).selected
    window.deselect()
    assert window.inspector.regions.currentItem() is None
