"""Small widgets of the Training panel: body parts, device menu, paused runs and the shared Jobs list."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lesion_studio.gui.job_queue import JobQueue
from lesion_studio.gui.panels.training_presenter import DEVICES
from lesion_studio.training.runs import TrainingRun, resumable_runs

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
