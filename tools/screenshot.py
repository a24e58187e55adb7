"""Render the main window to PNG offscreen (for the README and for visual review).

    python tools/screenshot.py                          # demo project -> resources/screenshots/main-window.png
    python tools/screenshot.py --dicom ../shared/data/dicom/RG3_J2KR.dcm --out /tmp/rg3.png
    python tools/screenshot.py --synthesis              # -> resources/screenshots/synthesis-panel.png
    python tools/screenshot.py --read                   # the reading layout with box proposals -> reading-layout.png
    python tools/screenshot.py --size 1280x800 --out resources/screenshots/main-window-1280.png
    python tools/screenshot.py --synthesis --dicom ../shared/data/dicom/RG3_J2KR.dcm --out /tmp/rg3-synth.png

With --dicom the file is imported into a temporary project first (images from ../shared/data
never go into the repository). Works without a display: QT_QPA_PLATFORM=offscreen is the default.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

log = logging.getLogger("screenshot")


def _demo_proposals(project, image_id: int) -> None:  # noqa: ANN001
    """Two pending proposals of a stand-in detector on the image (a temporary demo project only)."""
    from lesion_studio.store import proposals as store_proposals
    from lesion_studio.store.records import Box

    rec = project.image(image_id)
    model = project.register_model("detector (screenshot)", "drn", project.folder / "none.safetensors",
                                   sha256="0" * 64)
    w, h = rec.width, rec.height
    store_proposals.store_detections(project, image_id, model, 0.86, [
        (Box(w * 0.55, h * 0.30, w * 0.70, h * 0.42), 0.86), (Box(w * 0.20, h * 0.60, w * 0.32, h * 0.70), 0.61)])


def render(project_folder: Path, out: Path, size: tuple[int, int] = (1440, 900), image_name: str | None = None,
           select_region: bool = True, read: bool = False) -> Path:
    from lesion_studio.gui.app import MainWindow
    from lesion_studio.gui.application import create_app, process_events_until
    from lesion_studio.gui.settings import use_settings_folder

    with tempfile.TemporaryDirectory() as settings_dir:
        use_settings_folder(settings_dir)  # leave the user's settings alone
        app = create_app()
        window = MainWindow()
        window.resize(*size)
        window.show()
        window.open_project(project_folder)
        project = window.session.project
        target = None
        if image_name:
            target = next((r for r in project.images() if r.name == image_name), None)
        if target is None:  # a lesion image that also has a normal patch shows both overlays
            with_patch = {n.image_id for n in project.normal_patches()}
            lesion = [r for r in project.images(label="lesion") if project.boxes(r.id)]
            target = next((r for r in lesion if r.id in with_patch), lesion[0] if lesion else project.images()[0])
        if read:
            _demo_proposals(project, target.id)
            window.set_layout_mode("read")
        window.browser.select_image(target.id)
        process_events_until(lambda: window.canvas.radiograph is not None and window.record.id == target.id,
                             what="showing the image", pause_s=0.01)
        boxes = project.boxes(target.id)
        if select_region and boxes:
            window.controller.select(("lesion", boxes[0].id))
        p = window.canvas.to_screen(*boxes[0].box.center) if boxes else None
        if p is not None:
            from PySide6.QtCore import QPoint
            from PySide6.QtTest import QTest

            QTest.mouseMove(window.canvas.viewport(), QPoint(int(p.x()) + 30, int(p.y()) + 30))
        _settle_and_save(app, window, 3.0, out)
    return out


def _viewer_share(window) -> str:  # noqa: ANN001
    c = window.canvas
    return f"viewer {c.width()}x{c.height()} = {100 * c.width() * c.height() / (window.width() * window.height()):.1f} %"


def _settle_and_save(app, window, seconds: float, out: Path) -> None:  # noqa: ANN001
    """Let background work (thumbnails, translation) arrive, then grab the window to ``out``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)
    log.info("window %dx%d, %s", window.width(), window.height(), _viewer_share(window))
    image = window.grab().toImage()
    window.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    _save_small_png(image, out)


def _save_small_png(image, out: Path) -> None:  # noqa: ANN001 - QImage
    """Save as an adaptive-palette PNG: a dark UI and a grey radiograph fit in 256 colours."""
    from io import BytesIO

    from PIL import Image
    from PySide6.QtCore import QBuffer, QIODevice

    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    im = Image.open(BytesIO(bytes(buf.data()))).convert("RGB")
    im.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)


SYNTH_MODEL = "unit-screenshot-tiny"


def _screenshot_model(folder: Path, iterations: int) -> str:
    """A UNIT model in the project: the first registered one, else a ``tiny`` one trained here."""
    from lesion_studio.store.project import Project

    project = Project.open(folder)
    try:
        models = project.models(kind="unit")
        if models:
            return models[-1].name
        from lesion_studio.training.unit_config import preset_config
        from lesion_studio.training.unit_trainer import train_unit

        log.info("training a tiny UNIT model for %d iterations (a few minutes on a busy CPU)", iterations)
        train_unit(project, preset_config("tiny", iterations=iterations, device="cpu", checkpoint_every=10_000),
                   name=SYNTH_MODEL)
        return SYNTH_MODEL
    finally:
        project.close()


def render_synthesis(project_folder: Path, out: Path, model: str, image_name: str | None = None,
                     size: tuple[int, int] = (1440, 960), n: float = 2.5) -> Path:
    """The synthesis panel showing the four views for a normal patch (or a central window), A/B on."""
    from PySide6.QtCore import Qt

    from lesion_studio.gui.app import MainWindow
    from lesion_studio.gui.application import create_app, process_events_until
    from lesion_studio.gui.settings import use_settings_folder
    from lesion_studio.store.records import Box

    with tempfile.TemporaryDirectory() as settings_dir:
        use_settings_folder(settings_dir)
        app = create_app()
        window = MainWindow()
        window.resize(*size)
        window.show()
        window.open_project(project_folder)
        dock = window.docks["synthesis"]
        dock.show()
        window.resizeDocks([dock], [330], Qt.Orientation.Vertical)
        panel = window.panels["synthesis"]
        panel.select_model(model)
        project = window.session.project
        patches = {p.image_id: p for p in project.normal_patches()}
        target = next((r for r in project.images() if r.name == image_name), None) if image_name else None
        if target is None:
            target = next(r for r in project.images(label="normal") if r.id in patches)
        window.browser.select_image(target.id)
        process_events_until(lambda: window.canvas.radiograph is not None and window.record.id == target.id,
                             what="showing the image", pause_s=0.01)
        done: list[bool] = []
        panel.translated.connect(lambda: done.append(True))
        if target.id in patches:
            window.controller.select(("patch", patches[target.id].id))
        else:  # a real radiograph without picked patches: a window on the middle of the image
            side = min(target.width, target.height) // 7
            cx, cy = target.width / 2, target.height / 2
            panel.set_window(Box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
        process_events_until(lambda: bool(done), 120.0, what="the translation", pause_s=0.01)
        panel.n_control.spin.setValue(n)
        window.actions_by_key["synthesis_ab"].setChecked(True)
        _settle_and_save(app, window, 2.0, out)
    return out


def synthesis_main(args: argparse.Namespace) -> int:
    out = args.out or ROOT / "resources" / "screenshots" / "synthesis-panel.png"
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.project
        if folder is None:
            from lesion_studio.demo import build_demo_project

            folder = build_demo_project(Path(tmp) / "demo").folder
        model = _screenshot_model(folder, args.iterations)
        image_name = None
        if args.dicom:
            if not args.dicom.is_file():
                log.warning("%s is not available; skipping", args.dicom)
                return 0
            import shutil

            from lesion_studio.dataset.importer import import_source
            from lesion_studio.store.project import Project

            folder = Path(shutil.copytree(folder, Path(tmp) / "with-dicom"))  # never import into --project
            project = Project.open(folder)
            import_source(project, args.dicom)
            project.close()
            image_name = args.dicom.name
        render_synthesis(folder, out, model, image_name)
    log.info("wrote %s (%d KB)", out, out.stat().st_size // 1024)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="project folder (default: a fresh demo project)")
    parser.add_argument("--dicom", type=Path, help="render this DICOM (imported into a temporary project)")
    parser.add_argument("--out", type=Path, help="PNG to write (default: resources/screenshots/<view>.png)")
    parser.add_argument("--synthesis", action="store_true", help="the synthesis panel (four views, A/B on)")
    parser.add_argument("--read", action="store_true", help="the reading layout, with box proposals on the image")
    parser.add_argument("--size", default="1440x900", help="window size WxH (default 1440x900)")
    parser.add_argument("--iterations", type=int, default=300, help="--synthesis: tiny-model iterations to train "
                        "when the project has no UNIT model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.synthesis:
        return synthesis_main(args)
    args.out = args.out or ROOT / "resources" / "screenshots" / ("reading-layout.png" if args.read else "main-window.png")
    size = tuple(int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        if args.dicom:
            from lesion_studio.dataset.importer import import_source
            from lesion_studio.store.project import Project

            if not args.dicom.is_file():
                log.warning("%s is not available; skipping", args.dicom)
                return 0
            project = Project.create(Path(tmp) / "dicom-project")
            import_source(project, args.dicom)
            folder = project.folder
            project.close()
            render(folder, args.out, select_region=False)
        else:
            folder = args.project
            if folder is None:
                from lesion_studio.demo import build_demo_project

                folder = build_demo_project(Path(tmp) / "demo").folder
            render(folder, args.out, size=size, read=args.read)
    log.info("wrote %s (%d KB)", args.out, args.out.stat().st_size // 1024)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
