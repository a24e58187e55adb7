"""The Training panel: launch, watch, stop and resume GAN (UNIT) and classifier (DRN) training.

The panel only gathers settings and draws progress. The work is the core trainers'
(:func:`~lesion_studio.training.unit_trainer.train_unit`,
:func:`~lesion_studio.training.classifier_trainer.train_classifier`), submitted as a job to the
window's :class:`~lesion_studio.gui.job_queue.JobQueue` (one heavy job per device; others wait).
Their progress events drive the bar and ETA, the loss curves, the grid of translated samples
(GAN) and the per-epoch validation AUC (classifier).

"Pause" is honest about what it is: the trainers stop at the next iteration (GAN) or batch
(classifier) and keep a checkpoint; the job list says "paused". **Resume** continues a paused run
chosen from the list of resumable runs (read from the checkpoints on disk, so it survives a
restart) with *its own* settings, never the form's: a paused 3,000-iteration run stays a
3,000-iteration run. The GAN resumes exactly where it stopped and draws the same batches and noise
as an uninterrupted run; the classifier's checkpoints are per epoch, so it redoes the interrupted
epoch from that epoch's seeded start (same result).

Before Start the panel shows the run's estimated time and disk use: from the rate and size measured
on this machine for the same kind, preset and device (stored after every run), else from reference
measurements (:data:`REFERENCE`). A GAN's estimate includes preparing its patches (a second start
on unchanged data loads them cached: :mod:`lesion_studio.patches.set_cache`). A classifier's comes
from its images/s for that network, input size and device, measured by an earlier run or, before
the first, by a few timed steps in a background job (:mod:`lesion_studio.training.estimates`).
The default run is chosen by device: on a CPU it finishes in minutes.

torch is imported only inside the job (a worker thread), never when the panel is built.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from lesion_studio.classifier.config import PRESETS as CLASSIFIER_PRESETS
from lesion_studio.extras import TRAINING_HINT, training_available
from lesion_studio.gui import settings as prefs
from lesion_studio.gui.actions import ActionSpec
from lesion_studio.gui.job_queue import Job, JobQueue, JobState
from lesion_studio.gui.panels import report
from lesion_studio.gui.panels.loss_plot import CurvePlot
from lesion_studio.gui.panels.sample_grid import SampleGrid
from lesion_studio.jobs import ProgressEvent
from lesion_studio.models import layout
from lesion_studio.training import estimates, unit_config

log = logging.getLogger(__name__)

# The trainers' presets as the form shows them, read from the torch-free config modules:
# name → run length (GAN iterations), name → (epochs, input size) for the classifier.
UNIT_PRESETS: dict[str, int] = {name: unit_config.preset_config(name).iterations for name in unit_config.PRESETS}
#: The GAN run a CPU gets by default: the ``fast`` network for minutes, not the GPU's hours.
CPU_DEFAULT_ITERATIONS = 300
#: Reference measurements (2 CPU cores; one H200), per (kind, preset, lane): seconds per iteration
#: or epoch, and bytes written. The GAN figures: docs/synthesis.md and docs/experiments.md; sizes:
#: the model folder (weights, checkpoint with optimiser state, ONNX). Rates measured on this
#: machine replace them (QSettings "training/rate/...").
REFERENCE: dict[tuple[str, str, str], tuple[float, int]] = {
    ("unit", "tiny", "cpu"): (0.3, 14_000_000),
    ("unit", "fast", "cpu"): (1.03, 76_000_000),
    ("unit", "paper", "cpu"): (40.0, 1_200_000_000),
    ("unit", "tiny", "cuda"): (0.05, 14_000_000),
    ("unit", "fast", "cuda"): (0.102, 76_000_000),
    ("unit", "paper", "cuda"): (0.133, 1_200_000_000),
}
DRN_PRESETS: dict[str, tuple[int, int]] = {k: (v["epochs"], v["input_size"]) for k, v in CLASSIFIER_PRESETS.items()}
UNIT_SPLITS = {"train + unassigned": ["train", "unassigned"], "train only": ["train"]}
DEVICES = (("Auto", "auto"), ("CPU", "cpu"), ("GPU (CUDA)", "cuda"))
HIDDEN_LOSSES = {"total"}  # the weighted sum dwarfs the terms it adds up; it is in the status line instead
KINDS = (("GAN (UNIT) — lesion ↔ normal translator", "unit"), ("Classifier (DRN) — lesion / normal", "drn"))


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min" if minutes >= 10 else f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s left"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s left"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min left"


@dataclass(frozen=True)
class TrainingRequest:
    """Everything one training job needs; plain data, so the job runs without the panel."""

    kind: str  # "unit" or "drn"
    name: str
    preset: str
    length: int  # iterations (UNIT) or epochs (DRN)
    body_parts: tuple[str, ...] = ()
    splits: tuple[str, ...] = ("train", "unassigned")
    device: str = "auto"
    input_size: int | None = None  # DRN only
    resume: bool = False
    with_accepted_synthetic: bool = False  # DRN only: augmented training with vetted samples
    overrides: dict[str, Any] = field(default_factory=dict)  # further config fields (tests, experts)
    saved_config: dict[str, Any] | None = None  # a resumed classifier: its checkpoint's own config

    @property
    def unit_label(self) -> str:
        return "iteration" if self.kind == "unit" else "epoch"

    def title(self) -> str:
        what = "GAN" if self.kind == "unit" else "classifier"
        verb = "Resume" if self.resume else "Train"
        return f"{verb} {what} {self.name}"


def run_training(request: TrainingRequest, folder: Path, progress: Any, cancel: Any) -> Any:
    """The job: open the project on this thread's own connection and call the core trainer."""
    from lesion_studio.store.project import Project

    _leave_a_core_for_the_gui()
    project = Project.open(folder)
    try:
        if request.kind == "unit":
            from lesion_studio.training.unit_trainer import preset_config, train_unit

            cfg = preset_config(request.preset, iterations=request.length, body_parts=list(request.body_parts),
                                splits=list(request.splits), device=request.device, **request.overrides)
            return train_unit(project, cfg, name=request.name, resume=request.resume, progress=progress,
                              cancel=cancel)
        from lesion_studio.training.classifier_trainer import ClassifierConfig, preset, train_classifier

        if request.resume and request.saved_config is not None:  # exactly the paused run's settings
            cfg = ClassifierConfig.from_dict({**request.saved_config, **request.overrides})
        else:
            extra = {"input_size": request.input_size} if request.input_size else {}
            cfg = preset(request.preset, epochs=request.length, device=request.device, **extra, **request.overrides)
        parts = list(request.body_parts) or None
        synthetic: list = []
        if request.with_accepted_synthetic:
            from lesion_studio.classifier.data import accepted_training_samples

            synthetic, _ = accepted_training_samples(project, parts)
        return train_classifier(project, cfg, name=request.name, body_parts=parts, synthetic=synthetic,
                                resume=request.resume, progress=progress, cancel=cancel)
    finally:
        project.close()


def _leave_a_core_for_the_gui() -> None:
    """CPU training uses all cores but one: the GUI thread keeps one to stay responsive.

    Measured on a busy two-core machine: with torch's default two threads, their spin-waiting
    against the GUI thread made a 30-iteration tiny GAN run take 120 s instead of 15 s.
    """
    import os

    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))


def previous_history(folder: Path, request: TrainingRequest) -> list[tuple[int, dict[str, float]]]:
    """What a resumed run already did (loss per iteration / AUC per epoch), to continue the curves."""
    try:
        if request.kind == "unit":
            rows = json.loads((layout.unit_dir(folder, request.name) / layout.HISTORY).read_text())
            return [(i + 1, {k: v for k, v in row.items() if k not in HIDDEN_LOSSES}) for i, row in enumerate(rows)]
        last = layout.classifier_dir(folder, request.name) / layout.LAST
        meta = json.loads(layout.sidecar_path(last).read_text())
        return [(int(r["epoch"]), {"val AUC": r.get("val_auc")}) for r in meta.get("history", [])]
    except (OSError, ValueError, KeyError, TypeError):
        return []


QUALITY_TIP = ("Measured on validation windows the GAN never trains on. realism AUC: a classifier telling real "
               "from synthetic lesion windows (0.5 = indistinguishable, lower is better); realism, untouched: the "
               "same test on the source windows left as they were, the floor a generator starts from. lesion "
               "rate: synthetic "
               "windows a patch classifier calls lesion, as a fraction of the real-lesion rate (higher is better). "
               "drift: brightness/contrast change around the lesion core (the dark-square failure; lower is better).")


def quality_point(report: dict[str, Any]) -> dict[str, float | None]:
    """The curves of one quality report (the three numbers on a 0–1 scale; KID has its own scale),
    with the realism of the untouched source windows: the floor the realism curve is read against
    (reports made before it was measured draw no floor)."""
    h = report.get("headline") or {}
    return {"realism AUC": h.get("realism_auc"),
            "realism, untouched": (report.get("realism") or {}).get("untouched_auc"),
            "lesion rate (of real)": h.get("lesion_rate_ratio"), "drift": h.get("intensity_drift")}


def previous_quality(folder: Path, request: TrainingRequest) -> list[tuple[int, dict[str, float | None]]]:
    """The quality reports a resumed GAN run already made, to continue the Quality curves."""
    try:
        rows = json.loads((layout.unit_dir(folder, request.name) / layout.QUALITY_HISTORY).read_text())
        return [(int(r["iteration"]), quality_point(r)) for r in rows]
    except (OSError, ValueError, KeyError, TypeError):
        return []


@dataclass(frozen=True)
class PausedRun:
    """A run with a checkpoint short of its end, as its checkpoint describes it."""

    kind: str
    name: str
    preset: str
    done: int
    total: int
    body_parts: tuple[str, ...]
    splits: tuple[str, ...]
    device: str
    input_size: int | None = None
    config: dict[str, Any] = field(default_factory=dict, compare=False)

    def label(self) -> str:
        what, unit = ("GAN", "iteration") if self.kind == "unit" else ("classifier", "epoch")
        parts = "+".join(self.body_parts) or "all"
        return f"{what} {self.name} — {unit} {self.done:,} of {self.total:,} ({self.preset}, {parts}, {self.device})"

    def request(self, overrides: dict[str, Any] | None = None) -> TrainingRequest:
        return TrainingRequest(kind=self.kind, name=self.name, preset=self.preset, length=self.total,
                               body_parts=self.body_parts, splits=self.splits, device=self.device,
                               input_size=self.input_size, resume=True, overrides=dict(overrides or {}),
                               saved_config=self.config if self.kind == "drn" else None)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def resumable_runs(folder: Path) -> list[PausedRun]:
    """Paused (or interrupted) runs of a project: GAN checkpoints and classifier ``last`` checkpoints
    whose iteration or epoch is short of the run's own length. Reads JSON only (no torch)."""
    runs: list[PausedRun] = []
    models = folder / layout.MODELS
    for meta_path in sorted(models.glob(f"*/{layout.sidecar_path(layout.CHECKPOINT).name}")):
        meta = _read_json(meta_path)
        cfg = (meta or {}).get("config") or {}
        try:
            done, total = int(meta["iteration"]), int(cfg["iterations"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            continue
        if done < total:
            runs.append(PausedRun("unit", str(meta.get("name") or meta_path.parent.name),  # type: ignore[union-attr]
                                  str(cfg.get("preset", "fast")), done, total, tuple(cfg.get("body_parts") or ()),
                                  tuple(cfg.get("splits") or ("train", "unassigned")), str(cfg.get("device", "auto")),
                                  config=cfg))
    for meta_path in sorted((models / layout.CLASSIFIERS).glob(f"*/{layout.sidecar_path(layout.LAST).name}")):
        meta = _read_json(meta_path)
        cfg = (meta or {}).get("config") or {}
        try:
            done, total = int(meta["epoch"]), int(cfg["epochs"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            continue
        if done < total:
            runs.append(PausedRun("drn", str(meta.get("name") or meta_path.parent.name),  # type: ignore[union-attr]
                                  str(cfg.get("preset", "saved")), done, total, tuple(meta.get("body_parts") or ()),
                                  ("train",), str(cfg.get("device", "auto")), cfg.get("input_size"), config=cfg))
    return runs


def _rates() -> estimates.ClassifierRates:
    """Classifier rates measured on this machine, kept in the app's settings."""
    return estimates.ClassifierRates(prefs.app_settings().value, prefs.set_value)


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


class TrainingPanel(QWidget):
    """Settings form, controls, live plots and the shared job list."""

    job_submitted = Signal(object)  # Job

    def __init__(self, window: Any, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window_ = window
        self.session = session
        self.folder: Path = session.project.folder
        self.queue: JobQueue = window.job_queue
        self.job: Job | None = None  # the job the plots show
        self.request: TrainingRequest | None = None  # ... and its settings
        self._rate_marks: tuple[float, int] | None = None  # (time, iteration) of the shown job's first step
        self._rate: tuple[float, int] | None = None  # (seconds, steps) measured since then
        self._pending: TrainingRequest | None = None  # waiting for the GPU probe
        self._requests: dict[int, TrainingRequest] = {}  # job id → settings, for this panel's jobs
        self._name_edited = False
        self.overrides: dict[str, Any] = {}  # extra config fields for every run (tests, experts)
        self._memos: dict[tuple, Any] = {}  # what estimates read from the database, per form settings
        self._probing = False  # a classifier rate is being timed
        self._probe_timer = QTimer(self, singleShot=True, interval=1500)  # settle the form before timing
        self._probe_timer.timeout.connect(self._probe_rate)
        for signal in (session.image_changed, session.regions_changed, session.images_reloaded):
            signal.connect(self._data_changed)
        self._build()
        self._fill_body_parts()
        self._kind_changed()
        window.listen(self.queue.gpu_probe.ready, self._gpu_known)
        if self.queue.gpu_probe.available is not None:
            self._gpu_known(self.queue.gpu_probe.available, self.queue.gpu_probe.name)
        session.models_changed.connect(self._refresh_names)
        self._refresh_names()
        session.models_changed.connect(self.refresh_paused)
        self.refresh_paused()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        self.kind_combo = QComboBox()
        for text, key in KINDS:
            self.kind_combo.addItem(text, key)
        self.kind_combo.currentIndexChanged.connect(self._kind_changed)
        self.parts_list = QListWidget()
        self.parts_list.setMaximumHeight(80)
        self.parts_list.setToolTip("Body parts to train on; none ticked means all of them")
        self.parts_list.itemChanged.connect(self._suggest_name)
        self.split_combo = QComboBox()
        self.preset_combo = QComboBox()
        self.preset_combo.currentIndexChanged.connect(self._preset_changed)
        self.length_spin = QSpinBox()
        self.length_spin.setRange(1, 10_000_000)
        self.length_spin.setGroupSeparatorShown(True)
        self.length_spin.valueChanged.connect(lambda _v: self.update_estimate())
        self.input_spin = QSpinBox()
        self.input_spin.setRange(16, 2048)
        self.input_spin.setSingleStep(16)
        self.input_spin.setSuffix(" px")
        self.input_spin.setToolTip("Classifier input size (whole radiograph, letterboxed)")
        self.device_combo = QComboBox()
        for text, key in DEVICES:
            self.device_combo.addItem(text, key)
        self.device_combo.currentIndexChanged.connect(lambda _i: self._device_changed())
        self._set_gpu_item(False, "Checking for a CUDA GPU…")
        self.name_edit = QLineEdit()
        self.name_edit.setToolTip("Name of the model in the project's registry (models/<name>)")
        self.name_edit.textEdited.connect(self._name_typed)
        self.completer = QCompleter([], self)
        self.name_edit.setCompleter(self.completer)

        form = QFormLayout()
        form.addRow("Train", self.kind_combo)
        form.addRow("Body parts", self.parts_list)
        self.split_label = QLabel("Data split")
        form.addRow(self.split_label, self.split_combo)
        form.addRow("Preset", self.preset_combo)
        self.length_label = QLabel("Iterations")
        form.addRow(self.length_label, self.length_spin)
        self.input_label = QLabel("Input size")
        form.addRow(self.input_label, self.input_spin)
        self.synthetic_check = QCheckBox("Add accepted synthetic samples (augmented training)")
        self.synthetic_check.setToolTip("Vetted synthetic lesions (gallery 'accept', synthesis panel 'Keep') "
                                        "made from training images join the training set as lesions")
        form.addRow("", self.synthetic_check)
        form.addRow("Device", self.device_combo)
        form.addRow("Model name", self.name_edit)
        self.estimate_label = QLabel("")
        self.estimate_label.setObjectName("training_estimate")
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setToolTip("From the rate and size measured here for the same kind, preset and device "
                                       "(after each run), else from reference measurements")
        form.addRow("Estimate", self.estimate_label)
        self.paused_combo = QComboBox()
        self.paused_combo.setObjectName("paused_runs")
        self.paused_combo.setToolTip("Runs stopped at a checkpoint; Resume continues the chosen one with its own "
                                     "settings (length, preset, body parts)")
        self.paused_combo.currentIndexChanged.connect(lambda _i: self._paused_chosen())
        form.addRow("Paused runs", self.paused_combo)

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Queue the run (it starts when the device is free)")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Pause (stop at checkpoint)")
        self.stop_button.setToolTip("Stop after the current step and keep a checkpoint; Resume continues it. "
                                    "Nothing stays in memory while paused.")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the chosen paused run from its checkpoint, exactly as it was set up")
        self.resume_button.clicked.connect(self.resume)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.resume_button):
            buttons.addWidget(b)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m")
        self.eta_label = QLabel("")
        self.status_label = QLabel("Idle." if training_available() else TRAINING_HINT)
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.loss_plot = CurvePlot("Losses", "iteration", "loss")
        self.auc_plot = CurvePlot("Validation AUC", "epoch", "AUC", symbols=True)
        self.auc_plot.setYRange(0.0, 1.0)
        self.sample_grid = SampleGrid()
        self.quality_plot = CurvePlot("Generator quality (validation windows, every checkpoint)", "iteration",
                                      "fraction", symbols=True)
        self.quality_plot.setToolTip(QUALITY_TIP)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.loss_plot, "Losses")
        self.tabs.addTab(self.sample_grid, "Samples")
        self.tabs.addTab(self.quality_plot, "Quality")
        self.tabs.addTab(self.auc_plot, "Validation AUC")

        self.jobs_view = QListView()
        self.jobs_view.setModel(self.queue)
        self.jobs_view.setMaximumHeight(110)
        self.jobs_view.setToolTip("Every long job of this window: one runs per device, the others wait")
        self.cancel_job_button = QPushButton("Cancel selected job")
        self.cancel_job_button.clicked.connect(self.cancel_selected_job)
        self.clear_jobs_button = QPushButton("Clear finished")
        self.clear_jobs_button.clicked.connect(self.queue.clear_finished)
        job_buttons = QHBoxLayout()
        job_buttons.addWidget(self.cancel_job_button)
        job_buttons.addWidget(self.clear_jobs_button)
        jobs_box = QGroupBox("Jobs")
        jobs_layout = QVBoxLayout(jobs_box)
        jobs_layout.addWidget(self.jobs_view)
        jobs_layout.addLayout(job_buttons)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.eta_label)
        layout.addLayout(bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(jobs_box)
        self._update_buttons()

    def _fill_body_parts(self) -> None:
        parts = sorted({r.body_part for r in self.session.project.images() if r.body_part})
        with QSignalBlocker(self.parts_list):
            self.parts_list.clear()
            for part in parts:
                item = QListWidgetItem(part)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Unchecked)
                self.parts_list.addItem(item)

    # ------------------------------------------------------------------ form logic
    @property
    def kind(self) -> str:
        return str(self.kind_combo.currentData())

    def _kind_changed(self) -> None:
        unit = self.kind == "unit"
        with QSignalBlocker(self.preset_combo):
            self.preset_combo.clear()
            self.preset_combo.addItems(list(UNIT_PRESETS if unit else DRN_PRESETS))
            self.preset_combo.setCurrentText("fast" if unit else "cpu")
        self.split_combo.clear()
        if unit:
            self.split_combo.addItems(list(UNIT_SPLITS))
            self.split_combo.setToolTip("The GAN never sees validation or test images")
        else:
            self.split_combo.addItem("train (best epoch chosen on val)")
            self.split_combo.setToolTip("The classifier trains on the training split and is validated on val")
        self.split_combo.setEnabled(unit)
        self.length_label.setText("Iterations" if unit else "Epochs")
        self.input_label.setVisible(not unit)
        self.input_spin.setVisible(not unit)
        self.synthetic_check.setVisible(not unit)
        self._preset_changed()

    def lane(self) -> str:
        """The device the run would get: "cpu" until a GPU is known and allowed."""
        return self.queue.lane(str(self.device_combo.currentData()))

    def default_length(self, preset: str) -> int:
        """A preset's run length; on a CPU the ``fast`` GAN gets minutes, not the GPU's hours."""
        if preset == "fast" and self.lane() == "cpu":
            return CPU_DEFAULT_ITERATIONS
        return UNIT_PRESETS[preset]

    def _device_changed(self) -> None:
        if self.kind == "unit" and self.length_spin.value() in {CPU_DEFAULT_ITERATIONS, UNIT_PRESETS["fast"]} \
                and self.preset_combo.currentText() == "fast":
            self.length_spin.setValue(self.default_length("fast"))  # still the default: follow the device
        self.update_estimate()

    def _preset_changed(self) -> None:
        preset = self.preset_combo.currentText()
        if self.kind == "unit" and preset in UNIT_PRESETS:
            self.length_spin.setValue(self.default_length(preset))
        elif preset in DRN_PRESETS:
            epochs, size = DRN_PRESETS[preset]
            self.length_spin.setValue(epochs)
            self.input_spin.setValue(size)
        self._suggest_name()
        self.update_estimate()

    # ------------------------------------------------------------------ estimates
    def estimate(self) -> tuple[float, int, str] | None:
        """(seconds, bytes, source) for the form's run, or None when nothing is known yet."""
        kind, preset, lane = self.kind, self.preset_combo.currentText(), self.lane()
        if kind == "drn":
            return self._classifier_estimate(preset, lane)
        stored = prefs.app_settings().value(f"training/rate/{kind}/{preset}/{lane}")
        size = prefs.app_settings().value(f"training/disk/{kind}/{preset}")
        ref = REFERENCE.get((kind, preset, lane))
        try:
            rate = float(stored) if stored is not None else None
            disk = int(size) if size is not None else None
        except (TypeError, ValueError):
            rate = disk = None
        source = "measured here"
        if rate is None:
            if ref is None:
                return None
            rate, source = ref[0], "reference measurement"
        if disk is None:
            disk = ref[1] if ref is not None else 0
        prep = self.preparation()
        return rate * self.length_spin.value() + (prep.seconds if prep else 0.0), disk, source

    def _memo(self, key: tuple, compute: Any) -> Any:
        """``compute()`` once per key until the project's images or regions change (estimates read
        the database: ~0.1 s on FracAtlas, too slow for every click of the length box)."""
        if key not in self._memos:
            try:
                self._memos[key] = compute()
            except Exception:  # noqa: BLE001 - an estimate never breaks the form
                log.debug("no estimate for %s", key, exc_info=True)
                self._memos[key] = None
        return self._memos[key]

    def _data_changed(self, *_args: Any) -> None:
        self._memos.clear()  # re-read at the next estimate, not on each edit

    def preparation(self) -> Any:
        """The GAN form's patch preparation (:class:`~lesion_studio.patches.set_cache.PreparationEstimate`)."""
        from lesion_studio.patches.set_cache import preparation_estimate

        preset, parts, split = self.preset_combo.currentText(), self.body_parts(), self.split_combo.currentText()

        def compute() -> Any:
            cfg = unit_config.preset_config(preset, body_parts=parts, **self.overrides,
                                            splits=UNIT_SPLITS.get(split, ["train", "unassigned"]))
            return preparation_estimate(self.session.project, body_parts=cfg.body_parts or None,
                                        splits=cfg.splits or None, params=cfg.patch_params())
        return self._memo(("unit", preset, tuple(parts), split, repr(sorted(self.overrides.items()))), compute)

    def _classifier_config(self) -> Any:
        from lesion_studio.classifier.config import preset

        return preset(self.preset_combo.currentText(), epochs=self.length_spin.value(),
                      input_size=self.input_spin.value(), **self.overrides)

    def _classifier_estimate(self, preset_name: str, lane: str) -> tuple[float, int, str] | None:
        """From the images/s stored for this network, input size and device; else a timed-steps job."""
        try:
            cfg = self._classifier_config()
        except Exception:  # noqa: BLE001 - a half-edited form
            return None
        parts, synthetic = self.body_parts() or None, self.synthetic_check.isChecked()
        workload = self._memo(("drn", tuple(parts or ()), synthetic, cfg.tta), lambda: estimates.classifier_workload(
            self.session.project, cfg, parts, with_accepted_synthetic=synthetic))
        est = _rates().estimate(replace(workload, epochs=cfg.epochs), cfg, lane) if workload else None
        if est is None:
            self._probe_timer.start()  # none yet: time a few steps once the form settles
            return None
        disk = prefs.app_settings().value(f"training/disk/drn/{preset_name}")
        return est[0], int(disk) if str(disk or "").isdigit() else 0, est[1]

    def _probe_rate(self) -> None:
        """Time a few classifier steps in a background job (the device's queue) when nothing is stored."""
        lane = self.lane()
        if (self.kind != "drn" or not self.isVisible() or not training_available() or self._probing
                or self.queue.running(lane) or self.queue.queued(lane)):
            return  # a busy device would be timed with its other job: the form asks again later
        cfg = replace(self._classifier_config(), device=lane)
        if _rates().rate(cfg, lane) is not None:
            return

        def job_fn(progress, cancel):  # noqa: ANN001, ANN202
            _leave_a_core_for_the_gui()
            return estimates.measure_classifier_rate(cfg, progress=progress, cancel=cancel)

        self._probing = True
        job = self.queue.submit(job_fn, f"Time classifier steps ({cfg.arch}, {cfg.input_size} px)", lane,
                                kind="estimate")
        job.finished.connect(lambda _state, job=job: self._rate_probed(job, cfg, lane))
        self.update_estimate()

    def _rate_probed(self, job: Job, cfg: Any, lane: str) -> None:
        self._probing = False
        if job.state == JobState.DONE:
            _rates().store_probe(cfg, lane, float(job.result))
        self.update_estimate()

    def update_estimate(self) -> None:
        est = self.estimate()
        lane = "GPU" if self.lane() == "cuda" else "CPU"
        if est is None:
            if self.kind == "drn" and self._probing:
                self.estimate_label.setText(f"Timing a few training steps on the {lane}…")
                return
            self.estimate_label.setText(f"Measured after the first {'epoch' if self.kind == 'drn' else 'steps'} "
                                        f"on the {lane} (no stored rate yet).")
            return
        seconds, disk, source = est
        text = f"About {format_duration(seconds)} on the {lane}"
        prep = self.preparation() if self.kind == "unit" else None
        if prep is not None:
            text += (f" (patches of {prep.images:,} images cached)" if prep.cached else
                     f" (with about {format_duration(prep.seconds)} preparing patches of {prep.images:,} images)")
        text += f", {format_bytes(disk)} on disk" if disk else ""
        self.estimate_label.setText(f"{text} ({source}).")

    def _measure(self, event: ProgressEvent) -> None:
        import time

        now = time.perf_counter()
        if self._rate_marks is None:
            self._rate_marks = (now, event.done)  # the first step includes start-up: count from here
            return
        t0, d0 = self._rate_marks
        if event.done > d0:
            self._rate = (now - t0, event.done - d0)

    def _store_measurements(self, request: TrainingRequest) -> None:
        if self._rate is not None and self._rate[1] >= 3:
            seconds, steps = self._rate
            lane = self.queue.lane(request.device)
            prefs.set_value(f"training/rate/{request.kind}/{request.preset}/{lane}", seconds / steps)
        if self._rate is not None and request.kind == "drn":
            self._store_classifier_rate(request, *self._rate)
        folder = self.folder / "models" / (request.name if request.kind == "unit" else f"classifiers/{request.name}")
        size = folder_bytes(folder)
        if size:
            prefs.set_value(f"training/disk/{request.kind}/{request.preset}", size)
        self._rate_marks = self._rate = None
        self.update_estimate()

    def _store_classifier_rate(self, request: TrainingRequest, seconds: float, epochs: int) -> None:
        """A finished classifier run's images/s, for the next estimate of the same network, size and device."""
        from lesion_studio.classifier.config import ClassifierConfig, preset

        try:
            extra = {"input_size": request.input_size} if request.input_size else {}
            cfg = ClassifierConfig.from_dict(request.saved_config) if request.saved_config is not None else \
                preset(request.preset, epochs=request.length, **extra, **request.overrides)
            workload = estimates.classifier_workload(self.session.project, cfg, list(request.body_parts) or None,
                                                     with_accepted_synthetic=request.with_accepted_synthetic)
            _rates().store_run(workload, cfg, self.queue.lane(request.device), seconds / epochs)
        except Exception:  # noqa: BLE001 - a measurement never breaks the panel
            log.debug("classifier rate not stored", exc_info=True)

    # ------------------------------------------------------------------ paused runs
    def refresh_paused(self, select: str | None = None) -> None:
        """Re-read the resumable runs from their checkpoints (they survive a restart)."""
        current = select or (self.paused_combo.currentData().name if self.paused_combo.currentData() else None)
        runs = resumable_runs(self.folder)
        with QSignalBlocker(self.paused_combo):
            self.paused_combo.clear()
            for run in runs:
                self.paused_combo.addItem(run.label(), run)
            if not runs:
                self.paused_combo.addItem("(none)", None)
            names = [r.name for r in runs]
            self.paused_combo.setCurrentIndex(names.index(current) if current in names else 0)
        self.paused_combo.setEnabled(bool(runs))
        self._update_buttons()

    def paused_runs(self) -> list[PausedRun]:
        return [self.paused_combo.itemData(i) for i in range(self.paused_combo.count())
                if self.paused_combo.itemData(i) is not None]

    def _paused_chosen(self) -> None:
        """Show the chosen paused run's own settings in the form (Resume uses them, not the form)."""
        run: PausedRun | None = self.paused_combo.currentData()
        if run is None:
            return
        self.kind_combo.setCurrentIndex(self.kind_combo.findData(run.kind))
        if self.preset_combo.findText(run.preset) >= 0:
            self.preset_combo.setCurrentText(run.preset)
        self.length_spin.setValue(run.total)
        if run.input_size:
            self.input_spin.setValue(int(run.input_size))
        self.set_body_parts(list(run.body_parts))
        self._name_edited = True
        self.name_edit.setText(run.name)
    def body_parts(self) -> list[str]:
        return [self.parts_list.item(i).text() for i in range(self.parts_list.count())
                if self.parts_list.item(i).checkState() == Qt.CheckState.Checked]

    def set_body_parts(self, parts: list[str]) -> None:
        for i in range(self.parts_list.count()):
            item = self.parts_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in parts else Qt.CheckState.Unchecked)

    def _name_typed(self, _text: str) -> None:
        self._name_edited = True

    def _suggest_name(self, *_args: Any) -> None:
        if self._name_edited:
            return
        parts = "+".join(self.body_parts()) or "all"
        prefix = "unit" if self.kind == "unit" else "drn"
        self.name_edit.setText(f"{prefix}-{parts}-{self.preset_combo.currentText()}")

    def _refresh_names(self) -> None:
        from PySide6.QtCore import QStringListModel

        try:
            names = [m.name for m in self.session.project.models()]
        except Exception:  # the project was closed under us; the list is only a convenience
            names = []
        self.completer.setModel(QStringListModel(names, self.completer))

    def request_from_form(self, resume: bool = False) -> TrainingRequest:
        unit = self.kind == "unit"
        return TrainingRequest(
            kind=self.kind, name=self.name_edit.text().strip(), preset=self.preset_combo.currentText(),
            length=self.length_spin.value(), body_parts=tuple(self.body_parts()),
            splits=tuple(UNIT_SPLITS.get(self.split_combo.currentText(), ["train", "unassigned"])),
            device=str(self.device_combo.currentData()), input_size=None if unit else self.input_spin.value(),
            resume=resume, with_accepted_synthetic=not unit and self.synthetic_check.isChecked(),
            overrides=dict(self.overrides))

    # ------------------------------------------------------------------ devices
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self.queue.gpu_probe.start()  # first time the panel is seen: find out about the GPU (no torch)

    def _set_gpu_item(self, enabled: bool, tip: str) -> None:
        model = self.device_combo.model()
        assert isinstance(model, QStandardItemModel)
        item = model.item(2)
        item.setEnabled(enabled)
        item.setToolTip(tip)
        if not enabled and self.device_combo.currentIndex() == 2:
            self.device_combo.setCurrentIndex(0)
        self.device_combo.setToolTip(tip)

    def _gpu_known(self, available: bool, name: str) -> None:
        if available:
            self._set_gpu_item(True, f"GPU: {name}")
        else:
            self._set_gpu_item(False, "No CUDA GPU (NVIDIA driver) on this machine; training runs on the CPU.")
        self._device_changed()  # defaults and estimate follow the device "auto" now means
        if self._pending is not None:
            request, self._pending = self._pending, None
            self._submit(request)

    # ------------------------------------------------------------------ actions
    def start(self) -> Job | None:
        if not training_available():  # a reading build: say how to get training instead of failing
            self._message(TRAINING_HINT, "warning")
            return None
        return self._request(self.request_from_form(resume=False))

    def resume(self) -> Job | None:
        """Continue the chosen paused run exactly as it was set up (never the form's settings)."""
        if not training_available():
            self._message(TRAINING_HINT, "warning")
            return None
        run: PausedRun | None = self.paused_combo.currentData()
        if run is None:
            self._message("There is no paused run to resume.", "info")
            return None
        if any(j.active and r.name == run.name for jid, r in self._requests.items()
               for j in self.queue.jobs() if j.id == jid):
            self._message(f"{run.name} is already queued or running.", "warning")
            return None
        return self._request(run.request(self.overrides))

    def stop(self) -> None:
        if self.job is not None and self.job.active:
            self.queue.cancel(self.job)
            if self.job.state == JobState.RUNNING:
                self.status_label.setText(f"Stopping {self.job.title} at the next checkpoint…")
                self.stop_button.setEnabled(False)
                self.stop_button.setText("Stopping…")

    def cancel_selected_job(self) -> None:
        index = self.jobs_view.currentIndex()
        job = self.queue.job_at(index.row()) if index.isValid() else None
        if job is not None:
            self.queue.cancel(job)

    def raise_panel(self) -> None:
        dock = self.parentWidget()
        if dock is not None:
            dock.show()
            dock.raise_()
        self.name_edit.setFocus()

    def _request(self, request: TrainingRequest) -> Job | None:
        if not request.name:
            self._message("Give the model a name.", "warning")
            return None
        if "/" in request.name or "\\" in request.name:
            self._message("A model name cannot contain / or \\.", "warning")
            return None
        if self.queue.gpu_probe.available is None and request.device == "auto":
            # which queue an "auto" job belongs to depends on the GPU; ask once, then submit
            self._pending = request
            self.status_label.setText("Checking for a CUDA GPU…")
            self.queue.gpu_probe.start()
            return None
        return self._submit(request)

    def _submit(self, request: TrainingRequest) -> Job:
        key = self.queue.lane(request.device)
        folder = self.folder

        def job_fn(progress, cancel):  # noqa: ANN001, ANN202
            return run_training(request, folder, progress, cancel)

        job = self.queue.submit(job_fn, request.title(), key, kind=request.kind, resumable=True)
        self._requests[job.id] = request
        if job.state == JobState.RUNNING:
            self._show_job(job)
        job.started.connect(self._job_started)  # bound slots: dropped with the panel
        job.finished.connect(self._job_finished)
        waiting = len(self.queue.queued(key)) - (1 if job.state == JobState.QUEUED else 0)
        if job.state == JobState.QUEUED:
            self.status_label.setText(f"{job.title} is queued behind {waiting + 1} job(s) on {key}.")
        self.job_submitted.emit(job)
        self._update_buttons()
        return job

    # ------------------------------------------------------------------ progress
    def _job_started(self) -> None:
        job = self.sender()
        if isinstance(job, Job):
            self._show_job(job)

    def _show_job(self, job: Job) -> None:
        """Point the plots at ``job`` (the newest of this panel's jobs to start)."""
        if job is self.job:
            return
        request = self._requests[job.id]
        self.job, self.request = job, request
        self._rate_marks = self._rate = None
        job.progressed.connect(self._progressed)
        self.loss_plot.clear_curves()
        self.auc_plot.clear_curves()
        self.quality_plot.clear_curves()
        self.sample_grid.clear()
        unit = request.kind == "unit"
        self.loss_plot.setLabel("bottom", "iteration" if unit else "step")
        self.tabs.setCurrentWidget(self.loss_plot if unit else self.auc_plot)
        if request.resume:
            history = previous_history(self.folder, request)
            (self.loss_plot if unit else self.auc_plot).extend(history)
            if unit:
                self.quality_plot.extend(previous_quality(self.folder, request))
        self.progress.setRange(0, 0)  # busy until the trainer reports a total
        self.eta_label.setText("")
        self.status_label.setText(f"{job.title}: preparing data…")
        self._update_buttons()

    def _progressed(self, event: ProgressEvent) -> None:
        if self.sender() is not self.job:
            return
        data = event.data
        if event.stage in ("train-gan", "classifier epoch"):
            self._measure(event)
        if event.stage == "train-gan":
            self._bar(event)
            losses = {k: v for k, v in data.get("losses", {}).items() if k not in HIDDEN_LOSSES}
            self.loss_plot.add(event.done, losses)
            if "samples" in data:
                self.sample_grid.set_samples(data["samples"], data.get("iteration"))
            if "quality" in data:
                self.quality_plot.add(event.done, quality_point(data["quality"]))
                self.quality_plot.flush()
            total = data.get("losses", {}).get("total")
            weighted = f" (weighted total {total:.3f})" if total is not None else ""
            self.status_label.setText(f"Iteration {event.done}/{event.total}: {event.message}{weighted}")
        elif event.stage == "training classifier":
            self._bar(event)
            self.loss_plot.add(event.done, {"train loss": data.get("loss")})
            self.status_label.setText(event.message)
        elif event.stage == "classifier epoch":
            self.auc_plot.add(int(data.get("epoch", event.done)), {"val AUC": data.get("val_auc")})
            self.auc_plot.flush()
            self.status_label.setText(f"Epoch {event.done}/{event.total}: {event.message}")
        else:  # data preparation (patches, image cache)
            if event.total:
                self.progress.setRange(0, event.total)
                self.progress.setValue(min(event.done, event.total))
            self.status_label.setText(f"Preparing: {event.stage} {event.done}"
                                      + (f"/{event.total}" if event.total else ""))

    def _bar(self, event: ProgressEvent) -> None:
        if event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(min(event.done, event.total))
        self.eta_label.setText(format_eta(event.eta_s))

    def _job_finished(self, _state: str) -> None:
        job = self.sender()
        if not isinstance(job, Job) or job.id not in self._requests:
            return
        request = self._requests.pop(job.id)
        result = job.result
        shown = job is self.job
        level = "info"
        if job.state == JobState.DONE:
            if request.kind == "unit":
                text = f"GAN {request.name} finished at iteration {result.iteration} and is in the model registry."
            else:
                res, _model_id = result
                auc = f"; best validation AUC {res.val_auc:.3f} (epoch {res.epoch})" if res.val_auc is not None else ""
                text = f"Classifier {request.name} finished{auc}; it is in the model registry."
            self._models_changed()
        elif job.state in (JobState.CANCELLED, JobState.PAUSED):
            if job.started_at is None:
                text = f"{job.title} was removed from the queue."
            elif request.kind == "unit" and result is not None:
                text = (f"Paused {request.name} at iteration {result.iteration} of {result.iterations}; the "
                        "checkpoint is saved. Resume continues exactly from there.")
                self._models_changed()  # a paused GAN is registered too (marked incomplete)
            elif request.kind == "drn":
                text = (f"Paused {request.name}. Finished epochs are checkpointed; Resume redoes the interrupted "
                        "epoch from its start (the same result as an uninterrupted run).")
            else:
                text = f"{job.title} was stopped before training began."
        else:
            text, level = f"{job.title} failed: {job.error}", "error"
        if shown and job.started_at is not None:
            self._store_measurements(request)
        self.refresh_paused(select=request.name)
        self._message(text, level)
        if shown:
            self.status_label.setText(text)
            self.eta_label.setText("")
            if job.state == JobState.DONE:
                self.progress.setRange(0, max(1, self.progress.maximum()))
                self.progress.setValue(self.progress.maximum())
            elif self.progress.maximum() == 0:
                self.progress.setRange(0, 1)
            self.loss_plot.flush()
        self._update_buttons()

    def _models_changed(self) -> None:
        session = getattr(self.window_, "session", None)
        if session is not None and session.folder == self.folder:
            session.models_changed.emit()

    def _message(self, text: str, level: str) -> None:
        report(self.window_, self.status_label, text, level)

    def _update_buttons(self) -> None:
        running = self.job is not None and self.job.active
        stopping = running and self.job is not None and self.job.stopping
        self.stop_button.setEnabled(running and not stopping)
        if not stopping:
            self.stop_button.setText("Pause (stop at checkpoint)")
        self.resume_button.setEnabled(not running and self.paused_combo.currentData() is not None
                                      and training_available())
        self.start_button.setEnabled(training_available())  # a reading build says why instead


#: The panel's actions (built by the main window from the panel's spec).
ACTIONS = (
    ActionSpec("show_training", "&Training…", "Tools", "training.raise_panel", (),
               "Train a GAN or a classifier on this project", section="train", needs_project=True),
    ActionSpec("stop_training", "&Pause training (stop at checkpoint)", "Tools", "training.stop", (),
               "Stop the training shown in the Training panel at a checkpoint", needs_project=True),
)
