"""The status bar's permanent readouts: the assist field (the review counter, the current image's
box proposals and where its labels came from; the window fills it), the reader field (who reads, whose boxes are shown, the
type of new boxes; the window fills it) and, under the cursor, pixel value, position, millimetres,
zoom and display window. They follow the canvas and go blank when no image is shown."""

from __future__ import annotations

import math

from PySide6.QtWidgets import QLabel, QStatusBar

from lesion_studio.gui.elided import ElidedLabel
from lesion_studio.gui.viewer.canvas import ImageCanvas


class StatusFields:
    """One label per readout on ``bar``, fed by ``canvas``'s signals; ``fields["zoom"]`` is a label."""

    KEYS = ("assist", "reader", "value", "position", "mm", "zoom", "window")
    #: the long sentences: they shorten with "…" (whole in their tooltip) where the bar is narrow,
    #: so the short readouts after them always show whole and nothing widens the window
    ELIDED = ("assist", "reader")

    def __init__(self, bar: QStatusBar, canvas: ImageCanvas) -> None:
        self.canvas = canvas
        self.labels = {k: ElidedLabel() if k in self.ELIDED else QLabel("") for k in self.KEYS}
        for key, label in self.labels.items():
            label.setObjectName(f"status_{key}")
            bar.addPermanentWidget(label)
        canvas.cursor_moved.connect(self.cursor_moved)
        canvas.view_changed.connect(self.zoom_changed)
        canvas.levels_changed.connect(self.levels_changed)

    def __getitem__(self, key: str) -> QLabel:
        return self.labels[key]

    def cursor_moved(self, x: float, y: float) -> None:
        f, rg = self.labels, self.canvas.radiograph
        if rg is None or math.isnan(x):
            for key in ("value", "position", "mm"):
                f[key].setText("")
            return
        col, row = int(x), int(y)
        value = rg.pixels[row, col]
        f["value"].setText(f"value {value:g}" if rg.pixels.dtype.kind == "f" else f"value {int(value)}")
        f["position"].setText(f"x {col}  y {row}")
        if rg.pixel_spacing_mm:
            sr, sc = rg.pixel_spacing_mm
            f["mm"].setText(f"{x * sc:.1f}, {y * sr:.1f} mm")
        else:
            f["mm"].setText("")

    def zoom_changed(self, zoom: float) -> None:
        shown = self.canvas.radiograph is not None
        self.labels["zoom"].setText(f"zoom {zoom * 100:.0f}%" if shown else "")

    def levels_changed(self, lo: float, hi: float) -> None:
        self.labels["window"].setText(f"W {hi - lo:.0f} L {(lo + hi) / 2:.0f}")

    def clear(self) -> None:
        """No image: no zoom, window or pixel readout (it used to say "zoom 33200%")."""
        for label in self.labels.values():
            label.setText("")
