"""The Read and Research layouts: Read gives the viewer at least 75 % of a 1440×900 window, each
layout keeps its own saved state across switches, Reset layout resets only the current one, and
at 1280×800 nothing forces the window wider (the toolbar folds into its overflow) and no control
is cut, in either layout."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QToolBar

from lesion_studio.gui import settings as prefs
from lesion_studio.gui.reading_layout import MODE_KEY, READ, RESEARCH, STATE_KEYS
from tests.gui.helpers import clipped_controls, viewport_center


@pytest.fixture
def layouts(window):  # noqa: ANN001, ANN201
    """The window, and afterwards the saved layout mode back to Research for the tests after this."""
    yield window
    prefs.set_value(MODE_KEY, RESEARCH)


def _settle(qtbot, window, size: tuple[int, int]) -> None:  # noqa: ANN001
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size)
    for _ in range(3):
        QApplication.processEvents()


def _viewer_share(window) -> float:  # noqa: ANN001
    canvas = window.canvas
    return canvas.width() * canvas.height() / (window.width() * window.height())


def test_read_gives_the_viewer_three_quarters_of_the_window(qtbot, layouts) -> None:  # noqa: ANN001
    window = layouts
    _settle(qtbot, window, (1440, 900))
    research = _viewer_share(window)
    window.actions_by_key["reading_layout"].trigger()
    assert window.layout_mode == READ and window.actions_by_key["reading_layout"].isChecked()
    qtbot.waitUntil(lambda: window.docks["browser"].isHidden())
    _settle(qtbot, window, (1440, 900))
    assert _viewer_share(window) >= 0.75 > research
    assert window.docks["inspector"].isVisible()  # a thin inspector stays
    assert all(window.docks[k].isHidden() for k in ("synthesis", "training", "experiments", "gallery", "results"))


def test_each_layout_keeps_its_own_state_and_reset_resets_the_current_one(qtbot, layouts) -> None:  # noqa: ANN001
    window = layouts
    _settle(qtbot, window, (1440, 900))
    window.docks["results"].hide()  # a research arrangement
    window.set_layout_mode(READ)
    assert window.docks["browser"].isHidden()
    window.docks["browser"].show()  # a reading arrangement: the browser open
    window.set_layout_mode(RESEARCH)
    assert window.docks["results"].isHidden() and window.docks["synthesis"].isVisible()
    window.set_layout_mode(READ)
    assert window.docks["browser"].isVisible() and window.docks["synthesis"].isHidden()
    research_saved = prefs.app_settings().value(STATE_KEYS[RESEARCH])
    window.reset_layout()  # resets Read only
    assert window.docks["browser"].isHidden()
    assert prefs.app_settings().value(STATE_KEYS[RESEARCH]) == research_saved
    window.set_layout_mode(RESEARCH)
    assert window.docks["results"].isHidden()  # Research's own state survived Read's reset


def test_at_1280x800_nothing_forces_the_window_wider(qtbot, layouts) -> None:  # noqa: ANN001
    window = layouts
    _settle(qtbot, window, (1280, 800))
    assert window.minimumSizeHint().width() <= 1280
    combo = window.queue_order  # the reading controls' own toolbar row keeps them in sight, whole
    assert window.proposal_slider.isVisible() and combo.isVisible()
    assert combo.width() >= combo.sizeHint().width()


@pytest.fixture
def themed(qapp):  # noqa: ANN001, ANN201
    """The app's own look (style sheet: the status bar's monospace readouts are wider than the
    default font's), as ``lesion-studio gui`` has it; the test application's look afterwards."""
    from lesion_studio.gui.theme import apply_dark_theme

    sheet, palette, style = qapp.styleSheet(), qapp.palette(), qapp.style().name()
    apply_dark_theme(qapp)
    yield qapp
    qapp.setStyleSheet(sheet)
    qapp.setPalette(palette)
    qapp.setStyle(style)


@pytest.mark.parametrize("mode", [RESEARCH, READ])
def test_at_1280x800_no_control_is_cut(qtbot, layouts, themed, mode: str) -> None:  # noqa: ANN001
    """Every dock (each tab of a tabbed dock raised in turn), the tool bars and the status bar with
    its readouts filled: no button, label or menu is squeezed below its text or cut at an edge.
    The status bar's two long sentences shorten with "…" and keep the whole text as a tooltip."""
    window = layouts
    window.set_layout_mode(mode)
    _settle(qtbot, window, (1280, 800))
    x, y = viewport_center(window.canvas)
    qtbot.mouseMove(window.canvas.viewport(), QPoint(int(x), int(y)))  # fills value, x/y, mm
    qtbot.waitUntil(lambda: window.status_fields["value"].text() != "")
    bars = [window.statusBar(), *window.findChildren(QToolBar)]
    shown = [dock for dock in window.docks.values() if dock.isVisible()]
    assert shown and window.statusBar().isVisible()
    for dock in shown:
        dock.raise_()
        for _ in range(3):
            QApplication.processEvents()
        assert clipped_controls([dock, *bars]) == [], dock.objectName()
    assist = window.status_fields["assist"]
    assert "unreviewed" in assist.text() and assist.toolTip() == assist.text()


@pytest.mark.parametrize("narrowest", [False, True], ids=["default-width", "narrowest"])
def test_at_1280x800_the_classifier_training_form_is_not_cut(qtbot, layouts, themed, narrowest: bool) -> None:  # noqa: ANN001
    """The classifier's form (input size, synthetic samples, the warm start and its epochs box)
    fits the Training dock of a 1280×800 window, uncut: at its default width and at its 300 px
    minimum, where a layout saved earlier (by the user, or by an earlier test: the settings live
    for the whole session) may have left it."""
    from lesion_studio.classifier.config import preset
    from lesion_studio.gui.panels.training_presenter import DEFAULT_DRN_PRESET
    from lesion_studio.training.estimates import ClassifierRates

    rates = ClassifierRates(prefs.app_settings().value, prefs.set_value)
    rates.store_probe(preset(DEFAULT_DRN_PRESET), "cpu", 100.0)  # no probe job
    window = layouts
    window.set_layout_mode(RESEARCH)
    window.reset_layout()  # the default widths, whatever layout an earlier test saved
    panel = window.panels["training"]
    panel.kind_combo.setCurrentIndex(panel.kind_combo.findData("drn"))
    panel.warm_start.check.setChecked(True)
    _settle(qtbot, window, (1280, 800))
    dock = window.docks["training"]
    dock.raise_()
    if narrowest:
        window.resizeDocks([dock], [1], Qt.Orientation.Horizontal)  # Qt stops it at its minimum
        qtbot.waitUntil(lambda: dock.width() == dock.minimumWidth())
    for _ in range(3):
        QApplication.processEvents()
    try:
        assert (dock.width() == 300) if narrowest else (dock.width() > 300)
        spin = panel.warm_start.epochs_spin
        assert panel.warm_start.check.isVisible() and spin.isVisible() and panel.synthetic_check.isVisible()
        assert clipped_controls([dock]) == []
        assert spin.width() >= spin.sizeHint().width() and spin.text() == "6 epochs"
    finally:
        prefs.app_settings().remove("training")
