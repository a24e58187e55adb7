"""The dataset browser: a model/view table of the project's images with filters and search.

Besides label, body part, split and status, it filters by lesion type (images with a box of that
type) and chooses whose boxes the app shows: every reader's, this user's ("mine") or one other
reader's (read-only). The box counts follow that choice.

The model holds plain records (one query for the images, one for the box counts), so sorting and
filtering 2,000 rows is a few milliseconds of Python and scrolling never touches the disk:
thumbnails come from :class:`ThumbnailCache`, rendered off the GUI thread.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from lesion_studio.gui.panels.thumbnails import THUMB_SIZE, ThumbnailCache
from lesion_studio.store.project import Project
from lesion_studio.store.records import LABELS, SPLITS, ImageRecord

COLUMNS = ("", "Name", "Label", "Body part", "Split", "Boxes", "Status", "Score")
COL_THUMB, COL_NAME, COL_LABEL, COL_BODY, COL_SPLIT, COL_BOXES, COL_STATUS, COL_SCORE = range(len(COLUMNS))
UNSCORED = -1.0  # sorts below every score
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole + 2
MISSING = "missing"  # the status of an image whose file is not where the project says
STATUSES = ("unreviewed", "annotated", "excluded", MISSING)
STATUS_COLORS = {"unreviewed": QColor("#9aa4b1"), "annotated": QColor("#6fd08c"), "excluded": QColor("#e0786f"),
                 MISSING: QColor("#ff5c5c")}
LABEL_COLORS = {"lesion": QColor("#ffaa55"), "normal": QColor("#7cc7ff"), "unreviewed": QColor("#9aa4b1")}
ANY = "(any)"


def filter_items(what: str, values: Iterable[str]) -> list[tuple[str, str | None]]:
    """A filter menu's items, each saying what it filters, chosen or not ("Label: lesion")."""
    prefix = what.capitalize()
    return [(f"{prefix}: any", None)] + [(f"{prefix}: {v}", v) for v in values]


class ImageTableModel(QAbstractTableModel):
    """One row per image: thumbnail, name, label, body part, split, box count, status, detector score."""

    def __init__(self, project: Project, thumbnails: ThumbnailCache | None = None) -> None:
        super().__init__()
        self.project = project
        self.thumbnails = thumbnails
        self.records: list[ImageRecord] = []
        self.box_counts: Counter[int] = Counter()
        self.missing: set[int] = set()  # images whose file is not there (one stat each, at reload)
        self.box_types: dict[int, set[str]] = {}
        #: Whose boxes count (None: every reader's).
        self.reader: str | None = None
        #: The chosen detector's lesion score per image (the Score column; the review queue's order).
        self.scores: dict[int, float] = {}
        self._row_of: dict[int, int] = {}
        if thumbnails is not None:
            thumbnails.ready.connect(self._thumbnail_ready)
        self.reload()

    def reload(self) -> None:
        self.beginResetModel()
        self.records = self.project.images()
        boxes = self.project.boxes(reader=self.reader)
        self.box_counts = Counter(b.image_id for b in boxes)
        self.box_types = {}
        for b in boxes:
            self.box_types.setdefault(b.image_id, set()).add(b.lesion_type)
        self.missing = {r.id for r in self.records if not r.abs_path.exists()}
        self._row_of = {r.id: i for i, r in enumerate(self.records)}
        self.scores = self._detector_scores()
        self.endResetModel()

    def _detector_scores(self) -> dict[int, float]:
        from lesion_studio.assist.queue import chosen_detector
        from lesion_studio.store.proposals import image_scores

        model = chosen_detector(self.project)
        return {} if model is None else {i: s.score for i, s in image_scores(self.project, model).items()}

    def refresh_scores(self) -> None:
        """The detector's scores changed (proposing, retraining): re-read them, repaint the column."""
        self.scores = self._detector_scores()
        if self.records:
            self.dataChanged.emit(self.index(0, COL_SCORE), self.index(len(self.records) - 1, COL_SCORE))

    def refresh_image(self, image_id: int) -> None:
        """Re-read one image after an edit (label, flags, boxes) and repaint its row."""
        row = self._row_of.get(image_id)
        if row is None:
            return
        self.records[row] = self.project.image(image_id)
        boxes = self.project.boxes(image_id, reader=self.reader)
        self.box_counts[image_id] = len(boxes)
        self.box_types[image_id] = {b.lesion_type for b in boxes}
        if self.records[row].abs_path.exists():
            self.missing.discard(image_id)
        else:
            self.missing.add(image_id)
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def row_of(self, image_id: int) -> int | None:
        return self._row_of.get(image_id)

    def body_parts(self) -> list[str]:
        return sorted({r.body_part for r in self.records if r.body_part})

    # ------------------------------------------------------------------ Qt model
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.records)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def value(self, rec: ImageRecord, column: int) -> Any:
        if column == COL_NAME:
            return rec.name
        if column == COL_LABEL:
            return rec.label
        if column == COL_BODY:
            return rec.body_part
        if column == COL_SPLIT:
            return rec.split
        if column == COL_BOXES:
            return self.box_counts.get(rec.id, 0)
        if column == COL_STATUS:
            return MISSING if rec.id in self.missing else rec.status
        if column == COL_SCORE:
            return self.scores.get(rec.id, UNSCORED)
        return rec.id

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        rec = self.records[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole and col == COL_SCORE:
            return f"{self.scores[rec.id]:.2f}" if rec.id in self.scores else ""
        if role == Qt.ItemDataRole.DisplayRole and col != COL_THUMB:
            return str(self.value(rec, col))
        if role == SORT_ROLE:
            return self.value(rec, col)
        if role == ID_ROLE:
            return rec.id
        if role == Qt.ItemDataRole.DecorationRole and col == COL_THUMB and self.thumbnails is not None:
            return self.thumbnails.get(rec.id, rec.abs_path, rec.sha256)
        if role == Qt.ItemDataRole.ForegroundRole:
            if col in (COL_STATUS, COL_NAME) and rec.id in self.missing:
                return STATUS_COLORS[MISSING]
            if col == COL_STATUS:
                return STATUS_COLORS.get(rec.status)
            if col == COL_LABEL:
                return LABEL_COLORS.get(rec.label)
        if role == Qt.ItemDataRole.ToolTipRole:
            where = f"File missing: {rec.abs_path} (File → Re-link moved images…)" if rec.id in self.missing \
                else str(rec.abs_path)
            return f"{rec.name}\n{where}\n{rec.width}×{rec.height}, {rec.modality or 'image'}"
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (COL_BOXES, COL_SCORE):
            return int(Qt.AlignmentFlag.AlignCenter)
        return None

    def _thumbnail_ready(self, image_id: int) -> None:
        row = self._row_of.get(image_id)
        if row is not None:
            idx = self.index(row, COL_THUMB)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


class ImageFilterProxy(QSortFilterProxyModel):
    """Filters by label, body part, split and status (exact) and by a name substring."""

    def __init__(self) -> None:
        super().__init__()
        self.filters: dict[int, str] = {}
        self.search = ""
        self.lesion_type: str | None = None  # only images with a box of this type
        self.setSortRole(SORT_ROLE)

    def set_filter(self, column: int, value: str | None) -> None:
        if value in (None, "", ANY):
            self.filters.pop(column, None)
        else:
            self.filters[column] = value
        self._refilter()

    def set_search(self, text: str) -> None:
        self.search = text.strip().lower()
        self._refilter()

    def set_lesion_type(self, lesion_type: str | None) -> None:
        self.lesion_type = lesion_type or None
        self._refilter()

    def _refilter(self) -> None:
        # Qt 6.10 replaced invalidateFilter() with begin/endFilterChange(); support both.
        if hasattr(self, "beginFilterChange"):
            self.beginFilterChange()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        model: ImageTableModel = self.sourceModel()  # type: ignore[assignment]
        rec = model.records[source_row]
        if self.search and self.search not in rec.name.lower():
            return False
        if self.lesion_type is not None and self.lesion_type not in model.box_types.get(rec.id, ()):
            return False
        return all(str(model.value(rec, col)) == want for col, want in self.filters.items())


class BrowserPanel(QWidget):
    """Search box, four filter menus and the image table. Emits ``image_selected(id)``.

    The table takes extended selections (Ctrl+click, Shift+click) for actions on several images
    (Tools → Propose boxes); the *current* row alone is the image the viewer shows."""

    image_selected = Signal(int)
    selection_changed = Signal(int)  # how many images are selected
    reader_view_chosen = Signal(object)  # None (every reader) or a reader's name

    def __init__(self, project: Project, thumbnails: ThumbnailCache | None = None,
                 parent: QWidget | None = None, me: str = "") -> None:
        super().__init__(parent)
        self.me = me
        self.model = ImageTableModel(project, thumbnails)
        self.proxy = ImageFilterProxy()
        self.proxy.setSourceModel(self.model)

        self.search = QLineEdit(placeholderText="Search by name…  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.proxy.set_search)
        self.search.textChanged.connect(lambda _t: self._keep_current_in_view())
        self.combos: dict[int, QComboBox] = {}
        # Two menus a row: four in one row cut their own text ("Body part: an") in a dock of the
        # default width, and the prefix is what says what a menu filters.
        filters = QGridLayout()
        filters.setSpacing(4)
        for k, (col, values, tip) in enumerate(((COL_LABEL, LABELS, "label"), (COL_BODY, (), "body part"),
                                 (COL_SPLIT, SPLITS, "split"), (COL_STATUS, STATUSES, "status"))):
            combo = QComboBox()
            combo.setToolTip(f"Show only images with this {tip}")
            combo.setProperty("what", tip)
            for text, value in filter_items(tip, values):
                combo.addItem(text, value)
            combo.currentIndexChanged.connect(lambda _i, c=col, box=combo: self._filter_chosen(c, box))
            combo.setMinimumContentsLength(6)
            self.combos[col] = combo
            filters.addWidget(combo, k // 2, k % 2)
        self._fill_body_parts()
        reads = QHBoxLayout()
        reads.setSpacing(4)
        self.reader_combo = QComboBox()
        self.reader_combo.setToolTip("Whose boxes and rulers to show: every reader's, yours, or another reader's "
                                     "(read-only)")
        self.reader_combo.currentIndexChanged.connect(lambda _i: self._reader_chosen())
        self.type_combo = QComboBox()
        self.type_combo.setToolTip("Show only images with a box of this lesion type")
        self.type_combo.currentIndexChanged.connect(
            lambda _i: (self.proxy.set_lesion_type(self.type_combo.currentData()), self._keep_current_in_view()))
        reads.addWidget(self.reader_combo, 1)
        reads.addWidget(self.type_combo, 1)
        self.fill_readers()

        self.table = self._build_table()
        self.count_label = QLabel()
        self.count_label.setObjectName("muted")
        self.proxy.rowsInserted.connect(self._update_count)
        self.proxy.rowsRemoved.connect(self._update_count)
        self.proxy.modelReset.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.search)
        layout.addLayout(filters)
        layout.addLayout(reads)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.count_label)
        self._update_count()

    def _build_table(self) -> QTableView:
        """The image table: sortable, rows selected whole (several with Ctrl/Shift), thumbnails."""
        table = QTableView()
        table.setModel(self.proxy)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        table.setSortingEnabled(True)
        table.sortByColumn(COL_NAME, Qt.SortOrder.AscendingOrder)
        table.setWordWrap(False)
        table.setShowGrid(False)
        table.setAlternatingRowColors(True)
        table.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        vh = table.verticalHeader()
        vh.setVisible(False)
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(THUMB_SIZE + 6)
        hh = table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(True)
        for col, width in ((COL_THUMB, THUMB_SIZE + 8), (COL_NAME, 128), (COL_LABEL, 66), (COL_BODY, 70),
                           (COL_SPLIT, 58), (COL_BOXES, 46), (COL_STATUS, 76)):
            table.setColumnWidth(col, width)
        table.selectionModel().currentRowChanged.connect(self._current_changed)
        table.selectionModel().selectionChanged.connect(
            lambda *_: self.selection_changed.emit(len(self.selected_image_ids())))
        return table

    def _fill_body_parts(self) -> None:
        combo = self.combos[COL_BODY]
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        for text, value in filter_items("body part", self.model.body_parts()):
            combo.addItem(text, value)
        index = combo.findData(current) if current is not None else 0
        combo.setCurrentIndex(max(index, 0))
        combo.blockSignals(False)

    def fill_readers(self) -> None:
        """The reader and type menus, from the project's readers and lesion types (kept selection)."""
        from lesion_studio.store.lesion_types import lesion_types
        from lesion_studio.store.readers import readers

        project = self.model.project
        current = self.reader_combo.currentData() if self.reader_combo.count() else None
        self.reader_combo.blockSignals(True)
        self.reader_combo.clear()
        self.reader_combo.addItem("Boxes: all readers", None)
        if self.me:
            self.reader_combo.addItem(f"Boxes: mine ({self.me})", self.me)
        for name in readers(project):
            if name != self.me:
                self.reader_combo.addItem(f"Boxes: {name}", name)
        self.reader_combo.setCurrentIndex(max(self.reader_combo.findData(current), 0) if current else 0)
        self.reader_combo.blockSignals(False)
        chosen_type = self.type_combo.currentData() if self.type_combo.count() else None
        self.type_combo.blockSignals(True)
        self.type_combo.clear()
        for text, value in filter_items("type", lesion_types(project)):
            self.type_combo.addItem(text, value)
        self.type_combo.setCurrentIndex(max(self.type_combo.findData(chosen_type), 0) if chosen_type else 0)
        self.type_combo.blockSignals(False)

    def set_reader_view(self, reader: str | None) -> None:
        """Choose whose boxes show (as the user would with the menu); None for every reader."""
        index = self.reader_combo.findData(reader) if reader is not None else 0
        if index < 0:
            self.reader_combo.addItem(f"Boxes: {reader}", reader)
            index = self.reader_combo.count() - 1
        self.reader_combo.setCurrentIndex(index)

    def set_lesion_type_filter(self, lesion_type: str | None) -> None:
        self.type_combo.setCurrentIndex(max(self.type_combo.findData(lesion_type), 0) if lesion_type else 0)
        self._update_count()

    def _reader_chosen(self) -> None:
        reader = self.reader_combo.currentData()
        self.model.reader = reader
        self.reload()
        self.reader_view_chosen.emit(reader)

    def _filter_chosen(self, column: int, combo: QComboBox) -> None:
        self.proxy.set_filter(column, combo.currentData())
        self._keep_current_in_view()

    def _keep_current_in_view(self) -> None:
        """After filtering, the selected image stays in sight (it sat out of view before)."""
        idx = self.table.currentIndex()
        if idx.isValid():
            self.table.scrollTo(idx, QAbstractItemView.ScrollHint.PositionAtCenter)

    def _update_count(self, *args: object) -> None:
        self.count_label.setText(f"{self.proxy.rowCount()} of {self.model.rowCount()} images")

    def set_filter(self, column: int, value: str | None) -> None:
        """Set a filter menu (as the user would); ``(any)`` or None clears it."""
        combo = self.combos[column]
        index = 0 if value in (None, "", ANY) else combo.findData(value)
        combo.setCurrentIndex(max(index, 0))
        self._update_count()

    def reload(self) -> None:
        current = self.current_image_id()
        self.model.reload()
        self._fill_body_parts()
        self.fill_readers()
        if current is not None:
            self.select_image(current, emit=False)
        self._update_count()

    def visible_image_ids(self) -> list[int]:
        return [self.proxy.index(r, 0).data(ID_ROLE) for r in range(self.proxy.rowCount())]

    def current_image_id(self) -> int | None:
        idx = self.table.currentIndex()
        return idx.data(ID_ROLE) if idx.isValid() else None

    def selected_image_ids(self) -> list[int]:
        """The selected images, in the table's order (the current one among them unless a
        Ctrl+click just deselected it)."""
        rows = sorted(i.row() for i in self.table.selectionModel().selectedRows(COL_NAME))
        return [self.proxy.index(r, COL_NAME).data(ID_ROLE) for r in rows]

    def select_image(self, image_id: int, emit: bool = True) -> bool:
        row = self.model.row_of(image_id)
        if row is None:
            return False
        idx = self.proxy.mapFromSource(self.model.index(row, COL_NAME))
        if not idx.isValid():  # filtered out: show it anyway by clearing the filters
            self.search.clear()
            for combo in self.combos.values():
                combo.setCurrentIndex(0)
            self.type_combo.setCurrentIndex(0)
            idx = self.proxy.mapFromSource(self.model.index(row, COL_NAME))
        self.table.blockSignals(not emit)
        sm = self.table.selectionModel()
        sm.blockSignals(not emit)
        sm.setCurrentIndex(idx, QItemSelectionModel.SelectionFlag.ClearAndSelect
                           | QItemSelectionModel.SelectionFlag.Rows)
        sm.blockSignals(False)
        self.table.blockSignals(False)
        self.selection_changed.emit(len(self.selected_image_ids()))  # one image now, even unannounced
        self.table.scrollTo(idx)
        return True

    def step(self, delta: int) -> int | None:
        """Move the selection ``delta`` rows in the current sort and filter; returns the new id."""
        rows = self.proxy.rowCount()
        if rows == 0:
            return None
        current = self.table.currentIndex()
        row = current.row() + delta if current.isValid() else (0 if delta >= 0 else rows - 1)
        row = min(max(row, 0), rows - 1)
        idx = self.proxy.index(row, COL_NAME)
        self.table.selectionModel().setCurrentIndex(
            idx, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(idx)
        return idx.data(ID_ROLE)

    def neighbour_id(self, delta: int) -> int | None:
        """The image ``delta`` rows away from the current one (for prefetching), or None."""
        current = self.table.currentIndex()
        if not current.isValid():
            return None
        row = current.row() + delta
        if 0 <= row < self.proxy.rowCount():
            return self.proxy.index(row, COL_NAME).data(ID_ROLE)
        return None

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.image_selected.emit(current.data(ID_ROLE))
