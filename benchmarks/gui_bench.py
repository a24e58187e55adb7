"""GUI benchmark: start-up, choose-to-first-paint, scrolling and memory. Prints JSON.

    python benchmarks/gui_bench.py [--fracatlas-project FOLDER] [--skip-fracatlas]

* ``start_to_window_s``: a fresh interpreter imports the GUI and shows the main window
  (subprocess wall time, interpreter start included); ``torch_imported_at_start`` must be false.
* ``first_paint_s``: from choosing an image in the browser to its first paint on the canvas, for
  RG3_J2KR (1760², JPEG 2000 lossless; skipped when ../shared/data is absent) and a FracAtlas JPEG.
  Cold = not in the decode cache; warm = prefetched neighbour.
* ``scroll``: per-step time while scrolling the whole FracAtlas browser (thumbnails pending).
* ``rss_mb``: resident memory with the 2,274-image FracAtlas project open and a few images shown.

The FracAtlas project is imported (labels.csv + boxes.csv) into a temporary folder unless
``--fracatlas-project`` names an existing one (import takes a minute or two).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("LESION_STUDIO_SHARED", ROOT.parent / "shared" / "data"))
log = logging.getLogger("gui_bench")


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def start_to_window(project: Path | None) -> dict:
    code = (
        "import time, sys, json; t0 = time.perf_counter()\n"
        "from lesion_studio.gui.app import MainWindow\n"
        "from lesion_studio.gui.application import create_app\n"
        "app = create_app(); w = MainWindow(); w.show(); app.processEvents()\n"
        "t1 = time.perf_counter()\n"
        "if len(sys.argv) > 1: w.open_project(sys.argv[1]); app.processEvents()\n"
        "t2 = time.perf_counter()\n"
        "print(json.dumps({'in_process_window_s': t1 - t0, 'open_project_s': t2 - t1, "
        "'torch': 'torch' in sys.modules})); w.close()\n"
    )
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code, *([str(project)] if project else [])], capture_output=True,
                             text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
        wall = time.perf_counter() - t0
        info = json.loads(out.stdout.strip().splitlines()[-1])
        info["wall_s"] = wall
        runs.append(info)
    best = min(runs, key=lambda r: r["wall_s"])
    return {"start_to_window_s": round(best["wall_s"], 3),
            "in_process_window_s": round(best["in_process_window_s"], 3),
            "open_project_s": round(best["open_project_s"], 3),
            "torch_imported_at_start": any(r["torch"] for r in runs)}


class Harness:
    def __init__(self) -> None:
        from lesion_studio.gui.app import MainWindow
        from lesion_studio.gui.application import create_app
        from lesion_studio.gui.settings import use_settings_folder

        self._settings = tempfile.TemporaryDirectory()
        use_settings_folder(self._settings.name)
        self.app = create_app()
        self.window = MainWindow()
        self.window.resize(1440, 900)
        self.window.show()

    def wait(self, predicate, timeout_s: float = 60.0) -> None:  # noqa: ANN001
        from lesion_studio.gui.application import process_events_until

        process_events_until(predicate, timeout_s, what="GUI benchmark")

    def first_paint(self, image_id: int) -> float:
        w = self.window
        w.last_paint_s = None
        w.browser.select_image(image_id, emit=False)
        w.show_image(image_id)  # what the browser's selection signal calls
        self.wait(lambda: w.last_paint_s is not None and w.record.id == image_id)
        return float(w.last_paint_s)

    def settle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.005)

    def close(self) -> None:
        self.window.close()
        self.window.deleteLater()
        self.app.processEvents()
        self._settings.cleanup()


def bench_rg3(h: Harness, tmp: Path) -> dict:
    from lesion_studio.dataset.importer import import_source
    from lesion_studio.store.project import Project

    rg3 = SHARED / "dicom" / "RG3_J2KR.dcm"
    if not rg3.is_file():
        return {"skipped": f"{rg3} not available"}
    project = Project.create(tmp / "rg3")
    import_source(project, rg3)
    folder = project.folder
    project.close()
    h.window.open_project(folder)
    h.wait(lambda: h.window.canvas.radiograph is not None)  # the first open (also warms the decoder)
    image_id = h.window.record.id
    cold = []
    for _ in range(5):
        h.settle(0.2)
        h.window.loader.forget()
        cold.append(h.first_paint(image_id))
    h.settle(0.2)
    warm = h.first_paint(image_id)  # now in the decode cache
    return {"image": "RG3_J2KR.dcm 1760x1760 JPEG 2000 lossless", "cold_s_median": round(statistics.median(cold), 3),
            "cold_runs_s": [round(c, 3) for c in cold], "cached_s": round(warm, 3)}


def build_fracatlas(tmp: Path) -> Path:
    from lesion_studio.dataset.importer import import_source
    from lesion_studio.store.project import Project

    xray = SHARED / "xray"
    project = Project.create(tmp / "fracatlas")
    t0 = time.perf_counter()
    report = import_source(project, xray / "images", labels_csv=xray / "labels.csv", boxes_csv=xray / "boxes.csv")
    log.info("imported FracAtlas: %d images in %.0f s", report.added, time.perf_counter() - t0)
    folder = project.folder
    project.close()
    return folder


def bench_fracatlas(h: Harness, folder: Path) -> dict:
    w = h.window
    w.open_project(folder)
    h.wait(lambda: w.canvas.radiograph is not None)
    ids = w.browser.visible_image_ids()
    cold = []
    for image_id in ids[100:105]:
        h.settle(0.2)
        w.loader.forget()
        cold.append(h.first_paint(image_id))
    h.settle(1.0)  # let the prefetch of the next image finish
    warm = h.first_paint(w.browser.neighbour_id(1))
    # Scroll the whole table a page at a time, as a fast flick would, and time each step.
    bar = w.browser.table.verticalScrollBar()
    steps = []
    for value in range(0, bar.maximum() + 1, max(1, bar.pageStep())):
        t0 = time.perf_counter()
        bar.setValue(value)
        w.browser.table.viewport().repaint()
        h.app.processEvents()
        steps.append((time.perf_counter() - t0) * 1000)
    h.settle(2.0)
    steps.sort()
    return {
        "images": len(ids),
        "jpeg_first_paint_cold_s_median": round(statistics.median(cold), 3),
        "jpeg_first_paint_warm_s": round(warm, 3),
        "scroll_steps": len(steps),
        "scroll_step_ms_median": round(statistics.median(steps), 2),
        "scroll_step_ms_p95": round(steps[int(0.95 * (len(steps) - 1))], 2),
        "scroll_step_ms_max": round(steps[-1], 2),
        "rss_mb": round(rss_mb(), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GUI benchmark (JSON on stdout)")
    parser.add_argument("--fracatlas-project", type=Path, help="an already imported FracAtlas project")
    parser.add_argument("--skip-fracatlas", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    result: dict = {"python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        from lesion_studio.demo import build_demo_project

        demo = build_demo_project(tmp / "demo").folder
        result["start"] = start_to_window(None)
        result["start_with_demo_project"] = start_to_window(demo)
        h = Harness()
        try:
            result["rg3"] = bench_rg3(h, tmp)
            if args.skip_fracatlas:
                result["fracatlas"] = {"skipped": "--skip-fracatlas"}
            elif args.fracatlas_project or (SHARED / "xray" / "labels.csv").is_file():
                folder = args.fracatlas_project or build_fracatlas(tmp)
                result["fracatlas"] = bench_fracatlas(h, folder)
            else:
                result["fracatlas"] = {"skipped": f"{SHARED / 'xray'} not available"}
        finally:
            h.close()
    print(json.dumps(result, indent=2), flush=True)
    # Skip interpreter teardown: PySide6 and pyqtgraph can crash while Python garbage-collects
    # Qt objects at exit, which would only hide the numbers printed above.
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
