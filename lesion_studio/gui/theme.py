"""A dark theme for reading rooms: low luminance around the image, colour only where it means
something (lesion orange, normal-patch cyan, status colours)."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

STYLE = """
QMainWindow, QDockWidget { background: #15181c; }
QDockWidget::title { background: #1d2127; padding: 5px 8px; color: #aeb6c2; }
QToolBar { background: #1a1e23; border: 0; spacing: 2px; padding: 2px; }
QToolButton { color: #d7dde5; padding: 4px 8px; border-radius: 3px; }
QToolButton:checked { background: #2e5a88; }
QToolButton:hover { background: #2a3038; }
QStatusBar { background: #1a1e23; color: #aeb6c2; }
QStatusBar QLabel { color: #aeb6c2; padding: 0 6px; font-family: monospace; }
QTableView { gridline-color: #23272d; selection-background-color: #2e5a88; }
QHeaderView::section { background: #1d2127; color: #aeb6c2; border: 0; padding: 4px; }
QLabel#title { font-size: 14px; font-weight: 600; color: #e8ecf1; }
QLabel#muted { color: #8a93a0; }
QLabel#empty { color: #8a93a0; font-size: 15px; }
QFrame#banner { border-radius: 4px; }
QFrame#banner[level="info"] { background: #1f3b57; }
QFrame#banner[level="warning"] { background: #5a4716; }
QFrame#banner[level="error"] { background: #5c2323; }
QFrame#banner QLabel { color: #f1f4f7; }
QGroupBox { border: 1px solid #2a2f36; border-radius: 4px; margin-top: 8px; padding-top: 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; color: #aeb6c2; }
QCheckBox::indicator, QAbstractItemView::indicator {
    width: 12px; height: 12px; border: 1px solid #7a8492; border-radius: 2px; background: #0d1013;
}
QCheckBox::indicator:hover, QAbstractItemView::indicator:hover { border-color: #aeb6c2; }
QCheckBox::indicator:checked, QAbstractItemView::indicator:checked {
    background: #3b82d6; border-color: #8fc1ff;
}
QCheckBox::indicator:indeterminate { background: #2b4a6e; border-color: #8fc1ff; }
QCheckBox::indicator:disabled { border-color: #3a4049; background: #15181c; }
QCheckBox::indicator:checked:disabled { background: #2b3b4f; }
"""


def apply_dark_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    pal = QPalette()
    base, window, text = QColor("#111417"), QColor("#181b20"), QColor("#d7dde5")
    pal.setColor(QPalette.ColorRole.Window, window)
    pal.setColor(QPalette.ColorRole.WindowText, text)
    pal.setColor(QPalette.ColorRole.Base, base)
    pal.setColor(QPalette.ColorRole.AlternateBase, QColor("#161a1e"))
    pal.setColor(QPalette.ColorRole.Text, text)
    pal.setColor(QPalette.ColorRole.Button, QColor("#22272d"))
    pal.setColor(QPalette.ColorRole.ButtonText, text)
    pal.setColor(QPalette.ColorRole.ToolTipBase, QColor("#22272d"))
    pal.setColor(QPalette.ColorRole.ToolTipText, text)
    pal.setColor(QPalette.ColorRole.Highlight, QColor("#2e5a88"))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    pal.setColor(QPalette.ColorRole.PlaceholderText, QColor("#6c7480"))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#5d646e"))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#5d646e"))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor("#5d646e"))
    app.setPalette(pal)
    app.setStyleSheet(STYLE)
