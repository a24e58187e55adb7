"""One mechanism for long work: a progress callback and a cancel token.

Core functions that take long (import, training, synthesis, experiments) accept ``progress`` and
``cancel`` keyword arguments. The CLI turns progress events into a terminal progress bar; the GUI
turns them into Qt signals from a QThread. The job itself is written once, here in the core.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lesion_studio.errors import JobCancelled


@dataclass(frozen=True)
class ProgressEvent:
    """A snapshot of a job's progress.

    ``done``/``total`` count work units (files, iterations, epochs); ``total`` is ``None`` when
    unknown. ``data`` carries job-specific payloads (losses, sample images, metrics).
    """

    stage: str
    done: int
    total: int | None = None
    message: str = ""
    eta_s: float | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


ProgressCallback = Callable[[ProgressEvent], None]


def no_progress(_event: ProgressEvent) -> None:
    """The default callback: say nothing."""


class CancelToken:
    """A thread-safe flag a long job polls between work units."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self, what: str = "The job") -> None:
        if self._event.is_set():
            raise JobCancelled(what)


class EtaClock:
    """Estimates time left from the average pace so far (steady work, so the mean is good enough)."""

    def __init__(self, total: int | None, start_done: int = 0) -> None:
        self.total = total
        self.start_done = start_done
        self.t0 = time.perf_counter()

    def eta(self, done: int) -> float | None:
        if not self.total or done <= self.start_done:
            return None
        rate = (time.perf_counter() - self.t0) / (done - self.start_done)
        return max(0.0, rate * (self.total - done))
