"""Reader agreement (Tools → Reader agreement…) and adjudication (Image → Adjudicate boxes…).

Both are thin views over :mod:`lesion_studio.dataset.agreement`: the report's table is the one
the CLI prints, and an adjudication choice is an ordinary undo command that adds a box by the
``consensus`` reader (Ctrl+Z takes it back).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lesion_studio.dataset.agreement import AgreementReport, Disagreement, consensus_box, disagreements
from lesion_studio.gui.commands import LESION, AddRegionCommand
from lesion_studio.gui.session import ProjectSession
from lesion_studio.store.readers import CONSENSUS, readers


def _table(rows: list[list[str]]) -> QTableWidget:
    table = QTableWidget(len(rows) - 1, len(rows[0]))
    table.setHorizontalHeaderLabels(rows[0])
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for r, row in enumerate(rows[1:]):
        for c, value in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(value))
    table.resizeColumnsToContents()
    table.horizontalHeader().setStretchLastSection(True)
    return table


class AgreementDialog(QDialog):
    """The agreement report: one row per reader pair."""

    def __init__(self, report: AgreementReport, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("agreement_dialog")
        self.setWindowTitle("Reader agreement")
        self.report = report
        self.table = _table(report.rows())
        note = QLabel(
            f"κ: Cohen's kappa on the image labels both readers gave (lesion/normal). Box F1: boxes matched "
            f"one-to-one at IoU ≥ {report.iou_threshold:g}; mean IoU over the matched boxes. "
            f"[{report.confidence:.0%} percentile bootstrap interval over images, {report.resamples} resamples, "
            f"seed {report.seed}]")
        note.setWordWrap(True)
        note.setObjectName("muted")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(820, 320)


class AdjudicationDialog(QDialog):
    """Two readers' disagreeing boxes on one image; each row can be taken as A's, B's or merged
    into a consensus box (one undo step each)."""

    def __init__(self, session: ProjectSession, image_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("adjudication_dialog")
        self.setWindowTitle("Adjudicate boxes")
        self.session, self.image_id = session, image_id
        on_image = sorted({b.reader for b in session.project.boxes(image_id)} - {CONSENSUS})
        others = [r for r in readers(session.project) if r not in on_image and r != CONSENSUS]
        names = on_image + others
        self.reader_a, self.reader_b = QComboBox(), QComboBox()
        for combo, index in ((self.reader_a, 0), (self.reader_b, 1)):
            combo.addItems(names)
            combo.setCurrentIndex(min(index, len(names) - 1))
            combo.currentIndexChanged.connect(lambda _i: self.refresh())
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["", "reader A", "reader B", "IoU"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._enable)
        self.buttons = {}
        row = QHBoxLayout()
        for choice, text in (("a", "Take A's"), ("b", "Take B's"), ("merge", "Merge (mean box)")):
            button = QPushButton(text)
            button.clicked.connect(lambda _c=False, ch=choice: self.take(ch))
            self.buttons[choice] = button
            row.addWidget(button)
        self.status = QLabel("")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        pick = QHBoxLayout()
        pick.addWidget(QLabel("A"))
        pick.addWidget(self.reader_a, 1)
        pick.addWidget(QLabel("B"))
        pick.addWidget(self.reader_b, 1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(pick)
        layout.addWidget(self.table)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(close)
        self.items: list[Disagreement] = []
        session.regions_changed.connect(self._regions_changed)
        self.refresh()
        self.resize(620, 360)

    def has_readers(self) -> bool:
        return self.reader_a.count() >= 2

    def _regions_changed(self, image_id: int) -> None:
        if image_id == self.image_id:
            self.refresh()

    def refresh(self) -> None:
        a, b = self.reader_a.currentText(), self.reader_b.currentText()
        self.items = disagreements(self.session.project, self.image_id, a, b) if a and b and a != b else []
        consensus = [c.box for c in self.session.project.boxes(self.image_id, reader=CONSENSUS)]
        self.table.setRowCount(len(self.items))
        for r, d in enumerate(self.items):
            taken = any(box in consensus for box in (getattr(d.box_a, "box", None), getattr(d.box_b, "box", None)))
            values = [d.kind + (" ✓" if taken else ""), self._describe(d.box_a), self._describe(d.box_b),
                      f"{d.iou:.2f}" if d.kind == "matched" else ""]
            for c, value in enumerate(values):
                self.table.setItem(r, c, QTableWidgetItem(value))
        self.status.setText("" if self.items else ("Choose two different readers." if a == b else
                                                  "These readers agree on every box of this image."))
        self._enable()

    @staticmethod
    def _describe(box) -> str:  # noqa: ANN001 - LesionBox | None
        if box is None:
            return "—"
        b = box.box
        return f"#{box.id} {box.lesion_type or 'no type'} ({b.x0:g},{b.y0:g} → {b.x1:g},{b.y1:g})"

    def _current(self) -> Disagreement | None:
        rows = self.table.selectionModel().selectedRows()
        return self.items[rows[0].row()] if rows and rows[0].row() < len(self.items) else None

    def _enable(self) -> None:
        d = self._current()
        self.buttons["a"].setEnabled(d is not None and d.box_a is not None)
        self.buttons["b"].setEnabled(d is not None and d.box_b is not None)
        self.buttons["merge"].setEnabled(d is not None and d.kind == "matched")

    def select_row(self, row: int) -> None:
        self.table.selectRow(row)

    def take(self, choice: str) -> None:
        """Add the consensus box for the selected row (one undo step)."""
        d = self._current()
        if d is None:
            return
        box, lesion_type = consensus_box(d, choice)
        what = {"a": f"{self.reader_a.currentText()}'s box", "b": f"{self.reader_b.currentText()}'s box",
                "merge": "merged box"}[choice]
        self.session.undo_stack.push(AddRegionCommand(self.session, LESION, self.image_id, box,
                                                      lesion_type=lesion_type, author=CONSENSUS,
                                                      text=f"Consensus: {what}"))
        self.status.setText(f"Added a consensus box ({what}). Ctrl+Z in the main window takes it back.")
        self.table.setFocus(Qt.FocusReason.OtherFocusReason)
