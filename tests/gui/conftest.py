"""GUI test fixtures: an isolated QSettings, the main window on a demo project, thread hygiene."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest


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
