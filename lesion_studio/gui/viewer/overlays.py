"""Lesion boxes and normal patches drawn over the image.

Lesion boxes are solid orange; normal patches are dashed cyan, so the two can never be confused
even in a grey-scale print. Handles ignore the zoom (``ItemIgnoresTransformations``) and stay
7 screen pixels wide at any magnification.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem

from lesion_studio.gui.commands import LESION
from lesion_studio.store.records import Box

COLORS = {LESION: QColor("#ff9424"), "patch": QColor("#33d6ff")}
SELECTED = QColor("#ffe14d")
HANDLE = 7


def box_rect(box: Box) -> QRectF:
    return QRectF(box.x0, box.y0, box.width, box.height)


def region_pen(kind: str, selected: bool = False) -> QPen:
    pen = QPen(SELECTED if selected else COLORS[kind])
    pen.setCosmetic(True)
    pen.setWidthF(2.5 if selected else 1.8)
    if kind != LESION:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


class RegionItem(QGraphicsRectItem):
    """One lesion box or normal patch in image coordinates (the view box's coordinates)."""

    def __init__(self, kind: str, region_id: int, box: Box) -> None:
        super().__init__(box_rect(box))
        self.kind = kind
        self.region_id = region_id
        self.box = box
        self.selected = False
        fill = QColor(COLORS[kind])
        fill.setAlpha(28 if kind == LESION else 18)
        self.setBrush(QBrush(fill))
        self.setZValue(10 if kind == LESION else 9)
        self._handles: list[QGraphicsRectItem] = []
        for _ in range(4):
            h = QGraphicsRectItem(-HANDLE / 2, -HANDLE / 2, HANDLE, HANDLE, self)
            h.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
            h.setBrush(QBrush(SELECTED))
            h.setPen(QPen(Qt.PenStyle.NoPen))
            h.setVisible(False)
            self._handles.append(h)
        self.set_box(box)
        self.set_selected(False)

    @property
    def key(self) -> tuple[str, int]:
        return self.kind, self.region_id

    def set_box(self, box: Box) -> None:
        self.box = box
        self.setRect(box_rect(box))
        corners = ((box.x0, box.y0), (box.x1, box.y0), (box.x0, box.y1), (box.x1, box.y1))
        for handle, (x, y) in zip(self._handles, corners, strict=True):
            handle.setPos(x, y)

    def set_selected(self, selected: bool) -> None:
        self.selected = selected
        self.setPen(region_pen(self.kind, selected))
        for h in self._handles:
            h.setVisible(selected)


class RubberBand(QGraphicsRectItem):
    """The preview rectangle while drawing a new region."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        pen = region_pen(kind, False)
        pen.setStyle(Qt.PenStyle.DotLine)
        self.setPen(pen)
        self.setZValue(20)
        self.setVisible(False)
