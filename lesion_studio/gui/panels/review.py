"""Blinded realism review: real and synthetic lesion patches, shuffled and unlabelled.

The rater sees one patch at a time and answers real (1 or R) or synthetic (2 or S). Nothing but
the pixels may give an item away, so every item goes through the same rendering: its square
window cropped from the full image (the real radiograph, or the synthetic sample's file), resized
to one display size, and windowed by the crop's own 1st–99th percentiles. Answers are stored at
once with ``project.add_rating`` (rater, session); the score — accuracy with Wilson's 95% CI
(50% means real and synthetic cannot be told apart) and the rate per class — is
:func:`lesion_studio.review.rater_score`, shown at the end or whenever asked.
"""

from __future__ import annotations

import datetime as _dt
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lesion_studio.gui import settings as prefs
from lesion_studio.gui.workers import TaskPool
from lesion_studio.review import (
    DISPLAY,
    ReviewItem,
    ReviewScore,
    build_review_items,
    rater_score,
    review_patch,
)

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

log = logging.getLogger(__name__)

ANSWER_KEYS = {"real": ("1", "R"), "synthetic": ("2", "S")}


def describe_score(score: ReviewScore) -> str:
    if not score.answered:
        return "No answers yet."
    parts = [f"Accuracy {score.accuracy:.0%} ({score.correct} of {score.answered}; 95% CI "
             f"{score.ci_low:.0%}–{score.ci_high:.0%})."]
    if score.sensitivity_synthetic is not None:
        parts.append(f"Synthetic called synthetic: {score.sensitivity_synthetic:.0%}.")
    if score.specificity_real is not None:
        parts.append(f"Real called real: {score.specificity_real:.0%}.")
    if score.ci_low <= 0.5 <= score.ci_high:
        parts.append("The interval includes 50%: this rater could not reliably tell real from synthetic.")
    else:
        parts.append("50% would mean real and synthetic cannot be told apart.")
    return " ".join(parts)


class ReviewDialog(QDialog):
    """A reading session: rater name, items, keys 1/R real and 2/S synthetic, score."""

    answered = Signal(int, str)  # item index, answer
    session_finished = Signal(object)  # ReviewScore of the session

    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("review_dialog")
        self.setWindowTitle("Blinded realism review")
        self.project = project
        self.items: list[ReviewItem] = []
        self.position = 0
        self.session_id = ""
        self.rater = ""
        self._images: dict[int, np.ndarray] = {}
        self._failed: set[int] = set()
        self.pool = TaskPool(threads=1, parent=self)
        self.pool.done.connect(self._loaded)
        self.pool.failed.connect(self._load_failed)

        self.rater_edit = QLineEdit(str(prefs.app_settings().value("review/rater", "")))
        self.rater_edit.setPlaceholderText("your name or initials")
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 500)
        self.count_spin.setValue(20)
        self.count_spin.setToolTip("Items of each kind (real and synthetic are always equal in number)")
        self.accepted_only = QCheckBox("Accepted synthetic samples only")
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(int(_dt.datetime.now().timestamp()) % 100000)

        self.view = pg.GraphicsLayoutWidget()
        self.view.setObjectName("review_view")
        self.view.setFixedSize(DISPLAY + 16, DISPLAY + 16)
        self.view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.box = self.view.addViewBox(lockAspect=True, enableMouse=False, invertY=True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image)
        self.box.setRange(xRange=(0, DISPLAY), yRange=(0, DISPLAY), padding=0)
        self.real_button = QPushButton("Real  (1 / R)")
        self.synthetic_button = QPushButton("Synthetic  (2 / S)")
        self.real_button.clicked.connect(lambda: self.answer("real"))
        self.synthetic_button.clicked.connect(lambda: self.answer("synthetic"))
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("review_progress")
        self.score_label = QLabel("")
        self.score_label.setObjectName("review_score")
        self.score_label.setWordWrap(True)
        self.score_button = QPushButton("Score so far")
        self.score_button.clicked.connect(self.show_score)

        for answer, keys in ANSWER_KEYS.items():
            action = QAction(answer, self)
            action.setShortcuts([QKeySequence(k) for k in keys])
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            action.triggered.connect(lambda _c=False, a=answer: self.answer(a))
            self.view.addAction(action)

        form = QFormLayout()
        form.addRow("Rater", self.rater_edit)
        row = QHBoxLayout()
        row.addWidget(self.count_spin)
        row.addWidget(QLabel("per kind, seed"))
        row.addWidget(self.seed_spin)
        form.addRow("Items", row)
        form.addRow("", self.accepted_only)
        form.addRow("", self.start_button)
        answers = QHBoxLayout()
        answers.addWidget(self.real_button)
        answers.addWidget(self.synthetic_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.view, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.progress_label)
        layout.addLayout(answers)
        bottom = QHBoxLayout()
        bottom.addWidget(self.score_button)
        bottom.addStretch(1)
        layout.addLayout(bottom)
        layout.addWidget(self.score_label)
        self._set_running(False)

    # ------------------------------------------------------------------ session
    @property
    def running(self) -> bool:
        return bool(self.items) and self.position < len(self.items)

    def _set_running(self, running: bool) -> None:
        for w in (self.real_button, self.synthetic_button):
            w.setEnabled(running)
        for w in (self.rater_edit, self.count_spin, self.accepted_only, self.seed_spin, self.start_button):
            w.setEnabled(not running)

    def start(self) -> bool:
        rater = self.rater_edit.text().strip()
        if not rater:
            self.score_label.setText("Enter a rater name first: answers are stored per rater.")
            self.rater_edit.setFocus()
            return False
        statuses = ("accepted",) if self.accepted_only.isChecked() else ("accepted", "candidate")
        items = build_review_items(self.project, self.count_spin.value(), seed=self.seed_spin.value(),
                                   synthetic_statuses=statuses)
        if not items:
            self.score_label.setText("Nothing to review: the project needs lesion boxes on lesion images and "
                                     "synthetic samples (generate candidates in the gallery first).")
            return False
        prefs.set_value("review/rater", rater)
        per_kind, asked = len(items) // 2, self.count_spin.value()
        if per_kind < asked:  # real and synthetic are equal in number: the scarcer kind sets it
            self.score_label.setText(f"Only {per_kind} item(s) of each kind are available ({asked} asked): real "
                                     "and synthetic items are always equal in number, so the scarcer kind sets "
                                     "the session's size. Generate or accept more candidates in the gallery, or "
                                     "draw more lesion boxes, for a longer session.")
        self.rater = rater
        self.session_id = f"{_dt.datetime.now():%Y%m%d-%H%M%S}-{self.seed_spin.value()}"
        self.items = items
        self.position = 0
        self._images.clear()
        self._failed.clear()
        self.pool.drop_queued()
        if per_kind >= asked:
            self.score_label.setText("")
        self._set_running(True)
        self._show_current()
        self.view.setFocus()
        return True

    def answer(self, answer: str) -> None:
        if not self.running or self.position not in self._images:
            return  # no answer before the item is on screen
        item = self.items[self.position]
        self.project.add_rating(self.rater, self.session_id, item.kind, item.ref, answer)
        self.answered.emit(self.position, answer)
        self.position += 1
        if self.running:
            self._show_current()
        else:
            self._finish()

    def _finish(self) -> None:
        self._set_running(False)
        self.image.clear()
        score = self.session_score()
        self.progress_label.setText(f"Done: {len(self.items)} items rated by {self.rater}.")
        overall = rater_score(self.project, self.rater)
        text = describe_score(score)
        if overall.answered > score.answered:
            text += f"\nAll of {self.rater}'s sessions: {describe_score(overall)}"
        self.score_label.setText(text)
        self.session_finished.emit(score)

    def session_score(self) -> ReviewScore:
        return rater_score(self.project, self.rater, self.session_id)

    def show_score(self) -> None:
        if self.rater:
            self.score_label.setText(describe_score(self.session_score()))

    # ------------------------------------------------------------------ images
    def _show_current(self) -> None:
        while self.running and self.position in self._failed:
            self.position += 1  # an unreadable file: skipped, never rated
        if not self.running:
            self._finish()
            return
        self.progress_label.setText(f"Item {self.position + 1} of {len(self.items)} — real or synthetic?")
        for k in (self.position, self.position + 1):
            if k < len(self.items) and k not in self._images:
                item = self.items[k]
                self.pool.submit((self.session_id, k), lambda item=item: review_patch(self.project, item))
        if self.position in self._images:
            self.image.setImage(self._images[self.position], autoLevels=False, levels=(0, 255))
        else:
            self.image.clear()
        self._set_answer_enabled(self.position in self._images)

    def _set_answer_enabled(self, enabled: bool) -> None:
        self.real_button.setEnabled(enabled)
        self.synthetic_button.setEnabled(enabled)

    def _loaded(self, key: tuple[str, int], image: np.ndarray) -> None:
        session, k = key
        if session != self.session_id:
            return  # a stale item of an earlier session
        self._images[k] = image
        if k == self.position and self.running:
            self._show_current()

    def _load_failed(self, key: tuple[str, int], message: str) -> None:
        session, k = key
        if session != self.session_id:
            return
        log.warning("review item %d cannot be shown (skipped, not rated): %s", k, message)
        self._failed.add(k)
        if k == self.position and self.running:
            self._show_current()

    def closeEvent(self, event: Any) -> None:  # noqa: N802
        self.pool.shutdown()
        super().closeEvent(event)

    def done(self, result: int) -> None:
        self.pool.shutdown()
        super().done(result)
