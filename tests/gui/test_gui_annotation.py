"""Drive the real viewer with real mouse and key events; check what lands in the database."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from lesion_studio.store.project import Project
from tests.gui.conftest import show
from tests.gui.helpers import click, drag, viewport_center, when_dialog_opens


def first_image(project: Project, label: str, with_regions: bool = False) -> int:
    for rec in project.images(label=label):
        if rec.excluded:
            continue
        has = bool(project.boxes(rec.id) or project.normal_patches(rec.id))
        if has == with_regions:
            return rec.id
    raise AssertionError(f"no {label} image in the demo project")


def screen_of(canvas, zoom: float, center: tuple[float, float], x: float, y: float) -> tuple[float, float]:  # noqa: ANN001
    """Where image point (x, y) must appear at ``zoom`` around ``center``: computed independently."""
    vx, vy = viewport_center(canvas)
    return vx + (x - center[0]) * zoom, vy + (y - center[1]) * zoom


@pytest.mark.parametrize("zoom", [1.0, 2.5])
def test_drag_draws_box_in_image_coordinates(qtbot, window, demo_project, zoom) -> None:  # noqa: ANN001
    image_id = first_image(demo_project, "normal")
    show(qtbot, window, image_id)
    canvas = window.canvas
    center = (160.0, 192.0)
    canvas.set_zoom(zoom, center)
    assert canvas.zoom() == pytest.approx(zoom, rel=1e-3)
    target = (130.0, 170.0, 190.0, 215.0)
    drag(qtbot, canvas, screen_of(canvas, zoom, center, target[0], target[1]),
         screen_of(canvas, zoom, center, target[2], target[3]))
    boxes = demo_project.boxes(image_id)
    assert len(boxes) == 1
    tol = 0.5 + 1.0 / zoom
    assert boxes[0].box.as_tuple() == pytest.approx(target, abs=tol)
    # A box on a normal image relabels it as lesion, in the same undo step.
    assert demo_project.image(image_id).label == "lesion"
    window.undo()
    assert demo_project.boxes(image_id) == []
    assert demo_project.image(image_id).label == "normal"


def test_tiny_box_is_refused(qtbot, window, demo_project) -> None:  # noqa: ANN001
    image_id = first_image(demo_project, "normal")
    show(qtbot, window, image_id)
    window.canvas.set_zoom(2.0)  # the zoom depends on the layout: fix it
    a = window.canvas.to_screen(100, 100)
    drag(qtbot, window.canvas, a, (a.x() + 4, a.y() + 4))  # ~2 image px at this zoom
    assert demo_project.boxes(image_id) == []
    assert window.banner.isVisible() and "smaller" in window.banner.text.text()


def test_move_resize_delete_and_undo_redo(qtbot, window, demo_project) -> None:  # noqa: ANN001
    image_id = first_image(demo_project, "normal")
    show(qtbot, window, image_id)
    canvas = window.canvas
    canvas.set_zoom(2.0, (160.0, 192.0))
    drag(qtbot, canvas, canvas.to_screen(120, 150), canvas.to_screen(180, 200))
    (box,) = demo_project.boxes(image_id)
    assert box.box.as_tuple() == pytest.approx((120, 150, 180, 200), abs=1)
    start = box.box

    # Move: drag from inside by (+10, +20) image px.
    drag(qtbot, canvas, canvas.to_screen(150, 175), canvas.to_screen(160, 195))
    moved = demo_project.box(box.id).box
    assert (moved.x0 - start.x0, moved.y0 - start.y0) == pytest.approx((10, 20), abs=1)
    assert (moved.width, moved.height) == pytest.approx((start.width, start.height), abs=0.01)

    # Resize: drag the bottom-right corner handle outwards.
    drag(qtbot, canvas, canvas.to_screen(moved.x1, moved.y1), canvas.to_screen(moved.x1 + 15, moved.y1 + 5))
    resized = demo_project.box(box.id).box
    assert (resized.x0, resized.y0) == pytest.approx((moved.x0, moved.y0), abs=0.01)
    assert (resized.x1, resized.y1) == pytest.approx((moved.x1 + 15, moved.y1 + 5), abs=1)

    # Delete the selected box with the Del key.
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Delete)
    assert demo_project.boxes(image_id) == []

    # Ctrl+Z walks back through delete, resize, move; Ctrl+Shift+Z walks forward again.
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert demo_project.box(box.id).box == resized  # restored with its old id
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert demo_project.box(box.id).box == moved
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert demo_project.box(box.id).box == start
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert demo_project.box(box.id).box == moved
    # The title never shows unsaved changes: there are none.
    assert "*" not in window.windowTitle()


def test_undo_across_image_change_shows_that_image(qtbot, window, demo_project) -> None:  # noqa: ANN001
    image_id = first_image(demo_project, "normal")
    show(qtbot, window, image_id)
    canvas = window.canvas
    drag(qtbot, canvas, canvas.to_screen(100, 100), canvas.to_screen(150, 160))
    assert len(demo_project.boxes(image_id)) == 1
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: window.record.id != image_id)
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert demo_project.boxes(image_id) == []
    qtbot.waitUntil(lambda: window.record.id == image_id)


def test_normal_patch_click_and_size_keys(qtbot, window, demo_project) -> None:  # noqa: ANN001
    image_id = first_image(demo_project, "normal")
    show(qtbot, window, image_id)
    canvas = window.canvas
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_N)
    assert canvas.tool.name == "patch"
    qtbot.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert window.controller.patch_size == 72 and window.patch_spin.value() == 72
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert window.controller.patch_size == 56
    before = {p.id for p in demo_project.normal_patches(image_id)}
    click(qtbot, canvas, canvas.to_screen(160, 100))
    new = [p for p in demo_project.normal_patches(image_id) if p.id not in before]
    assert len(new) == 1
    assert new[0].box.as_tuple() == pytest.approx((132, 72, 188, 128), abs=1)
    assert demo_project.image(image_id).label == "normal"  # patches never relabel
    # Patches are drawn in their own style (dashed), lesion boxes solid.
    item = canvas.region("patch", new[0].id)
    assert item is not None and item.pen().style() == Qt.PenStyle.DashLine
    # Dragging a rectangle with the patch tool places a rectangular patch.
    drag(qtbot, canvas, canvas.to_screen(150, 250), canvas.to_screen(190, 300))
    assert len(demo_project.normal_patches(image_id)) == len(before) + 2


def test_patch_overlapping_lesion_is_refused(qtbot, window, demo_project) -> None:  # noqa: ANN001
    image_id = first_image(demo_project, "lesion", with_regions=True)
    show(qtbot, window, image_id)
    (lesion,) = demo_project.boxes(image_id)
    canvas = window.canvas
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_N)
    before = demo_project.normal_patches(image_id)
    # Click just outside the lesion box: the square patch would still overlap it.
    cx, cy = lesion.box.center
    click(qtbot, canvas, canvas.to_screen(lesion.box.x1 + 10, cy))
    assert demo_project.normal_patches(image_id) == before
    assert window.banner.isVisible() and "overlaps a lesion" in window.banner.text.text()
    assert lesion.box.x1 + 10 < 320 and cx > 0


def test_label_exclude_and_body_part_keys(qtbot, window, demo_project) -> None:  # noqa: ANN001

    image_id = first_image(demo_project, "normal")
    show(qtbot, window, image_id)
    canvas = window.canvas
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_L)
    assert demo_project.image(image_id).label == "lesion"
    qtbot.keyClick(canvas, Qt.Key.Key_L)
    assert demo_project.image(image_id).label == "normal"
    assert window.browser.model.records[window.browser.model.row_of(image_id)].label == "normal"

    def answer(dialog) -> None:  # noqa: ANN001 - pick the second reason with the keyboard and confirm
        qtbot.keyClick(dialog.reasons, Qt.Key.Key_Down)
        qtbot.keyClick(dialog.reasons, Qt.Key.Key_Return)

    when_dialog_opens(answer, "reasons")
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_E)
    rec = demo_project.image(image_id)
    assert rec.exclusions == ("hardware",) and rec.status == "excluded"
    assert window.inspector.flags["hardware"].isChecked()
    window.activateWindow()  # the offscreen platform does not hand activation back after a dialog
    qtbot.waitUntil(window.isActiveWindow)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_E)
    assert demo_project.image(image_id).exclusions == ()

    parts = window.body_parts
    qtbot.keyClick(canvas, Qt.Key.Key_2)
    assert demo_project.image(image_id).body_part == parts[1]
    qtbot.keyClick(canvas, Qt.Key.Key_1)
    assert demo_project.image(image_id).body_part == parts[0]
    window.undo()
    assert demo_project.image(image_id).body_part == parts[1]


def test_inspector_edits_go_through_undo(qtbot, window, demo_project) -> None:  # noqa: ANN001
    image_id = first_image(demo_project, "normal")
    show(qtbot, window, image_id)
    window.inspector.split.setCurrentText("test")
    assert demo_project.image(image_id).split == "test"
    window.inspector.notes.setPlainText("cortical irregularity, check follow-up")
    window.inspector.flush_notes()
    assert demo_project.image(image_id).notes.startswith("cortical")
    window.undo()
    assert demo_project.image(image_id).notes == ""


@pytest.mark.parametrize("reply", ["no", "yes"])
def test_l_asks_before_relabelling_a_lesion_image_with_boxes(qtbot, window, demo_project, reply) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QMessageBox

    image_id = first_image(demo_project, "lesion", with_regions=True)
    boxes = demo_project.boxes(image_id)
    assert boxes
    show(qtbot, window, image_id)
    asked: list[str] = []

    def answer(dialog) -> None:  # noqa: ANN001 - click the real button of the question
        asked.append(dialog.text())
        button = QMessageBox.StandardButton.Yes if reply == "yes" else QMessageBox.StandardButton.No
        qtbot.mouseClick(dialog.button(button), Qt.MouseButton.LeftButton)

    when_dialog_opens(answer, "standardButtons")
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_L)
    assert asked and "lesion box" in asked[0]
    if reply == "no":
        assert demo_project.image(image_id).label == "lesion"
        assert len(demo_project.boxes(image_id)) == len(boxes)
        return
    assert demo_project.image(image_id).label == "normal"
    assert demo_project.boxes(image_id) == []
    window.undo()  # one step brings the label and the boxes back
    assert demo_project.image(image_id).label == "lesion"
    assert [b.box for b in demo_project.boxes(image_id)] == [b.box for b in boxes]
