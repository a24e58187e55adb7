"""Live-preview benchmark: n-slider-to-repaint and window-move-to-translated latency. Prints JSON.

    python benchmarks/preview_bench.py [--project FOLDER] [--iterations 20] [--repeat 60]

* ``slider``: from moving the n slider (``setValue`` → ``valueChanged``) to the end of the repaint
  of the panel's views (and of the viewer with the A/B overlay on), for a 256² window: median and
  p95 in ms, target ≤ 16 ms. The translator must not be called (checked).
* ``move``: from moving the window (``set_window``) to the translated views being shown, on the
  CPU (onnxruntime, ``LESION_STUDIO_ORT_DEVICE=cpu``) with the ``fast`` preset (128² translator
  input): cold (first request: loads the ONNX session) and warm median/p95.
* With ../shared/data present, the slider is also measured on RG3 (1760² 16-bit DICOM): the
  views repaint window-sized layers, so the radiograph's size should not matter.

The ``fast`` model is trained for a few iterations on the demo project (quality is irrelevant to
latency) and kept under benchmarks/out/preview-demo for the next run.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LESION_STUDIO_ORT_DEVICE", "cpu")  # the target is the CPU
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("LESION_STUDIO_SHARED", ROOT.parent / "shared" / "data"))
OUT = ROOT / "benchmarks" / "out"
MODEL = "fast-preview-bench"
log = logging.getLogger("preview_bench")


def prepare_project(folder: Path | None, iterations: int) -> Path:
    """The demo project with a registered ``fast`` UNIT model (trained here once, then reused)."""
    from lesion_studio.store.database_file import DB_NAME
    from lesion_studio.store.project import Project

    if folder is None:
        folder = OUT / "preview-demo"
        if not (folder / DB_NAME).exists():
            from lesion_studio.demo import build_demo_project

            build_demo_project(folder).close()
    project = Project.open(folder)
    try:
        if not any(m.name == MODEL for m in project.models(kind="unit")):
            from lesion_studio.training.unit_config import preset_config
            from lesion_studio.training.unit_trainer import train_unit

            log.info("training %s for %d iterations (latency only: quality is irrelevant)", MODEL, iterations)
            cfg = preset_config("fast", iterations=iterations, device="cpu", sample_every=10_000,
                                checkpoint_every=10_000)
            train_unit(project, cfg, name=MODEL)
        if SHARED.joinpath("dicom", "RG3_J2KR.dcm").exists() and not any(
                r.name == "RG3_J2KR.dcm" for r in project.images()):
            from lesion_studio.dataset.importer import import_source

            import_source(project, SHARED / "dicom" / "RG3_J2KR.dcm")
    finally:
        project.close()
    return folder


def _wait(predicate) -> None:  # noqa: ANN001
    """A tight event-loop wait (0.5 ms): the latencies measured here are a few milliseconds."""
    from lesion_studio.gui.application import process_events_until

    process_events_until(predicate, 60.0, what="preview benchmark", pause_s=0.0005)


def _stats(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {"median_ms": round(statistics.median(s), 2), "p95_ms": round(s[min(len(s) - 1, int(0.95 * len(s)))], 2),
            "max_ms": round(s[-1], 2), "n": len(s)}


def measure(folder: Path, repeat: int) -> dict:
    from lesion_studio.gui.app import MainWindow
    from lesion_studio.gui.application import create_app
    from lesion_studio.gui.settings import use_settings_folder
    from lesion_studio.store.records import Box

    out: dict = {}
    with tempfile.TemporaryDirectory() as settings_dir:
        use_settings_folder(settings_dir)
        app = create_app()
        window = MainWindow()
        window.resize(1600, 1000)
        window.show()
        window.open_project(folder)
        window.docks["synthesis"].show()
        panel = window.panels["synthesis"]
        panel.select_model(MODEL)
        project = window.session.project

        calls = {"n": 0}
        real_loader = panel.preview.cache.loader

        def counting_loader(model, folder, backend="auto"):  # noqa: ANN001, ANN202
            tr = real_loader(model, folder, backend=backend)
            inner = tr.translate

            def translate(*a, **k):  # noqa: ANN002, ANN003, ANN202
                calls["n"] += 1
                return inner(*a, **k)
            tr.translate = translate
            return tr
        panel.preview.cache.loader = counting_loader

        def show(rec) -> None:  # noqa: ANN001
            window.browser.select_image(rec.id)
            _wait(lambda: window.record is not None and window.record.id == rec.id
                  and window.canvas.radiograph is not None and window.canvas.radiograph.path == rec.abs_path)

        def translate(box: Box) -> float:
            done = []
            panel.translated.connect(lambda: done.append(time.perf_counter()))
            t0 = time.perf_counter()
            panel.set_window(box)
            _wait(lambda: bool(done))
            panel.translated.disconnect()
            return (done[0] - t0) * 1000

        def slider_run(tag: str) -> dict:
            result = {}
            for ab in (False, True):
                window.actions_by_key["synthesis_ab"].setChecked(ab)
                app.processEvents()
                before = calls["n"]
                ms = []
                values = [100 + (i * 37) % 800 for i in range(repeat)]
                for v in values:
                    t0 = time.perf_counter()
                    panel.n_control.slider.setValue(v)  # valueChanged → re-blend → layers updated
                    app.processEvents()  # the repaint of the views (and the viewer)
                    ms.append((time.perf_counter() - t0) * 1000)
                assert calls["n"] == before, "the slider must not call the translator"
                result["ab_on" if ab else "ab_off"] = _stats(ms)
            window.actions_by_key["synthesis_ab"].setChecked(False)
            result["reblend_only_ms"] = round(panel.preview.last_reblend_s * 1000, 3)
            result["image"] = f"{window.record.name} {window.record.width}x{window.record.height}"
            out[f"slider_{tag}"] = result
            return result

        demo = next(r for r in project.images(label="normal") if r.width >= 256 and r.height >= 256)
        show(demo)
        base = Box(32.0, 64.0, 288.0, 320.0)  # 256² inside the 320×384 demo image
        cold = translate(base)
        assert panel.preview.result.window.width == 256
        moves = []
        for i in range(max(10, repeat // 3)):
            dx, dy = (i * 13) % 64, (i * 29) % 64
            moves.append(translate(Box(base.x0 - 32 + dx, base.y0 - 32 + dy, base.x1 - 32 + dx, base.y1 - 32 + dy)))
        out["move_to_translated_cpu"] = {"cold_ms": round(cold, 1), **_stats(moves), "window": "256x256",
                                         "model": MODEL, "device": panel.preview.translation.device}
        slider_run("demo_256")

        large = next((r for r in project.images() if r.name == "RG3_J2KR.dcm"), None)
        if large is not None:
            show(large)
            translate(Box(700.0, 700.0, 956.0, 956.0))
            slider_run("rg3_1760_256")
        window.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="a project (default: the demo, kept in benchmarks/out)")
    parser.add_argument("--iterations", type=int, default=20, help="fast-preset iterations to train")
    parser.add_argument("--repeat", type=int, default=60)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    folder = prepare_project(args.project, args.iterations)
    result = {"benchmark": "preview", "target_slider_ms": 16, **measure(folder, args.repeat)}
    import json

    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
