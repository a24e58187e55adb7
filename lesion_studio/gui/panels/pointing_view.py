"""Where the detector looks: the pointing game of one results row, lesion by lesion.

The experiment stores, for each boxed test lesion, where the row's seed-mean localisation map
peaked (``results.json``: ``pointing.lesions``; ``evaluate/pointing.py``). A rate such as "19 %
within 15 px" says little to a reader who cannot see the misses: here each lesion is a thumbnail
of its radiograph with the radiologist's box (green) and the map's peak (a cross: green for a hit,
red for a miss), misses first. Thumbnails are decoded in the background, so a large DICOM never
holds up the window; a file that has moved since the run shows as missing, not as an error.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QLabel, QListView, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from lesion_studio.evaluate.pointing import pointing_rule
from lesion_studio.gui.panels.thumbnails import pixmap_from_gray
from lesion_studio.gui.workers import TaskPool

log = logging.getLogger(__name__)

THUMB_SIZE = 150
BOX_COLOUR = QColor(60, 210, 90)
HIT_COLOUR = QColor(60, 210, 90)
MISS_COLOUR = QColor(235, 70, 55)


def lesion_thumbnail(path: str, size: int = THUMB_SIZE) -> np.ndarray:
    """The radiograph at ``path`` as an 8-bit thumbnail at most ``size`` px on its long side
    (runs on a worker thread)."""
    from lesion_studio.io.display import thumbnail_array
    from lesion_studio.io.reader import open_radiograph

    return thumbnail_array(open_radiograph(path), size)


def lesion_order(lesions: list[dict[str, Any]]) -> list[int]:
    """Indices of ``lesions``, misses first, each group by the detector's probability (highest
    first): the lesions it found but pointed away from are the ones to look at."""
    return sorted(range(len(lesions)), key=lambda i: (bool(lesions[i].get("hit")),
                                                       -float(lesions[i].get("probability") or 0.0)))


def lesion_caption(lesion: dict[str, Any]) -> str:
    return f"{'hit' if lesion.get('hit') else 'miss'} · p {float(lesion.get('probability') or 0):.2f}"


def lesion_tooltip(lesion: dict[str, Any], tolerance: float | None) -> str:
    d = lesion.get("distance_px")
    where = "inside the box" if d == 0 else f"{d:.0f} px from the nearest box" if d is not None else "no box"
    rule = f" (a hit within {tolerance:g} px)" if tolerance else ""
    return (f"{lesion.get('path')}\nDetector probability {float(lesion.get('probability') or 0):.3f}\n"
            f"The map's peak is {where}{rule}.")


def draw_overlay(gray: np.ndarray, lesion: dict[str, Any]) -> QPixmap:
    """The thumbnail with the lesion's boxes and the map's peak drawn on it (image pixels are
    scaled by the thumbnail's width over the radiograph's)."""
    pix = pixmap_from_gray(gray)
    width = float((lesion.get("size") or [gray.shape[1]])[0]) or float(gray.shape[1])
    scale = gray.shape[1] / width
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(BOX_COLOUR, 1.5))
    for x0, y0, x1, y1 in lesion.get("boxes") or []:
        painter.drawRect(QRectF(x0 * scale, y0 * scale, max(1.0, (x1 - x0) * scale), max(1.0, (y1 - y0) * scale)))
    px, py = (v * scale for v in lesion.get("peak") or (0.0, 0.0))
    painter.setPen(QPen(HIT_COLOUR if lesion.get("hit") else MISS_COLOUR, 2.0))
    arm = 6.0
    painter.drawLine(QPointF(px - arm, py), QPointF(px + arm, py))
    painter.drawLine(QPointF(px, py - arm), QPointF(px, py + arm))
    painter.end()
    return pix


class PointingView(QWidget):
    """The boxed test lesions of one results row, with where its map peaked. Double-click (or
    Enter on) a lesion: ``lesion_opened`` carries its entry, for the panel to open it."""

    lesion_opened = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("results_pointing")
        self.summary = QLabel("Choose a row with a pointing game (a detector tested on boxed lesions).")
        self.summary.setWordWrap(True)
        self.list = QListWidget()
        self.list.setObjectName("results_pointing_list")
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setUniformItemSizes(True)
        self.list.setWordWrap(True)
        self.list.itemActivated.connect(self._activated)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.list, 1)
        self._pool = TaskPool(threads=1, parent=self)
        self._pool.done.connect(self._thumbnail_ready)
        self._pool.failed.connect(self._thumbnail_failed)
        self._generation = 0
        self._lesions: list[dict[str, Any]] = []

    def show_row(self, label: str, pointing: dict[str, Any] | None) -> None:
        """Show the lesions of one row (``pointing`` from results.json; None: nothing to show)."""
        self._generation += 1
        self._pool.drop_queued()
        self.list.clear()
        lesions = list((pointing or {}).get("lesions") or [])
        self._lesions = lesions
        if not lesions:
            self.summary.setText(f"{label}: no pointing game stored for this row (an older run, no boxed test "
                                 "lesions, or a model without a map)." if label else
                                 "Choose a row with a pointing game (a detector tested on boxed lesions).")
            return
        tol = pointing.get("tolerance_px") if pointing else None
        hits = sum(bool(x.get("hit")) for x in lesions)
        chance = (pointing.get("chance") or {}).get("tolerance") if pointing else None
        near = pointing_rule(tol)
        self.summary.setText(f"{label}: the map peaks {near} the radiologist's box on {hits} of {len(lesions)} "
                             f"boxed test lesions" + (f" (chance {chance:.0%})" if chance is not None else "")
                             + ". Green box: the radiologist's; cross: the map's peak (red: a miss). Misses first; "
                             "double-click one to open it in the viewer.")
        for i in lesion_order(lesions):
            item = QListWidgetItem(lesion_caption(lesions[i]))
            item.setToolTip(lesion_tooltip(lesions[i], tol))
            item.setData(Qt.ItemDataRole.UserRole, i)
            item.setSizeHint(QSize(THUMB_SIZE + 12, THUMB_SIZE + 34))
            self.list.addItem(item)
            path = str(lesions[i].get("path") or "")
            self._pool.submit((self._generation, i), lambda p=path: lesion_thumbnail(p))

    def _activated(self, item: QListWidgetItem) -> None:
        index = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(index, int) and 0 <= index < len(self._lesions):
            self.lesion_opened.emit(dict(self._lesions[index]))

    def _item_for(self, index: int) -> QListWidgetItem | None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == index:
                return item
        return None

    def _thumbnail_ready(self, key: object, gray: object) -> None:
        generation, index = key  # type: ignore[misc]
        if generation != self._generation:
            return  # a row shown before: its thumbnails are stale
        item = self._item_for(index)
        if item is not None and isinstance(gray, np.ndarray):
            item.setIcon(QIcon(draw_overlay(gray, self._lesions[index])))

    def _thumbnail_failed(self, key: object, message: str) -> None:
        generation, index = key  # type: ignore[misc]
        if generation != self._generation:
            return
        log.info("pointing view: cannot show %s: %s", self._lesions[index].get("path"), message)
        item = self._item_for(index)
        if item is not None:
            item.setText(lesion_caption(self._lesions[index]) + " · file missing")

    def shutdown(self) -> None:
        """Stop decoding (the project closes): no worker outlives the window."""
        self._generation += 1
        self._pool.shutdown()

    def shown_count(self) -> int:
        """How many lesions have their thumbnail drawn (for tests and the status line)."""
        return sum(not self.list.item(r).icon().isNull() for r in range(self.list.count()))
