"""The lesion-box tool (B) and the normal-patch tool (N).

Both select, move and resize any existing region; they differ in what a drag on empty image
draws. The patch tool also places a square of the current size on a plain click. Geometry is
decided here in screen space (handles are 7 px whatever the zoom); the rules (clipping, minimum
size, overlap) are the controller's, so keyboard and mouse edits obey the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, Qt

from lesion_studio.gui.commands import LESION, PATCH
from lesion_studio.gui.tools.base import CanvasTool
from lesion_studio.gui.viewer.overlays import RegionItem, RubberBand
from lesion_studio.store.records import Box

GRAB_PX = 6.0  # how close (screen px) to an edge counts as grabbing it
CLICK_PX = 3.0  # a press and release closer than this is a click, not a drag


@dataclass
class _Drag:
    mode: str  # "create" | "move" | "resize"
    start: QPointF  # image coordinates
    start_screen: QPointF
    item: RegionItem | None = None
    original: Box | None = None
    edges: frozenset[str] = frozenset()


def edges_at(rect, pos: QPointF) -> frozenset[str]:  # noqa: ANN001 - QRectF in screen space
    """Which edges of a screen rectangle are within grabbing distance of ``pos``."""
    x, y = pos.x(), pos.y()
    in_y = rect.top() - GRAB_PX <= y <= rect.bottom() + GRAB_PX
    in_x = rect.left() - GRAB_PX <= x <= rect.right() + GRAB_PX
    out = set()
    if in_y and abs(x - rect.left()) <= GRAB_PX:
        out.add("x0")
    if in_y and abs(x - rect.right()) <= GRAB_PX:
        out.add("x1")
    if in_x and abs(y - rect.top()) <= GRAB_PX:
        out.add("y0")
    if in_x and abs(y - rect.bottom()) <= GRAB_PX:
        out.add("y1")
    # A tiny box: both opposite edges are "near"; keep the one the cursor is really closer to.
    if {"x0", "x1"} <= out:
        out.discard("x0" if abs(x - rect.left()) > abs(x - rect.right()) else "x1")
    if {"y0", "y1"} <= out:
        out.discard("y0" if abs(y - rect.top()) > abs(y - rect.bottom()) else "y1")
    return frozenset(out)


class RegionTool(CanvasTool):
    """Draw regions of one kind; select, move and resize regions of any kind."""

    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, canvas, controller, kind: str) -> None:  # noqa: ANN001
        self.canvas = canvas
        self.controller = controller
        self.kind = kind
        self.name = "box" if kind == LESION else "patch"
        self.band = RubberBand(kind)
        self._drag: _Drag | None = None

    # ------------------------------------------------------------------ hit testing
    def _hit(self, pos: QPointF) -> tuple[RegionItem | None, frozenset[str]]:
        """The region under the cursor: selected first, then the smallest one containing it."""
        regions = sorted(self.canvas.regions, key=lambda r: (not r.selected, r.box.width * r.box.height))
        for item in regions:
            rect = self.canvas.screen_rect(item.box)
            edges = edges_at(rect, pos)
            if edges:
                return item, edges
            if rect.contains(pos):
                return item, frozenset()
        return None, frozenset()

    def hover(self, pos: QPointF) -> None:
        item, edges = self._hit(pos)
        if edges in ({"x0", "y0"}, {"x1", "y1"}):
            shape = Qt.CursorShape.SizeFDiagCursor
        elif edges in ({"x1", "y0"}, {"x0", "y1"}):
            shape = Qt.CursorShape.SizeBDiagCursor
        elif edges & {"x0", "x1"}:
            shape = Qt.CursorShape.SizeHorCursor
        elif edges:
            shape = Qt.CursorShape.SizeVerCursor
        elif item is not None:
            shape = Qt.CursorShape.SizeAllCursor
        else:
            shape = self.cursor
        self.canvas.viewport().setCursor(shape)

    # ------------------------------------------------------------------ gestures
    def press(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> bool:
        p = self.canvas.to_image(pos)
        item, edges = self._hit(pos)
        if item is not None:
            self.controller.select(item.key)
            mode = "resize" if edges else "move"
            self._drag = _Drag(mode, p, pos, item, item.box, edges)
            return True
        w, h = self.canvas.image_size()
        if not (0 <= p.x() <= w and 0 <= p.y() <= h):
            self.controller.select(None)
            return False
        self.controller.select(None)
        self._drag = _Drag("create", p, pos)
        if self.band.scene() is None:
            self.canvas.vb.addItem(self.band)
        return True

    def _live_box(self, pos: QPointF) -> Box | None:
        d = self._drag
        if d is None:
            return None
        p = self.canvas.to_image(pos)
        w, h = self.canvas.image_size()
        if d.mode == "create":
            return Box(d.start.x(), d.start.y(), p.x(), p.y()).clipped(w, h)
        assert d.original is not None
        b = d.original
        if d.mode == "move":
            dx = min(max(p.x() - d.start.x(), -b.x0), w - b.x1)
            dy = min(max(p.y() - d.start.y(), -b.y0), h - b.y1)
            return Box(b.x0 + dx, b.y0 + dy, b.x1 + dx, b.y1 + dy)
        x0, y0, x1, y1 = b.as_tuple()
        if "x0" in d.edges:
            x0 = p.x()
        if "x1" in d.edges:
            x1 = p.x()
        if "y0" in d.edges:
            y0 = p.y()
        if "y1" in d.edges:
            y1 = p.y()
        return Box(x0, y0, x1, y1).clipped(w, h)

    def move(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        box = self._live_box(pos)
        if box is None or self._drag is None:
            return
        if self._drag.mode == "create":
            from lesion_studio.gui.viewer.overlays import box_rect

            self.band.setRect(box_rect(box))
            self.band.setVisible(True)
        elif self._drag.item is not None:
            self._drag.item.set_box(box)

    def release(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        d = self._drag
        box = self._live_box(pos)
        self._drag = None
        self.band.setVisible(False)
        if d is None or box is None:
            return
        moved = (pos - d.start_screen).manhattanLength() > CLICK_PX
        if d.mode == "create":
            if not moved and self.kind == PATCH:
                self.controller.place_patch_at(d.start.x(), d.start.y())
            elif moved:
                self.controller.create_region(self.kind, box)
            else:
                self.controller.select(None)
            return
        assert d.item is not None and d.original is not None
        if not moved:
            d.item.set_box(d.original)
            return
        verb = "Resize" if d.mode == "resize" else "Move"
        if not self.controller.change_region(d.item, box, verb):
            d.item.set_box(d.original)

    def cancel(self) -> None:
        if self._drag is not None and self._drag.item is not None and self._drag.original is not None:
            self._drag.item.set_box(self._drag.original)
        self._drag = None
        self.band.setVisible(False)
