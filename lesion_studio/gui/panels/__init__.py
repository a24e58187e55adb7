"""Dock panels. Each is a plain QWidget; the main window registers them in one table (docks.PANELS)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QWidget

if TYPE_CHECKING:
    from lesion_studio.gui.host import PanelHost


def report(host: PanelHost, status_label: QLabel, text: str, level: str) -> None:
    """A panel's message: in the window's banner and log, and, unless it is only information, in
    the panel's own status line so it stays visible there."""
    host.show_message(text, level)
    if level != "info":
        status_label.setText(text)


def side_column(controls: QWidget, width: int) -> QScrollArea:
    """A bottom dock's controls as a fixed-width column beside its views, scrolling (never pushing
    the views below the fold) when the dock is short."""
    controls.setFixedWidth(width)
    scroll = QScrollArea()
    scroll.setWidget(controls)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setFixedWidth(width + 14)
    scroll.setMinimumHeight(110)
    return scroll
