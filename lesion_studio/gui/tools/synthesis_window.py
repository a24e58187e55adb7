"""The synthesis window tool (W): drag a window to synthesize a lesion in, move it, resize it.

It is the normal-patch tool pointed elsewhere: the same :class:`RegionTool` gestures (drag on
empty image draws, click places a square of the patch size, drag inside moves, drag an edge
resizes), but it hit-tests only the preview window and its "controller" hands the result to the
synthesis panel instead of the store. A preview window is not an annotation: trying lesions on
an image must not add normal patches to the dataset or the undo history.

Windows are square (the translator's input is square; a non-square window would be stretched)
and whole-pixel, centred on what the hand drew.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QBrush, QColor

from lesion_studio.gui.annotation import MIN_REGION_PX
from lesion_studio.gui.commands import PATCH
from lesion_studio.gui.panels.patch_views import WINDOW_COLOR, window_pen
from lesion_studio.gui.tools.regions import RegionTool
from lesion_studio.gui.viewer.overlays import RegionItem
from lesion_studio.patches.sampling import square_window
from lesion_studio.store.records import Box


def square_box(box: Box, width: int, height: int) -> Box | None:
    """The square whole-pixel window centred on ``box`` (side = its longer side), moved inside the image."""
    b = box.normalized()
    side = round(max(b.width, b.height))
    if side < MIN_REGION_PX or width < MIN_REGION_PX or height < MIN_REGION_PX:
        return None
    cx, cy = b.center
    return square_window(cx, cy, min(side, width, height), width, height)


class WindowItem(RegionItem):
    """The preview window on the canvas: violet, dashed, handles always shown."""

    def __init__(self) -> None:
        super().__init__(PATCH, -1, Box(0.0, 0.0, 1.0, 1.0))
        fill = QColor(WINDOW_COLOR)
        fill.setAlpha(0)
        self.setBrush(QBrush(fill))
        self.setZValue(11)
        self.setVisible(False)
        self.set_selected(True)

    def set_selected(self, selected: bool) -> None:
        self.selected = True
        self.setPen(window_pen(2.0))
        for h in self._handles:
            h.setBrush(QBrush(WINDOW_COLOR))
            h.setVisible(True)


class _OnlyTheWindow:
    """The canvas as the tool sees it: the preview window is the only region."""

    def __init__(self, canvas: Any, item: WindowItem) -> None:
        self._canvas = canvas
        self._item = item

    @property
    def regions(self) -> list[RegionItem]:
        return [self._item] if self._item.isVisible() else []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._canvas, name)


class _ToPanel:
    """The controller interface RegionTool calls, answered by squaring the box and reporting it."""

    def __init__(self, tool: SynthesisWindowTool) -> None:
        self.tool = tool

    def select(self, key: object) -> None:
        pass

    def place_patch_at(self, x: float, y: float) -> None:
        side = self.tool.default_side()
        self.create_region(PATCH, Box(x - side / 2, y - side / 2, x + side / 2, y + side / 2))

    def create_region(self, kind: str, box: Box) -> None:
        self.tool.propose(box)

    def change_region(self, item: RegionItem, box: Box, verb: str = "Move") -> bool:
        return self.tool.propose(box)


class SynthesisWindowTool(RegionTool):
    """Draw/move/resize the one preview window; ``on_window(box)`` receives each accepted window."""

    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, canvas: Any, on_window: Callable[[Box], None], default_side: Callable[[], int]) -> None:
        self.item = WindowItem()
        canvas.vb.addItem(self.item)
        canvas.register_overlay(self.item)
        self.real_canvas = canvas
        self.on_window = on_window
        self.default_side = default_side
        super().__init__(_OnlyTheWindow(canvas, self.item), _ToPanel(self), PATCH)
        self.name = "synthesis"

    @property
    def window(self) -> Box | None:
        return self.item.box if self.item.isVisible() else None

    def show_window(self, box: Box | None) -> None:
        """Show (or hide, for None) the window without reporting it (the panel set it)."""
        if box is None:
            self.item.setVisible(False)
            return
        self.item.set_box(box)
        self.item.setVisible(True)

    def propose(self, box: Box) -> bool:
        w, h = self.real_canvas.image_size()
        square = square_box(box, w, h)
        if square is None:
            return False
        self.show_window(square)
        self.on_window(square)
        return True

    def press(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> bool:
        if self.real_canvas.radiograph is None:
            return False
        return super().press(pos, modifiers)

    def remove(self) -> None:
        self.cancel()
        self.real_canvas.unregister_overlay(self.item)
        for item in (self.item, self.band):
            if item.scene() is not None:
                self.real_canvas.vb.removeItem(item)
