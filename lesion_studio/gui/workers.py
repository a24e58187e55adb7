"""Qt glue for background work: the one place where threads meet signals.

Two shapes cover everything the GUI runs off the GUI thread:

* :class:`JobWorker` runs a core job ``fn(progress=..., cancel=...)`` (import, relink, export, and
  later training and batch synthesis) in a QThread and turns its progress callbacks into signals.
  The job is written once, in the core; the CLI drives the same function with a terminal bar.
* :class:`TaskPool` runs many short functions (decode an image, render a thumbnail) on a private
  QThreadPool and delivers each result as a signal on the GUI thread, newest request first.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal

from lesion_studio.errors import JobCancelled, LesionStudioError
from lesion_studio.jobs import CancelToken, ProgressEvent

log = logging.getLogger(__name__)


def describe_error(exc: BaseException) -> str:
    """A message for a person: our own errors carry one; anything else is a bug, logged in full."""
    if isinstance(exc, LesionStudioError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} ({getattr(exc, 'filename', '') or ''})".strip()
    return f"Unexpected error ({type(exc).__name__}: {exc}). Details are in the log file."


class JobWorker(QThread):
    """Run ``fn(progress=callback, cancel=token)`` in a thread; report through signals.

    Exactly one of ``succeeded``, ``failed`` or ``cancelled`` is emitted, then QThread's
    ``finished``. Call :meth:`cancel` to ask the job to stop at its next check.
    """

    progressed = Signal(object)  # ProgressEvent
    succeeded = Signal(object)  # the job's return value
    failed = Signal(str)  # a message for a person
    cancelled = Signal()

    def __init__(self, fn: Callable[..., Any], *, name: str = "job", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self.name = name
        self.token = CancelToken()
        self.result: Any = None
        self.error: str | None = None

    def cancel(self) -> None:
        self.token.cancel()

    def _progress(self, event: ProgressEvent) -> None:
        self.progressed.emit(event)

    def run(self) -> None:  # noqa: D401 - Qt override
        try:
            self.result = self._fn(progress=self._progress, cancel=self.token)
        except JobCancelled as exc:  # the one cancel contract: what was saved comes with it
            self.result = getattr(exc, "partial", None)
            self.cancelled.emit()
            return
        except Exception as exc:  # reported to the window, never raised into Qt
            if not isinstance(exc, LesionStudioError):
                log.error("%s failed:\n%s", self.name, traceback.format_exc())
            self.error = describe_error(exc)
            self.failed.emit(self.error)
            return
        if self.token.cancelled:
            self.cancelled.emit()
        else:
            self.succeeded.emit(self.result)


class _TaskSignals(QObject):
    done = Signal(object, object)  # key, result
    failed = Signal(object, str)  # key, message


class _Task(QRunnable):
    def __init__(self, key: object, fn: Callable[[], Any], signals: _TaskSignals) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the pool's Python side keeps the reference until delivery
        self.key = key
        self.fn = fn
        self.signals = signals
        self.started = False

    def run(self) -> None:
        self.started = True
        try:
            result = self.fn()
        except Exception as exc:
            if not isinstance(exc, LesionStudioError):
                log.error("background task %r failed:\n%s", self.key, traceback.format_exc())
            self.signals.failed.emit(self.key, describe_error(exc))
        else:
            self.signals.done.emit(self.key, result)


class TaskPool(QObject):
    """A private thread pool whose results arrive as signals on the GUI thread.

    A key is submitted once at a time (duplicates are ignored while pending). Later submissions
    get higher priority, so what the user looks at now is served before what scrolled past.
    """

    done = Signal(object, object)
    failed = Signal(object, str)

    def __init__(self, threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max(1, threads))
        self._signals = _TaskSignals()
        self._signals.done.connect(self._deliver)
        self._signals.failed.connect(self._deliver_failure)
        self._pending: dict[object, _Task] = {}
        self._priority = 0

    def submit(self, key: object, fn: Callable[[], Any]) -> bool:
        if key in self._pending:
            return False
        task = _Task(key, fn, self._signals)
        self._pending[key] = task
        self._priority = (self._priority + 1) % 1_000_000
        self._pool.start(task, self._priority)
        return True

    def pending_count(self) -> int:
        return len(self._pending)

    def drop_queued(self) -> None:
        """Forget work not yet started (scrolled past); running tasks still deliver."""
        self._pool.clear()
        self._pending = {k: t for k, t in self._pending.items() if t.started}

    def _deliver(self, key: object, result: object) -> None:
        self._pending.pop(key, None)
        self.done.emit(key, result)

    def _deliver_failure(self, key: object, message: str) -> None:
        self._pending.pop(key, None)
        self.failed.emit(key, message)

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Drop queued work and wait for running tasks: no thread outlives its window."""
        self._pool.clear()
        self._pool.waitForDone(timeout_ms)
        self._pending.clear()
