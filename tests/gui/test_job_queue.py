"""The job queue: one job per device at a time, the next starts after, queued jobs can be dropped."""

from __future__ import annotations

import threading

from lesion_studio.gui.job_queue import JobQueue, JobState, device_key
from lesion_studio.jobs import ProgressEvent


def _gate_job(gate: threading.Event, log: list[str], name: str):  # noqa: ANN202
    """A quick stub job that runs until ``gate`` opens (or it is cancelled)."""

    def job(progress, cancel):  # noqa: ANN001, ANN202
        log.append(f"start {name}")
        progress(ProgressEvent("stub", 1, 2, name))
        while not gate.wait(0.01):
            cancel.raise_if_cancelled(name)
        log.append(f"end {name}")
        return name

    return job


def test_one_job_per_device_and_the_next_starts_after(qtbot) -> None:  # noqa: ANN001
    queue = JobQueue()
    gates = {n: threading.Event() for n in ("a", "b", "c")}
    log: list[str] = []
    a = queue.submit(_gate_job(gates["a"], log, "a"), "job a", "cpu")
    b = queue.submit(_gate_job(gates["b"], log, "b"), "job b", "cpu")
    c = queue.submit(_gate_job(gates["c"], log, "c"), "job c", "cuda")  # another device runs alongside
    assert queue.rowCount() == 3
    qtbot.waitUntil(lambda: "start a" in log and "start c" in log, timeout=5000)
    assert a.state == JobState.RUNNING and b.state == JobState.QUEUED and c.state == JobState.RUNNING
    assert "start b" not in log and [j.title for j in queue.running("cpu")] == ["job a"]
    qtbot.waitUntil(lambda: a.fraction == 0.5, timeout=5000)  # progress reached the job
    assert "50%" in queue.data(queue.index(0))

    with qtbot.waitSignal(a.finished, timeout=5000):
        gates["a"].set()
    assert a.state == JobState.DONE and a.result == "a"
    qtbot.waitUntil(lambda: "start b" in log, timeout=5000)
    assert b.state == JobState.RUNNING
    assert log.index("end a") < log.index("start b")
    gates["b"].set()
    gates["c"].set()
    qtbot.waitUntil(lambda: not queue.busy(), timeout=5000)
    assert [j.state for j in (a, b, c)] == [JobState.DONE] * 3
    assert queue.data(queue.index(1), JobQueue.StateRole) == "done"


def test_cancel_a_queued_job_and_a_running_one(qtbot) -> None:  # noqa: ANN001
    queue = JobQueue()
    gate = threading.Event()
    log: list[str] = []
    first = queue.submit(_gate_job(gate, log, "first"), "first", "cpu")
    second = queue.submit(_gate_job(gate, log, "second"), "second", "cpu")
    qtbot.waitUntil(lambda: "start first" in log, timeout=5000)
    queue.cancel(second)  # queued: dropped at once, never runs
    assert second.state == JobState.CANCELLED
    with qtbot.waitSignal(first.finished, timeout=5000):
        queue.cancel(first)  # running: stops at its next check
    assert first.state == JobState.CANCELLED
    qtbot.waitUntil(lambda: not queue.busy(), timeout=5000)
    assert "start second" not in log
    queue.clear_finished()
    assert queue.rowCount() == 0


def test_failures_become_messages_and_shutdown_stops_everything(qtbot) -> None:  # noqa: ANN001
    queue = JobQueue()

    def broken(progress, cancel):  # noqa: ANN001, ANN202
        raise RuntimeError("boom")

    bad = queue.submit(broken, "broken", "cpu")
    gate = threading.Event()
    log: list[str] = []
    slow = queue.submit(_gate_job(gate, log, "slow"), "slow", "cpu")
    waiting = queue.submit(_gate_job(gate, log, "waiting"), "waiting", "cpu")
    qtbot.waitUntil(lambda: bad.state == JobState.FAILED and slow.state == JobState.RUNNING, timeout=5000)
    assert "RuntimeError" in bad.error and "boom" in queue.data(queue.index(0), 3)  # 3: tooltip role
    assert queue.shutdown(timeout_ms=5000)
    assert slow.state == JobState.CANCELLED and waiting.state == JobState.CANCELLED
    assert "start waiting" not in log


def test_device_keys() -> None:
    assert device_key("auto", gpu_available=False) == "cpu"
    assert device_key("auto", gpu_available=True) == "cuda"
    assert device_key("gpu", None) == "cuda" and device_key("cuda:1", None) == "cuda"
    assert device_key("cpu", True) == "cpu"
