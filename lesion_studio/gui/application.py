"""The Qt application around the main window: start-up, the exception hook, event-loop waits.

Nothing here imports torch: start-up must stay fast, and viewing needs no training stack.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QApplication

from lesion_studio.errors import LesionStudioError
from lesion_studio.gui import settings as prefs
from lesion_studio.store.database_file import DB_NAME

if TYPE_CHECKING:
    from lesion_studio.gui.app import MainWindow

log = logging.getLogger(__name__)


def _install_excepthook(window_ref: list[MainWindow]) -> None:
    """A bug in a slot is logged and shown in the window; the app keeps running."""
    previous = sys.excepthook

    def hook(kind, value, tb) -> None:  # noqa: ANN001
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)
            return
        log.error("unexpected error", exc_info=(kind, value, tb))
        if window_ref:
            message = str(value) if isinstance(value, LesionStudioError) else (
                f"Something went wrong ({kind.__name__}: {value}). The details are in the log file; "
                "your annotations are saved.")
            window_ref[0].show_message(message, "error")

    sys.excepthook = hook


def process_events_until(predicate: Callable[[], bool], timeout_s: float = 30.0, *, what: str = "the window",
                         pause_s: float = 0.001) -> None:
    """Run the event loop until ``predicate()`` holds, for scripts that drive the window without a
    test framework (benchmarks, the screenshot tool, subprocess sessions); TimeoutError names ``what``."""
    app = QApplication.instance()
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(f"{what}: condition not reached within {timeout_s:g} s")
        app.processEvents()
        time.sleep(pause_s)


def create_app(argv: list[str] | None = None) -> QApplication:
    from lesion_studio.onnx_runtime import set_spinning

    set_spinning(False)  # an interactive process: idle onnxruntime threads sleep between previews
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName(prefs.ORGANIZATION)
    app.setApplicationName(prefs.APPLICATION)
    from lesion_studio.gui.theme import apply_dark_theme

    apply_dark_theme(app)  # type: ignore[arg-type]
    return app  # type: ignore[return-value]


def run_app(project: Path | None = None, *, exit_when_shown: bool = False) -> int:
    """Open the main window (on ``project`` if given, else the most recent one) and run.

    ``exit_when_shown`` quits as soon as the event loop has drawn the first window: the package
    benchmark times start-to-first-window of the bundle this way."""
    from lesion_studio.logsetup import configure_logging

    configure_logging()
    app = create_app()
    if project is None:
        recent = [p for p in prefs.recent_projects() if (p / DB_NAME).exists()]
        project = recent[0] if recent else None
    from lesion_studio.gui.app import MainWindow

    window = MainWindow()
    _install_excepthook([window])
    window.show()
    if project is not None:
        window.open_project(project)
    if exit_when_shown:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, app.quit)  # runs after the pending paint of the shown window
    return int(app.exec())
