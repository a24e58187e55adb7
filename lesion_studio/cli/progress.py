"""A terminal progress bar fed by the core's progress events."""

from __future__ import annotations

import sys
import time

from lesion_studio.jobs import ProgressEvent


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f" ETA {seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class TerminalProgress:
    """Callable progress sink: redraws one line on a terminal, prints a line now and then otherwise.

    The interval is kept per stage: a long job's outer steps (an experiment's stages, a trainer's
    epochs) arrive minutes apart between the inner steps' many events, and a shared interval let
    the inner events swallow them (an experiment log showed its first stage only)."""

    def __init__(self, stream=None, width: int = 30, min_interval: float = 0.1) -> None:  # noqa: ANN001
        self.stream = stream or sys.stderr
        self.width = width
        self.min_interval = min_interval if self.stream.isatty() else 5.0
        self._last: dict[str, float] = {}
        self._drawn = False

    def __call__(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        final = event.total is not None and event.done >= event.total
        if not final and now - self._last.get(event.stage, -self.min_interval) < self.min_interval:
            return
        self._last[event.stage] = now
        frac = event.fraction
        if frac is not None:
            filled = int(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            head = f"{event.stage} [{bar}] {event.done}/{event.total}"
        else:
            head = f"{event.stage} {event.done}"
        line = f"{head}{_fmt_eta(event.eta_s)} {event.message}"[:150]
        if self.stream.isatty():
            self.stream.write("\r" + line.ljust(150))
            self._drawn = True
            if final:
                self.stream.write("\n")
                self._drawn = False
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
