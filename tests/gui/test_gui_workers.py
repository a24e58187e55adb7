"""The background-work glue: jobs report, fail politely and cancel; pool results arrive as signals."""

from __future__ import annotations

import time

import numpy as np
import pytest

from lesion_studio.errors import LesionStudioError
from lesion_studio.gui.workers import JobWorker, TaskPool
from lesion_studio.jobs import ProgressEvent


def test_job_worker_reports_progress_and_result(qtbot) -> None:  # noqa: ANN001
    def job(progress, cancel):  # noqa: ANN001, ANN202
        for i in range(3):
            progress(ProgressEvent("count", i + 1, 3))
        return "ok"

    worker = JobWorker(job)
    events = []
    worker.progressed.connect(events.append)
    with qtbot.waitSignal(worker.succeeded, timeout=5000) as blocker:
        worker.start()
    worker.wait()
    assert blocker.args == ["ok"] and [e.done for e in events] == [1, 2, 3]


def test_job_worker_turns_errors_into_messages(qtbot) -> None:  # noqa: ANN001
    def job(progress, cancel):  # noqa: ANN001, ANN202
        raise LesionStudioError("The folder is empty. Choose another.")

    worker = JobWorker(job)
    with qtbot.waitSignal(worker.failed, timeout=5000) as blocker:
        worker.start()
    worker.wait()
    assert blocker.args == ["The folder is empty. Choose another."]


def test_job_worker_cancels(qtbot) -> None:  # noqa: ANN001
    def job(progress, cancel):  # noqa: ANN001, ANN202
        for _ in range(500):
            cancel.raise_if_cancelled("Counting")
            time.sleep(0.01)

    worker = JobWorker(job)
    with qtbot.waitSignal(worker.cancelled, timeout=5000):
        worker.start()
        worker.cancel()
    worker.wait()


def test_task_pool_delivers_on_the_gui_thread(qtbot) -> None:  # noqa: ANN001
    pool = TaskPool(threads=2)
    got = {}
    pool.done.connect(lambda key, value: got.__setitem__(key, value))
    pool.failed.connect(lambda key, msg: got.__setitem__(key, msg))
    for i in range(5):
        pool.submit(i, lambda i=i: i * i)
    pool.submit("bad", lambda: 1 / 0)
    qtbot.waitUntil(lambda: len(got) == 6)
    assert [got[i] for i in range(5)] == [0, 1, 4, 9, 16]
    assert "ZeroDivisionError" in got["bad"]
    pool.shutdown()


def test_display_helpers_never_touch_pixels(demo_project) -> None:  # noqa: ANN001
    from lesion_studio.io import open_radiograph
    from lesion_studio.io.display import WINDOW_PRESETS, preset_levels, thumbnail_array, to_uint8

    rg = open_radiograph(demo_project.images()[0].abs_path)
    before = rg.pixels.copy()
    for key, _label in WINDOW_PRESETS:
        lo, hi = preset_levels(rg, key)
        assert hi > lo
    assert to_uint8(rg.pixels, rg.window_levels()).dtype == np.uint8
    thumb = thumbnail_array(rg, 64)
    assert max(thumb.shape) == 64 and thumb.dtype == np.uint8
    assert np.array_equal(rg.pixels, before)
    with pytest.raises(ValueError):
        preset_levels(rg, "nope")
