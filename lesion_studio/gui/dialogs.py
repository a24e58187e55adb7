"""Small dialogs: exclusion reason, import, export (annotations, synthetic samples), keyboard shortcuts."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lesion_studio.gui.actions import MOUSE_HELP, shortcut_rows
from lesion_studio.store.records import EXCLUSION_REASONS


class ExclusionDialog(QDialog):
    """Why is this image excluded? Arrow keys pick the reason, Enter confirms."""

    def __init__(self, name: str, note: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Exclude image")
        self.reasons = QListWidget()
        self.reasons.addItems(list(EXCLUSION_REASONS))
        self.reasons.setCurrentRow(0)
        self.reasons.setMaximumHeight(110)
        self.note = QLineEdit(note, placeholderText="optional note")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.reasons.itemDoubleClicked.connect(lambda _i: self.accept())
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Exclude <b>{name}</b> from training and evaluation because:"))
        layout.addWidget(self.reasons)
        layout.addWidget(self.note)
        layout.addWidget(buttons)
        self.reasons.setFocus()

    def reason(self) -> str:
        item = self.reasons.currentItem()
        return item.text() if item is not None else EXCLUSION_REASONS[-1]


def _path_row(edit: QLineEdit, pick) -> QWidget:  # noqa: ANN001
    w = QWidget()
    row = QHBoxLayout(w)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(edit, 1)
    button = QPushButton("Browse…")
    button.clicked.connect(pick)
    row.addWidget(button)
    return w


class ImportDialog(QDialog):
    """Choose a folder of images and, optionally, the annotation files that go with it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import images")
        self.source = QLineEdit()
        self.labels = QLineEdit()
        self.boxes = QLineEdit()
        self.coco = QLineEdit()
        self.reader_labels = QLineEdit()
        self.measurements = QLineEdit()
        self.sr = QLineEdit()
        self.yolo = QLineEdit()
        self.yolo.setToolTip("A YOLO folder: classes.txt (or data.yaml) and labels/<image>.txt, as Export → yolo "
                             "writes it; its lesion-studio.json, when there, brings the readers and rulers too")
        form = QFormLayout()
        form.addRow("Images (folder)", _path_row(self.source, lambda: self._dir(self.source)))
        form.addRow("Labels CSV", _path_row(self.labels, lambda: self._file(self.labels, "CSV (*.csv)")))
        form.addRow("Boxes CSV", _path_row(self.boxes, lambda: self._file(self.boxes, "CSV (*.csv)")))
        form.addRow("COCO JSON", _path_row(self.coco, lambda: self._file(self.coco, "JSON (*.json)")))
        form.addRow("Reader labels CSV", _path_row(self.reader_labels,
                                                   lambda: self._file(self.reader_labels, "CSV (*.csv)")))
        form.addRow("Measurements CSV", _path_row(self.measurements,
                                                  lambda: self._file(self.measurements, "CSV (*.csv)")))
        form.addRow("DICOM SR (folder)", _path_row(self.sr, lambda: self._dir(self.sr, "DICOM SR folder")))
        form.addRow("YOLO labels (folder)", _path_row(self.yolo, lambda: self._dir(self.yolo, "YOLO folder")))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Files that cannot be read are skipped and listed afterwards."))
        layout.addWidget(buttons)
        self.resize(560, 0)

    def _dir(self, edit: QLineEdit, title: str = "Folder of images") -> None:
        folder = QFileDialog.getExistingDirectory(self, title, edit.text())
        if folder:
            edit.setText(folder)

    def _file(self, edit: QLineEdit, pattern: str) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Annotation file", edit.text(), pattern)
        if name:
            edit.setText(name)

    def values(self) -> dict[str, Path | None]:
        def opt(edit: QLineEdit) -> Path | None:
            return Path(edit.text().strip()) if edit.text().strip() else None

        sr = opt(self.sr)
        return {"source": opt(self.source), "labels_csv": opt(self.labels), "boxes_csv": opt(self.boxes),
                "coco_json": opt(self.coco), "reader_labels_csv": opt(self.reader_labels),
                "measurements_csv": opt(self.measurements), "sr": [sr] if sr else [], "yolo": opt(self.yolo)}


class ExportDialog(QDialog):
    def __init__(self, default_folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export annotations")
        self.fmt = QComboBox()
        self.fmt.addItems(["coco", "csv", "yolo", "sr"])
        self.fmt.setToolTip("sr: a DICOM Structured Report (TID 1500) per DICOM image and reader")
        self.out = QLineEdit(str(default_folder))
        form = QFormLayout()
        form.addRow("Format", self.fmt)
        form.addRow("Output folder", _path_row(self.out, self._pick))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.resize(520, 0)

    def _pick(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.out.text())
        if folder:
            self.out.setText(folder)


class ExportSamplesDialog(QDialog):
    """Folder, format and which samples: the choices of ``lesion-studio export-samples``."""

    def __init__(self, default_folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export kept synthetic samples")
        self.folder = QLineEdit(str(default_folder))
        self.fmt = QComboBox()
        self.fmt.addItem("PNG (lossless, native bit depth) + JSON sidecar", "png")
        self.fmt.addItem("DICOM (DERIVED, new UIDs, de-identified) + JSON sidecar", "dicom")
        self.status = QComboBox()
        self.status.addItem("Accepted (kept here or accepted in the gallery)", "accepted")
        self.status.addItem("All synthetic samples", "all")
        form = QFormLayout(self)
        form.addRow("Folder", _path_row(self.folder, self._browse))
        form.addRow("Format", self.fmt)
        form.addRow("Samples", self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Export synthetic samples to", self.folder.text())
        if chosen:
            self.folder.setText(chosen)

    def values(self) -> tuple[Path, str, str]:
        return Path(self.folder.text()), str(self.fmt.currentData()), str(self.status.currentData())


class ShortcutsDialog(QDialog):
    """Help → Keyboard shortcuts, generated from the action table."""

    def __init__(self, parent: QWidget | None = None, specs: list | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        if specs is None:  # the window's actions, its panels' included
            specs = getattr(parent, "action_specs", None)
        rows = shortcut_rows(specs) + [("Mouse", what, how) for how, what in MOUSE_HELP]
        table = QTableWidget(len(rows), 3)
        table.setHorizontalHeaderLabels(["Menu", "Action", "Keys"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                table.setItem(r, c, QTableWidgetItem(value))
        table.resizeColumnsToContents()
        self.table = table
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        # wide enough for every column (the list used to be cut off), as tall as the screen allows
        table.horizontalHeader().setStretchLastSection(True)
        width = sum(table.columnWidth(c) for c in range(3)) + table.verticalScrollBar().sizeHint().width() + 40
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        height = min(720, int(screen.height() * 0.85)) if screen is not None else 560
        self.resize(max(620, width), height)
