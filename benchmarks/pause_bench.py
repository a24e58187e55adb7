"""GAN pause and second start, as the Training panel drives them: seconds from the pause to the job's
return, and from a resumed start to its first training iteration.

    python -m benchmarks.pause_bench [--project PATH] [--body-parts hand] [--after 10] [--quick]

The job runs the core's ``run_training`` on a worker thread with a ``CancelToken``, as the GUI's job
queue does. The pause is timed from ``cancel()`` to the thread's return (the checkpoint, the weights
and the registry row; no ONNX export: that is deferred to the first use), wall and process CPU time.
The second start is a ``resume`` of the paused run: the issue's target is its patch preparation
(opening the project and reading the cached patch set); the time to its first training iteration,
which adds building the networks, loading the checkpoint and one iteration, is reported beside it. The first start (patch preparation from the images, cached per project and settings
by ``patches/set_cache.py``) is reported too; it is cold only the first time a project meets these
settings.

Without ``--project`` the run is on a fresh demo project in a temporary folder. With ``--project``
the benchmark registers a GAN named ``bench-pause-<pid>`` there and removes it (row and folder) at
the end. Prints JSON; targets: pause ≤ 5 s, second start's patch preparation ≤ 5 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.common import emit


class _TimedJob:
    """One training job on a worker thread: the times of its first events, its cancel, its return."""

    def __init__(self, request: Any, folder: Path, after: int) -> None:
        from lesion_studio.jobs import CancelToken

        self.request, self.folder, self.after = request, folder, after
        self.cancel = CancelToken()
        self.started = time.perf_counter()
        self.patches_ready: float | None = None
        self.first_iteration: float | None = None
        self.iterations = 0
        self.reached = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _progress(self, event: Any) -> None:
        now = time.perf_counter()
        if event.stage == "patches" and event.total and event.done >= event.total:
            self.patches_ready = now  # the patch set is prepared (or read from its cache)
        if event.stage == "train-gan":
            if self.first_iteration is None:
                self.first_iteration = now
            self.iterations += 1
            if self.iterations >= self.after:
                self.reached.set()

    def _run(self) -> None:
        from lesion_studio.errors import JobCancelled
        from lesion_studio.training.runs import run_training

        try:
            run_training(self.request, self.folder, progress=self._progress, cancel=self.cancel)
        except JobCancelled:
            pass
        except BaseException as exc:  # reported by pause()
            self.error = exc
        finally:
            self.reached.set()

    def pause(self, timeout_s: float) -> dict[str, float]:
        """Wait for ``after`` iterations, cancel, and time the job's return (wall and CPU)."""
        if not self.reached.wait(timeout_s):
            raise SystemExit(f"the GAN did not reach {self.after} iterations in {timeout_s:.0f} s")
        if self.error is not None:
            raise SystemExit(f"the GAN job failed: {self.error}")
        wall0, cpu0 = time.perf_counter(), time.process_time()
        self.cancel.cancel()
        self.thread.join(timeout_s)
        if self.thread.is_alive():
            raise SystemExit(f"the paused GAN job did not return in {timeout_s:.0f} s")
        return {"pause_wall_s": round(time.perf_counter() - wall0, 3),
                "pause_cpu_s": round(time.process_time() - cpu0, 3)}

    def to_first_iteration(self) -> float | None:
        return None if self.first_iteration is None else round(self.first_iteration - self.started, 3)

    def to_patches_ready(self) -> float | None:
        return None if self.patches_ready is None else round(self.patches_ready - self.started, 3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--project", type=Path, help="a project folder (default: a fresh demo project)")
    p.add_argument("--body-parts", default="", help="comma-separated body parts of the GAN (default: all)")
    p.add_argument("--preset", default="fast")
    p.add_argument("--after", type=int, default=10, help="iterations before each pause")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for any one step")
    p.add_argument("--quick", action="store_true", help="the demo project, 5 iterations before each pause")
    args = p.parse_args(argv)

    from lesion_studio.store.project import Project
    from lesion_studio.training.runs import TrainingRequest, model_folder

    temp = None
    if args.project is None:
        from lesion_studio.demo.project import build_demo_project

        temp = Path(tempfile.mkdtemp(prefix="pause-bench-"))
        build_demo_project(temp / "demo").close()
        folder = temp / "demo"
    else:
        folder = args.project.resolve()
    after = 5 if args.quick else args.after
    name = f"bench-pause-{os.getpid()}"
    parts = tuple(x.strip() for x in args.body_parts.split(",") if x.strip())
    request = TrainingRequest(kind="unit", name=name, preset=args.preset, length=1_000_000, body_parts=parts)
    result: dict[str, Any] = {"benchmark": "pause", "project": "demo" if temp else str(folder),
                              "preset": args.preset, "body_parts": list(parts), "iterations_before_pause": after}
    try:
        first = _TimedJob(request, folder, after)
        result["first"] = first.pause(args.timeout)
        result["first_start_to_iteration_s"] = first.to_first_iteration()
        result["first_start_patches_s"] = first.to_patches_ready()
        gan = model_folder(folder, "unit", name)
        result["onnx_files_after_pause"] = sorted(f.name for f in gan.glob("*.onnx"))
        second = _TimedJob(replace(request, resume=True), folder, after)
        result["second"] = second.pause(args.timeout)
        result["second_start_to_iteration_s"] = second.to_first_iteration()
        result["second_start_patches_s"] = second.to_patches_ready()
        result["targets"] = {"pause_s": 5.0, "second_start_s": 5.0}
        result["met"] = {"pause": max(result["first"]["pause_wall_s"], result["second"]["pause_wall_s"]) <= 5.0,
                         "second_start": (result["second_start_patches_s"] or 1e9) <= 5.0}
        result["load_average"] = os.getloadavg()
    finally:
        with Project.open(folder) as project:
            record = project.find_model(name)
            if record is not None:
                project.delete_model(record.id)
        shutil.rmtree(model_folder(folder, "unit", name), ignore_errors=True)
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
