"""The synthesis panel: watch a lesion appear in a normal radiograph and tune it live.

Pick a UNIT model and a window — a picked normal patch (click it in the viewer, the inspector or
the panel's list) or a window drawn with the synthesis window tool (W) — and the panel shows the
four views of the paper's Figure 2: the original window, its translation x_h→l = G_l(E_h(x_h)),
the blend α·translated + (1−α)·original, and the whole image with the blended lesion in place.
The main viewer shows the synthetic image too, with an A/B toggle (S) against the real one.

Layout and wiring only: the preview itself (translator cache, which request is still wanted,
re-blending without translating again) is :class:`lesion_studio.synthesis.preview.PreviewSession`,
Qt-free. Translation runs on a one-thread :class:`TaskPool` (onnxruntime; the GPU when there is
one), so the UI never waits; the views repaint window-sized layers (see ``patch_views``), so
dragging the n slider stays within a frame. "Keep" saves the synthetic image as an ``accepted``
sample in batch ``kept`` with the full provenance; Tools → Export kept synthetic samples… writes
them as PNG or DICOM with sidecars.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from lesion_studio.builtin_models import model_choices
from lesion_studio.errors import ProjectError
from lesion_studio.gui.actions import ActionSpec
from lesion_studio.gui.commands import PATCH
from lesion_studio.gui.input_guard import return_focus_on_enter
from lesion_studio.gui.panels import side_column
from lesion_studio.gui.panels.model_combo import ModelCombo
from lesion_studio.gui.panels.patch_views import CanvasOverlay, PreviewViews
from lesion_studio.gui.panels.synthesis_widgets import BlendCombo, NControl, PatchList, action_button
from lesion_studio.gui.tools.synthesis_window import SynthesisWindowTool
from lesion_studio.gui.workers import TaskPool
from lesion_studio.store.records import Box, ModelRecord
from lesion_studio.synthesis.pipeline import TRANSLATIONS
from lesion_studio.synthesis.preview import PreviewRequest, PreviewSession, Translation

if TYPE_CHECKING:
    from lesion_studio.gui.host import PanelHost
    from lesion_studio.gui.job_queue import Job
    from lesion_studio.gui.session import ProjectSession
    from lesion_studio.io.radiograph import Radiograph

log = logging.getLogger(__name__)

MODEL_SETTING = "gui.synthesis_model"
DIRECT, RESIDUAL = TRANSLATIONS

#: The panel's actions (built by the main window from the panel's spec; handlers are ``synthesis.<method>``).
ACTIONS = (
    ActionSpec("synthesis_panel", "S&ynthesis panel", "View", "synthesis.toggle_panel", ("F9",),
               "Show or hide the live synthesis preview", needs_project=True, section="panels"),
    ActionSpec("tool_synthesis", "S&ynthesis window tool", "Tools", "use_tool", ("W",),
               "Drag a window to synthesize a lesion in; drag it to move it, its edges to resize it",
               checkable=True, toolbar=True, group="tool", args=("synthesis",), needs_image=True),
    ActionSpec("synthesis_ab", "Show s&ynthetic image (A/B)", "Tools", "synthesis.show_synthetic", ("S",),
               "Flip the viewer between the real and the synthetic image", checkable=True, section="synthesis",
               needs_image=True),
    ActionSpec("synthesis_resample", "&Resample the latent", "Tools", "synthesis.resample", ("Shift+S",),
               "Next seed, stochastic translation: another lesion for the same window", needs_image=True),
    ActionSpec("synthesis_keep", "&Keep synthetic sample", "Tools", "synthesis.keep", ("K",),
               "Save the synthetic image as an accepted sample with its provenance", needs_image=True),
)


# ---------------------------------------------------------------------------- the panel
class SynthesisPanel(QWidget):
    """Live lesion preview over the viewer; see the module docstring."""

    translated = Signal()  # a (current) translation arrived and is shown
    reblended = Signal(float)  # the blended views show a new n
    kept = Signal(int)  # a sample was saved (its id)

    def __init__(self, host: PanelHost, session: ProjectSession) -> None:
        super().__init__()
        self.host = host
        self.session = session
        self.canvas = host.viewer
        self.preview = PreviewSession(session.project.folder)
        self.pool = TaskPool(threads=1, parent=self)
        self.pool.done.connect(self._arrived)
        self.pool.failed.connect(self._failed)
        self._window: Box | None = None
        self._patch_id: int | None = None
        self._pending = False
        self._jobs: list[Job] = []
        self._closed = False

        self.overlay = CanvasOverlay(self.canvas)
        self.tool = SynthesisWindowTool(self.canvas, self._window_drawn, host.patch_size)
        host.add_tool("synthesis", self.tool)
        self._build()
        self.reload_models()

        # window-lifetime signals go through the host, which drops them when the project closes
        host.listen(host.image_shown, self._image_loaded)
        host.listen(host.image_failed, self._image_gone)
        host.listen(host.region_selected, self._selection_changed)
        host.listen(self.canvas.levels_changed, self._levels_changed)
        invert = host.action("invert")
        if invert is not None:
            host.listen(invert.toggled, self._inverted)
        session.regions_changed.connect(self._regions_changed)
        session.models_changed.connect(self.reload_models)  # a training run finished: list it
        if self.canvas.radiograph is not None and host.record is not None:
            self._image_loaded(host.record.id, self.canvas.radiograph)

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        self.views = PreviewViews()
        outer = QHBoxLayout(self)
        outer.setContentsMargins(0, 0, 4, 4)
        outer.addWidget(side_column(self._build_controls(), 330))  # scrolls rather than force a tall dock
        outer.addWidget(self.views, 1)
        self._set_status("Pick a normal patch (click it, or choose it in the list) or draw a window (W).")
        for box in (self.n_control.spin, self.seed_spin):  # after Enter, S / K / W act on the viewer again
            return_focus_on_enter(box, lambda: self.canvas)

    def _build_inputs(self) -> None:
        self.model_combo = ModelCombo(self.reload_models, "No UNIT model yet: train one first")
        self.model_combo.setToolTip("The UNIT translator (models trained on this project, and built-in ones)")
        self.model_combo.currentIndexChanged.connect(self._model_changed)
        self.patch_list = PatchList()
        self.patch_list.picked.connect(lambda patch_id: self.host.select_region((PATCH, patch_id)))
        self.n_control = NControl(self.preview.n)
        self.n_control.changed.connect(self.set_n)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Seed of the latent noise (stochastic mode)")
        self.seed_spin.valueChanged.connect(lambda _v: self._request())
        self.stochastic = QCheckBox("Stochastic")
        self.stochastic.setToolTip("Sample the latent code (seeded) instead of using its mean")
        self.stochastic.toggled.connect(lambda _c: self._request())
        self.residual = QCheckBox("Residual")
        self.residual.setToolTip("Residual translation: keep the window's own texture and add only what the "
                                 "generator changes over its reconstruction of it (less blur and brightness drift)")
        self.residual.toggled.connect(lambda _c: self._request())
        self.blend_combo = BlendCombo()
        self.blend_combo.currentIndexChanged.connect(lambda _i: self.set_n(self.preview.n))

    def _build_controls(self) -> QWidget:
        self._build_inputs()
        self.resample_button = action_button(self.host, "synthesis_resample", "Resample")
        self.ab_button = action_button(self.host, "synthesis_ab", "Synthetic (S)")
        self.keep_button = action_button(self.host, "synthesis_keep", "Keep (K)")
        self.draw_button = action_button(self.host, "tool_synthesis", "Window (W)")
        self.status = QLabel("")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        hint = QLabel("…or draw a window (W) on the image")
        hint.setObjectName("muted")
        controls = QWidget()
        controls.setMinimumHeight(250)
        grid = QGridLayout(controls)
        grid.setContentsMargins(6, 4, 6, 4)
        grid.setVerticalSpacing(4)
        # the check boxes have a row of their own: beside the seed and Resample, in this 330 px
        # column, they were cut ("Stochas")
        seed_row, options, buttons = QHBoxLayout(), QHBoxLayout(), QHBoxLayout()
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.resample_button)
        options.setSpacing(16)
        options.addWidget(self.stochastic)
        options.addWidget(self.residual)
        options.addStretch(1)
        for widget in (self.draw_button, self.ab_button, self.keep_button):
            buttons.addWidget(widget)
        grid.addWidget(QLabel("Model"), 0, 0)
        grid.addWidget(self.model_combo, 0, 1, 1, 3)
        grid.addWidget(QLabel("Patch"), 1, 0, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.patch_list, 1, 1, 1, 3)
        grid.addWidget(hint, 2, 1, 1, 3)
        grid.addWidget(QLabel("n"), 3, 0)
        grid.addWidget(self.n_control, 3, 1, 1, 3)
        grid.addWidget(QLabel("Seed"), 4, 0)
        grid.addLayout(seed_row, 4, 1, 1, 3)
        grid.addLayout(options, 5, 1, 1, 3)
        grid.addWidget(QLabel("Blend"), 6, 0)
        grid.addWidget(self.blend_combo, 6, 1, 1, 3)
        grid.addLayout(buttons, 7, 0, 1, 4)
        grid.addWidget(self.status, 8, 0, 1, 4)
        grid.setRowStretch(9, 1)
        grid.setColumnStretch(1, 1)
        return controls

    # ------------------------------------------------------------------ models
    def reload_models(self) -> None:
        """Re-read the UNIT models (the project's own, then built-ins not copied in yet, registered
        when first used), keeping the current choice when it still exists."""
        current = self.model_combo.currentData()
        if current is None:
            stored = self.session.project.get_setting(MODEL_SETTING)
            current = int(stored) if stored and stored.isdigit() else None
        choices = model_choices(self.session.project, kind="unit")
        # Default: the project's newest model, else the first built-in one (fitting ones first).
        self.model_combo.fill(choices, current, sum(1 for c in choices if c.registered) - 1)
        if self.model_combo.currentData() != current:
            self._model_changed()

    def current_model(self) -> ModelRecord | None:
        model_id = self.model_combo.currentData()
        if model_id is None:
            return None
        if isinstance(model_id, str):
            return self._register_builtin(model_id)
        try:
            return self.session.project.model(int(model_id))
        except ProjectError:  # deleted meanwhile: re-read the registry next time
            return None

    def _register_builtin(self, ref: str) -> ModelRecord | None:
        """Copy a chosen built-in model into the project (once) and select its registered record."""
        from lesion_studio.builtin_models import resolve_model

        try:
            record = resolve_model(self.session.project, ref)
        except Exception as exc:  # a broken install: say so in the panel, keep running
            self._set_status(f"The built-in model could not be used: {exc}")
            return None
        self.model_combo.registered(ref, record.id)
        return record

    def select_model(self, ref: int | str) -> None:
        model = self.session.project.model(ref)
        self.reload_models()
        self.model_combo.setCurrentIndex(self.model_combo.findData(model.id))

    def _model_changed(self, *_args: object) -> None:
        model_id = self.model_combo.currentData()
        # A built-in not registered yet is copied into the project on its first translation only.
        if model_id is not None and not isinstance(model_id, str):
            self.session.project.set_setting(MODEL_SETTING, str(model_id))
        self._request()

    # ------------------------------------------------------------------ image and patch
    def _image_loaded(self, image_id: int, rg: Radiograph) -> None:
        rec = self.host.record
        if rec is None or rec.id != image_id or self.canvas.radiograph is not rg:
            return
        self._reload_patch_list()
        self._window = None
        self._patch_id = None
        self.tool.show_window(None)
        self._clear_views()
        selected = self.host.selected_region()
        if selected is not None and selected[0] == PATCH:
            self._selection_changed(selected)

    def _image_gone(self, *_args: object) -> None:
        self._window = None
        self._patch_id = None
        self.tool.show_window(None)
        self.patch_list.show_patches([], None)
        self._clear_views()

    def _reload_patch_list(self) -> None:
        rec = self.host.record
        self.patch_list.show_patches(self.session.project.normal_patches(rec.id) if rec else [], self._patch_id)

    def _selection_changed(self, key: object) -> None:
        if not (isinstance(key, tuple) and key and key[0] == PATCH):
            return
        self.use_patch(int(key[1]))

    def use_patch(self, patch_id: int) -> None:
        """Synthesize into the square window around a picked normal patch (as batch synthesis does)."""
        from lesion_studio.patches.sampling import patch_window

        rg = self.canvas.radiograph
        if rg is None:
            return
        patch = self.session.project.normal_patch(patch_id)
        window = patch_window(patch.box, rg.width, rg.height)
        self.patch_list.mark(patch_id)
        self.set_window(window, patch_id)

    def _regions_changed(self, image_id: int) -> None:
        rec = self.host.record
        if rec is None or rec.id != image_id:
            return
        self._reload_patch_list()
        if self._patch_id is None:
            return
        try:
            self.session.project.normal_patch(self._patch_id)
        except ProjectError:  # the patch was deleted: keep its window as a drawn one
            self._patch_id = None
            return
        self.use_patch(self._patch_id)

    def _window_drawn(self, box: Box) -> None:
        self.patch_list.mark(None)
        self.set_window(box, None)

    def set_window(self, box: Box | None, patch_id: int | None = None) -> None:
        """Translate this window of the current image (None clears); unchanged windows are not redone."""
        self._patch_id = patch_id
        self._window = box
        self.tool.show_window(box)
        self._request()

    # ------------------------------------------------------------------ translation
    def translation_mode(self) -> str:
        """The translation the panel asks for (synthesis.pipeline.TRANSLATIONS)."""
        return RESIDUAL if self.residual.isChecked() else DIRECT

    def _request(self) -> None:
        """Ask the worker for a translation of the current window; overtaken requests are dropped."""
        if self._closed:
            return
        rg, rec = self.canvas.radiograph, self.host.record
        if rg is None or rec is None or self._window is None:
            self._clear_views()  # anything in flight is for a window no longer shown
            return
        model = self.current_model()
        if model is None:
            self._clear_views()
            self._set_status("There is no UNIT model in this project yet. Train one (Training panel, or "
                             "lesion-studio train-gan) and choose it above.")
            return
        request = PreviewRequest(0, rec.id, model.id, self._window, self.seed_spin.value(),
                                 self.stochastic.isChecked(), self.translation_mode())
        if self.preview.shows(request):
            return  # already on screen (a patch re-picked, a window put back)
        if not self.isVisible():
            self.preview.outdate()  # translate when the panel is shown, not for a hidden panel
            self._pending = True
            return
        self._pending = False
        request = self.preview.want(request)
        self.pool.drop_queued()
        self.pool.submit(("translate", request.generation), self.preview.work(request, model, rg))
        self._set_status(f"Translating {self._window.width:.0f}×{self._window.height:.0f} px with {model.name}…")

    def _arrived(self, key: object, value: object) -> None:
        if not (isinstance(key, tuple) and key[0] == "translate"):
            return
        assert isinstance(value, Translation)
        if not self.preview.accept(value):
            return
        self._show_translation()
        w = value.request.window
        self._set_status(f"{w.width:.0f}×{w.height:.0f} px window translated in {value.seconds * 1000:.0f} ms "
                         f"({value.device}); n and A/B are instant.")
        self.translated.emit()

    def _failed(self, key: object, message: str) -> None:
        if isinstance(key, tuple) and key[0] == "translate" and key[1] == self.preview.generation:
            self._set_status(f"Translation failed: {message}")
            self.host.show_message(f"Synthesis preview: {message}", "error")

    # ------------------------------------------------------------------ showing
    def _show_translation(self) -> None:
        rg, result = self.canvas.radiograph, self.preview.result
        if rg is not None and result is not None:
            self.views.show_result(rg.pixels, result, self.canvas.levels(), self.canvas.inverted)
            self._sync_overlay()

    def _show_blend(self) -> None:
        if self.preview.result is not None:
            self.views.show_blend(self.preview.result)
            self._sync_overlay()

    def _sync_overlay(self) -> None:
        """The viewer's overlay follows the A/B toggle; hidden, it is not even updated."""
        if self.showing_synthetic() and self.preview.result is not None:
            self.overlay.show_patch(self.preview.result.blended_patch, self.preview.result.window)
            self.overlay.set_visible(True)
            self.canvas.set_badge("SYNTHETIC")
        else:
            self.overlay.set_visible(False)
            self.canvas.set_badge(None)

    def _clear_views(self) -> None:
        self.preview.clear()
        self.views.clear()
        self.overlay.show_patch(None, None)
        self.overlay.set_visible(False)
        self.canvas.set_badge(None)
        if self._window is None:
            self._set_status("Pick a normal patch (click it, or choose it in the list) or draw a window (W).")

    def _levels_changed(self, lo: float, hi: float) -> None:
        self.views.set_levels((lo, hi))

    def _inverted(self, inverted: bool) -> None:
        self.views.set_inverted(inverted)

    def _set_status(self, text: str) -> None:
        self.status.setText(text)

    # ------------------------------------------------------------------ n
    def blend_mode(self) -> str:
        """The blend mode chosen in the panel (``synthesis.blend.BLEND_MODES``)."""
        return str(self.blend_combo.currentData())

    def set_n(self, n: float) -> None:
        """Re-blend the current translation with exponent n and the chosen mode (never re-translates)."""
        if self.preview.reblend(n, self.blend_mode()) is None:
            return
        self._show_blend()
        self.reblended.emit(self.preview.n)

    # ------------------------------------------------------------------ actions
    def toggle_panel(self) -> None:
        self.host.show_dock("synthesis", toggle=True)

    def showing_synthetic(self) -> bool:
        action = self.host.action("synthesis_ab")
        return bool(action is not None and action.isChecked())

    def show_synthetic(self, checked: bool) -> None:
        """A/B: the viewer shows the synthetic image (blended lesion in place) or the real one."""
        if checked and self.preview.result is None:
            self.host.show_message("Nothing synthesized yet: pick a normal patch or draw a window (W).", "info")
        self._sync_overlay()
        self.host.show_status("Showing the synthetic image" if checked and self.preview.result is not None
                              else "Showing the real image", 2000)

    def resample(self) -> None:
        """Another latent sample for the same window: stochastic on, next seed."""
        self.stochastic.blockSignals(True)
        self.stochastic.setChecked(True)
        self.stochastic.blockSignals(False)
        self.seed_spin.setValue(self.seed_spin.value() + 1)  # triggers the request

    def keep(self) -> Job | None:
        """Save the synthetic image as an accepted sample (batch "kept") with full provenance."""
        result, rec, tr = self.preview.result, self.host.record, self.preview.translation
        if result is None or rec is None or tr is None:
            self.host.show_message("Nothing to keep yet: pick a normal patch or draw a window (W) first.", "info")
            return None
        project, model_id = self.session.project, tr.request.model_id

        def job(progress, cancel):  # noqa: ANN001, ANN202
            from lesion_studio.samples.storage import keep_result

            return keep_result(project, result, rec.id, model_id)

        def done(sample_id: int) -> None:
            self.host.show_message(f"Kept synthetic sample #{sample_id} ({rec.name}, n = {result.n:.2f}, "
                                   f"seed {result.seed}). Export with File → Export kept synthetic samples…",
                                   "info")
            self.session.samples_changed.emit()
            self.kept.emit(sample_id)

        return self._start(job, "Keep synthetic sample", done)

    def _start(self, fn: Callable[..., Any], title: str, done: Callable[[Any], None]) -> Job:
        """A short save on the job queue's light lane (no dialog: it takes a moment)."""
        job = self.host.run_job(fn, title, done, modal=False, dialog=False)
        self._jobs.append(job)
        job.finished.connect(lambda _state: self._jobs.remove(job) if job in self._jobs else None)
        return job

    # ------------------------------------------------------------------ life cycle
    def showEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        super().showEvent(event)
        if self._pending:
            self._request()

    def shutdown(self) -> None:
        """Stop background work and take the panel's items off the shared canvas (project closing)."""
        if self._closed:
            return
        self._closed = True
        self.preview.outdate()
        self.pool.shutdown()
        for job in list(self._jobs):  # a keep in flight finishes: it is a short database write
            if job.worker is not None:
                job.worker.wait(30_000)
        self.host.remove_tool("synthesis", self.tool)
        self.tool.remove()
        self.overlay.remove()
        self.canvas.set_badge(None)
        ab = self.host.action("synthesis_ab")
        if ab is not None and ab.isChecked():
            ab.blockSignals(True)
            ab.setChecked(False)
            ab.blockSignals(False)
        self.preview.cache.clear()
