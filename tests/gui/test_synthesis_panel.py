"""The synthesis panel, offscreen with real widgets and a tiny UNIT model trained in this session.

Pick a patch → the worker's translation fills the four views; the n slider re-blends without the
translator; moving the window re-translates and drops stale results; S flips the viewer between
real and synthetic; K keeps a sample with provenance; kept samples export as PNG and DICOM.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from lesion_studio.builtin_models import builtin_models
from lesion_studio.store.records import Box
from tests.gui.conftest import dispose, open_window, show
from tests.gui.helpers import drag

pytest.importorskip("torch")  # the session fixture trains the model


class CountingTranslator:
    """A real translator that counts calls (and can be held at a gate to provoke stale results)."""

    def __init__(self, inner, counter: dict, gate: threading.Event | None = None) -> None:  # noqa: ANN001
        self._inner = inner
        self._counter = counter
        self._gate = gate

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._inner, name)

    def translate(self, patches, **kwargs):  # noqa: ANN001, ANN003, ANN201
        with self._counter["lock"]:
            self._counter["calls"] += 1
        if self._gate is not None:
            assert self._gate.wait(600), "the test never opened the gate"
        return self._inner.translate(patches, **kwargs)


def count_translations(panel, gate: threading.Event | None = None) -> dict:  # noqa: ANN001
    counter = {"calls": 0, "lock": threading.Lock()}
    real = panel.preview.cache.loader

    def loader(model, folder, backend="auto"):  # noqa: ANN001, ANN202
        return CountingTranslator(real(model, folder, backend=backend), counter, gate)

    panel.preview.cache.clear()
    panel.preview.cache.loader = loader
    return counter


@pytest.fixture
def synth(qtbot, tiny_unit_project: Path):  # noqa: ANN001, ANN201
    window = open_window(qtbot, tiny_unit_project)
    window.docks["synthesis"].show()
    panel = window.panels["synthesis"]
    qtbot.waitUntil(panel.isVisible)
    yield window, panel
    window.close()
    assert panel.pool._pool.activeThreadCount() == 0
    assert not panel._jobs and not window.job_queue.busy()
    dispose(window)


def normal_image_with_patch(window):  # noqa: ANN001, ANN201
    project = window.session.project
    for patch in project.normal_patches():
        rec = project.image(patch.image_id)
        if rec.label == "normal":
            return rec, patch
    raise AssertionError("the demo project has no normal patch on a normal image")


def pick_patch_in_list(qtbot, panel, patch_id: int) -> None:  # noqa: ANN001
    """Click the patch's row in the panel's list, as a researcher would."""
    qtbot.waitUntil(lambda: panel.patch_list.items.rowCount() > 0)
    row = next(r for r in range(panel.patch_list.items.rowCount())
               if panel.patch_list.items.index(r, 0).data(Qt.ItemDataRole.UserRole) == patch_id)
    rect = panel.patch_list.visualRect(panel.patch_list.items.index(row, 0))
    qtbot.mouseClick(panel.patch_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def canvas_pixels(window, box: Box) -> np.ndarray:  # noqa: ANN001
    """What the viewer shows inside ``box`` (grabbed from the screen, RGB)."""
    window.canvas.viewport().repaint()
    image = window.canvas.viewport().grab().toImage()
    a, b = window.canvas.to_screen(box.x0, box.y0), window.canvas.to_screen(box.x1, box.y1)
    x0, y0, x1, y1 = int(a.x()) + 2, int(a.y()) + 2, int(b.x()) - 2, int(b.y()) - 2
    return np.array([[image.pixelColor(x, y).red() for x in range(x0, x1, 2)] for y in range(y0, y1, 2)])


def test_patch_to_four_views_and_live_n_without_translating(qtbot, synth) -> None:  # noqa: ANN001
    window, panel = synth
    assert panel.current_model() is not None and panel.current_model().name == "tiny-unit"
    counter = count_translations(panel)
    rec, patch = normal_image_with_patch(window)
    show(qtbot, window, rec.id)

    with qtbot.waitSignal(panel.translated, timeout=20_000):
        pick_patch_in_list(qtbot, panel, patch.id)
    assert window.controller.selected == ("patch", patch.id)  # the viewer selects it too
    assert counter["calls"] == 1
    win = panel.preview.result.window
    side = (int(win.height), int(win.width))
    for key in ("original", "translated", "blended", "full"):
        view = panel.views[key]
        assert view.is_filled(), key
        assert view.base.image.size > 0
        assert view.outline.isVisible()
    assert panel.views["original"].patch.image is None
    assert panel.views["translated"].patch.image.shape == side
    assert panel.views["blended"].patch.image.shape == side
    assert panel.views["full"].patch.image.shape == side
    ctx = panel.views["blended"].base.image.shape
    assert ctx[0] > side[0] and ctx[1] > side[1]  # context around the window
    assert not np.array_equal(panel.views["original"].composed(), panel.views["translated"].composed())

    # Moving the n slider (arrow keys on the real widget, then a mouse drag) re-blends only.
    before = panel.views["blended"].patch.image.copy()
    start = panel.preview.n  # the product's DEFAULT_N
    panel.n_control.slider.setFocus()
    with qtbot.waitSignal(panel.reblended, timeout=20_000):
        qtbot.keyClick(panel.n_control.slider, Qt.Key.Key_Right)
    for _ in range(5):
        qtbot.keyClick(panel.n_control.slider, Qt.Key.Key_Right)
    assert panel.preview.n > start * 1.3  # six steps of ×1.07
    stepped = panel.preview.n
    slider = panel.n_control.slider
    y = slider.height() // 2
    handle_x = round(slider.width() * slider.value() / 1000)
    qtbot.mousePress(slider, Qt.MouseButton.LeftButton, pos=QPoint(handle_x, y))
    for dx in range(10, 60, 10):
        qtbot.mouseMove(slider, QPoint(handle_x + dx, y))
    qtbot.mouseRelease(slider, Qt.MouseButton.LeftButton, pos=QPoint(handle_x + 50, y))
    assert panel.preview.n > stepped and abs(panel.n_control.spin.value() - panel.preview.n) < 0.01
    after = panel.views["blended"].patch.image
    assert not np.array_equal(before, after)
    assert np.array_equal(panel.views["full"].patch.image, after)
    panel.n_control.spin.setValue(0.25)
    assert panel.n_control.slider.value() == 0 and panel.preview.result.n == pytest.approx(0.25)
    # Never re-translated: each n change only re-blends (how fast: benchmarks/preview_bench.py).
    assert counter["calls"] == 1 and panel.preview.last_reblend_s > 0.0

    # A model registered meanwhile (a training run finishing) appears in the list; the choice stays.
    project = window.session.project
    tiny = project.model("tiny-unit")
    with qtbot.waitSignal(window.session.models_changed, timeout=10_000):  # the store announces it
        project.register_model("another-unit", "unit", project.resolve_path(tiny.path), sha256=tiny.sha256,
                               config=tiny.config, metadata=tiny.metadata)
    builtins = len(builtin_models(kind="unit"))  # listed after the project's own, marked built-in
    assert panel.model_combo.count() == 2 + builtins and panel.current_model().name == "tiny-unit"
    assert counter["calls"] == 1


def test_drawn_window_moves_retranslate_and_stale_results_are_dropped(qtbot, synth) -> None:  # noqa: ANN001
    window, panel = synth
    rec, _patch = normal_image_with_patch(window)
    show(qtbot, window, rec.id)
    gate = threading.Event()
    gate.set()
    counter = count_translations(panel, gate)
    patches_before = window.session.project.normal_patches(rec.id)

    # Draw a window with the synthesis tool (W) and real mouse gestures.
    qtbot.keyClick(window.canvas, Qt.Key.Key_W)
    assert window.canvas.tool is panel.tool
    a, b = window.canvas.to_screen(100, 120), window.canvas.to_screen(160, 170)
    with qtbot.waitSignal(panel.translated, timeout=20_000):
        drag(qtbot, window.canvas, a, b)
    drawn = panel.preview.result.window
    assert drawn.width == drawn.height == 60  # squared: the translator's input is square
    assert counter["calls"] == 1

    # Move it by dragging its inside: re-translated for the new place.
    c = window.canvas.to_screen(*drawn.center)
    with qtbot.waitSignal(panel.translated, timeout=20_000):
        drag(qtbot, window.canvas, c, QPoint(int(c.x()) + 40, int(c.y()) + 20))
    moved = panel.preview.result.window
    assert moved != drawn and moved.width == drawn.width
    assert counter["calls"] == 2

    # Quick moves: only the last one is shown. The one running when the others came is dropped on
    # arrival; the one overtaken while queued never runs. The first is held at the gate until the
    # others are asked for, however slow the machine.
    first, middle, last = Box(40, 40, 104, 104), Box(60, 60, 124, 124), Box(150, 200, 214, 264)
    shown = []
    panel.translated.connect(lambda: shown.append(panel.preview.result.window))
    gate.clear()
    panel.set_window(first)
    qtbot.waitUntil(lambda: counter["calls"] == 3, timeout=20_000)  # the first is running now
    panel.set_window(middle)
    panel.set_window(last)
    gate.set()
    qtbot.waitUntil(lambda: bool(shown), timeout=20_000)
    qtbot.waitUntil(lambda: panel.pool._pool.activeThreadCount() == 0)  # nothing else in flight
    assert shown == [last]
    assert panel.preview.stale_dropped == 1 and counter["calls"] == 4
    assert panel.views["translated"].patch.window == last
    assert window.session.project.normal_patches(rec.id) == patches_before  # previews are not annotations
    assert not window.session.undo_stack.canUndo()


def test_ab_toggle_flips_the_viewer_and_keep_saves_provenance(qtbot, synth) -> None:  # noqa: ANN001
    window, panel = synth
    rec, patch = normal_image_with_patch(window)
    show(qtbot, window, rec.id)
    with qtbot.waitSignal(panel.translated, timeout=20_000):
        window.controller.select(("patch", patch.id))  # as a click on the patch in the viewer does
    panel.n_control.spin.setValue(8.0)
    win = panel.preview.result.window
    window.canvas.setFocus()

    real = canvas_pixels(window, win)
    qtbot.keyClick(window.canvas, Qt.Key.Key_S)
    assert window.actions_by_key["synthesis_ab"].isChecked() and panel.overlay.is_visible()
    assert window.canvas.badge.isVisible() and window.canvas.badge.text() == "SYNTHETIC"
    synthetic = canvas_pixels(window, win)
    assert np.abs(synthetic.astype(int) - real.astype(int)).mean() > 1.0
    qtbot.keyClick(window.canvas, Qt.Key.Key_S)
    assert not panel.overlay.is_visible() and not window.canvas.badge.isVisible()
    assert np.array_equal(canvas_pixels(window, win), real)

    # Resample: stochastic, next seed, a new translation.
    seed = panel.seed_spin.value()
    with qtbot.waitSignal(panel.translated, timeout=20_000):
        window.actions_by_key["synthesis_resample"].trigger()
    assert panel.stochastic.isChecked() and panel.preview.result.seed == seed + 1

    # Residual: the same window translated again, the residual way (a new translation, not a re-blend).
    direct = panel.preview.result.image.copy()
    with qtbot.waitSignal(panel.translated, timeout=20_000):
        panel.residual.setChecked(True)
    assert panel.preview.result.provenance["translation"] == "residual" and not np.array_equal(panel.preview.result.image, direct)

    # Blend: the default mode, and another one re-blends the same translation (no new translation).
    assert panel.blend_mode() == "matched" and panel.preview.result.provenance["blend"] == "matched"
    translation = panel.preview.translation
    with qtbot.waitSignal(panel.reblended, timeout=5_000):
        panel.blend_combo.setCurrentIndex(panel.blend_combo.findData("moments"))
    assert panel.preview.translation is translation and panel.preview.result.provenance["blend"] == "moments"
    assert not np.array_equal(panel.preview.result.blended_patch, translation.result.reblend(8.0, "matched").blended_patch)
    with qtbot.waitSignal(panel.reblended, timeout=5_000):
        panel.n_control.spin.setValue(7.0)
    assert panel.preview.result.provenance["blend"] == "moments"  # n keeps the chosen mode
    panel.n_control.spin.setValue(8.0)

    # Keep (K): an accepted sample in batch "kept" with the full provenance, readable back.
    expected = panel.preview.result.image.copy()
    gallery = window.panels["gallery"]
    assert gallery.summary.text().startswith("0 sample(s)")
    with qtbot.waitSignal(panel.kept, timeout=20_000) as kept:
        qtbot.keyClick(window.canvas, Qt.Key.Key_K)
    assert gallery.summary.text().startswith("1 sample(s): 1 accepted")  # the gallery's count follows
    project = window.session.project
    sample = project.synthetic_sample(kept.args[0])
    model = project.model("tiny-unit")
    assert (sample.status, sample.batch, sample.source_image_id) == ("accepted", "kept", rec.id)
    assert sample.model_id == model.id and sample.seed == seed + 1 and sample.n == pytest.approx(8.0)
    assert sample.box == win
    prov = sample.provenance
    assert prov["model"]["sha256"] == model.sha256 and prov["model"]["id"] == model.id
    assert prov["n"] == pytest.approx(8.0) and prov["seed"] == seed + 1 and prov["stochastic"] is True
    assert prov["translation"] == "residual" and prov["blend"] == "moments"
    assert prov["window"] == list(win.as_tuple()) and prov["source_sha256"] == rec.sha256
    assert prov["time"] and prov["created"]
    from lesion_studio.samples import load_sample_pixels

    assert np.array_equal(load_sample_pixels(project, sample), expected)


def test_export_kept_samples_from_the_gui_action(qtbot, synth, tmp_path: Path) -> None:  # noqa: ANN001
    window, panel = synth
    rec, patch = normal_image_with_patch(window)
    show(qtbot, window, rec.id)
    with qtbot.waitSignal(panel.translated, timeout=20_000):
        window.controller.select(("patch", patch.id))
    with qtbot.waitSignal(panel.kept, timeout=20_000) as kept:
        panel.keep()
    sample_id = kept.args[0]

    for fmt, suffix in (("png", ".png"), ("dicom", ".dcm")):
        out = tmp_path / fmt
        worker = window.export_kept_samples(out, fmt)  # File → Export kept synthetic samples…
        with qtbot.waitSignal(worker.finished, timeout=20_000):
            pass
        path = out / f"synthetic_{sample_id:06d}{suffix}"
        assert path.exists(), list(out.iterdir())
        side = json.loads(path.with_suffix(".json").read_text())
        assert side["sample_id"] == sample_id and side["synthetic"] is True
        assert side["provenance"]["model"]["sha256"] == window.session.project.model("tiny-unit").sha256
        assert json.loads((out / "index.json").read_text())["files"] == [path.name]
    import pydicom

    ds = pydicom.dcmread(tmp_path / "dicom" / f"synthetic_{sample_id:06d}.dcm")
    assert "DERIVED" in ds.ImageType and ds.PatientIdentityRemoved == "YES"
    assert ds.pixel_array.shape == (rec.height, rec.width)
    qtbot.waitUntil(lambda: not window.job_queue.busy(), timeout=5000)
