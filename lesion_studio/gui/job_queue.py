"""One heavy job per device at a time: the queue every panel submits long work to.

Training a GAN, training a classifier, running an experiment or a large batch synthesis each
saturate the device they run on; two at once on one GPU (or one CPU) only make both slower and
risk running out of memory. So panels do not start :class:`JobWorker` s themselves: they
:meth:`JobQueue.submit` a core job ``fn(progress=, cancel=)`` with a device key ("cpu" or "cuda"),
and the queue runs one job per key, starting the next when one ends. The queue is also a Qt list
model, so any view can show the jobs with their state (queued, running, done, failed, cancelled).

The queue lives on the main window (``window.job_queue``) for the whole session: closing a project
does not kill a training run, and closing the window asks first (see :func:`confirm_stop`).
"""

from __future__ import annotations

import enum
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from lesion_studio.gui.workers import JobWorker
from lesion_studio.jobs import ProgressEvent

log = logging.getLogger(__name__)

LIGHT = "light"  # short I/O work (import, export, relink, keep): beside the heavy lanes, one at a time
DEVICES = ("cpu", "cuda", LIGHT)
_ids = itertools.count(1)


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PAUSED = "paused"  # a resumable job stopped after it started: its checkpoint / cached stages remain


def device_key(requested: str, gpu_available: bool | None) -> str:
    """The queue a job belongs to: what ``select_device`` would pick, without importing torch."""
    requested = (requested or "auto").lower()
    if requested in ("gpu", "cuda") or requested.startswith("cuda:"):
        return "cuda"
    if requested == "auto":
        return "cuda" if gpu_available else "cpu"
    return "cpu"


class Job(QObject):
    """One submitted piece of work and what became of it. Signals fire on the GUI thread."""

    started = Signal()
    progressed = Signal(object)  # ProgressEvent
    finished = Signal(str)  # the final JobState value

    def __init__(self, fn: Callable[..., Any], title: str, device: str, kind: str = "",
                 parent: QObject | None = None, resumable: bool = False) -> None:
        super().__init__(parent)
        self.id = next(_ids)
        self.fn = fn
        self.title = title
        self.device = device
        self.kind = kind  # free-form tag for panels ("unit", "drn", "experiment", ...)
        self.resumable = resumable  # stopping it while it runs pauses it (a checkpoint stays)
        self.stopping = False  # asked to stop; still running until its next check
        self.state = JobState.QUEUED
        self.message = ""
        self.fraction: float | None = None
        self.eta_s: float | None = None
        self.result: Any = None
        self.error: str | None = None
        self.worker: JobWorker | None = None
        self._verdict: tuple[JobState, Any, str | None] | None = None
        self.started_at: float | None = None  # None: never ran (still queued, or dropped from the queue)

    # slots for the worker's signals (queued onto the GUI thread, where this object lives)
    def _on_progress(self, event: ProgressEvent) -> None:
        self.fraction = event.fraction
        self.eta_s = event.eta_s
        self.message = event.message or event.stage
        self.progressed.emit(event)
        self._queue()._mark_dirty(self)

    def _on_succeeded(self, result: object) -> None:
        self._verdict = (JobState.DONE, result, None)

    def _on_failed(self, message: str) -> None:
        self._verdict = (JobState.FAILED, None, message)

    def _on_cancelled(self) -> None:
        # a cancelled trainer may still return what it saved (UNIT returns its result)
        self._verdict = (JobState.CANCELLED, self.worker.result if self.worker else None, None)

    def _on_thread_finished(self) -> None:
        self._queue()._worker_finished(self)

    def _queue(self) -> JobQueue:
        return self.parent()  # type: ignore[return-value]

    @property
    def active(self) -> bool:
        return self.state in (JobState.QUEUED, JobState.RUNNING)

    def describe(self) -> str:
        text = f"{self.title} [{self.device}] — {self.state.value}"
        if self.state == JobState.RUNNING and self.fraction is not None:
            text += f" {self.fraction * 100:.0f}%"
        if self.state == JobState.RUNNING and self.stopping:
            text += " — stopping…"
        return text


class JobQueue(QAbstractListModel):
    """Runs submitted jobs, one per device key at a time, in submission order."""

    job_started = Signal(object)  # Job
    job_finished = Signal(object)  # Job, after its state is final
    busy_changed = Signal(bool)

    JobRole = Qt.ItemDataRole.UserRole + 1
    StateRole = Qt.ItemDataRole.UserRole + 2

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[Job] = []
        self._dirty: set[int] = set()
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(100)  # progress repaints at 10 Hz, however fast the job reports
        self._flush.timeout.connect(self._flush_rows)
        self.gpu_probe = GpuProbe(self)

    # ------------------------------------------------------------------ submitting
    def submit(self, fn: Callable[..., Any], title: str, device: str = "cpu", kind: str = "",
               resumable: bool = False) -> Job:
        """Queue ``fn(progress=, cancel=)`` on ``device`` ("cpu", "cuda" or the ``"light"`` lane for short
        I/O work); it starts when that lane is free."""
        if device not in DEVICES:
            raise ValueError(f"unknown device key {device!r}")
        job = Job(fn, title, device, kind, parent=self, resumable=resumable)
        self.beginInsertRows(QModelIndex(), len(self._jobs), len(self._jobs))
        self._jobs.append(job)
        self.endInsertRows()
        was_busy = self.busy()
        self._start_next(device)
        if not was_busy:
            self.busy_changed.emit(True)
        return job

    def cancel(self, job: Job) -> None:
        """A queued job is dropped at once; a running one is asked to stop at its next check."""
        if job.state == JobState.QUEUED:
            self._set_state(job, JobState.CANCELLED)
            job.finished.emit(job.state.value)
            self.job_finished.emit(job)
            self._emit_busy()
        elif job.state == JobState.RUNNING and job.worker is not None:
            job.message = "stopping at the next checkpoint…"
            job.stopping = True
            job.worker.cancel()
            self._mark_dirty(job)

    def lane(self, requested: str) -> str:
        """The one device rule: the lane for a job asking for ``requested`` ("auto", "cpu", "cuda").
        "auto" means the GPU once the probe has found one, else the CPU."""
        return device_key(requested, self.gpu_probe.available)

    # ------------------------------------------------------------------ queries
    def jobs(self) -> list[Job]:
        return list(self._jobs)

    def running(self, device: str | None = None) -> list[Job]:
        return [j for j in self._jobs if j.state == JobState.RUNNING and device in (None, j.device)]

    def queued(self, device: str | None = None) -> list[Job]:
        return [j for j in self._jobs if j.state == JobState.QUEUED and device in (None, j.device)]

    def busy(self) -> bool:
        return any(j.active for j in self._jobs)

    def clear_finished(self) -> None:
        keep = [j for j in self._jobs if j.active]
        self.beginResetModel()
        for j in self._jobs:
            if not j.active:
                j.deleteLater()
        self._jobs = keep
        self.endResetModel()

    # ------------------------------------------------------------------ running
    def _start_next(self, device: str) -> None:
        if self.running(device):
            return
        waiting = self.queued(device)
        if not waiting:
            return
        job = waiting[0]
        worker = JobWorker(job.fn, name=job.title, parent=self)
        job.worker = worker
        # bound slots of GUI-thread QObjects: Qt queues the calls onto the GUI thread
        worker.progressed.connect(job._on_progress)
        worker.succeeded.connect(job._on_succeeded)
        worker.failed.connect(job._on_failed)
        worker.cancelled.connect(job._on_cancelled)
        worker.finished.connect(job._on_thread_finished)
        job.started_at = time.time()
        self._set_state(job, JobState.RUNNING)
        log.info("job %d (%s) started on %s", job.id, job.title, device)
        job.started.emit()
        self.job_started.emit(job)
        worker.start()

    def _worker_finished(self, job: Job) -> None:
        worker = job.worker
        if worker is not None:
            worker.wait()
            job.worker = None
            worker.deleteLater()
        state, job.result, job.error = job._verdict or (JobState.FAILED, None, "the job ended unexpectedly")
        if state == JobState.CANCELLED and job.resumable:
            state = JobState.PAUSED
        if job.error:
            job.message = job.error
        self._set_state(job, state)
        log.info("job %d (%s) %s", job.id, job.title, job.state.value)
        job.finished.emit(job.state.value)
        self.job_finished.emit(job)
        self._start_next(job.device)
        self._emit_busy()

    def _emit_busy(self) -> None:
        if not self.busy():
            self.busy_changed.emit(False)

    def wait_idle(self, timeout_ms: int = 60_000) -> bool:
        """Block (processing events) until no job is queued or running; True when idle in time."""
        from PySide6.QtCore import QCoreApplication, QEventLoop

        deadline = time.monotonic() + timeout_ms / 1000
        while self.busy() and time.monotonic() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            for job in self.running():
                if job.worker is not None:
                    job.worker.wait(20)
        return not self.busy()

    def shutdown(self, timeout_ms: int = 120_000) -> bool:
        """Drop queued jobs, ask running ones to stop at a checkpoint, and wait for them.

        Trainers save a checkpoint when cancelled, so this is a clean stop, not a kill. Returns
        False when a job did not stop in time (it is then left to finish on its own).
        """
        for job in self.queued():
            self.cancel(job)
        for job in self.running():
            self.cancel(job)
        idle = self.wait_idle(timeout_ms)
        self.gpu_probe.wait()
        if not idle:
            log.warning("jobs still running after %.0f s: %s", timeout_ms / 1000,
                        ", ".join(j.title for j in self.running()))
        return idle

    # ------------------------------------------------------------------ model
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._jobs)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._jobs):
            return None
        job = self._jobs[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return job.describe()
        if role == Qt.ItemDataRole.ToolTipRole:
            return job.message or job.title
        if role == self.JobRole:
            return job
        if role == self.StateRole:
            return job.state.value
        return None

    def job_at(self, row: int) -> Job | None:
        return self._jobs[row] if 0 <= row < len(self._jobs) else None

    def _set_state(self, job: Job, state: JobState) -> None:
        job.state = state
        self._mark_dirty(job, now=True)

    def _mark_dirty(self, job: Job, now: bool = False) -> None:
        if job not in self._jobs:
            return
        self._dirty.add(self._jobs.index(job))
        if now:
            self._flush_rows()
        elif not self._flush.isActive():
            self._flush.start()

    def _flush_rows(self) -> None:
        rows, self._dirty = self._dirty, set()
        for row in rows:
            if row < len(self._jobs):
                idx = self.index(row)
                self.dataChanged.emit(idx, idx)


class GpuProbe(QObject):
    """Finds out, off the GUI thread and only when asked, whether there is a CUDA GPU.

    Panels call :meth:`start` when they are first shown; ``ready`` then says yes or no (with the
    GPU's name). torch is not imported for this (see :func:`_probe_cuda`). :meth:`JobQueue.lane` is
    the one rule that turns a requested device into a queue.
    """

    ready = Signal(bool, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.available: bool | None = None
        self.name = ""
        self._worker: JobWorker | None = None

    def start(self) -> None:
        if self.available is not None or self._worker is not None:
            return
        self._worker = JobWorker(lambda progress, cancel: _probe_cuda(), name="GPU probe", parent=self)
        self._worker.succeeded.connect(self._done)
        self._worker.failed.connect(self._failed)
        self._worker.start()

    def _done(self, result: tuple[bool, str]) -> None:
        self.available, self.name = bool(result[0]), str(result[1])
        if self._worker is not None:
            self._worker.wait()
            self._worker.deleteLater()
            self._worker = None
        self.ready.emit(self.available, self.name)

    def _failed(self, _message: str) -> None:
        self._done((False, ""))

    def wait(self, timeout_ms: int = 30_000) -> None:
        if self._worker is not None:
            self._worker.wait(timeout_ms)


def _probe_cuda() -> tuple[bool, str]:
    """Whether there is a usable CUDA GPU, and its name for the device menu.

    The yes/no is the core's one probe (:func:`lesion_studio.onnx_runtime.cuda_device_present`: the
    driver library through ctypes, never a torch import, honouring ``LESION_STUDIO_ORT_DEVICE``), so
    the training queue and inference agree. ``nvidia-smi -L`` only supplies the name shown.
    """
    import shutil
    import subprocess

    from lesion_studio.onnx_runtime import cuda_device_present

    if not cuda_device_present():
        return False, ""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            out = None
        gpus = [line for line in (out.stdout.splitlines() if out is not None else []) if line.startswith("GPU ")]
        if gpus:
            return True, gpus[0].split(":", 1)[1].split("(UUID")[0].strip()
    return True, "CUDA GPU"


def confirm_stop(parent: QWidget, queue: JobQueue) -> bool:
    """Ask before closing while jobs run; True means stop them (at a checkpoint) and close."""
    running = queue.running()
    waiting = queue.queued()
    if not running and not waiting:
        return True
    names = ", ".join(j.title for j in running) or "none"
    text = (f"Running: {names}." + (f" Queued: {len(waiting)}." if waiting else "")
            + "\n\nStop now? Training stops at a checkpoint and can be resumed later from the Training panel; "
              "queued jobs are dropped.")
    answer = QMessageBox.question(parent, "Jobs are running", text,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes
