"""The vetting gallery: batch-synthesize candidates, then accept or reject them from the keyboard.

Generating runs :func:`lesion_studio.samples.batch.generate_candidates` in the background (through
the window's job queue when there is one, so it waits for a training run on the same device).
The candidates of a batch are shown as thumbnails sorted by classifier score, with a marker cell
where the threshold t falls: samples before it would pass the paper's filter (score > t), samples
after it would not. A / R / U set accepted / rejected / candidate at once in the project (the
next sample is selected), Space and the arrows move, Enter or a double-click shows the synthetic
image in the main viewer with its window outlined. ``accepted`` is the status augmented training
takes (``project.synthetic_samples(status="accepted")``).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QRectF,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QListView,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from lesion_studio.errors import LesionStudioError
from lesion_studio.gui import settings as prefs
from lesion_studio.gui.actions import ActionSpec, build_action
from lesion_studio.gui.workers import TaskPool
from lesion_studio.jobs import ProgressEvent
from lesion_studio.store.records import Box, SyntheticSample
from lesion_studio.synthesis.blend import DEFAULT_N

log = logging.getLogger(__name__)

THUMB = 128
STATUS_COLOURS = {"accepted": QColor(70, 180, 90), "rejected": QColor(210, 70, 60), "candidate": QColor(110, 110, 120)}
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


# ---------------------------------------------------------------------------- thumbnails
def display_window(sample: SyntheticSample, pixels: np.ndarray) -> tuple[float, float]:
    """The source radiograph's display window (from the provenance), else the 1–99 % range."""
    try:
        center, width = sample.provenance["source"]["display_window"]
        if float(width) > 0:
            return float(center), float(width)
    except (KeyError, TypeError, ValueError):
        pass
    lo, hi = np.percentile(pixels, [1, 99])
    return float(lo + hi) / 2, float(max(hi - lo, 1.0))


def context_crop(pixels: np.ndarray, window: Box, margin: float = 0.5) -> np.ndarray:
    """The window plus ``margin`` × its side on each side, clipped to the image."""
    side = max(window.width, window.height)
    x0, y0 = int(max(0, window.x0 - margin * side)), int(max(0, window.y0 - margin * side))
    x1 = int(min(pixels.shape[1], window.x1 + margin * side))
    y1 = int(min(pixels.shape[0], window.y1 + margin * side))
    return pixels[y0:y1, x0:x1]


def render_thumbnail(project: Any, sample: SyntheticSample, size: int = THUMB) -> np.ndarray:
    """A size×size uint8 view of the sample's window with context (runs off the GUI thread)."""
    from lesion_studio.io.images import window_uint8
    from lesion_studio.patches.intensity import resize_patch
    from lesion_studio.samples import load_sample_pixels

    pixels = load_sample_pixels(project, sample)
    crop = context_crop(pixels, sample.box)
    if crop.size == 0:
        crop = pixels
    h, w = crop.shape
    scale = size / max(h, w)
    small = resize_patch(crop.astype(np.float32), max(1, round(h * scale)), max(1, round(w * scale)))
    out = np.zeros((size, size), np.uint8)
    tile = window_uint8(small, display_window(sample, pixels))
    oy, ox = (size - tile.shape[0]) // 2, (size - tile.shape[1]) // 2
    out[oy:oy + tile.shape[0], ox:ox + tile.shape[1]] = tile
    return out


def to_qimage(gray: np.ndarray) -> QImage:
    gray = np.ascontiguousarray(gray)
    return QImage(gray.data, gray.shape[1], gray.shape[0], gray.strides[0], QImage.Format.Format_Grayscale8).copy()


# ---------------------------------------------------------------------------- model
def sort_by_score(samples: list[SyntheticSample]) -> list[SyntheticSample]:
    """Highest score first; unscored samples last, oldest first."""
    return sorted(samples, key=lambda s: (s.score is None, -(s.score or 0.0), s.id))


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

    def forget_thumbnails(self) -> None:
        self._thumbs.clear()

    # -- queries
    def samples(self) -> list[SyntheticSample]:
        return [s for s in self._rows if s is not None]

    def sample_at(self, row: int) -> SyntheticSample | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, sample_id: int) -> int | None:
        return next((i for i, s in enumerate(self._rows) if s is not None and s.id == sample_id), None)

    def marker_row(self) -> int | None:
        return next((i for i, s in enumerate(self._rows) if s is None), None)

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
            return (f"Sample {sample.id} (batch {sample.batch})\nscore {sample.score}\nn = {sample.n:.2f}, "
                    f"seed {sample.seed}\nstatus {sample.status}")
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
            pen = QPen(QColor(240, 190, 60), 3)
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


# ---------------------------------------------------------------------------- the panel
QUALITY_HELP = ("The generator's quality report on validation windows (lesion-studio assess-generator): realism AUC "
                "(0.5 = synthetic indistinguishable from real lesions), lesion rate (synthetic windows a patch "
                "classifier calls lesion, as a share of the real-lesion rate), drift (brightness change around the "
                "lesion core: the dark square), KID (feature distance to real lesions, lower is better), CAM in "
                "window (how often the classifier looks where the lesion was painted).")


class GalleryPanel(QWidget):
    """Batch generation controls over a keyboard-driven thumbnail gallery of one batch."""

    status_changed = Signal(int, str)  # sample id, new status (after it is stored)
    batch_finished = Signal(object)  # BatchResult

    def __init__(self, window: Any, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gallery_panel")
        self.window_ = window
        self.session = session
        self.project = session.project
        self.job: Any = None
        self._outline: QGraphicsRectItem | None = None
        self._pending_show: int | None = None
        self._review: Any = None
        self.thumbs = TaskPool(threads=1, parent=self)
        self.thumbs.done.connect(self._thumb_ready)
        self.thumbs.failed.connect(lambda key, msg: log.warning("thumbnail %s: %s", key, msg))

        self.model_combo = QComboBox()
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
        self.n_low = QDoubleSpinBox()
        self.n_high = QDoubleSpinBox()
        # n = 1 both ways by default: the product's n, which measured most realistic (docs/synthesis.md);
        # widen the range for more varied candidates.
        for spin, value in ((self.n_low, DEFAULT_N), (self.n_high, DEFAULT_N)):
            spin.setRange(0.25, 16.0)
            spin.setSingleStep(0.25)
            spin.setDecimals(2)
            spin.setValue(value)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setToolTip("Make the candidates in the background (Ctrl+Shift+G)")
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
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
        self.quality_label = QLabel("")
        self.quality_label.setObjectName("gallery_quality")
        self.quality_label.setWordWrap(True)
        self.quality_label.setToolTip(QUALITY_HELP)
        self.model_combo.currentIndexChanged.connect(lambda _i: self._update_quality())
        self.cam_check = QCheckBox("Classifier attention (CAM) in the viewer")
        self.cam_check.setObjectName("gallery_cam")
        self.cam_check.setToolTip("Overlay the selected classifier's class-activation map on the sample shown in the "
                                  "viewer: where the detector found lesion evidence. It should sit in the dashed "
                                  "window.")
        self.cam_check.toggled.connect(self._cam_toggled)
        self._cam_item: Any = None
        self._shown_sample: int | None = None

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
        hint = QLabel("A accept · R reject · U undecided · Space / arrows move · Enter show in viewer")
        hint.setObjectName("hint")

        form = QFormLayout()
        form.addRow("UNIT model", self.model_combo)
        form.addRow("Classifier", self.classifier_combo)
        form.addRow("Source", self.source_combo)
        row = QHBoxLayout()
        row.addWidget(self.part_combo, 1)
        row.addWidget(self.split_combo, 1)
        form.addRow("Body part", row)
        row = QHBoxLayout()
        row.addWidget(self.count_spin)
        row.addWidget(QLabel("n"))
        row.addWidget(self.n_low)
        row.addWidget(QLabel("–"))
        row.addWidget(self.n_high)
        row.addWidget(QLabel("seed"))
        row.addWidget(self.seed_spin)
        form.addRow("Count", row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Batch"))
        bar.addWidget(self.batch_combo, 1)
        bar.addWidget(QLabel("t"))
        bar.addWidget(self.threshold_spin)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addWidget(self.quality_label)
        layout.addLayout(buttons)
        layout.addLayout(bar)
        layout.addWidget(self.cam_check)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)
        layout.addWidget(hint)
        window.listen(window.image_shown, self._image_shown)
        if hasattr(session, "models_changed"):
            session.models_changed.connect(self.refresh_choices)
            session.samples_changed.connect(lambda: self.reload_batches())  # a Keep: counts stay true
        self.refresh_choices()
        self.reload_batches()

    # ------------------------------------------------------------------ choices
    def refresh_choices(self) -> None:
        """Models, classifiers and body parts from the project (training adds models later)."""
        p = self.project

        def fill(combo: QComboBox, items: list[tuple[str, Any]]) -> None:
            current = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            for text, data in items:
                combo.addItem(text, data)
            i = combo.findData(current)
            combo.setCurrentIndex(i if i >= 0 else (combo.count() - 1 if combo.count() else -1))
            combo.blockSignals(False)

        # complete models first (newest last, chosen by default); a paused one is marked and last resort
        units = sorted(p.models("unit"), key=lambda m: bool(m.metadata.get("complete", True)))
        fill(self.model_combo, [(m.name if m.metadata.get("complete", True) else f"{m.name} (incomplete)", m.name)
                                for m in units])
        fill(self.classifier_combo, [("(no scoring)", None)] + [(m.name, m.name) for m in p.models("drn")])
        parts = sorted({r.body_part for r in p.images(label="normal") if r.body_part})
        fill(self.part_combo, [("All body parts", None)] + [(b, b) for b in parts])
        if self.part_combo.currentIndex() < 0 or self.part_combo.currentData() is not None and \
                self.part_combo.currentData() not in parts:
            self.part_combo.setCurrentIndex(0)
        if self.classifier_combo.currentIndex() < 0:
            self.classifier_combo.setCurrentIndex(0)
        self._update_quality()

    def _update_quality(self) -> None:
        """The header line: the selected generator's quality report, from its registry metadata."""
        from lesion_studio.evaluate.generator_quality import short_summary

        name = self.model_combo.currentData()
        if not name:
            self.quality_label.setText("")
            return
        try:
            quality = self.project.model(name).metadata.get("quality")
        except LesionStudioError:
            quality = None
        if quality:
            self.quality_label.setText(f"Quality of {name}: {short_summary(quality)}")
        else:
            self.quality_label.setText(f"Quality of {name}: not measured yet (lesion-studio assess-generator "
                                       f"PROJECT --model {name})")

    def reload_batches(self, select: str | None = None) -> None:
        batches = list(dict.fromkeys(s.batch for s in self.project.synthetic_samples()))
        keep = select or self.batch_combo.currentData()
        self.batch_combo.blockSignals(True)
        self.batch_combo.clear()
        self.batch_combo.addItem(ALL_BATCHES, None)
        for b in reversed(batches):  # newest first
            self.batch_combo.addItem(b or "(kept in the synthesis panel)", b)
        i = self.batch_combo.findData(keep) if keep is not None else -1
        self.batch_combo.setCurrentIndex(i if i >= 0 else (1 if len(batches) else 0))
        self.batch_combo.blockSignals(False)
        self.reload()

    def reload(self) -> None:
        batch = self.batch_combo.currentData()
        current = self.current_sample()
        self.model.set_samples(self.project.synthetic_samples(batch=batch))
        for s in self.model.samples():
            if not self.model.has_thumbnail(s.id):
                self.thumbs.submit(s.id, lambda s=s: render_thumbnail(self.project, s))
        self.select_sample(current.id if current else None)
        self._update_summary()

    def showEvent(self, event: Any) -> None:  # noqa: N802
        self.refresh_choices()
        super().showEvent(event)

    # ------------------------------------------------------------------ generation
    def settings(self) -> dict[str, Any]:
        lo, hi = self.n_low.value(), self.n_high.value()
        part = self.part_combo.currentData()
        return {"model": self.model_combo.currentData(), "classifier": self.classifier_combo.currentData(),
                "sources": self.source_combo.currentData(), "body_parts": [part] if part else None,
                "split": self.split_combo.currentData(), "count": self.count_spin.value(),
                "n_range": (min(lo, hi), max(lo, hi)), "seed": self.seed_spin.value()}

    def generate(self) -> None:
        if self.busy:
            self.window_.show_message("A batch is already being generated.", "warning")
            return
        self.refresh_choices()
        s = self.settings()
        if not s["model"]:
            self.window_.show_message("There is no UNIT model in this project yet. Train one (Training panel or "
                                      "`lesion-studio train-gan`), then generate candidates.", "warning")
            return
        self.window_.show_dock("gallery")
        project = self.project

        def job(progress, cancel):  # noqa: ANN001, ANN202
            from lesion_studio.samples.batch import generate_candidates

            return generate_candidates(project, s["model"], count=s["count"], sources=s["sources"],
                                       body_parts=s["body_parts"], split=s["split"], n_range=s["n_range"],
                                       seed=s["seed"], classifier=s["classifier"], progress=progress, cancel=cancel)

        self.generate_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.progress.setFormat("waiting…")
        queue = self.window_.job_queue
        self.job = queue.submit(job, f"Batch synthesis ({s['count']})", queue.lane("auto"), kind="batch-synthesis")
        self.job.progressed.connect(self._progressed)
        self.job.finished.connect(self._job_finished)

    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.active

    def cancel(self) -> None:
        if self.job is not None:
            self.window_.job_queue.cancel(self.job)
        self.progress.setFormat("stopping…")

    def _progressed(self, event: ProgressEvent) -> None:
        if event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(min(event.done, event.total))
        what = "scoring" if event.stage == "score" else "synthesizing"
        self.progress.setFormat(f"{what} %v/%m" + (f" · {event.eta_s:.0f} s left" if event.eta_s else ""))

    def _job_finished(self, state: str) -> None:
        job, self.job = self.job, None
        if state == "failed":
            self._failed(job.error or "unknown error")
        else:
            self._generated(job.result)
        self._idle()

    def _idle(self) -> None:
        self.generate_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")

    def _failed(self, message: str) -> None:
        self.window_.show_message(f"Batch synthesis failed: {message}", "error")

    def _generated(self, result: Any) -> None:
        if result is None:
            self.window_.show_message("Batch synthesis was cancelled before any candidate was made.", "info")
            return
        self.reload_batches(select=result.batch)
        text = f"Made {result.count} candidate(s) in batch {result.batch}"
        text += f", scored by {result.classifier}" if result.classifier else " (not scored)"
        text += " — cancelled early, the candidates made so far are kept." if result.cancelled else "."
        self.window_.show_message(text, "info")
        self.view.setFocus()
        self.batch_finished.emit(result)

    # ------------------------------------------------------------------ vetting
    def _key_handler(self, name: str) -> Any:
        def run(*_args: Any) -> None:
            try:
                getattr(self, name)()
            except LesionStudioError as exc:
                self.window_.show_message(str(exc), "error")
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
        row = index.row() if index.isValid() else -1
        n = self.model.rowCount()
        r = row + delta
        while 0 <= r < n and self.model.sample_at(r) is None:
            r += delta
        if 0 <= r < n:
            self.select_sample(self.model.sample_at(r).id)  # type: ignore[union-attr]

    def next_sample(self) -> None:
        self._step(1)

    def previous_sample(self) -> None:
        self._step(-1)

    def set_status(self, status: str, advance: bool = True) -> None:
        sample = self.current_sample()
        if sample is None:
            return
        self.project.update_synthetic_sample(sample.id, status=status)  # stored at once
        updated = dataclasses.replace(sample, status=status)
        self.model.update_sample(updated)
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
        samples = self.model.samples()
        counts = {k: sum(1 for s in samples if s.status == k) for k in ("accepted", "rejected", "candidate")}
        scored = [s for s in samples if s.score is not None]
        above = sum(1 for s in scored if s.score > self.model.threshold)
        text = (f"{len(samples)} sample(s): {counts['accepted']} accepted, {counts['rejected']} rejected, "
                f"{counts['candidate']} undecided")
        if scored:
            text += f"; {above} of {len(scored)} scored above t = {self.model.threshold:.2f}"
        self.summary.setText(text)

    def _thumb_ready(self, sample_id: int, gray: np.ndarray) -> None:
        self.model.set_thumbnail(sample_id, to_qimage(gray))

    # ------------------------------------------------------------------ the main viewer
    def show_current(self) -> None:
        self.show_sample(self.current_sample())

    def show_sample(self, sample: SyntheticSample | None) -> None:
        """Show the synthetic image in the main viewer, its window outlined (on the source's view)."""
        if sample is None:
            return
        w = self.window_
        self._pending_show = sample.id
        if w.record is not None and w.record.id == sample.source_image_id and w.viewer.radiograph is not None:
            self._apply_show()
            return
        w.select_image(sample.source_image_id)

    def _image_shown(self, _image_id: int, _rg: Any) -> None:
        """The window put an image on the canvas: the source we asked for, or another one."""
        if self._pending_show is not None:
            self._apply_show()  # shows the sample when this image is its source
        else:
            self.clear_outline()  # another image: the outline (and the synthetic view) are gone

    def _apply_show(self) -> None:
        from lesion_studio.samples import load_sample_pixels

        w = self.window_
        sid, self._pending_show = self._pending_show, None
        if sid is None or w.viewer.radiograph is None:
            return
        sample = self.project.synthetic_sample(sid)
        if w.record is None or w.record.id != sample.source_image_id:
            return
        try:
            pixels = load_sample_pixels(self.project, sample)
        except LesionStudioError as exc:
            w.show_message(str(exc), "error")
            return
        real = w.viewer.radiograph
        if pixels.shape != real.pixels.shape:
            w.show_message(f"Sample {sid} does not match its source image's size.", "error")
            return
        synthetic = dataclasses.replace(real, pixels=pixels.astype(real.pixels.dtype, copy=False),
                                        tags={**real.tags, "Synthetic": f"sample {sid}"})
        w.viewer.set_radiograph(synthetic, w.viewer.levels(), keep_view=True)
        self._draw_outline(sample.box)
        self._shown_sample = sid
        if self.cam_check.isChecked():
            self._show_cam(pixels)
        w.viewer.set_badge(f"SYNTHETIC · sample {sid}")
        score = "" if sample.score is None else f", score {sample.score:.3f}"
        w.show_message(f"Showing synthetic sample {sid} (n = {sample.n:.2f}{score}, {sample.status}) on "
                       f"{w.record.name}; the dashed square is its window. Reselect the image for the original.",
                       "info")

    def _draw_outline(self, box: Box) -> None:
        canvas = self.window_.viewer
        self.clear_outline()
        item = QGraphicsRectItem(box.x0, box.y0, box.width, box.height)
        pen = QPen(QColor(240, 190, 60), 2)
        pen.setCosmetic(True)
        pen.setStyle(Qt.PenStyle.DashLine)
        item.setPen(pen)
        item.setZValue(50)
        canvas.vb.addItem(item)
        self._outline = item

    def _cam_toggled(self, on: bool) -> None:
        if not on:
            self._clear_cam()
            return
        if self._shown_sample is not None and self._outline is not None:
            from lesion_studio.samples import load_sample_pixels

            try:
                self._show_cam(load_sample_pixels(self.project, self.project.synthetic_sample(self._shown_sample)))
            except LesionStudioError as exc:
                self.window_.show_message(str(exc), "error")

    def _show_cam(self, pixels: np.ndarray) -> None:
        """Overlay the chosen classifier's localisation map (its lesion map, or the class-activation
        map of an image-only classifier) on the synthetic image in the viewer."""
        import pyqtgraph as pg

        from lesion_studio.classifier.cam import map_to_image
        from lesion_studio.classifier.preprocess import prepare_with_frame
        from lesion_studio.classifier.scoring import registered_scorer

        self._clear_cam()
        name = self.classifier_combo.currentData()
        if not name:
            self.window_.show_message("Choose a classifier in the gallery to see its attention map.", "warning")
            return
        try:
            scorer, _record = registered_scorer(self.project, name, need_map=True)
            prepared, frame = prepare_with_frame(pixels, scorer.prep)
            _probs, maps = scorer.maps(prepared[None])
        except LesionStudioError as exc:
            self.window_.show_message(str(exc), "error")
            return
        heat = map_to_image(maps[0], frame)
        item = pg.ImageItem(heat, axisOrder="row-major", opacity=0.45)
        item.setLookupTable(pg.colormap.get("inferno").getLookupTable(nPts=256))
        item.setLevels((0.0, 1.0))
        item.setZValue(40)
        self.window_.viewer.vb.addItem(item)
        self._cam_item = item

    def _clear_cam(self) -> None:
        if self._cam_item is not None:
            self.window_.viewer.vb.removeItem(self._cam_item)
            self._cam_item = None

    def clear_outline(self) -> None:
        self._clear_cam()
        self._shown_sample = None
        if self._outline is not None:
            self.window_.viewer.set_badge(None)
            self.window_.viewer.vb.removeItem(self._outline)
            self._outline = None

    # ------------------------------------------------------------------ review
    def open_review(self) -> None:
        from lesion_studio.gui.panels.review import ReviewDialog

        if self._review is None:
            self._review = ReviewDialog(self.project, parent=self.window_)
            self._review.finished.connect(lambda _r: setattr(self, "_review", None))
        self._review.show()
        self._review.raise_()
        self._review.activateWindow()

    # ------------------------------------------------------------------ shutdown
    def shutdown(self) -> None:
        """Stop background work (the window closes or the project changes)."""
        if self.job is not None and self.job.active:  # the project is closing under the batch: stop it
            self.window_.job_queue.cancel(self.job)
            if self.job.worker is not None:
                self.job.worker.wait(30_000)
        self.thumbs.shutdown()
        self.clear_outline()
        if self._review is not None:
            self._review.close()
