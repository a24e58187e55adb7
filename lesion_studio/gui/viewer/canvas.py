"""The image canvas: a pyqtgraph ViewBox showing one radiograph with its regions.

Mouse handling is ours, not pyqtgraph's, so that every gesture is explicit and testable:

* left button: the active tool (draw/move/resize boxes or patches; pan with the pan tool);
* middle button, or Space + left: pan;
* right button drag: window/level (horizontal = width, vertical = level);
* wheel: zoom about the cursor.

Window/level only changes the ImageItem's display levels; the radiograph's pixel array is handed
to pyqtgraph once and never modified.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QMouseEvent, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import QGraphicsItem, QLabel, QWidget

from lesion_studio.gui.viewer.overlays import MeasurementItem, RegionItem
from lesion_studio.gui.viewer.window_level import dragged_levels
from lesion_studio.io.radiograph import Radiograph
from lesion_studio.store.records import Box

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

BACKGROUND = "#0b0d10"
WHEEL_STEP = 1.2
MIN_ZOOM, MAX_ZOOM = 0.02, 40.0
INVERT_LUT = np.arange(255, -1, -1, dtype=np.uint8)


class _PaintingImageItem(pg.ImageItem):
    """An ImageItem that tells when a new image has reached the screen (for the benchmark)."""

    def __init__(self, on_first_paint) -> None:  # noqa: ANN001
        super().__init__(axisOrder="row-major")
        self._on_first_paint = on_first_paint
        self.pending_paint = False

    def paint(self, painter, *args) -> None:  # noqa: ANN001
        super().paint(painter, *args)
        if self.pending_paint:
            self.pending_paint = False
            self._on_first_paint()


class ImageCanvas(pg.GraphicsView):
    """Shows a radiograph and routes mouse gestures to the active tool."""

    cursor_moved = Signal(float, float)  # image x, y (nan when off the image)
    view_changed = Signal(float)  # zoom: screen pixels per image pixel
    levels_changed = Signal(float, float)
    painted = Signal()  # the current image has been painted for the first time

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=BACKGROUND)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.vb.setMouseEnabled(False, False)
        self.vb.setBackgroundColor(BACKGROUND)
        self.setCentralItem(self.vb)
        self.image_item = _PaintingImageItem(self.painted.emit)
        self.vb.addItem(self.image_item)
        self.vb.sigRangeChanged.connect(lambda *_: self.view_changed.emit(self.zoom()))
        self.radiograph: Radiograph | None = None
        self.inverted = False
        self.regions: list[RegionItem] = []
        self.measurements: list[MeasurementItem] = []
        self.tool = None  # a lesion_studio.gui.tools.base.CanvasTool
        self._gesture: str | None = None
        self._last_pos = QPointF()
        self._wl_start: tuple[QPointF, tuple[float, float]] | None = None
        self._space_down = False
        self.overlays_hidden = False  # H: boxes, patches and windows out of the way while vetting
        self._extra_overlays: list[QGraphicsItem] = []
        self.badge = QLabel(self)  # e.g. SYNTHETIC while the viewer shows a synthetic image
        self.badge.setObjectName("canvas_badge")
        self.badge.setStyleSheet("QLabel#canvas_badge { background: #b3261e; color: white; font-weight: bold; "
                                 "padding: 3px 8px; border-radius: 3px; }")
        self.badge.hide()

    # ------------------------------------------------------------------ overlays and badge
    def register_overlay(self, item: QGraphicsItem) -> None:
        """An item drawn over the image (a tool's window) that H hides with the regions."""
        self._extra_overlays.append(item)
        item.setOpacity(0.0 if self.overlays_hidden else 1.0)

    def unregister_overlay(self, item: QGraphicsItem) -> None:
        if item in self._extra_overlays:
            self._extra_overlays.remove(item)

    def set_overlays_hidden(self, hidden: bool) -> None:
        """Hide (or show) boxes, patches and tool windows; the image and the synthetic lesion stay.
        Opacity, not visibility: a tool's own show/hide state is left alone."""
        self.overlays_hidden = hidden
        for item in [*self.regions, *self.measurements, *self._extra_overlays]:
            item.setOpacity(0.0 if hidden else 1.0)

    def set_badge(self, text: str | None) -> None:
        if not text:
            self.badge.hide()
            return
        self.badge.setText(text)
        self.badge.adjustSize()
        self._place_badge()
        self.badge.show()
        self.badge.raise_()

    def _place_badge(self) -> None:
        self.badge.move(10, max(0, self.height() - self.badge.height() - 10))  # bottom left: clear of the banner

    def resizeEvent(self, ev: QResizeEvent | None) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(ev)
        if "badge" in self.__dict__:  # pyqtgraph resizes once inside its own __init__
            self._place_badge()

    # ------------------------------------------------------------------ image
    def set_radiograph(self, rg: Radiograph | None, levels: tuple[float, float] | None = None,
                       keep_view: bool = False) -> None:
        self.radiograph = rg
        if rg is None:
            self.image_item.clear()
            self.set_regions([])
            self.set_measurements([])
            return
        levels = levels or rg.window_levels()
        self.image_item.pending_paint = True
        self.image_item.setImage(rg.pixels, autoLevels=False, levels=levels)
        self.image_item.setLookupTable(INVERT_LUT if self.inverted else None)
        if not keep_view:
            self.fit()
        self.levels_changed.emit(*levels)

    def image_size(self) -> tuple[int, int]:
        """(width, height) of the shown image, (0, 0) when none."""
        if self.radiograph is None:
            return 0, 0
        return self.radiograph.width, self.radiograph.height

    def levels(self) -> tuple[float, float]:
        lo, hi = self.image_item.getLevels()
        return float(lo), float(hi)

    def set_levels(self, lo: float, hi: float) -> None:
        if hi <= lo:
            hi = lo + 1.0
        self.image_item.setLevels((lo, hi))
        self.levels_changed.emit(lo, hi)

    def set_inverted(self, inverted: bool) -> None:
        self.inverted = inverted
        self.image_item.setLookupTable(INVERT_LUT if inverted else None)

    # ------------------------------------------------------------------ regions
    def set_regions(self, items: list[RegionItem]) -> None:
        for item in self.regions:
            self.vb.removeItem(item)
        self.regions = list(items)
        for item in self.regions:
            item.setOpacity(0.0 if self.overlays_hidden else 1.0)
            self.vb.addItem(item)

    def set_measurements(self, items: list[MeasurementItem]) -> None:
        for item in self.measurements:
            self.vb.removeItem(item)
        self.measurements = list(items)
        for item in self.measurements:
            item.setOpacity(0.0 if self.overlays_hidden else 1.0)
            self.vb.addItem(item)

    def measurement(self, measurement_id: int) -> MeasurementItem | None:
        return next((m for m in self.measurements if m.measurement_id == measurement_id), None)

    def region(self, kind: str, region_id: int) -> RegionItem | None:
        return next((r for r in self.regions if r.key == (kind, region_id)), None)

    def selected_region(self) -> RegionItem | None:
        return next((r for r in self.regions if r.selected), None)

    # ------------------------------------------------------------------ geometry
    def to_image(self, pos: QPointF) -> QPointF:
        """Viewport pixel position -> image coordinates (x = column, y = row, pixel edges)."""
        scene = self.viewportTransform().inverted()[0].map(QPointF(pos))
        return self.vb.mapSceneToView(scene)

    def to_screen(self, x: float, y: float) -> QPointF:
        """Image coordinates -> viewport pixel position."""
        scene = self.vb.mapViewToScene(QPointF(x, y))
        return self.viewportTransform().map(scene)

    def screen_rect(self, box: Box) -> QRectF:
        return QRectF(self.to_screen(box.x0, box.y0), self.to_screen(box.x1, box.y1)).normalized()

    def zoom(self) -> float:
        """Screen pixels per image pixel (the aspect is locked, so one axis tells)."""
        shown = self.vb.viewRect().width()
        return self.vb.rect().width() / shown if shown > 0 else 1.0

    def set_zoom(self, zoom: float, center: tuple[float, float] | None = None) -> None:
        """Show the image at ``zoom`` screen pixels per image pixel around ``center``."""
        zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        if center is None:
            r = self.vb.viewRect()
            center = (r.center().x(), r.center().y())
        rect = self.vb.rect()
        half_w, half_h = rect.width() / (2 * zoom), rect.height() / (2 * zoom)
        cx, cy = center
        self.vb.setRange(xRange=(cx - half_w, cx + half_w), yRange=(cy - half_h, cy + half_h), padding=0)

    def fit(self) -> None:
        w, h = self.image_size()
        if w and h:
            self.vb.setRange(QRectF(0, 0, w, h), padding=0.02)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom by ``factor`` keeping the image point under ``anchor`` (viewport px) fixed.

        Works on the displayed rectangle, not ViewBox.scaleBy's target range, which differs from
        what is shown once the aspect lock has widened one axis.
        """
        new = self.zoom() * factor
        if not (MIN_ZOOM <= new <= MAX_ZOOM):
            return
        rect = self.vb.viewRect()
        a = self.to_image(anchor) if anchor is not None else rect.center()
        self.vb.setRange(
            xRange=(a.x() + (rect.left() - a.x()) / factor, a.x() + (rect.right() - a.x()) / factor),
            yRange=(a.y() + (rect.top() - a.y()) / factor, a.y() + (rect.bottom() - a.y()) / factor),
            padding=0,
        )

    def pan_by_screen(self, dx: float, dy: float) -> None:
        a = self.to_image(QPointF(0, 0))
        b = self.to_image(QPointF(dx, dy))
        self.vb.translateBy(x=a.x() - b.x(), y=a.y() - b.y())

    # ------------------------------------------------------------------ Qt events
    def wheelEvent(self, ev: QWheelEvent) -> None:
        steps = ev.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(WHEEL_STEP**steps, ev.position())
        ev.accept()

    def keyPressEvent(self, ev) -> None:  # noqa: ANN001
        if ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space_down = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            ev.accept()
            return
        super().keyPressEvent(ev)

    def keyReleaseEvent(self, ev) -> None:  # noqa: ANN001
        if ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space_down = False
            self._restore_cursor()
            ev.accept()
            return
        super().keyReleaseEvent(ev)

    def _restore_cursor(self) -> None:
        shape = self.tool.cursor if self.tool is not None else Qt.CursorShape.ArrowCursor
        self.viewport().setCursor(shape)

    def mousePressEvent(self, ev: QMouseEvent) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        pos = ev.position()
        self._last_pos = pos
        button = ev.button()
        if self.radiograph is None:
            ev.accept()
            return
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space_down):
            self._gesture = "pan"
        elif button == Qt.MouseButton.RightButton:
            self._gesture = "wl"
            self._wl_start = (pos, self.levels())
        elif button == Qt.MouseButton.LeftButton and self.tool is not None:
            self._gesture = "tool" if self.tool.press(pos, ev.modifiers()) else None
        ev.accept()

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:
        pos = ev.position()
        p = self.to_image(pos)
        w, h = self.image_size()
        if w and 0 <= p.x() < w and 0 <= p.y() < h:
            self.cursor_moved.emit(p.x(), p.y())
        else:
            self.cursor_moved.emit(math.nan, math.nan)
        if self._gesture == "pan":
            self.pan_by_screen(pos.x() - self._last_pos.x(), pos.y() - self._last_pos.y())
        elif self._gesture == "wl" and self._wl_start is not None:
            self._drag_window(pos)
        elif self._gesture == "tool" and self.tool is not None:
            self.tool.move(pos, ev.modifiers())
        elif self.tool is not None and not ev.buttons():
            self.tool.hover(pos)
        self._last_pos = pos
        ev.accept()

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:
        if self._gesture == "tool" and self.tool is not None:
            self.tool.release(ev.position(), ev.modifiers())
        self._gesture = None
        self._wl_start = None
        ev.accept()

    def mouseDoubleClickEvent(self, ev: QMouseEvent) -> None:
        ev.accept()

    def _drag_window(self, pos: QPointF) -> None:
        """Right-drag: right widens the window, down raises the level (the usual PACS feel)."""
        start, levels = self._wl_start
        assert self.radiograph is not None
        lo, hi = dragged_levels(levels, self.radiograph.value_range,
                                pos.x() - start.x(), pos.y() - start.y())
        self.set_levels(lo, hi)
