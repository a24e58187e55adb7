"""GUI test fixtures: patient qtbot waits, an isolated QSettings, the main window on a demo project, thread hygiene."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

#: Every qtbot wait is a hang guard, not a speed check. Whatever timeout a test names (pytest-qt's
#: default is 5 s), it waits at least this long for its signal or condition, and goes on the
#: moment that comes: on a loaded machine the background work is slower, never wrong.
PATIENCE_MS = 300_000


def _patient(wait):  # noqa: ANN001, ANN202
    @functools.wraps(wait)
    def patient(self, *args, timeout: int | None = 5000, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if timeout is not None and timeout > 0:
            timeout = max(timeout, PATIENCE_MS)
        return wait(self, *args, timeout=timeout, **kwargs)

    return patient


for _name in ("waitSignal", "waitSignals", "waitUntil", "waitCallback", "waitExposed", "waitActive"):
    setattr(QtBot, _name, _patient(getattr(QtBot, _name)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A GUI test on the session's trained UNIT model (``tiny_unit_master``) is slow: it waits for
    that training once, and translates with the model. ``make test-fast`` leaves those out."""
    for item in items:
        if "tiny_unit_master" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="session")
def _isolated_qsettings(tmp_path_factory: pytest.TempPathFactory) -> None:
    from lesion_studio.gui.settings import use_settings_folder

    use_settings_folder(tmp_path_factory.mktemp("qsettings"))


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


@pytest.fixture(scope="session")
def tiny_unit_master(demo_project_master: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo project with a tiny UNIT model ``tiny-unit`` (ONNX exported), trained once per session.

    A few iterations: the panels need a real, registered translator, not a good one. Read-only:
    copy it with ``tiny_unit_project``.
    """
    import shutil

    pytest.importorskip("torch")
    from lesion_studio.store import Project
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    folder = tmp_path_factory.mktemp("tiny-unit") / "demo"
    shutil.copytree(demo_project_master, folder)
    project = Project.open(folder)
    try:
        cfg = preset_config("tiny", iterations=8, cpu_threads=1, device="cpu", sample_every=4, checkpoint_every=100)
        train_unit(project, cfg, name="tiny-unit")
    finally:
        project.close()
    return folder


@pytest.fixture
def tiny_unit_project(tiny_unit_master: Path, tmp_path: Path) -> Path:
    """A private copy (folder, not opened) of the demo project with the ``tiny-unit`` model."""
    import shutil

    folder = tmp_path / "tiny-unit-demo"
    shutil.copytree(tiny_unit_master, folder)
    return folder
