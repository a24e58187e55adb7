"""``lesion-studio --selftest``: prove an installation (above all the desktop bundle) works.

Three checks, each of which a broken bundle fails in its own way:

1. **Compressed DICOM**: decode a JPEG 2000 and a JPEG-LS file (shipped in
   ``resources/selftest/``) and compare the pixels with the original's SHA-256. This catches a
   pylibjpeg plugin that PyInstaller left out (they are found through entry-point metadata).
2. **Built-in generator**: translate a phantom window with every built-in UNIT model through
   onnxruntime (numpy only, no torch) and check the output's shape and range.
3. **Main window**: build the main window offscreen on a six-image demo project, draw it into an
   image and check it is not blank (Qt plugins, pyqtgraph, the theme).

The result is printed as one line per check; the exit status is 0 only when all pass. Nothing is
written outside a temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def check_dicom_codecs() -> str:
    from lesion_studio.io import open_radiograph
    from lesion_studio.paths import resources_dir

    folder = resources_dir() / "selftest"
    expected = json.loads((folder / "expected.json").read_text())
    done = []
    for name in ("jpeg2000.dcm", "jpegls.dcm"):
        rg = open_radiograph(folder / name)
        pixels = np.ascontiguousarray(rg.pixels.astype(np.uint16))
        if list(pixels.shape) != expected["shape"] or hashlib.sha256(pixels.tobytes()).hexdigest() != expected["sha256"]:
            raise AssertionError(f"{name} decoded to different pixels")
        done.append(name.removesuffix(".dcm"))
    return "decoded " + " and ".join(done) + " losslessly"


def check_builtin_generators() -> str:
    from lesion_studio.builtin_models import builtin_models, check_builtin
    from lesion_studio.demo.phantom import generate_phantom
    from lesion_studio.models import layout
    from lesion_studio.models.specs import UnitArch
    from lesion_studio.synthesis.translator import OnnxTranslator, _Info

    models = builtin_models(kind="unit")
    if not models:
        raise AssertionError("no built-in generator is installed")
    case = generate_phantom(3, body_part="femur", lesion=False, size=(256, 224))
    names = []
    for model in models:
        check_builtin(model)
        meta = model.metadata
        res = int(meta["resolution"])
        info = _Info(resolution=res, model_id=None, model_name=model.registered_name, sha256=model.sha256,
                     arch=UnitArch(**meta["arch"]), metadata=meta)
        translator = OnnxTranslator(model.folder / layout.ONNX, info, prefer_cuda=False)
        window = case.pixels[64:64 + res, 80:80 + res].astype(np.float32)
        lo, hi = float(window.min()), float(window.max())
        patch = ((window - lo) / max(hi - lo, 1.0) * 2 - 1)[None, None]
        out = translator.translate(patch)
        if out.shape != patch.shape or not np.isfinite(out).all() or np.abs(out).max() > 1.0001:
            raise AssertionError(f"{model.name} produced an invalid translation {out.shape}")
        names.append(f"{model.registered_name} ({'/'.join(translator.providers)})")
    return "translated a phantom window with " + ", ".join(names)


def check_main_window() -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from lesion_studio.demo import build_demo_project
    from lesion_studio.gui.app import MainWindow
    from lesion_studio.gui.application import create_app
    from lesion_studio.gui.settings import use_settings_folder

    with tempfile.TemporaryDirectory(prefix="lesion-studio-selftest-") as tmp:
        use_settings_folder(Path(tmp) / "settings")  # recent projects etc. stay out of the real profile
        build_demo_project(Path(tmp) / "demo", n_images=6, size=(192, 160)).close()
        app = create_app()
        window = MainWindow()
        window.resize(1100, 700)
        window.show()
        window.open_project(Path(tmp) / "demo")
        app.processEvents()
        image = window.grab().toImage()
        window.close()
        app.processEvents()
        if image.isNull() or image.width() < 100:
            raise AssertionError("the main window did not draw")
        # A drawn window has many distinct colours; a blank one has one or two.
        sample = {image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 29)}
        if len(sample) < 8:
            raise AssertionError(f"the main window drew almost nothing ({len(sample)} colours)")
        size = f"{image.width()}×{image.height()}"
    return f"drew the main window offscreen ({size}, {len(sample)} colours sampled)"


CHECKS: list[tuple[str, Callable[[], str]]] = [
    ("dicom-codecs", check_dicom_codecs),
    ("builtin-generator", check_builtin_generators),
    ("main-window", check_main_window),
]


def run_selftest(print_line: Callable[[str], None] = print) -> int:
    """Run every check, print one line each; 0 when all pass, 1 otherwise."""
    failed = 0
    with tempfile.TemporaryDirectory(prefix="lesion-studio-selftest-home-") as home:
        # Settings, logs and the demo go to a throw-away home: a self-test leaves no trace.
        previous = os.environ.get("LESION_STUDIO_HOME")
        os.environ["LESION_STUDIO_HOME"] = home
        try:
            for name, check in CHECKS:
                t0 = time.perf_counter()
                try:
                    detail = check()
                except Exception as exc:  # report every failure, not just the first
                    log.exception("self-test %s failed", name)
                    failed += 1
                    print_line(f"FAIL {name}: {type(exc).__name__}: {exc}")
                else:
                    print_line(f"ok   {name}: {detail} [{time.perf_counter() - t0:.2f} s]")
        finally:
            if previous is None:
                os.environ.pop("LESION_STUDIO_HOME", None)
            else:
                os.environ["LESION_STUDIO_HOME"] = previous
    print_line("self-test passed" if not failed else f"self-test FAILED ({failed} of {len(CHECKS)} checks)")
    return 1 if failed else 0
