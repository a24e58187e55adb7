"""A grid of small widgets (check boxes) that uses as many columns as its width holds.

Two columns of check boxes suit a research dock, but in the reading layout's thin inspector
(180 px) they would force the column wider or be cut. This grid asks only for one column's width
and re-flows into more whenever it is given the room.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QSize
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QGridLayout, QWidget

SPACING = 12


class ReflowColumns(QWidget):
    """``widgets`` in row-major order, in up to ``columns`` columns (one at the least)."""

    def __init__(self, widgets: Sequence[QWidget], columns: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._widgets = list(widgets)
        self._max = columns
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setHorizontalSpacing(SPACING)
        self.columns = 0
        self._place(columns)

    def _needed(self, columns: int) -> int:
        widest = max((w.sizeHint().width() for w in self._widgets), default=0)
        return columns * widest + (columns - 1) * SPACING

    def _place(self, columns: int) -> None:
        if columns == self.columns:
            return
        for w in self._widgets:
            self._grid.removeWidget(w)
        for i, w in enumerate(self._widgets):
            self._grid.addWidget(w, i // columns, i % columns)
        self.columns = columns
        self.updateGeometry()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self._needed(1), super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        width = event.size().width()
        self._place(max([c for c in range(1, self._max + 1) if self._needed(c) <= width], default=1))
        super().resizeEvent(event)
