"""Lesion boxes, normal patches and ruler lines drawn over the image.

Lesion boxes are solid orange; normal patches are dashed cyan, so the two can never be confused
even in a grey-scale print. Another reader's boxes are violet and dash-dotted, consensus boxes
green, so whose box is whose shows at a glance. A detector's box proposal is dashed magenta with its
score beside it: a proposal, never a label, until a reader accepts it. Handles ignore the zoom
(``ItemIgnoresTransformations``) and stay 7 screen pixels wide at any magnification; so do the
ruler's end ticks and its length label.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsRectItem,
    QGraphicsSimpleTextItem,
)

from lesion_studio.gui.commands import LESION
from lesion_studio.store.records import Box

COLORS = {LESION: QColor("#ff9424"), "patch": QColor("#33d6ff"), "proposal": QColor("#ff5ad2")}
READER_COLORS = {"other": QColor("#c58cff"), "consensus": QColor("#5ee07a")}
RULER = QColor("#f2f2f2")
SELECTED = QColor("#ffe14d")
HANDLE = 7


def box_rect(box: Box) -> QRectF:
    return QRectF(box.x0, box.y0, box.width, box.height)


def region_pen(kind: str, selected: bool = False, owner: str = "mine") -> QPen:
    pen = QPen(SELECTED if selected else READER_COLORS.get(owner, COLORS[kind]))
    pen.setCosmetic(True)
    pen.setWidthF(2.5 if selected else 1.8)
    if kind != LESION:
        pen.setStyle(Qt.PenStyle.DashLine)
    elif owner == "other":
        pen.setStyle(Qt.PenStyle.DashDotLine)
    return pen


class RegionItem(QGraphicsRectItem):
    """One lesion box or normal patch in image coordinates (the view box's coordinates).

    ``owner`` is "mine", "other" (another reader's) or "consensus"; ``editable`` says whether the
    tools may move it (another reader's boxes are read-only where the view shows that reader)."""

    def __init__(self, kind: str, region_id: int, box: Box, *, owner: str = "mine", editable: bool = True,
                 reader: str = "", lesion_type: str = "") -> None:
        super().__init__(box_rect(box))
        self.kind = kind
        self.region_id = region_id
        self.box = box
        self.selected = False
        self.owner, self.editable, self.reader, self.lesion_type = owner, editable, reader, lesion_type
        fill = QColor(READER_COLORS.get(owner, COLORS[kind]))
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
        self.setPen(region_pen(self.kind, selected, self.owner))
        for h in self._handles:
            h.setVisible(selected and self.editable)


class ProposalItem(RegionItem):
    """A detector's pending box proposal: dashed magenta, its score ("0.82") at its top-left
    corner at a fixed screen size. Dragging it edits it (and accepts it); Enter accepts, Del rejects."""

    def __init__(self, proposal_id: int, box: Box, score: float, model_name: str, *, editable: bool = True) -> None:
        self.score, self.model_name = float(score), model_name
        super().__init__("proposal", proposal_id, box, owner="proposal", editable=editable)
        self.setZValue(11)
        self.label = QGraphicsSimpleTextItem(f"{self.score:.2f}", self)
        self.label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.label.setBrush(QBrush(COLORS["proposal"]))
        self.label.setPos(box.x0, box.y0)
        self.setToolTip(f"Proposed by {model_name}, score {self.score:.2f}: Enter accepts, Del rejects, "
                        "dragging edits and accepts")

    def set_box(self, box: Box) -> None:
        super().set_box(box)
        if "label" in self.__dict__:
            self.label.setPos(box.x0, box.y0)


class RubberBand(QGraphicsRectItem):
    """The preview rectangle while drawing a new region."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        pen = region_pen(kind, False)
        pen.setStyle(Qt.PenStyle.DotLine)
        self.setPen(pen)
        self.setZValue(20)
        self.setVisible(False)


class MeasurementItem(QGraphicsLineItem):
    """A ruler line in image coordinates, with end ticks and its length ("12.3 mm", "12.3 mm*" at
    the detector, "45.0 px" without spacing) beside its end, at a fixed screen size."""

    def __init__(self, measurement_id: int, line: tuple[float, float, float, float], text: str,
                 *, editable: bool = True, reader: str = "") -> None:
        super().__init__(*line)
        self.measurement_id = measurement_id
        self.line_coords = line
        self.editable, self.reader = editable, reader
        self.selected = False
        self.setZValue(12)
        self._ticks = []
        for x, y in (line[:2], line[2:]):
            tick = QGraphicsEllipseItem(-3, -3, 6, 6, self)
            tick.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
            tick.setPos(x, y)
            tick.setPen(QPen(Qt.PenStyle.NoPen))
            self._ticks.append(tick)
        self.label = QGraphicsSimpleTextItem(text, self)
        self.label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.label.setPos(line[2], line[3])
        self.set_selected(False)

    @property
    def key(self) -> tuple[str, int]:
        return "measure", self.measurement_id

    def set_selected(self, selected: bool) -> None:
        self.selected = selected
        color = SELECTED if selected else RULER
        pen = QPen(color)
        pen.setCosmetic(True)
        pen.setWidthF(2.2 if selected else 1.5)
        self.setPen(pen)
        for tick in self._ticks:
            tick.setBrush(QBrush(color))
        self.label.setBrush(QBrush(color))

    def distance_to(self, x: float, y: float) -> float:
        """Distance (image px) from a point to the segment."""
        x0, y0, x1, y1 = self.line_coords
        dx, dy = x1 - x0, y1 - y0
        t = ((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy) if dx or dy else 0.0
        t = min(max(t, 0.0), 1.0)
        return ((x0 + t * dx - x) ** 2 + (y0 + t * dy - y) ** 2) ** 0.5
