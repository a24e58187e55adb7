"""The small image views of the synthesis panel, and the synthetic overlay on the main canvas.

Every view is the same two-layer picture, in image pixel coordinates: a *base* (the real pixels
around the window, or the whole image downsampled) and a *patch* layer (translated or blended
pixels) placed exactly over the window. Re-blending therefore repaints one window-sized image
per view and never copies the radiograph: that is what keeps the n slider under a frame
(16 ms) for a 256² patch on a 3000² radiograph.

The canvas overlay does the same on the main viewer, so the A/B toggle is a visibility flip and
the radiograph's own pixel array is never modified.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from lesion_studio.gui.viewer.canvas import BACKGROUND, INVERT_LUT
from lesion_studio.samples.thumbnails import context_box, crop
from lesion_studio.store.records import Box

if TYPE_CHECKING:
    from lesion_studio.synthesis.pipeline import SynthesisResult

WINDOW_COLOR = QColor("#c792ff")  # the synthesis window: violet, unlike lesion orange / patch cyan
THUMB_MAX_SIDE = 480  # the full-image view shows the radiograph downsampled to about this size


def window_pen(width: float = 1.6, dashed: bool = True) -> QPen:
    pen = QPen(WINDOW_COLOR)
    pen.setCosmetic(True)
    pen.setWidthF(width)
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def _rect(box: Box) -> QRectF:
    return QRectF(box.x0, box.y0, box.width, box.height)


class PatchLayer(pg.ImageItem):
    """A window-sized image placed over ``window`` in image coordinates."""

    def __init__(self) -> None:
        super().__init__(axisOrder="row-major")
        self.window: Box | None = None

    def show_patch(self, patch: np.ndarray | None, window: Box | None, levels: tuple[float, float]) -> None:
        if patch is None or window is None:
            self.clear()
            self.window = None
            return
        self.setImage(patch, autoLevels=False, levels=levels)
        if window != self.window:
            self.setRect(_rect(window))
            self.window = window


class ContextView(QWidget):
    """One of the four views: a title, a base image and an optional patch layer, window outlined."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(title)
        self.title.setObjectName("muted")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.view = pg.GraphicsView(background=BACKGROUND)
        self.view.setMinimumSize(100, 90)
        self.vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.vb.setMouseEnabled(False, False)
        self.vb.setBackgroundColor(BACKGROUND)
        self.view.setCentralItem(self.vb)
        self.base = pg.ImageItem(axisOrder="row-major")
        self.patch = PatchLayer()
        self.patch.setZValue(1)
        self.outline = QGraphicsRectItem()
        self.outline.setPen(window_pen())
        self.outline.setZValue(2)
        self.outline.setVisible(False)
        for item in (self.base, self.patch, self.outline):
            self.vb.addItem(item)
        self.levels = (0.0, 1.0)
        self.base_box: Box | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.title)

    def set_base(self, pixels: np.ndarray | None, box: Box | None, window: Box | None) -> None:
        """The real pixels shown in ``box`` (image coordinates), with ``window`` outlined."""
        self.base_box = box
        if pixels is None or box is None:
            self.base.clear()
            self.patch.show_patch(None, None, self.levels)
            self.outline.setVisible(False)
            return
        self.base.setImage(pixels, autoLevels=False, levels=self.levels)
        self.base.setRect(_rect(box))
        if window is not None:
            self.outline.setRect(_rect(window))
        self.outline.setVisible(window is not None)
        self.vb.setRange(_rect(box), padding=0.01)

    def set_patch(self, patch: np.ndarray | None, window: Box | None) -> None:
        self.patch.show_patch(patch, window, self.levels)

    def set_levels(self, levels: tuple[float, float]) -> None:
        self.levels = levels
        for item in (self.base, self.patch):
            if item.image is not None:
                item.setLevels(levels)

    def set_inverted(self, inverted: bool) -> None:
        for item in (self.base, self.patch):
            item.setLookupTable(INVERT_LUT if inverted else None)

    def is_filled(self) -> bool:
        return self.base.image is not None and self.base.image.size > 0

    def composed(self) -> np.ndarray | None:
        """What the view shows, as one array in the base's pixel grid (for tests and checks).

        The full-image view's base is downsampled; there the patch is pasted at that scale.
        """
        if self.base.image is None or self.base_box is None:
            return None
        out = np.array(self.base.image, copy=True)
        if self.patch.image is None or self.patch.window is None:
            return out
        sy = out.shape[0] / self.base_box.height
        sx = out.shape[1] / self.base_box.width
        w = self.patch.window
        x0, y0 = round((w.x0 - self.base_box.x0) * sx), round((w.y0 - self.base_box.y0) * sy)
        x1, y1 = round((w.x1 - self.base_box.x0) * sx), round((w.y1 - self.base_box.y0) * sy)
        patch = self.patch.image
        rows = np.linspace(0, patch.shape[0] - 1, max(1, y1 - y0)).round().astype(int)
        cols = np.linspace(0, patch.shape[1] - 1, max(1, x1 - x0)).round().astype(int)
        out[y0:y1, x0:x1] = patch[np.ix_(rows, cols)][: out.shape[0] - y0, : out.shape[1] - x0]
        return out


def downsampled(pixels: np.ndarray, max_side: int = THUMB_MAX_SIDE) -> np.ndarray:
    """A strided view for the full-image thumbnail (no copy, no filtering: it is a locator)."""
    step = max(1, math.ceil(max(pixels.shape[:2]) / max_side))
    return pixels[::step, ::step]


class PreviewViews(QWidget):
    """The four views of the paper's Figure 2 side by side: original, translated and blended window
    (each with context), and the full image with the blended lesion in place."""

    TITLES = (("original", "Original"), ("translated", "Translated"), ("blended", "Blended"), ("full", "Full image"))

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.views = {key: ContextView(title) for key, title in self.TITLES}
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        for view in self.views.values():
            row.addWidget(view, 1)

    def __getitem__(self, key: str) -> ContextView:
        return self.views[key]

    def show_result(self, pixels: np.ndarray, result: SynthesisResult, levels: tuple[float, float],
                    inverted: bool) -> None:
        """The real pixels around the result's window in every view, then its translation and blend."""
        height, width = pixels.shape[:2]
        window = result.window
        ctx = context_box(window, width, height)
        base = crop(pixels, ctx)
        for key, view in self.views.items():
            view.set_levels(levels)
            view.set_inverted(inverted)
            if key == "full":
                view.set_base(downsampled(pixels), Box(0.0, 0.0, float(width), float(height)), window)
            else:
                view.set_base(base, ctx, window)
        self.views["original"].set_patch(None, None)
        self.views["translated"].set_patch(result.translated_patch, window)
        self.show_blend(result)

    def show_blend(self, result: SynthesisResult) -> None:
        self.views["blended"].set_patch(result.blended_patch, result.window)
        self.views["full"].set_patch(result.blended_patch, result.window)
        self.views["blended"].title.setText(f"Blended (n = {result.n:.2f})")

    def clear(self) -> None:
        for view in self.views.values():
            view.set_base(None, None, None)
        self.views["blended"].title.setText("Blended")

    def set_levels(self, levels: tuple[float, float]) -> None:
        for view in self.views.values():
            view.set_levels(levels)

    def set_inverted(self, inverted: bool) -> None:
        for view in self.views.values():
            view.set_inverted(inverted)


class CanvasOverlay:
    """The blended patch drawn over the main viewer's image, following its levels and inversion."""

    def __init__(self, canvas) -> None:  # noqa: ANN001 - ImageCanvas
        self.canvas = canvas
        self.layer = PatchLayer()
        self.layer.setZValue(5)  # above the image, below lesion boxes and patches (9, 10)
        self.layer.setVisible(False)
        canvas.vb.addItem(self.layer)
        # dropped by handle in remove(): signal.disconnect(slot) over-releases True in PySide6 6.12
        self._levels_link = canvas.levels_changed.connect(self._levels_changed)

    def show_patch(self, patch: np.ndarray | None, window: Box | None) -> None:
        if patch is None or window is None or self.canvas.radiograph is None:
            self.layer.show_patch(None, None, (0.0, 1.0))
            return
        self.layer.show_patch(patch, window, self.canvas.levels())
        self.layer.setLookupTable(INVERT_LUT if self.canvas.inverted else None)

    def set_visible(self, visible: bool) -> None:
        self.layer.setLookupTable(INVERT_LUT if self.canvas.inverted else None)
        self.layer.setVisible(visible and self.layer.image is not None)

    def is_visible(self) -> bool:
        return self.layer.isVisible()

    def _levels_changed(self, lo: float, hi: float) -> None:
        if self.layer.image is not None:
            self.layer.setLevels((lo, hi))

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError, TypeError):
            QObject.disconnect(self._levels_link)
        if self.layer.scene() is not None:
            self.canvas.vb.removeItem(self.layer)
