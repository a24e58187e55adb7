"""GUI test fixtures: an isolated QSettings, the main window on a demo project, thread hygiene."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_qsettings(tmp_path_factory: pytest.TempPathFactory) -> None:
    from PySide6.QtCore import QSettings

    folder = str(tmp_path_factory.mktemp("qsettings"))
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, folder)


@pytest.fixture(autouse=True)
def _no_threads_left() -> None:
    """No test may leave a Python thread running (Qt pool threads are joined by waitForDone)."""
    yield
    alive = [t for t in threading.enumerate()
             if t is not threading.main_thread() and not isinstance(t, threading._DummyThread) and t.is_alive()]
    assert not alive, f"threads left running: {alive}"


def open_window(qtbot, folder: Path, wait_image: bool = True):  # noqa: ANN001, ANN201
    from lesion_studio.gui.app import MainWindow

    window = MainWindow()  # callers close() and dispose() it (see the ``window`` fixture)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    window.open_project(folder)
    if wait_image:
        qtbot.waitUntil(lambda: window.canvas.radiograph is not None, timeout=10_000)
    return window


@pytest.fixture
def window(qtbot, demo_project):  # noqa: ANN001, ANN201
    w = open_window(qtbot, demo_project.folder)
    yield w
    w.close()
    assert not w.loader._pool._pool.activeThreadCount()
    dispose(w)


def dispose(widget) -> None:  # noqa: ANN001
    """Delete a window while QApplication is alive, so nothing Qt-owned is collected at exit."""
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent

    widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


def show(qtbot, window, image_id: int) -> None:  # noqa: ANN001
    """Select an image in the browser (as a click would) and wait for it on the canvas."""
    window.browser.select_image(image_id)
    qtbot.waitUntil(lambda: window.canvas.radiograph is not None and window.record is not None
                    and window.record.id == image_id
                    and window.canvas.radiograph.path == window.record.abs_path, timeout=10_000)
