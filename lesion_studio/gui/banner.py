"""A message bar over the top of the image: errors and refusals are seen where the eyes are.

It floats over the viewer (:meth:`Banner.overlay`) instead of taking a row of the layout: a bar
that pushed the image down by 16–19 px as it came and went moved what was under the mouse, and a
click meant to grab a box handle drew a new box instead.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget


class Banner(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.action_button = QPushButton()
        self.action_button.setVisible(False)
        close = QPushButton("✕")
        close.setFlat(True)
        close.setFixedWidth(28)
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.action_button)
        layout.addWidget(close)
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self.hide)
        self._callback: Callable[[], None] | None = None
        self.action_button.clicked.connect(self._run_action)
        self.level = "info"
        self.setAutoFillBackground(True)
        self.hide()

    def overlay(self, host: QWidget) -> None:
        """Float over the top edge of ``host`` (full width), following its size."""
        self.setParent(host)
        host.installEventFilter(self)
        self._place()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.parentWidget() and event.type() == QEvent.Type.Resize:
            self._place()
        return False

    def _place(self) -> None:
        host = self.parentWidget()
        if host is None:
            return
        width = host.width()
        layout = self.layout()
        height = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else -1
        self.setGeometry(0, 0, width, max(height, self.sizeHint().height()))

    def clear_error(self) -> None:
        """A later action succeeded: an error shown before no longer describes the state."""
        if self.isVisible() and self.level == "error":
            self.hide()

    def show_message(self, text: str, level: str = "info", action: tuple[str, Callable[[], None]] | None = None,
                     timeout_ms: int | None = None) -> None:
        self.level = level
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        self.text.setText(text)
        self._callback = action[1] if action else None
        self.action_button.setVisible(action is not None)
        if action:
            self.action_button.setText(action[0])
        if timeout_ms is None:
            timeout_ms = 0 if (level == "error" or action) else 6000
        if timeout_ms:
            self._timer.start(timeout_ms)
        else:
            self._timer.stop()
        self._place()
        self.show()
        self.raise_()

    def _run_action(self) -> None:
        callback = self._callback
        self.hide()
        if callback is not None:
            callback()
