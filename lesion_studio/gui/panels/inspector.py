"""The inspector: the current image's label, body part, view, split, exclusion flags, notes,
each reader's label, its lesion boxes (type, reader, size in mm), normal patches and ruler lines,
the selected box's lesion type, and its key DICOM tags.

It edits nothing itself: every change is emitted as ``edit_requested(fields, text)`` and goes
through an undo command like any other edit. Refreshing from the store blocks the widgets'
signals, so showing an image never writes to it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lesion_studio.gui.columns import ReflowColumns
from lesion_studio.gui.commands import LESION, MEASURE, PATCH
from lesion_studio.gui.elided import ElidedComboBox
from lesion_studio.io.spacing import caveat, length_text, size_text
from lesion_studio.store.records import (
    EXCLUSION_REASONS,
    LABELS,
    SPLITS,
    ImageRecord,
    LesionBox,
    Measurement,
    NormalPatch,
    ReaderLabel,
)

KEY_ROLE = Qt.ItemDataRole.UserRole + 1
NO_TYPE = "(no type)"


def region_text(kind: str, region: LesionBox | NormalPatch, spacing: tuple[float, float] | None = None,
                source: str = "") -> str:
    """One line of the region list: what, id, type, reader, corners and size (mm or px)."""
    b = region.box
    size = size_text(b.width, b.height, spacing, source)
    if kind == LESION:
        typed = getattr(region, "lesion_type", "") or "no type"
        return f"Lesion box #{region.id} · {typed} · {region.author or '?'}   {size}   " \
               f"({b.x0:.0f},{b.y0:.0f} → {b.x1:.0f},{b.y1:.0f})"
    return f"Normal patch #{region.id}   {size}   ({b.x0:.0f},{b.y0:.0f} → {b.x1:.0f},{b.y1:.0f})"


def measurement_text(m: Measurement) -> str:
    return f"Ruler #{m.id} · {m.author or '?'}   {length_text(m.length_px, m.length_mm, m.spacing_source)}"


class InspectorPanel(QWidget):
    edit_requested = Signal(dict, str)
    region_selected = Signal(object)  # (kind, id) or None
    box_type_requested = Signal(int, str)  # box id, lesion type ("" for none)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.record: ImageRecord | None = None
        self._updating = False

        self.title = QLabel("No image")
        self.title.setObjectName("title")
        self.title.setWordWrap(True)
        self.subtitle = QLabel("")
        self.subtitle.setObjectName("muted")
        self.subtitle.setWordWrap(True)  # the reading layout's inspector is 180 px: wrap, never cut

        self.label = QComboBox()
        self.label.addItems(list(LABELS))
        self.label.currentTextChanged.connect(lambda v: self._emit({"label": v}, f"Label {v}"))
        self.body_part = QComboBox()
        self.body_part.setEditable(True)
        self.body_part.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.body_part.lineEdit().editingFinished.connect(
            lambda: self._emit({"body_part": self.body_part.currentText().strip().lower()}, "Set body part"))
        self.body_part.activated.connect(
            lambda _i: self._emit({"body_part": self.body_part.currentText().strip().lower()}, "Set body part"))
        self.view = QLineEdit()
        self.view.editingFinished.connect(lambda: self._emit({"view": self.view.text().strip()}, "Set view"))
        self.split = QComboBox()
        self.split.addItems(list(SPLITS))
        self.split.currentTextChanged.connect(lambda v: self._emit({"split": v}, f"Split {v}"))

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # a field under its label when narrow
        form.addRow("Label", self.label)
        form.addRow("Body part", self.body_part)
        form.addRow("View", self.view)
        form.addRow("Split", self.split)
        self._build_layout(form, self._build_flags())
        self.setEnabled(False)

    def _build_flags(self) -> QGroupBox:
        """The exclusion reasons and their note."""
        self.flags: dict[str, QCheckBox] = {}
        flags_box = QGroupBox("Excluded because")
        flags_layout = QVBoxLayout(flags_box)
        for reason in EXCLUSION_REASONS:
            cb = QCheckBox(reason)
            cb.toggled.connect(self._flags_changed)
            self.flags[reason] = cb
        flags_layout.addWidget(ReflowColumns(list(self.flags.values()), 2))  # one column in Read's thin inspector
        self.exclusion_note = QLineEdit(placeholderText="reason / note")
        self.exclusion_note.editingFinished.connect(
            lambda: self._emit({"exclusion_note": self.exclusion_note.text()}, "Exclusion note"))
        flags_layout.addWidget(self.exclusion_note)
        return flags_box

    def _build_layout(self, form: QFormLayout, flags_box: QGroupBox) -> None:
        """Notes, the image's regions and DICOM tags under the form, all in a scroll area."""
        self.notes = QPlainTextEdit(placeholderText="Notes (saved as you type)")
        self.notes.setMaximumHeight(70)
        self._notes_timer = QTimer(self, singleShot=True, interval=700)
        self._notes_timer.timeout.connect(self.flush_notes)
        self.notes.textChanged.connect(lambda: None if self._updating else self._notes_timer.start())

        self.readers = QLabel("")
        self.readers.setObjectName("muted")
        self.readers.setWordWrap(True)
        self.regions = QListWidget()
        self.regions.setMaximumHeight(140)
        self.regions.currentItemChanged.connect(self._region_clicked)
        self.box_type = ElidedComboBox(min_chars=6)  # a project's own type names may be long
        self.box_type.setToolTip("The selected lesion box's type (T cycles it)")
        self.box_type.setEnabled(False)
        self.box_type.activated.connect(self._type_chosen)
        self.spacing_note = QLabel("")
        self.spacing_note.setObjectName("muted")
        self.spacing_note.setWordWrap(True)
        self._spacing: tuple[float, float] | None = None
        self._spacing_source = ""
        self._shown: tuple[list, list, list] = ([], [], [])

        self.tags = QTableWidget(0, 2)
        self.tags.horizontalHeader().setVisible(False)
        self.tags.verticalHeader().setVisible(False)
        self.tags.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tags.horizontalHeader().setStretchLastSection(True)
        self.tags.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.tags.setShowGrid(False)

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addLayout(form)
        layout.addWidget(flags_box)
        layout.addWidget(QLabel("Notes"))
        layout.addWidget(self.notes)
        layout.addWidget(self.readers)
        regions_title = QLabel("Lesion boxes, normal patches and rulers")
        regions_title.setWordWrap(True)
        layout.addWidget(regions_title)
        layout.addWidget(self.regions)
        type_row = QFormLayout()
        type_row.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        type_row.addRow("Lesion type", self.box_type)
        layout.addLayout(type_row)
        layout.addWidget(self.spacing_note)
        layout.addWidget(QLabel("DICOM tags"))
        layout.addWidget(self.tags, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    # ------------------------------------------------------------------ showing
    def show_image(self, rec: ImageRecord | None, body_parts: list[str] | None = None) -> None:
        if self.record is not None and rec is not None and rec.id != self.record.id:
            self.flush_notes()
        self.record = rec
        self._updating = True
        try:
            self.setEnabled(rec is not None)
            if rec is None:
                self.title.setText("No image")
                self.subtitle.setText("")
                return
            self.title.setText(rec.name)
            self.subtitle.setText(f"{rec.width} × {rec.height} px · {rec.modality or 'image'} · "
                                  f"{rec.bits_stored}-bit · {rec.status}")
            self.label.setCurrentText(rec.label)
            if body_parts is not None:
                self.body_part.clear()
                self.body_part.addItems(body_parts)
            self.body_part.setEditText(rec.body_part)
            self.view.setText(rec.view)
            self.split.setCurrentText(rec.split)
            for reason, cb in self.flags.items():
                cb.setChecked(reason in rec.exclusions)
            self.exclusion_note.setText(rec.exclusion_note)
            if self.notes.toPlainText() != rec.notes and not self._notes_timer.isActive():
                self.notes.setPlainText(rec.notes)
        finally:
            self._updating = False

    def show_regions(self, boxes: list[LesionBox], patches: list[NormalPatch],
                     selected: tuple[str, int] | None, measurements: list[Measurement] | None = None,
                     types: list[str] | None = None) -> None:
        self._shown = (list(boxes), list(patches), list(measurements or []))
        self._updating = True
        try:
            if types is not None:
                self.box_type.clear()
                self.box_type.addItems([*types, NO_TYPE])
            self.regions.clear()
            for kind, items in ((LESION, boxes), (PATCH, patches)):
                for region in items:
                    item = QListWidgetItem(region_text(kind, region, self._spacing, self._spacing_source))
                    item.setData(KEY_ROLE, (kind, region.id))
                    self.regions.addItem(item)
                    if selected == (kind, region.id):
                        self.regions.setCurrentItem(item)
            for m in measurements or []:
                item = QListWidgetItem(measurement_text(m))
                item.setData(KEY_ROLE, (MEASURE, m.id))
                self.regions.addItem(item)
                if selected == (MEASURE, m.id):
                    self.regions.setCurrentItem(item)
        finally:
            self._updating = False
        self._show_type(selected)

    def set_spacing(self, spacing: tuple[float, float] | None, source: str) -> None:
        """The shown image's pixel spacing: sizes in mm, or in pixels with a note when unknown."""
        self._spacing, self._spacing_source = spacing, source if spacing else ""
        note = caveat(self._spacing_source)
        if self._spacing_source:
            note = "* " + note
        self.spacing_note.setText(note)
        boxes, patches, rulers = self._shown
        current = self.regions.currentItem()
        self.show_regions(boxes, patches, current.data(KEY_ROLE) if current is not None else None, rulers)

    def show_reader_labels(self, labels: list[ReaderLabel], me: str) -> None:
        """Each reader's own label of this image ("you" marks this user's)."""
        if not labels:
            self.readers.setText("Readers: none has labelled this image yet")
            return
        parts = [f"{'you' if r.reader == me else r.reader}: {r.label}" for r in labels]
        self.readers.setText("Readers: " + " · ".join(parts))

    def _show_type(self, key: tuple[str, int] | None) -> None:
        box = next((b for b in self._shown[0] if key == (LESION, b.id)), None)
        self._updating = True
        try:
            self.box_type.setEnabled(box is not None)
            if box is not None:
                self.box_type.setCurrentText(box.lesion_type or NO_TYPE)
        finally:
            self._updating = False

    def _type_chosen(self, _index: int) -> None:
        current = self.regions.currentItem()
        key = current.data(KEY_ROLE) if current is not None else None
        if self._updating or key is None or key[0] != LESION:
            return
        text = self.box_type.currentText()
        self.box_type_requested.emit(key[1], "" if text == NO_TYPE else text)

    def select_region(self, key: tuple[str, int] | None) -> None:
        self._updating = True
        try:
            for i in range(self.regions.count()):
                item = self.regions.item(i)
                if item.data(KEY_ROLE) == key:
                    self.regions.setCurrentItem(item)
                    return
            self.regions.setCurrentItem(None)
        finally:
            self._updating = False
            self._show_type(key)

    def show_tags(self, tags: dict[str, str]) -> None:
        self.tags.setRowCount(len(tags))
        for row, (key, value) in enumerate(tags.items()):
            self.tags.setItem(row, 0, QTableWidgetItem(key))
            self.tags.setItem(row, 1, QTableWidgetItem(str(value)))

    # ------------------------------------------------------------------ editing
    def _emit(self, fields: dict[str, Any], text: str) -> None:
        if self._updating or self.record is None:
            return
        if all(getattr(self.record, k) == v for k, v in fields.items()):
            return
        self.edit_requested.emit(fields, text)

    def _flags_changed(self) -> None:
        flags = [r for r, cb in self.flags.items() if cb.isChecked()]
        self._emit({"exclusions": tuple(flags)}, "Exclusion flags")

    def flush_notes(self) -> None:
        """Write pending notes now (before switching image or closing)."""
        self._notes_timer.stop()
        if self.record is not None and self.notes.toPlainText() != self.record.notes:
            self.edit_requested.emit({"notes": self.notes.toPlainText()}, "Edit notes")

    def _region_clicked(self, current: QListWidgetItem | None, _prev: QListWidgetItem | None) -> None:
        if not self._updating:
            key = current.data(KEY_ROLE) if current is not None else None
            self._show_type(key)
            self.region_selected.emit(key)
