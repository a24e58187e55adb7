"""The gallery's list model and its painter: sample thumbnails sorted by score, with the threshold
drawn where scores drop to t or below (samples before the line would pass the paper's filter)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from lesion_studio.samples.thumbnails import THUMB
from lesion_studio.store.records import SyntheticSample

STATUS_COLOURS = {"accepted": QColor(70, 180, 90), "rejected": QColor(210, 70, 60), "candidate": QColor(110, 110, 120)}
#: The threshold line in the gallery, and the outline of a sample shown in the viewer.
MARKER_COLOUR = QColor(240, 190, 60)


def sort_by_score(samples: list[SyntheticSample]) -> list[SyntheticSample]:
    """Highest score first; unscored samples last, oldest first."""
    return sorted(samples, key=lambda s: (s.score is None, -(s.score or 0.0), s.id))


def map_note(sample: SyntheticSample) -> str:
    """Where the scoring classifier's map peaked, for the tooltip: a high score whose evidence is
    off the painted lesion is a score for something else in the image."""
    if sample.map_peak is None:
        return ""
    on, (x, y) = sample.map_on_lesion(), sample.map_peak
    return f"\nmap peak ({x:.0f}, {y:.0f}): {'on' if on else 'off'} the lesion"


class GalleryModel(QAbstractListModel):
    """Samples sorted by score, with one marker row (``None``) where scores drop to t or below."""

    SampleRole = Qt.ItemDataRole.UserRole + 1
    ThumbRole = Qt.ItemDataRole.UserRole + 2
    MarkerRole = Qt.ItemDataRole.UserRole + 3

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._samples: list[SyntheticSample] = []
        self._rows: list[SyntheticSample | None] = []
        self._thumbs: dict[int, QImage] = {}
        self.threshold = 0.5

    # -- content
    def set_samples(self, samples: list[SyntheticSample]) -> None:
        self.beginResetModel()
        self._samples = sort_by_score(samples)
        self._rows = self._layout()
        self.endResetModel()

    def set_threshold(self, t: float) -> None:
        self.threshold = float(t)
        self.beginResetModel()
        self._rows = self._layout()
        self.endResetModel()

    def _layout(self) -> list[SyntheticSample | None]:
        scored = [s for s in self._samples if s.score is not None]
        if not scored:
            return list(self._samples)
        above = sum(1 for s in scored if s.score > self.threshold)  # the paper's filter: score > t
        return [*self._samples[:above], None, *self._samples[above:]]

    def update_sample(self, sample: SyntheticSample) -> None:
        row = self.row_of(sample.id)
        if row is None:
            return
        self._rows[row] = sample
        self._samples = [sample if s.id == sample.id else s for s in self._samples]
        self.dataChanged.emit(self.index(row), self.index(row))

    def set_thumbnail(self, sample_id: int, image: QImage) -> None:
        self._thumbs[sample_id] = image
        row = self.row_of(sample_id)
        if row is not None:
            self.dataChanged.emit(self.index(row), self.index(row), [self.ThumbRole])

    def has_thumbnail(self, sample_id: int) -> bool:
        return sample_id in self._thumbs

    # -- queries
    def samples(self) -> list[SyntheticSample]:
        return [s for s in self._rows if s is not None]

    def sample_at(self, row: int) -> SyntheticSample | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, sample_id: int) -> int | None:
        return next((i for i, s in enumerate(self._rows) if s is not None and s.id == sample_id), None)

    def marker_row(self) -> int | None:
        return next((i for i, s in enumerate(self._rows) if s is None), None)

    def sample_after(self, row: int, delta: int) -> SyntheticSample | None:
        """The next sample ``delta`` rows on from ``row`` (±1), stepping over the threshold marker."""
        r = row + delta
        while 0 <= r < len(self._rows) and self._rows[r] is None:
            r += delta
        return self.sample_at(r)

    def summary(self) -> str:
        """How the shown samples were decided, and how many pass the threshold."""
        samples = self.samples()
        counts = {k: sum(1 for s in samples if s.status == k) for k in ("accepted", "rejected", "candidate")}
        scored = [s for s in samples if s.score is not None]
        above = sum(1 for s in scored if s.score > self.threshold)
        text = (f"{len(samples)} sample(s): {counts['accepted']} accepted, {counts['rejected']} rejected, "
                f"{counts['candidate']} undecided")
        if scored:
            text += f"; {above} of {len(scored)} scored above t = {self.threshold:.2f}"
        mapped = [s.map_on_lesion() for s in scored if s.map_peak is not None]
        if mapped:
            text += f"; the scoring map peaks on the lesion in {sum(mapped)} of {len(mapped)}"
        return text

    # -- Qt
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if self.sample_at(index.row()) is None:
            return Qt.ItemFlag.NoItemFlags  # the threshold marker: not selectable, skipped by the keys
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        sample = self.sample_at(index.row())
        if role == self.MarkerRole:
            return sample is None
        if sample is None:
            if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
                return f"t = {self.threshold:.2f}: samples before this line score above t"
            return None
        if role == self.SampleRole:
            return sample
        if role == self.ThumbRole:
            return self._thumbs.get(sample.id)
        if role == Qt.ItemDataRole.DisplayRole:
            score = "–" if sample.score is None else f"{sample.score:.3f}"
            return f"{score}  {sample.status}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"Sample {sample.id} (batch {sample.batch})\nscore {sample.score}{map_note(sample)}\n"
                    f"n = {sample.n:.2f}, seed {sample.seed}\nstatus {sample.status}")
        return None


class GalleryDelegate(QStyledItemDelegate):
    """Thumbnail, score, n and a status frame; the marker row is a vertical threshold line."""

    SAMPLE = QSize(THUMB + 12, THUMB + 34)
    MARKER = QSize(30, THUMB + 34)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        return self.MARKER if index.data(GalleryModel.MarkerRole) else self.SAMPLE

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(option.rect).adjusted(2, 2, -2, -2)
        if index.data(GalleryModel.MarkerRole):
            pen = QPen(MARKER_COLOUR, 3)
            painter.setPen(pen)
            x = r.center().x()
            painter.drawLine(int(x), int(r.top()), int(x), int(r.bottom()))
            painter.translate(x - 4, r.bottom() - 6)
            painter.rotate(-90)
            painter.drawText(0, 0, index.model().data(index, Qt.ItemDataRole.DisplayRole).split(":")[0])
            painter.restore()
            return
        sample: SyntheticSample = index.data(GalleryModel.SampleRole)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        colour = STATUS_COLOURS.get(sample.status, STATUS_COLOURS["candidate"])
        painter.fillRect(r, QColor(60, 90, 140) if selected else QColor(38, 38, 42))
        thumb_rect = QRectF(r.left() + 4, r.top() + 4, THUMB, THUMB)
        image = index.data(GalleryModel.ThumbRole)
        if image is not None:
            painter.setOpacity(0.45 if sample.status == "rejected" else 1.0)
            painter.drawImage(thumb_rect, image)
            painter.setOpacity(1.0)
        else:
            painter.fillRect(thumb_rect, QColor(25, 25, 28))
        painter.setPen(QPen(colour, 4 if sample.status != "candidate" else 1))
        painter.setBrush(QBrush())
        painter.drawRect(thumb_rect)
        painter.setPen(QColor(235, 235, 235))
        font = QFont(painter.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
        painter.setFont(font)
        score = "no score" if sample.score is None else f"{sample.score:.3f}"
        text_rect = QRectF(r.left() + 4, r.top() + THUMB + 6, THUMB, 22)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, score)
        painter.setPen(colour if sample.status != "candidate" else QColor(170, 170, 170))
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         f"n {sample.n:.1f} · {sample.status[0].upper()}")
        painter.restore()
