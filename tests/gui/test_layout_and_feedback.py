"""Layout at 1440×900, View → Reset layout, dock minimum sizes; banners that never move the image
and clear after a later success; H hides the overlays; P is the pan tool."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt

from tests.gui.conftest import dispose, show


def laptop_window(qtbot, folder: Path):  # noqa: ANN001, ANN201
    """The main window at 1440×900 on ``folder``, without a layout left by an earlier test."""
    from lesion_studio.gui import settings as prefs
    from lesion_studio.gui.app import MainWindow

    prefs.app_settings().remove("window")
    window = MainWindow()
    window.resize(1440, 900)
    window.show()
    qtbot.waitExposed(window)
    window.open_project(folder)
    qtbot.waitUntil(lambda: window.canvas.radiograph is not None, timeout=10_000)
    return window


def assert_synthesis_views_usable(window) -> None:  # noqa: ANN001
    panel = window.panels["synthesis"]
    assert window.docks["synthesis"].isVisible()
    for key, view in panel.views.views.items():
        assert view.isVisible(), key
        assert view.width() >= 200 and view.height() >= 150, (key, view.size())
    assert window.canvas.width() >= 400 and window.canvas.height() >= 350, window.canvas.size()


def test_default_layout_at_1440x900_shows_every_synthesis_view(qtbot, demo_project) -> None:  # noqa: ANN001
    window = laptop_window(qtbot, demo_project.folder)
    try:
        assert window.size().width() == 1440 and window.size().height() == 900
        assert_synthesis_views_usable(window)
        window.docks["training"].raise_()
        qtbot.waitUntil(lambda: window.panels["training"].isVisible())
        button = window.panels["training"].resume_button
        assert button.width() >= button.minimumSizeHint().width()  # not clipped
        from lesion_studio.gui.docks import PANELS

        for spec in PANELS:  # no dock can be squashed below a usable size
            dock = window.docks[spec.key]
            assert dock.minimumWidth() >= spec.min_size[0] and dock.minimumHeight() >= spec.min_size[1]
    finally:
        window.close()
        dispose(window)


def test_reset_layout_undoes_a_squashed_layout_that_survived_a_restart(qtbot, demo_project) -> None:  # noqa: ANN001
    window = laptop_window(qtbot, demo_project.folder)
    window.docks["synthesis"].hide()
    window.docks["browser"].setFloating(True)
    window.resizeDocks([window.docks["inspector"]], [900], Qt.Orientation.Horizontal)
    window.close()  # saves the layout
    dispose(window)

    from lesion_studio.gui.app import MainWindow

    window = MainWindow()  # a restart: the squashed layout comes back...
    window.resize(1440, 900)
    window.show()
    qtbot.waitExposed(window)
    try:
        window.open_project(demo_project.folder)
        qtbot.waitUntil(lambda: window.canvas.radiograph is not None, timeout=10_000)
        assert not window.docks["synthesis"].isVisible() and window.docks["browser"].isFloating()
        window.actions_by_key["reset_layout"].trigger()  # ...until View → Reset layout
        qtbot.waitUntil(lambda: window.docks["synthesis"].isVisible())
        qtbot.wait(50)
        assert not window.docks["browser"].isFloating()
        assert_synthesis_views_usable(window)
    finally:
        window.close()
        dispose(window)


def test_banner_floats_over_the_image_and_an_error_clears_on_success(qtbot, window, demo_project) -> None:  # noqa: ANN001
    canvas = window.canvas
    before = (canvas.mapTo(window, QPoint(0, 0)), canvas.size())
    window.show_message("A long message that wraps " * 8, "warning")
    qtbot.waitUntil(window.banner.isVisible)
    assert (canvas.mapTo(window, QPoint(0, 0)), canvas.size()) == before  # the image did not move
    assert window.banner.geometry().top() == 0 and window.banner.width() == canvas.parentWidget().width()
    window.show_message("Cannot do that", "error")
    window.banner.hide()
    assert (canvas.mapTo(window, QPoint(0, 0)), canvas.size()) == before

    window.show_message("Something failed", "error")
    assert window.banner.isVisible() and window.banner.level == "error"
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_2)  # a later edit goes through (body part)...
    assert not window.banner.isVisible()  # ...and the error no longer stands


def test_h_hides_boxes_and_patches_and_p_is_the_pan_tool(qtbot, window, demo_project) -> None:  # noqa: ANN001
    rec = next(r for r in demo_project.images(label="lesion") if demo_project.boxes(r.id))
    show(qtbot, window, rec.id)
    canvas = window.canvas
    assert canvas.regions and all(r.opacity() == 1.0 for r in canvas.regions)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_H)
    assert window.actions_by_key["hide_overlays"].isChecked()
    assert all(r.opacity() == 0.0 for r in canvas.regions)
    synthesis_window = window.panels["synthesis"].tool.item
    assert synthesis_window.opacity() == 0.0
    other = next(r for r in demo_project.images(label="lesion") if demo_project.boxes(r.id) and r.id != rec.id)
    show(qtbot, window, other.id)  # stays hidden on the next image
    assert canvas.regions and all(r.opacity() == 0.0 for r in canvas.regions)
    qtbot.keyClick(canvas, Qt.Key.Key_H)
    assert all(r.opacity() == 1.0 for r in canvas.regions) and synthesis_window.opacity() == 1.0
    qtbot.keyClick(canvas, Qt.Key.Key_P)
    assert canvas.tool is window.tools["pan"]


@pytest.mark.parametrize("text", ["SYNTHETIC"])
def test_badge_sits_in_the_viewer(qtbot, window, text) -> None:  # noqa: ANN001
    canvas = window.canvas
    canvas.set_badge(text)
    assert canvas.badge.isVisible() and canvas.badge.text() == text
    assert canvas.rect().contains(canvas.badge.geometry())
    canvas.set_badge(None)
    assert not canvas.badge.isVisible()
