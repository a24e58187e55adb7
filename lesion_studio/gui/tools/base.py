"""What a canvas tool is: press/move/release in viewport coordinates, plus a cursor."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt


class CanvasTool:
    """A left-button tool. ``press`` returns True to own the drag until ``release``."""

    name = "tool"
    cursor = Qt.CursorShape.ArrowCursor

    def press(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> bool:
        return False

    def move(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        pass

    def release(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        pass

    def hover(self, pos: QPointF) -> None:
        pass

    def cancel(self) -> None:
        """Abandon a gesture in progress (Esc, image change)."""


class PanTool(CanvasTool):
    """Left-drag pans (the middle button and Space+drag pan with any tool)."""

    name = "pan"
    cursor = Qt.CursorShape.OpenHandCursor

    def __init__(self, canvas) -> None:  # noqa: ANN001 - ImageCanvas
        self.canvas = canvas
        self._last: QPointF | None = None

    def press(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> bool:
        self._last = pos
        return True

    def move(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        if self._last is not None:
            self.canvas.pan_by_screen(pos.x() - self._last.x(), pos.y() - self._last.y())
        self._last = pos

    def release(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        self._last = None
