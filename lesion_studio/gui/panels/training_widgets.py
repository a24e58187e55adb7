"""Small widgets of the Training panel: body parts, device menu, the classifier's warm start,
paused runs, the shared Jobs list and the classifier rate probe."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lesion_studio.classifier.config import WARM_START_EPOCHS
from lesion_studio.gui.job_queue import Job, JobQueue, JobState
from lesion_studio.gui.panels.training_presenter import DEVICES
from lesion_studio.training.estimates import ClassifierRates, measure_classifier_rate
from lesion_studio.training.runs import TrainingRun, leave_cores, resumable_runs

GPU_ROW = 2


class DeviceCombo(QComboBox):
    """Auto, CPU, GPU; the GPU row is greyed out, with the reason as its tooltip, until a GPU is known."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        for text, key in DEVICES:
            self.addItem(text, key)
        self.set_gpu(False, "Checking for a CUDA GPU…")

    def set_gpu(self, enabled: bool, tip: str) -> None:
        model = self.model()
        assert isinstance(model, QStandardItemModel)
        item = model.item(GPU_ROW)
        item.setEnabled(enabled)
        item.setToolTip(tip)
        if not enabled and self.currentIndex() == GPU_ROW:
            self.setCurrentIndex(0)
        self.setToolTip(tip)

    def gpu_known(self, available: bool, name: str) -> None:
        if available:
            self.set_gpu(True, f"GPU: {name}")
        else:
            self.set_gpu(False, "No CUDA GPU (NVIDIA driver) on this machine; training runs on the CPU.")


class JobsBox(QGroupBox):
    """Every long job of the window (the queue is a list model), with cancel and clear buttons."""

    def __init__(self, queue: JobQueue, parent: QWidget | None = None) -> None:
        super().__init__("Jobs", parent)
        self.queue = queue
        self.view = QListView()
        self.view.setModel(queue)
        self.view.setMaximumHeight(110)
        self.view.setToolTip("Every long job of this window: one runs per device, the others wait")
        self.cancel_button = QPushButton("Cancel selected job")
        self.cancel_button.clicked.connect(self.cancel_selected_job)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.clicked.connect(queue.clear_finished)
        buttons = QHBoxLayout()
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
        layout.addLayout(buttons)

    def cancel_selected_job(self) -> None:
        index = self.view.currentIndex()
        job = self.queue.job_at(index.row()) if index.isValid() else None
        if job is not None:
            self.queue.cancel(job)


class PausedRunsCombo(QComboBox):
    """The project's paused runs, re-read from their checkpoints (so the list survives a restart)."""

    def __init__(self, folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder = folder
        self.setObjectName("paused_runs")
        self.setToolTip("Runs stopped at a checkpoint; Resume continues the chosen one with its own settings "
                        "(length, preset, body parts)")

    def reload(self, select: str | None = None) -> None:
        current = select or (self.current_run().name if self.current_run() is not None else None)
        runs = resumable_runs(self.folder)
        with QSignalBlocker(self):
            self.clear()
            for run in runs:
                self.addItem(run.label(), run)
            if not runs:
                self.addItem("(none)", None)
            names = [r.name for r in runs]
            self.setCurrentIndex(names.index(current) if current in names else 0)
        self.setEnabled(bool(runs))

    def current_run(self) -> TrainingRun | None:
        return self.currentData()

    def runs(self) -> list[TrainingRun]:
        return [self.itemData(i) for i in range(self.count()) if self.itemData(i) is not None]


class BodyPartsList(QListWidget):
    """The project's body parts, each with a tick box; none ticked means all of them."""

    def __init__(self, parts: set[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMaximumHeight(80)
        self.setToolTip("Body parts to train on; none ticked means all of them")
        for part in sorted(parts):
            item = QListWidgetItem(part)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.addItem(item)

    def checked(self) -> list[str]:
        return [self.item(i).text() for i in range(self.count()) if self.item(i).checkState() == Qt.CheckState.Checked]

    def set_checked(self, parts: list[str]) -> None:
        for i in range(self.count()):
            item = self.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in parts else Qt.CheckState.Unchecked)


class WarmStartChoice(QObject):
    """The classifier's warm start: pretrain on every body part's training images for a number of
    epochs first (``classifier.warm_start_parts: [all]``), then train on the chosen body parts.

    Two form rows, not one: the tick box on a row of its own that spans the form (with its epochs
    box beside it, or in the field column, it is wider than the Training dock at its 300 px
    minimum), then the epochs under a label."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.check = QCheckBox("Pretrain on every body part first")
        self.label = QLabel("Pretraining")
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 1000)
        self.epochs_spin.setValue(WARM_START_EPOCHS)
        self.epochs_spin.setSuffix(" epochs")
        self.epochs_spin.setEnabled(False)
        self.label.setEnabled(False)
        self.check.setToolTip("Warm start: the network first trains for the chosen number of epochs on the training "
                              "images of all body parts of the project, then on the selected body parts. The "
                              "pretrained network is cached in the project and shared by later runs with the same "
                              "settings. Validation and test images are never used.")
        self.epochs_spin.setToolTip("Epochs of the warm start (pretraining on every body part's training images)")
        self.label.setToolTip(self.epochs_spin.toolTip())
        self.check.toggled.connect(self.epochs_spin.setEnabled)
        self.check.toggled.connect(self.label.setEnabled)
        self.check.toggled.connect(lambda _on: self.changed.emit())
        self.epochs_spin.valueChanged.connect(lambda _v: self.changed.emit())

    def rows(self) -> tuple[tuple[QLabel | str, QWidget], ...]:
        """(label, field) rows for the Training form (label "": a row that spans the form)."""
        return ("", self.check), (self.label, self.epochs_spin)

    def set_visible(self, visible: bool) -> None:
        for widget in (self.check, self.label, self.epochs_spin):
            widget.setVisible(visible)

    def parts(self) -> tuple[str, ...]:
        """The body parts to warm-start on: ``("all",)`` when ticked, else none."""
        return ("all",) if self.check.isChecked() else ()

    def epochs(self) -> int:
        return self.epochs_spin.value()

    def show_config(self, config: dict[str, Any]) -> None:
        """Show a saved classifier config's warm start (a paused run's)."""
        self.check.setChecked(bool(config.get("warm_start_parts")))
        self.epochs_spin.setValue(int(config.get("warm_start_epochs") or WARM_START_EPOCHS))


class RateProbe(QObject):
    """Times a few classifier training steps in a background job on the device's queue, when no
    rate is stored for the form's network, input size and device. :meth:`later` asks once the form
    has settled; a busy device is not timed (its other job would be timed too): the form asks
    again at its next estimate."""

    measured = Signal()  # a probe started or ended: the estimate line can say so

    def __init__(self, queue: JobQueue, rates: ClassifierRates, wanted: Callable[[], tuple[Any, str] | None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.queue, self.rates, self.wanted = queue, rates, wanted
        self.running = False
        self._probe: tuple[Job, Any, str] | None = None
        self.timer = QTimer(self, singleShot=True, interval=1500)  # settle the form before timing
        self.timer.timeout.connect(self._start)

    def later(self) -> None:
        self.timer.start()

    def _start(self) -> None:
        wanted = self.wanted()  # (classifier config, lane), or None when the form wants no probe now
        if wanted is None or self.running:
            return
        config, lane = wanted
        if self.queue.running(lane) or self.queue.queued(lane) or self.rates.rate(config, lane) is not None:
            return

        def job_fn(progress, cancel):  # noqa: ANN001, ANN202
            leave_cores(1)  # the GUI thread keeps a core
            return measure_classifier_rate(config, progress=progress, cancel=cancel)

        self.running = True
        job = self.queue.submit(job_fn, f"Time classifier steps ({config.arch}, {config.input_size} px)", lane,
                                kind="estimate")
        self._probe = (job, config, lane)
        job.finished.connect(self._finished)  # a bound slot: dropped with the panel
        self.measured.emit()

    def _finished(self, _state: str) -> None:
        if self._probe is None:
            return
        job, config, lane = self._probe
        self.running, self._probe = False, None
        if job.state == JobState.DONE:
            self.rates.store_probe(config, lane, float(job.result))
        self.measured.emit()
