"""The vetting gallery: batch-synthesize candidates, then accept or reject them from the keyboard.

Generating runs :func:`lesion_studio.samples.batch.generate_candidates` in the background through
the window's job queue, so it waits for a training run on the same device. The candidates of a
batch are shown as thumbnails sorted by classifier score (:mod:`gallery_view`), with a marker cell
where the threshold t falls: samples before it would pass the paper's filter (score > t), samples
after it would not. A / R / U set accepted / rejected / candidate at once in the project (the
next sample is selected), Space and the arrows move, Enter or a double-click shows the synthetic
image in the main viewer with its window outlined (:mod:`gallery_viewer`). ``accepted`` is the
status augmented training takes (``project.synthetic_samples(status="accepted")``).

The generators offered are the project's own and the built-in ones (registered on first use), so
a fresh project can generate candidates at once.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lesion_studio.builtin_models import model_choices
from lesion_studio.classifier.cam import config_map_kind, map_overlay_text
from lesion_studio.errors import LesionStudioError
from lesion_studio.evaluate.generator_quality import REPORT_LEGEND, short_summary
from lesion_studio.gui import settings as prefs
from lesion_studio.gui.actions import ActionSpec, build_action
from lesion_studio.gui.job_queue import Job, JobState
from lesion_studio.gui.panels import side_column
from lesion_studio.gui.panels.gallery_view import GalleryDelegate, GalleryModel
from lesion_studio.gui.panels.gallery_viewer import SampleInViewer
from lesion_studio.gui.panels.model_combo import ModelCombo, default_generator, refill
from lesion_studio.gui.panels.thumbnails import qimage_from_gray
from lesion_studio.gui.workers import TaskPool
from lesion_studio.jobs import ProgressEvent
from lesion_studio.samples.thumbnails import sample_thumbnail
from lesion_studio.store.records import SyntheticSample
from lesion_studio.synthesis.blend import DEFAULT_N

if TYPE_CHECKING:
    from lesion_studio.gui.host import PanelHost
    from lesion_studio.gui.session import ProjectSession

log = logging.getLogger(__name__)

ALL_BATCHES = "(all batches)"
#: Keys of the gallery list (bound to the list view only, so they never steal A/R/U elsewhere).
GALLERY_KEYS = [
    ActionSpec("gallery_accept", "Gallery: accept sample", "Tools", "accept", ("A",), context="gallery"),
    ActionSpec("gallery_reject", "Gallery: reject sample", "Tools", "reject", ("R",), context="gallery"),
    ActionSpec("gallery_undecided", "Gallery: back to undecided", "Tools", "undecide", ("U",), context="gallery"),
    ActionSpec("gallery_next", "Gallery: next sample", "Tools", "next_sample", ("Space",), context="gallery"),
    ActionSpec("gallery_previous", "Gallery: previous sample", "Tools", "previous_sample", ("Shift+Space",),
               context="gallery"),
    ActionSpec("gallery_show", "Gallery: show sample in the viewer", "Tools", "show_current", ("Return", "Enter"),
               context="gallery"),
]
#: The panel's actions (the window builds the menu ones from the panel's spec; the keys are the list's).
ACTIONS = (
    ActionSpec("generate_candidates", "&Generate candidates", "Tools", "gallery.generate", ("Ctrl+Shift+G",),
               "Batch-synthesize candidate samples with the gallery's settings", section="vetting",
               needs_project=True),
    ActionSpec("realism_review", "Blinded &realism review…", "Tools", "gallery.open_review", ("Ctrl+Shift+B",),
               "Rate real and synthetic lesion patches, shuffled and unlabelled", needs_project=True),
    *GALLERY_KEYS,  # bound to the list by the panel; declared here so Help lists them
)


class GalleryPanel(QWidget):
    """Batch generation controls over a keyboard-driven thumbnail gallery of one batch."""

    status_changed = Signal(int, str)  # sample id, new status (after it is stored)
    batch_finished = Signal(object)  # BatchResult

    def __init__(self, host: PanelHost, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gallery_panel")
        self.host = host
        self.session = session
        self.project = session.project
        self.job: Job | None = None
        self.in_viewer = SampleInViewer(host, self.project)
        self._review: Any = None
        self.thumbs = TaskPool(threads=1, parent=self)
        self.thumbs.done.connect(self._thumb_ready)
        self.thumbs.failed.connect(lambda key, msg: log.warning("thumbnail %s: %s", key, msg))
        # the controls are a column beside the thumbnails, so the grid is in sight at once
        controls = QWidget()
        column = QVBoxLayout(controls)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(self._build_form())
        column.addWidget(self.quality_label)
        column.addLayout(self._build_generation())
        column.addLayout(self._build_batch_bar())
        column.addWidget(self.cam_check)
        column.addStretch(1)
        hint = QLabel("A accept · R reject · U undecided · Space / arrows move · Enter show in viewer")
        hint.setObjectName("hint")
        grid = QVBoxLayout()
        grid.addWidget(self.summary)
        grid.addWidget(self._build_list(), 1)
        grid.addWidget(hint)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(side_column(controls, 380))
        layout.addLayout(grid, 1)
        host.listen(host.image_shown, self._image_shown)
        session.models_changed.connect(self.refresh_choices)
        session.samples_changed.connect(self.reload_batches)  # a Keep: counts stay true
        self.refresh_choices()
        self.reload_batches()

    # ------------------------------------------------------------------ building
    def _build_form(self) -> QFormLayout:
        self.model_combo = ModelCombo(self.refresh_choices, "No UNIT model: train one first")
        self.model_combo.currentIndexChanged.connect(lambda _i: self._update_quality())
        self.classifier_combo = QComboBox()
        self.source_combo = QComboBox()
        self.source_combo.addItem("Picked normal patches", "patches")
        self.source_combo.addItem("Sampled windows on normal images", "sampled")
        self.part_combo = QComboBox()
        self.split_combo = QComboBox()
        for text, value in (("Training images", "train"), ("Any split", None)):
            self.split_combo.addItem(text, value)
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 5000)
        self.count_spin.setValue(24)
        self.n_low, self.n_high = QDoubleSpinBox(), QDoubleSpinBox()
        # n = 1 both ways by default: the product's n, which measured most realistic (docs/synthesis.md);
        # widen the range for more varied candidates.
        for spin, value in ((self.n_low, DEFAULT_N), (self.n_high, DEFAULT_N)):
            spin.setRange(0.25, 16.0)
            spin.setSingleStep(0.25)
            spin.setDecimals(2)
            spin.setValue(value)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.quality_label = QLabel("")
        self.quality_label.setObjectName("gallery_quality")
        self.quality_label.setWordWrap(True)
        self.quality_label.setToolTip(REPORT_LEGEND)
        form = QFormLayout()
        form.addRow("UNIT model", self.model_combo)
        form.addRow("Classifier", self.classifier_combo)
        form.addRow("Source", self.source_combo)
        row = QHBoxLayout()
        row.addWidget(self.part_combo, 1)
        row.addWidget(self.split_combo, 1)
        form.addRow("Body part", row)
        row = QHBoxLayout()
        for widget in (self.count_spin, QLabel("n"), self.n_low, QLabel("–"), self.n_high, QLabel("seed"),
                       self.seed_spin):
            row.addWidget(widget)
        form.addRow("Count", row)
        return form

    def _build_generation(self) -> QHBoxLayout:
        self.generate_button = QPushButton("Generate")
        self.generate_button.setToolTip("Make the candidates in the background (Ctrl+Shift+G)")
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setObjectName("gallery_progress")
        self.progress.setTextVisible(True)
        self._idle()
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        return buttons

    def _build_batch_bar(self) -> QHBoxLayout:
        self.batch_combo = QComboBox()
        self.batch_combo.setMinimumContentsLength(16)
        self.batch_combo.currentIndexChanged.connect(lambda _i: self.reload())
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 1.0)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setDecimals(2)
        self.threshold_spin.setValue(float(prefs.app_settings().value("gallery/threshold", 0.5)))
        self.threshold_spin.setToolTip("Score threshold t: the line in the gallery (the paper keeps score > t)")
        self.threshold_spin.valueChanged.connect(self._threshold_changed)
        self.summary = QLabel("")
        self.summary.setObjectName("gallery_summary")
        self.summary.setWordWrap(True)
        self.cam_check = QCheckBox(map_overlay_text(None))
        self.cam_check.setObjectName("gallery_cam")
        self.cam_check.setToolTip("Overlay the classifier's lesion map (map head) or CAM on the sample in the viewer: "
                                  "where it found lesion evidence. It should sit in the dashed window.")
        self.cam_check.toggled.connect(lambda _on: self.in_viewer.cam_wanted(self._cam_classifier()))
        self.classifier_combo.currentIndexChanged.connect(self._name_the_map)
        bar = QHBoxLayout()
        for widget, stretch in ((QLabel("Batch"), 0), (self.batch_combo, 1), (QLabel("t"), 0),
                                (self.threshold_spin, 0)):
            bar.addWidget(widget, stretch)
        return bar

    def _build_list(self) -> QListView:
        self.model = GalleryModel(self)
        self.model.threshold = self.threshold_spin.value()
        self.view = QListView()
        self.view.setObjectName("gallery_view")
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setWrapping(True)
        self.view.setSpacing(3)
        self.view.setUniformItemSizes(False)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setModel(self.model)
        self.view.setItemDelegate(GalleryDelegate(self.view))
        self.view.doubleClicked.connect(lambda index: self.show_sample(self.model.sample_at(index.row())))
        self.view.selectionModel().currentChanged.connect(lambda *_: self._update_summary())
        self.key_actions: dict[str, Any] = {}
        for spec in GALLERY_KEYS:
            action = build_action(spec, self.view, self._key_handler(spec.handler))
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            self.view.addAction(action)
            self.key_actions[spec.key] = action
        return self.view

    # ------------------------------------------------------------------ choices
    def refresh_choices(self) -> None:
        """Generators, classifiers and body parts from the project (training adds models later)."""
        p = self.project
        choices = model_choices(p, "unit")
        self.model_combo.fill(choices, self.model_combo.currentData(), default_generator(choices))
        refill(self.classifier_combo, [("(no scoring)", None)] + [(m.name, m.name) for m in p.models("drn")], 0)
        parts = sorted({r.body_part for r in p.images(label="normal") if r.body_part})
        refill(self.part_combo, [("All body parts", None)] + [(b, b) for b in parts], 0)
        self._update_quality()
        self._name_the_map()

    def _update_quality(self) -> None:
        """The header line: the selected generator's quality report, from its registry metadata."""
        choice = self.model_combo.current_choice()
        if choice is None:
            self.quality_label.setText("")
            return
        quality = choice.metadata.get("quality")
        self.quality_label.setText(f"Quality of {choice.name}: {short_summary(quality)}" if quality else
                                   f"Quality of {choice.name}: not measured yet (lesion-studio assess-generator "
                                   f"PROJECT --model {choice.name})")

    def reload_batches(self, select: str | None = None) -> None:
        batches = list(dict.fromkeys(s.batch for s in self.project.synthetic_samples()))
        keep = select or self.batch_combo.currentData()
        with QSignalBlocker(self.batch_combo):
            self.batch_combo.clear()
            self.batch_combo.addItem(ALL_BATCHES, None)
            for b in reversed(batches):  # newest first
                self.batch_combo.addItem(b or "(kept in the synthesis panel)", b)
            i = self.batch_combo.findData(keep) if keep is not None else -1
            self.batch_combo.setCurrentIndex(i if i >= 0 else (1 if len(batches) else 0))
        self.reload()

    def reload(self) -> None:
        batch = self.batch_combo.currentData()
        current = self.current_sample()
        self.model.set_samples(self.project.synthetic_samples(batch=batch))
        for s in self.model.samples():
            if not self.model.has_thumbnail(s.id):
                self.thumbs.submit(s.id, lambda s=s: sample_thumbnail(self.project, s))
        self.select_sample(current.id if current else None)
        self._update_summary()

    def showEvent(self, event: Any) -> None:  # noqa: N802
        self.refresh_choices()
        super().showEvent(event)

    # ------------------------------------------------------------------ generation
    def settings(self) -> dict[str, Any]:
        lo, hi = self.n_low.value(), self.n_high.value()
        part = self.part_combo.currentData()
        choice = self.model_combo.current_choice()
        return {"model": choice.name if choice else None, "classifier": self.classifier_combo.currentData(),
                "sources": self.source_combo.currentData(), "body_parts": [part] if part else None,
                "split": self.split_combo.currentData(), "count": self.count_spin.value(),
                "n_range": (min(lo, hi), max(lo, hi)), "seed": self.seed_spin.value()}

    def generate(self) -> None:
        if self.busy:
            self.host.show_message("A batch is already being generated.", "warning")
            return
        self.refresh_choices()
        s = self.settings()
        if not s["model"]:
            self.host.show_message("There is no UNIT model in this project yet. Train one (Training panel or "
                                   "`lesion-studio train-gan`), then generate candidates.", "warning")
            return
        self.host.show_dock("gallery")
        project = self.project

        def job(progress, cancel):  # noqa: ANN001, ANN202
            from lesion_studio.samples.batch import generate_candidates

            return generate_candidates(project, s["model"], count=s["count"], sources=s["sources"],
                                       body_parts=s["body_parts"], split=s["split"], n_range=s["n_range"],
                                       seed=s["seed"], classifier=s["classifier"], progress=progress, cancel=cancel)

        self.generate_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        queue = self.host.job_queue
        lane = queue.lane("auto")
        self.job = queue.submit(job, f"Batch synthesis ({s['count']})", lane, kind="batch-synthesis")
        self.job.started.connect(lambda: self._label_bar("starting…"))
        self.job.progressed.connect(self._progressed)
        self.job.finished.connect(self._job_finished)
        if self.job.state == JobState.QUEUED:
            ahead = len(queue.running(lane)) + len(queue.queued(lane)) - 1
            self._label_bar(f"queued: waiting for the {lane.upper()} ({ahead} job(s) ahead)")
        else:
            self._label_bar("starting…")

    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.active

    def cancel(self) -> None:
        if self.job is not None:
            self.host.job_queue.cancel(self.job)  # a queued one is dropped at once (and _idle ran)
        if self.busy:
            self._label_bar("stopping…")

    def _label_bar(self, text: str) -> None:
        """A bar that says what it waits for: a busy bar (no total yet) shows no text at all."""
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat(text)

    def _progressed(self, event: ProgressEvent) -> None:
        if event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(min(event.done, event.total))
        what = "scoring" if event.stage == "score" else "synthesizing"
        self.progress.setFormat(f"{what} %v/%m" + (f" · {event.eta_s:.0f} s left" if event.eta_s else ""))

    def _job_finished(self, state: str) -> None:
        job, self.job = self.job, None
        if job is None:
            return
        if state == JobState.FAILED:
            self.host.show_message(f"Batch synthesis failed: {job.error or 'unknown error'}", "error")
        else:
            self._generated(job.result, cancelled=state != JobState.DONE)
        self._idle()

    def _idle(self) -> None:
        self.generate_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self._label_bar("")

    def _generated(self, result: Any, cancelled: bool) -> None:
        if result is None:
            self.host.show_message("Batch synthesis was cancelled before any candidate was made.", "info")
            return
        self.reload_batches(select=result.batch)
        text = f"Made {result.count} candidate(s) in batch {result.batch}"
        text += f", scored by {result.classifier}" if result.classifier else " (not scored)"
        text += " — cancelled early, the candidates made so far are kept." if cancelled else "."
        self.host.show_message(text, "info")
        self.view.setFocus()
        self.batch_finished.emit(result)

    # ------------------------------------------------------------------ vetting
    def _key_handler(self, name: str) -> Any:
        def run(*_args: Any) -> None:
            try:
                getattr(self, name)()
            except LesionStudioError as exc:
                self.host.show_message(str(exc), "error")
        return run

    def current_sample(self) -> SyntheticSample | None:
        index = self.view.currentIndex()
        return self.model.sample_at(index.row()) if index.isValid() else None

    def select_sample(self, sample_id: int | None) -> None:
        row = self.model.row_of(sample_id) if sample_id is not None else None
        if row is None:
            row = next((i for i in range(self.model.rowCount()) if self.model.sample_at(i) is not None), None)
        if row is None:
            return
        index = self.model.index(row)
        self.view.setCurrentIndex(index)
        self.view.scrollTo(index)

    def _step(self, delta: int) -> None:
        index = self.view.currentIndex()
        sample = self.model.sample_after(index.row() if index.isValid() else -1, delta)
        if sample is not None:
            self.select_sample(sample.id)

    def next_sample(self) -> None:
        self._step(1)

    def previous_sample(self) -> None:
        self._step(-1)

    def set_status(self, status: str, advance: bool = True) -> None:
        sample = self.current_sample()
        if sample is None:
            return
        self.project.update_synthetic_sample(sample.id, status=status)  # stored at once
        self.model.update_sample(dataclasses.replace(sample, status=status))
        self.status_changed.emit(sample.id, status)
        self._update_summary()
        if advance:
            self.next_sample()

    def accept(self) -> None:
        self.set_status("accepted")

    def reject(self) -> None:
        self.set_status("rejected")

    def undecide(self) -> None:
        self.set_status("candidate")

    def _threshold_changed(self, t: float) -> None:
        current = self.current_sample()
        prefs.set_value("gallery/threshold", float(t))
        self.model.set_threshold(t)
        self.select_sample(current.id if current else None)
        self._update_summary()

    def _update_summary(self) -> None:
        self.summary.setText(self.model.summary())

    def _thumb_ready(self, sample_id: int, gray: np.ndarray) -> None:
        self.model.set_thumbnail(sample_id, qimage_from_gray(gray))

    # ------------------------------------------------------------------ the main viewer
    def _name_the_map(self) -> None:
        """Name on the overlay box the map the chosen classifier draws (from its stored settings)."""
        record = self.project.find_model(self.classifier_combo.currentData() or "")
        self.cam_check.setText(map_overlay_text(config_map_kind(record.config) if record else None))

    def _cam_classifier(self) -> str | None:
        """The classifier whose localisation map to draw: the chosen one while the overlay box is ticked."""
        if not self.cam_check.isChecked():
            return None
        name = self.classifier_combo.currentData()
        if not name:
            self.host.show_message("Choose a classifier in the gallery to see its localisation map.", "warning")
        return name

    def show_current(self) -> None:
        self.show_sample(self.current_sample())

    def show_sample(self, sample: SyntheticSample | None) -> None:
        """Show the synthetic image in the main viewer, its window outlined (on the source's view)."""
        if sample is not None:
            self.in_viewer.show(sample, self._cam_classifier())

    def _image_shown(self, _image_id: int, _rg: Any) -> None:
        self.in_viewer.image_shown(self._cam_classifier() if self.in_viewer.pending is not None else None)

    # ------------------------------------------------------------------ review
    def open_review(self) -> None:
        from lesion_studio.gui.panels.review import ReviewDialog

        if self._review is None:
            self._review = ReviewDialog(self.project, parent=self)
            self._review.finished.connect(lambda _r: setattr(self, "_review", None))
        self._review.show()
        self._review.raise_()
        self._review.activateWindow()

    # ------------------------------------------------------------------ shutdown
    def shutdown(self) -> None:
        """Stop background work (the window closes or the project changes)."""
        if self.job is not None and self.job.active:  # the project is closing under the batch: stop it
            self.host.job_queue.cancel(self.job)
            if self.job.worker is not None:
                self.job.worker.wait(30_000)
        self.thumbs.shutdown()
        self.in_viewer.clear()
        if self._review is not None:
            self._review.close()
