"""The GAN's current translations as one image: rows normal, normal→lesion, lesion, lesion→normal.

The UNIT trainer puts four sample patches per row into its progress event every ``sample_every``
iterations (float arrays in [-1, 1]). They are tiled into a single 8-bit image and shown by one
pyqtgraph ImageItem, so a refresh is a single texture upload however many samples there are.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from lesion_studio.io.images import grid, patch_uint8

ROWS = (("normal", "normal"), ("h2l", "normal → lesion"), ("lesion", "lesion"), ("l2h", "lesion → normal"))


class SampleGrid(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QLabel("Translated samples appear here during GAN training.")
        self.caption.setWordWrap(True)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("#202124")
        self.box = self.view.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image)
        self.view.setMinimumHeight(160)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.view, 1)
        self.iteration: int | None = None
        self.array: np.ndarray | None = None

    def set_samples(self, samples: Mapping[str, np.ndarray], iteration: int | None = None) -> None:
        rows = [[patch_uint8(tile) for tile in np.asarray(samples[key])] for key, _ in ROWS if key in samples]
        if not rows:
            return
        self.array = grid(rows)
        self.image.setImage(self.array, levels=(0, 255), autoLevels=False)
        self.box.autoRange(padding=0.0)
        self.iteration = iteration
        shown = " / ".join(label for key, label in ROWS if key in samples)
        at = f" at iteration {iteration}" if iteration is not None else ""
        self.caption.setText(f"Rows: {shown}{at}")

    def clear(self) -> None:
        self.image.clear()
        self.array = None
        self.iteration = None
        self.caption.setText("Translated samples appear here during GAN training.")
