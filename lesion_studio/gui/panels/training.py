"""The Training panel: launch, watch, stop and resume GAN (UNIT) and classifier (DRN) training.

The panel only gathers settings and draws progress. The work is the core trainers'
(:func:`~lesion_studio.training.unit_trainer.train_unit`,
:func:`~lesion_studio.training.classifier_trainer.train_classifier`), submitted as a job to the
window's :class:`~lesion_studio.gui.job_queue.JobQueue` (one heavy job per device; others wait).
Their progress events drive the bar and ETA, the loss curves, the grid of translated samples
(GAN) and the per-epoch validation AUC (classifier).

"Pause" is honest about what it is: the trainers stop at the next iteration (GAN) or batch
(classifier) and keep a checkpoint; **Resume** continues from it. The GAN resumes exactly where it
stopped and draws the same batches and noise as an uninterrupted run; the classifier's checkpoints
are per epoch, so it redoes the interrupted epoch from that epoch's seeded start (same result).

torch is imported only inside the job (a worker thread), never when the panel is built.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
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
from lesion_studio.gui.actions import ActionSpec, register
from lesion_studio.gui.job_queue import Job, JobQueue, JobState, device_key
from lesion_studio.gui.panels import report
from lesion_studio.gui.panels.loss_plot import CurvePlot
from lesion_studio.gui.panels.sample_grid import SampleGrid
from lesion_studio.jobs import ProgressEvent
from lesion_studio.models import layout
from lesion_studio.training import unit_config

log = logging.getLogger(__name__)

# The trainers' presets as the form shows them, read from the torch-free config modules:
# name → run length (GAN iterations), name → (epochs, input size) for the classifier.
UNIT_PRESETS: dict[str, int] = {name: unit_config.preset_config(name).iterations for name in unit_config.PRESETS}
DRN_PRESETS: dict[str, tuple[int, int]] = {k: (v["epochs"], v["input_size"]) for k, v in CLASSIFIER_PRESETS.items()}
UNIT_SPLITS = {"train + unassigned": ["train", "unassigned"], "train only": ["train"]}
DEVICES = (("Auto", "auto"), ("CPU", "cpu"), ("GPU (CUDA)", "cuda"))
HIDDEN_LOSSES = {"total"}  # the weighted sum dwarfs the terms it adds up; it is in the status line instead
KINDS = (("GAN (UNIT) — lesion ↔ normal translator", "unit"), ("Classifier (DRN) — lesion / normal", "drn"))


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
        from lesion_studio.training.classifier_trainer import preset, train_classifier

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
               "from synthetic lesion windows (0.5 = indistinguishable, lower is better). lesion rate: synthetic "
               "windows a patch classifier calls lesion, as a fraction of the real-lesion rate (higher is better). "
               "drift: brightness/contrast change around the lesion core (the dark-square failure; lower is better).")


def quality_point(report: dict[str, Any]) -> dict[str, float | None]:
    """The curves of one quality report (the three numbers on a 0–1 scale; KID has its own scale)."""
    h = report.get("headline") or {}
    return {"realism AUC": h.get("realism_auc"), "lesion rate (of real)": h.get("lesion_rate_ratio"),
            "drift": h.get("intensity_drift")}


def previous_quality(folder: Path, request: TrainingRequest) -> list[tuple[int, dict[str, float | None]]]:
    """The quality reports a resumed GAN run already made, to continue the Quality curves."""
    try:
        rows = json.loads((layout.unit_dir(folder, request.name) / layout.QUALITY_HISTORY).read_text())
        return [(int(r["iteration"]), quality_point(r)) for r in rows]
    except (OSError, ValueError, KeyError, TypeError):
        return []


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
        self.last_stopped: TrainingRequest | None = None  # what Resume continues
        self._pending: TrainingRequest | None = None  # waiting for the GPU probe
        self._requests: dict[int, TrainingRequest] = {}  # job id → settings, for this panel's jobs
        self._name_edited = False
        self.overrides: dict[str, Any] = {}  # extra config fields for every run (tests, experts)
        self._build()
        self._fill_body_parts()
        self._kind_changed()
        self.queue.gpu_probe.ready.connect(self._gpu_known)
        if self.queue.gpu_probe.available is not None:
            self._gpu_known(self.queue.gpu_probe.available, self.queue.gpu_probe.name)
        session.models_changed.connect(self._refresh_names)
        self._refresh_names()

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
        self.input_spin = QSpinBox()
        self.input_spin.setRange(16, 2048)
        self.input_spin.setSingleStep(16)
        self.input_spin.setSuffix(" px")
        self.input_spin.setToolTip("Classifier input size (whole radiograph, letterboxed)")
        self.device_combo = QComboBox()
        for text, key in DEVICES:
            self.device_combo.addItem(text, key)
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

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Queue the run (it starts when the device is free)")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Pause (stop at checkpoint)")
        self.stop_button.setToolTip("Stop after the current step and keep a checkpoint; Resume continues it. "
                                    "Nothing stays in memory while paused.")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the named run from its last checkpoint "
                                      "(the GAN keeps its saved settings; only the length and device change)")
        self.resume_button.clicked.connect(self.resume)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.resume_button):
            buttons.addWidget(b)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m")
        self.eta_label = QLabel("")
        self.status_label = QLabel("Idle.")
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

    def _preset_changed(self) -> None:
        preset = self.preset_combo.currentText()
        if self.kind == "unit" and preset in UNIT_PRESETS:
            self.length_spin.setValue(UNIT_PRESETS[preset])
        elif preset in DRN_PRESETS:
            epochs, size = DRN_PRESETS[preset]
            self.length_spin.setValue(epochs)
            self.input_spin.setValue(size)
        self._suggest_name()

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
        if self._pending is not None:
            request, self._pending = self._pending, None
            self._submit(request)

    # ------------------------------------------------------------------ actions
    def start(self) -> Job | None:
        return self._request(self.request_from_form(resume=False))

    def resume(self) -> Job | None:
        base = self.last_stopped if self.last_stopped and self.last_stopped.name == self.name_edit.text().strip() \
            else self.request_from_form()
        return self._request(replace(base, resume=True, length=self.length_spin.value(),
                                     device=str(self.device_combo.currentData())))

    def stop(self) -> None:
        if self.job is not None and self.job.active:
            self.queue.cancel(self.job)
            if self.job.state == JobState.RUNNING:
                self.status_label.setText(f"Stopping {self.job.title} at the next checkpoint…")

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
        key = device_key(request.device, self.queue.gpu_probe.available)
        folder = self.folder

        def job_fn(progress, cancel):  # noqa: ANN001, ANN202
            return run_training(request, folder, progress, cancel)

        job = self.queue.submit(job_fn, request.title(), key, kind=request.kind)
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
            self.last_stopped = None
            if request.kind == "unit":
                text = f"GAN {request.name} finished at iteration {result.iteration} and is in the model registry."
            else:
                res, _model_id = result
                auc = f"; best validation AUC {res.val_auc:.3f} (epoch {res.epoch})" if res.val_auc is not None else ""
                text = f"Classifier {request.name} finished{auc}; it is in the model registry."
            self._models_changed()
        elif job.state == JobState.CANCELLED:
            if job.started_at is None:
                text = f"{job.title} was removed from the queue."
            elif request.kind == "unit" and result is not None:
                text = (f"Paused {request.name} at iteration {result.iteration} of {result.iterations}; the "
                        "checkpoint is saved. Resume continues exactly from there.")
                self.last_stopped = request
                self._models_changed()  # a paused GAN is registered too (marked incomplete)
            elif request.kind == "drn":
                text = (f"Paused {request.name}. Finished epochs are checkpointed; Resume redoes the interrupted "
                        "epoch from its start (the same result as an uninterrupted run).")
                self.last_stopped = request
            else:
                text = f"{job.title} was stopped before training began."
        else:
            text, level = f"{job.title} failed: {job.error}", "error"
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
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(not running)


register(
    ActionSpec("show_training", "&Training…", "Tools", "training.raise_panel", (),
               "Train a GAN or a classifier on this project", section="train", needs_project=True),
    ActionSpec("stop_training", "&Pause training (stop at checkpoint)", "Tools", "training.stop", (),
               "Stop the training shown in the Training panel at a checkpoint", needs_project=True),
)
