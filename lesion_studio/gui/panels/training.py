"""The Training panel: launch, watch, stop and resume GAN (UNIT) and classifier (DRN) training.

Layout and wiring only. The work is the core's (:mod:`lesion_studio.training.runs`: requests,
the trainers, the paused runs read from their checkpoints, the histories), submitted as a job to
the window's :class:`~lesion_studio.gui.job_queue.JobQueue` (one heavy job per device; others
wait). What the form proposes and what each progress event or outcome shows is decided without Qt
in :mod:`lesion_studio.gui.panels.training_presenter`; the plot tabs that draw it are
:mod:`lesion_studio.gui.panels.training_plots`. The CLI's ``runs`` and ``resume`` use the same
core.

"Pause" is honest about what it is: the trainers stop at the next iteration (GAN) or batch
(classifier) and keep a checkpoint; the job list says "paused". **Resume** continues a paused run
chosen from the list (read from the checkpoints on disk, so it survives a restart) with *its own*
settings, never the form's (a classifier's warm start included: "Pretrain on every body part
first" trains it on every body part's training images before the chosen ones,
:mod:`lesion_studio.training.warm_start`).

torch is imported only inside the job (a worker thread), never when the panel is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSignalBlocker, QStringListModel, Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lesion_studio.errors import LesionStudioError
from lesion_studio.extras import TRAINING_HINT, training_available
from lesion_studio.gui import settings as prefs
from lesion_studio.gui.actions import ActionSpec
from lesion_studio.gui.elided import ElidedComboBox
from lesion_studio.gui.job_queue import Job, JobQueue, JobState
from lesion_studio.gui.panels import report
from lesion_studio.gui.panels import training_presenter as tp
from lesion_studio.gui.panels.training_plots import TrainingPlots
from lesion_studio.gui.panels.training_widgets import (
    BodyPartsList,
    DeviceCombo,
    JobsBox,
    PausedRunsCombo,
    RateProbe,
    WarmStartChoice,
)
from lesion_studio.jobs import ProgressEvent
from lesion_studio.training.runs import TrainingRequest, folder_bytes, model_folder, run_training

if TYPE_CHECKING:
    from lesion_studio.gui.host import PanelHost
    from lesion_studio.gui.session import ProjectSession


class TrainingPanel(QWidget):
    """Settings form, controls, live plots and the shared job list."""

    job_submitted = Signal(object)  # Job

    def __init__(self, host: PanelHost, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.session = session
        self.folder: Path = session.project.folder
        self.queue: JobQueue = host.job_queue
        self.job: Job | None = None  # the job the plots show
        self.request: TrainingRequest | None = None  # ... and its settings
        self._rate = tp.RateMeter()
        self._warming = False  # the shown classifier job is in its warm start
        self._pending: TrainingRequest | None = None  # waiting for the GPU probe
        self._requests: dict[int, TrainingRequest] = {}  # job id → settings, for this panel's jobs
        self._name_edited = False
        self.overrides: dict[str, Any] = {}  # extra config fields for every run (tests, experts)
        self.estimates = tp.FormEstimates(session.project, prefs.app_settings().value, prefs.set_value)
        for signal in (session.image_changed, session.regions_changed, session.images_reloaded):
            signal.connect(self.estimates.forget)
        self.probe = RateProbe(self.queue, self.estimates.rates, self._probe_wanted, self)
        self.probe.measured.connect(self.update_estimate)
        layout = QVBoxLayout(self)
        layout.addLayout(self._build_form())
        layout.addLayout(self._build_buttons())
        layout.addLayout(self._build_progress())
        layout.addWidget(self.status_label)
        self.tabs = TrainingPlots()
        layout.addWidget(self.tabs, 1)
        self.jobs = JobsBox(self.queue)
        layout.addWidget(self.jobs)
        self._update_buttons()
        self._kind_changed()
        host.listen(self.queue.gpu_probe.ready, self._gpu_known)
        if self.queue.gpu_probe.available is not None:
            self._gpu_known(self.queue.gpu_probe.available, self.queue.gpu_probe.name)
        session.models_changed.connect(self._refresh_names)
        session.models_changed.connect(self.refresh_paused)
        self._refresh_names()
        self.refresh_paused()

    # ------------------------------------------------------------------ building
    def _build_form(self) -> QFormLayout:
        self.kind_combo = ElidedComboBox(min_chars=16)  # its long names must not widen a 1280 px window's dock
        for text, key in tp.KINDS:
            self.kind_combo.addItem(text, key)
        self.kind_combo.currentIndexChanged.connect(self._kind_changed)
        self.parts_list = BodyPartsList(self.session.project.body_parts())
        self.parts_list.itemChanged.connect(self._suggest_name)
        self.split_combo = ElidedComboBox(min_chars=16)  # the classifier's split is a sentence
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
        self.device_combo = DeviceCombo()
        self.device_combo.currentIndexChanged.connect(lambda _i: self._device_changed())
        self.name_edit = QLineEdit()
        self.name_edit.setToolTip("Name of the model in the project's registry (models/<name>)")
        self.name_edit.textEdited.connect(self._name_typed)
        self.completer = QCompleter([], self)
        self.name_edit.setCompleter(self.completer)
        self.synthetic_check = QCheckBox("Add accepted synthetic samples")
        self.synthetic_check.setToolTip("Augmented training: vetted synthetic lesions (gallery 'accept', synthesis panel 'Keep') "
                                        "made from training images join the training set as lesions")
        self.warm_start = WarmStartChoice(self)
        self.warm_start.changed.connect(self.update_estimate)
        self.estimate_label = QLabel("")
        self.estimate_label.setObjectName("training_estimate")
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setToolTip("From the rate and size measured here for the same kind, preset and device "
                                       "(after each run), else from reference measurements")
        self.paused_combo = PausedRunsCombo(self.folder)
        self.paused_combo.currentIndexChanged.connect(lambda _i: self._paused_chosen())
        self.split_label, self.length_label, self.input_label = QLabel("Data split"), QLabel("Iterations"), \
            QLabel("Input size")
        # The dock may be as narrow as its 300 px minimum (a saved layout, a 1280 px window): a tick
        # box spans the form's width, and a field wider than its row moves under its label.
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        for label, widget in (("Train", self.kind_combo), ("Body parts", self.parts_list),
                              (self.split_label, self.split_combo), ("Preset", self.preset_combo),
                              (self.length_label, self.length_spin), (self.input_label, self.input_spin),
                              ("", self.synthetic_check), *self.warm_start.rows(), ("Device", self.device_combo),
                              ("Model name", self.name_edit), ("Estimate", self.estimate_label),
                              ("Paused runs", self.paused_combo)):
            if label == "":
                form.addRow(widget)
            else:
                form.addRow(label, widget)
        return form

    def _build_buttons(self) -> QHBoxLayout:
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Queue the run (it starts when the device is free)")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Pause")  # short: three buttons share a row of a 1280 px window's dock
        self.stop_button.setToolTip("Stop after the current step and keep a checkpoint; Resume continues it. "
                                    "Nothing stays in memory while paused.")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the chosen paused run from its checkpoint, exactly as it was set up")
        self.resume_button.clicked.connect(self.resume)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.resume_button):
            buttons.addWidget(b)
        return buttons

    def _build_progress(self) -> QHBoxLayout:
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m")
        self.eta_label = QLabel("")
        self.status_label = QLabel("Idle." if training_available() else TRAINING_HINT)
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.eta_label)
        return bar

    # ------------------------------------------------------------------ form logic
    @property
    def kind(self) -> str:
        return str(self.kind_combo.currentData())

    def _kind_changed(self) -> None:
        unit = self.kind == "unit"
        with QSignalBlocker(self.preset_combo):
            self.preset_combo.clear()
            self.preset_combo.addItems(list(tp.UNIT_PRESETS if unit else tp.DRN_PRESETS))
            self.preset_combo.setCurrentText("fast" if unit else tp.DEFAULT_DRN_PRESET)
        self.split_combo.clear()
        if unit:
            self.split_combo.addItems(list(tp.UNIT_SPLITS))
            self.split_combo.setToolTip("The GAN never sees validation or test images")
        else:
            self.split_combo.addItem("train (best epoch chosen on val)")
            self.split_combo.setToolTip("The classifier trains on the training split and is validated on val")
        self.split_combo.setEnabled(unit)
        self.length_label.setText("Iterations" if unit else "Epochs")
        for widget in (self.input_label, self.input_spin, self.synthetic_check):
            widget.setVisible(not unit)
        self.warm_start.set_visible(not unit)
        self._preset_changed()

    def lane(self) -> str:
        """The device the run would get: "cpu" until a GPU is known and allowed."""
        return self.queue.lane(str(self.device_combo.currentData()))

    def _device_changed(self) -> None:
        if self.kind == "unit" and tp.is_default_length(self.length_spin.value()) \
                and self.preset_combo.currentText() == "fast":
            self.length_spin.setValue(tp.default_length("fast", self.lane()))  # still the default: follow the device
        self.update_estimate()

    def _preset_changed(self) -> None:
        preset = self.preset_combo.currentText()
        if self.kind == "unit" and preset in tp.UNIT_PRESETS:
            self.length_spin.setValue(tp.default_length(preset, self.lane()))
        elif preset in tp.DRN_PRESETS:
            epochs, size = tp.DRN_PRESETS[preset]
            self.length_spin.setValue(epochs)
            self.input_spin.setValue(size)
        self._suggest_name()
        self.update_estimate()

    def estimate(self) -> tuple[float, int, str] | None:
        """(seconds, bytes, source) for the form's run, or None when nothing is known yet."""
        est = self.estimates.estimate(self.request_from_form(), self.lane())
        if est is None and self.kind == "drn":
            self.probe.later()  # no classifier rate yet: time a few steps once the form settles
        return est

    def preparation(self) -> Any:
        """The GAN form's patch preparation (:class:`~lesion_studio.patches.set_cache.PreparationEstimate`)."""
        return self.estimates.preparation(self.request_from_form())

    def _probe_wanted(self) -> tuple[Any, str] | None:
        """The classifier config and device to time steps of now, or None."""
        config = tp.probe_config(self.request_from_form(), self.lane()) if self.isVisible() else None
        return None if config is None or not training_available() else (config, self.lane())

    def update_estimate(self) -> None:
        self.estimate_label.setText(tp.estimate_text(self.kind, self.lane(), self.estimate(), self.preparation(),
                                                     probing=self.probe.running))

    def _store_measurements(self, request: TrainingRequest) -> None:
        rate, lane = self._rate.seconds_per_step(), self.queue.lane(request.device)
        if rate is not None:
            prefs.set_value(f"training/rate/{request.kind}/{request.preset}/{lane}", rate)
        if self._rate.rate is not None and request.kind == "drn":
            self.estimates.store_classifier_run(request, lane, *self._rate.rate)
        size = folder_bytes(model_folder(self.folder, request.kind, request.name))
        if size:
            prefs.set_value(f"training/disk/{request.kind}/{request.preset}", size)
        self._rate = tp.RateMeter()
        self.update_estimate()

    # ------------------------------------------------------------------ paused runs
    def refresh_paused(self, select: str | None = None) -> None:
        """Re-read the resumable runs from their checkpoints (they survive a restart)."""
        self.paused_combo.reload(select)
        self._update_buttons()

    def _paused_chosen(self) -> None:
        """Show the chosen paused run's own settings in the form (Resume uses them, not the form)."""
        run = self.paused_combo.current_run()
        if run is None:
            return
        self.kind_combo.setCurrentIndex(self.kind_combo.findData(run.kind))
        if self.preset_combo.findText(run.preset) >= 0:
            self.preset_combo.setCurrentText(run.preset)
        self.length_spin.setValue(run.total)
        if run.input_size:
            self.input_spin.setValue(int(run.input_size))
        self.parts_list.set_checked(list(run.body_parts))
        if run.kind == "drn":
            self.warm_start.show_config(run.config)
        self._name_edited = True
        self.name_edit.setText(run.name)

    def _name_typed(self, _text: str) -> None:
        self._name_edited = True

    def _suggest_name(self, *_args: Any) -> None:
        if not self._name_edited:
            self.name_edit.setText(tp.suggest_name(self.kind, self.parts_list.checked(), self.preset_combo.currentText()))

    def _refresh_names(self) -> None:
        try:
            names = [m.name for m in self.session.project.models()]
        except Exception:  # the project was closed under us; the list is only a convenience
            names = []
        self.completer.setModel(QStringListModel(names, self.completer))

    def request_from_form(self, resume: bool = False) -> TrainingRequest:
        unit = self.kind == "unit"
        return TrainingRequest(
            kind=self.kind, name=self.name_edit.text().strip(), preset=self.preset_combo.currentText(),
            length=self.length_spin.value(), body_parts=tuple(self.parts_list.checked()),
            splits=tp.UNIT_SPLITS.get(self.split_combo.currentText(), ("train", "unassigned")),
            device=str(self.device_combo.currentData()), input_size=None if unit else self.input_spin.value(),
            resume=resume, with_accepted_synthetic=not unit and self.synthetic_check.isChecked(),
            warm_start_parts=() if unit else self.warm_start.parts(),
            warm_start_epochs=None if unit or not self.warm_start.parts() else self.warm_start.epochs(),
            overrides=dict(self.overrides))

    # ------------------------------------------------------------------ devices
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self.queue.gpu_probe.start()  # first time the panel is seen: find out about the GPU (no torch)

    def _gpu_known(self, available: bool, name: str) -> None:
        self.device_combo.gpu_known(available, name)
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
        run = self.paused_combo.current_run()
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

    def raise_panel(self) -> None:
        self.host.show_dock("training")
        self.name_edit.setFocus()

    def _request(self, request: TrainingRequest) -> Job | None:
        try:
            request.check()
        except LesionStudioError as exc:
            self._message(str(exc), "warning")
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
            return run_training(request, folder, progress=progress, cancel=cancel, spare_cores=1)

        job = self.queue.submit(job_fn, request.title(), key, kind=request.kind, resumable=True)
        self._requests[job.id] = request
        if job.state == JobState.RUNNING:
            self._show_job(job)
        job.started.connect(self._job_started)  # bound slots: dropped with the panel
        job.finished.connect(self._job_finished)
        if job.state == JobState.QUEUED:
            ahead = len(self.queue.queued(key)) - 1 + len(self.queue.running(key))
            self.status_label.setText(f"{job.title} is queued behind {ahead} job(s) on {key}.")
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
        self._rate, self._warming = tp.RateMeter(), False
        job.progressed.connect(self._progressed)
        self.tabs.show_run(request, self.folder)
        self.progress.setRange(0, 0)  # busy until the trainer reports a total
        self.progress.setFormat(f"{job.title}: preparing data…")
        self.eta_label.setText("")
        self.status_label.setText(f"{job.title}: preparing data…")
        self._update_buttons()

    def _progressed(self, event: ProgressEvent) -> None:
        if self.sender() is not self.job:
            return
        update = tp.progress_update(event, self._warming)
        if update.warm_start is not None:
            self._warming = update.warm_start
        if update.measures_rate:
            self._rate.step(event.done)
        if update.bar is not None:
            self.progress.setFormat("%v / %m")
            self.progress.setRange(0, update.bar[1])
            self.progress.setValue(min(update.bar))
        if update.eta is not None:
            self.eta_label.setText(update.eta)
        self.tabs.show_update(event.done, update)
        self.status_label.setText(update.status)

    def _job_finished(self, _state: str) -> None:
        job = self.sender()
        if not isinstance(job, Job) or job.id not in self._requests:
            return
        request = self._requests.pop(job.id)
        shown = job is self.job
        text, level = tp.finished_text(request, job.state.value, job.result, job.started_at is not None, job.error)
        if shown and job.started_at is not None:
            self._store_measurements(request)
        self.refresh_paused(select=request.name)
        self._message(text, level)
        if shown:
            self.status_label.setText(text)
            self.eta_label.setText("")
            self.progress.setFormat("%v / %m")
            if job.state == JobState.DONE:
                self.progress.setRange(0, max(1, self.progress.maximum()))
                self.progress.setValue(self.progress.maximum())
            elif self.progress.maximum() == 0:
                self.progress.setRange(0, 1)
            self.tabs.loss_plot.flush()
        self._update_buttons()

    def _message(self, text: str, level: str) -> None:
        report(self.host, self.status_label, text, level)

    def _update_buttons(self) -> None:
        running = self.job is not None and self.job.active
        stopping = running and self.job is not None and self.job.stopping
        self.stop_button.setEnabled(running and not stopping)
        if not stopping:
            self.stop_button.setText("Pause")
        self.resume_button.setEnabled(not running and self.paused_combo.current_run() is not None
                                      and training_available())
        self.start_button.setEnabled(training_available())  # a reading build says why instead


#: The panel's actions (built by the main window from the panel's spec).
ACTIONS = (
    ActionSpec("show_training", "&Training…", "Tools", "training.raise_panel", (),
               "Train a GAN or a classifier on this project", section="train", needs_project=True),
    ActionSpec("stop_training", "&Pause training (stop at checkpoint)", "Tools", "training.stop", (),
               "Stop the training shown in the Training panel at a checkpoint", needs_project=True),
)
