"""The ruler tool (M): drag a line to measure it; click a line to select it (Del deletes it).

The length is shown in millimetres from the image's pixel spacing (marked * when that is
ImagerPixelSpacing, at the detector) or in pixels when the image has none; the controller stores
the line with that spacing, as one undoable edit.
"""

from __future__ import annotations

from PySide6.QtCore import QLineF, QPointF, Qt
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsLineItem

from lesion_studio.gui.commands import MEASURE
from lesion_studio.gui.tools.base import CanvasTool
from lesion_studio.gui.viewer.overlays import RULER

PICK_PX = 6.0  # how close (screen px) to a line counts as clicking it
CLICK_PX = 3.0


class RulerTool(CanvasTool):
    name = "ruler"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, canvas, controller) -> None:  # noqa: ANN001
        self.canvas = canvas
        self.controller = controller
        self.preview = QGraphicsLineItem()
        pen = QPen(RULER)
        pen.setCosmetic(True)
        pen.setStyle(Qt.PenStyle.DotLine)
        self.preview.setPen(pen)
        self.preview.setZValue(20)
        self.preview.setVisible(False)
        self._start: QPointF | None = None
        self._start_screen: QPointF | None = None

    def _hit(self, pos: QPointF):  # noqa: ANN202 - MeasurementItem | None
        p = self.canvas.to_image(pos)
        tolerance = PICK_PX / max(self.canvas.zoom(), 1e-6)
        near = [(m.distance_to(p.x(), p.y()), m) for m in self.canvas.measurements]
        near = [(d, m) for d, m in near if d <= tolerance]
        return min(near, key=lambda t: t[0])[1] if near else None

    def press(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> bool:
        hit = self._hit(pos)
        if hit is not None:
            self.controller.select((MEASURE, hit.measurement_id))
            return False
        p = self.canvas.to_image(pos)
        w, h = self.canvas.image_size()
        if not (0 <= p.x() <= w and 0 <= p.y() <= h):
            self.controller.select(None)
            return False
        self.controller.select(None)
        self._start, self._start_screen = p, pos
        if self.preview.scene() is None:
            self.canvas.vb.addItem(self.preview)
        return True

    def move(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        if self._start is None:
            return
        p = self.canvas.to_image(pos)
        self.preview.setLine(QLineF(self._start, p))
        self.preview.setVisible(True)

    def release(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        start, start_screen = self._start, self._start_screen
        self.cancel()
        if start is None or start_screen is None or (pos - start_screen).manhattanLength() <= CLICK_PX:
            return
        end = self.canvas.to_image(pos)
        self.controller.create_measurement((start.x(), start.y(), end.x(), end.y()))

    def cancel(self) -> None:
        self._start = self._start_screen = None
        self.preview.setVisible(False)
