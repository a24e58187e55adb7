"""The synthesis panel: watch a lesion appear in a normal radiograph and tune it live.

Pick a UNIT model and a window — a picked normal patch (click it in the viewer, the inspector or
the panel's list) or a window drawn with the synthesis window tool (W) — and the panel shows the
four views of the paper's Figure 2: the original window, its translation x_h→l = G_l(E_h(x_h)),
the blend α·translated + (1−α)·original, and the whole image with the blended lesion in place.
The main viewer shows the synthetic image too, with an A/B toggle (S) against the real one.

Why it is built this way:

* Translation runs on a one-thread :class:`TaskPool` (onnxruntime; the GPU when there is one)
  and each request carries a generation number: moving the window twice quickly drops the first
  result when it arrives, and queued requests that were overtaken never run. The UI never waits.
* The n slider only re-blends (:meth:`SynthesisResult.reblend`): α is cached per size and n and
  the views repaint window-sized layers (see ``patch_views``), so dragging stays within a frame.
* Translators are cached per (model id, sha256): switching back to a model, or retraining it
  under the same name (a new hash), does the right thing.
* "Keep" saves the synthetic image as an ``accepted`` sample in batch ``kept`` with the full
  provenance (source image and hash, window, model id/name/hash, n, seed, stochastic, time);
  Tools → Export kept synthetic samples… writes them as PNG or DICOM with sidecars.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QWidget,
)

from lesion_studio.errors import ProjectError
from lesion_studio.gui.actions import ActionSpec
from lesion_studio.gui.commands import PATCH
from lesion_studio.gui.input_guard import return_focus_on_enter
from lesion_studio.gui.panels.patch_views import CanvasOverlay, ContextView, context_box, crop, downsampled
from lesion_studio.gui.session import ProjectSession
from lesion_studio.gui.tools.synthesis_window import SynthesisWindowTool
from lesion_studio.gui.workers import TaskPool
from lesion_studio.store.records import Box, ModelRecord
from lesion_studio.synthesis.blend import BLEND_MODES, DEFAULT_BLEND, DEFAULT_N

if TYPE_CHECKING:
    from lesion_studio.gui.host import PanelHost
    from lesion_studio.gui.job_queue import Job
    from lesion_studio.io.radiograph import Radiograph
    from lesion_studio.synthesis.pipeline import SynthesisResult
    from lesion_studio.synthesis.translator import Translator

log = logging.getLogger(__name__)

N_MIN, N_MAX, N_DEFAULT = 0.25, 16.0, DEFAULT_N
SLIDER_STEPS = 1000
KEPT_BATCH = "kept"
MODEL_SETTING = "gui.synthesis_model"
#: The blend modes the panel offers, each with its tooltip (synthesis/blend.py has the maths).
BLEND_TIPS = {
    "paper": "The paper's alpha blend, as published",
    "matched": "Drop the translation's brightness offset outside the lesion core first (no dark square)",
    "moments": "Give the translation the source's brightness and contrast outside the lesion core first",
}
assert tuple(BLEND_TIPS) == BLEND_MODES, "every blend mode needs a tooltip"

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
    ActionSpec("export_samples", "Export kept s&ynthetic samples…", "Tools", "synthesis.export_kept_samples", (),
               "Write kept/accepted synthetic samples as PNG or DICOM with provenance sidecars",
               needs_project=True),
)


# ---------------------------------------------------------------------------- n on a log scale
def slider_to_n(value: int) -> float:
    """Slider position 0..SLIDER_STEPS → n in [N_MIN, N_MAX], evenly on a log scale."""
    return N_MIN * (N_MAX / N_MIN) ** (min(max(value, 0), SLIDER_STEPS) / SLIDER_STEPS)


def n_to_slider(n: float) -> int:
    n = min(max(n, N_MIN), N_MAX)
    return round(SLIDER_STEPS * math.log(n / N_MIN) / math.log(N_MAX / N_MIN))


# ---------------------------------------------------------------------------- background pieces
@dataclass(frozen=True)
class PreviewRequest:
    """What one translation is for; ``generation`` says whether it is still wanted on arrival."""

    generation: int
    image_id: int
    model_id: int
    window: Box
    seed: int
    stochastic: bool
    translation: str = "direct"  # synthesis.pipeline.TRANSLATIONS


@dataclass
class Translation:
    request: PreviewRequest
    result: SynthesisResult
    seconds: float
    device: str


class _KnownModel:
    """The project as ``load_translator`` sees it, with the model record read on the GUI thread.

    The worker then needs no database access: only the model's files.
    """

    def __init__(self, project: Any, model: ModelRecord) -> None:
        self._model = model
        self.folder = project.folder

    def model(self, _ref: object) -> ModelRecord:
        return self._model

    def resolve_path(self, stored: str) -> Path:
        path = Path(stored)
        return path if path.is_absolute() else self.folder / path

    def update_model_metadata(self, model_id: int, **values: Any) -> ModelRecord:
        """Register an ONNX file exported on first use (a paused run's), on this thread's own connection."""
        from lesion_studio.store.project import Project

        with Project.open(self.folder) as project:
            return project.update_model_metadata(model_id, **values)


class TranslatorCache:
    """Loaded translators per (model id, sha256); loads happen on the worker thread."""

    def __init__(self, loader: Callable[..., Translator] | None = None) -> None:
        if loader is None:
            from lesion_studio.synthesis.translator import load_translator

            loader = load_translator
        self.loader = loader
        self._items: dict[tuple[int, str], Translator] = {}
        self._lock = threading.Lock()

    def get(self, project: Any, model: ModelRecord) -> Translator:
        key = (model.id, model.sha256)
        with self._lock:
            if key not in self._items:
                self._items[key] = self.loader(_KnownModel(project, model), model.id, backend="auto")
            return self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def device_text(translator: Any) -> str:
    providers = getattr(translator, "providers", None)
    if providers:
        return f"onnx {'GPU' if providers[0].startswith('CUDA') else 'CPU'}"
    return str(getattr(translator, "backend", "") or "translator")


def translate(project: Any, cache: TranslatorCache, model: ModelRecord, rg: Radiograph, req: PreviewRequest,
              n: float) -> Translation:
    """The worker's job: load (cached) and translate one window (numpy + onnxruntime, no torch)."""
    from lesion_studio.synthesis.pipeline import synthesize_lesion

    translator = cache.get(project, model)
    t0 = time.perf_counter()
    result = synthesize_lesion(rg, req.window, translator, n=n, seed=req.seed, stochastic=req.stochastic,
                               translation=req.translation)
    result.provenance["source"]["image_id"] = req.image_id
    return Translation(req, result, time.perf_counter() - t0, device_text(translator))


# ---------------------------------------------------------------------------- widgets
class ModelCombo(QComboBox):
    """The UNIT models of the project, re-read from the registry each time the list opens."""

    def __init__(self, refresh: Callable[[], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._refresh = refresh

    def showPopup(self) -> None:  # noqa: N802 - Qt override
        self._refresh()
        super().showPopup()


class ExportSamplesDialog(QDialog):
    """Folder, format and which samples: the choices of ``lesion-studio export-samples``."""

    def __init__(self, default_folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export kept synthetic samples")
        self.folder = QLineEdit(str(default_folder))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.fmt = QComboBox()
        self.fmt.addItem("PNG (lossless, native bit depth) + JSON sidecar", "png")
        self.fmt.addItem("DICOM (DERIVED, new UIDs, de-identified) + JSON sidecar", "dicom")
        self.status = QComboBox()
        self.status.addItem("Accepted (kept here or accepted in the gallery)", "accepted")
        self.status.addItem("All synthetic samples", "all")
        form = QFormLayout(self)
        form.addRow("Folder", row)
        form.addRow("Format", self.fmt)
        form.addRow("Samples", self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Export synthetic samples to", self.folder.text())
        if chosen:
            self.folder.setText(chosen)

    def values(self) -> tuple[Path, str, str]:
        return Path(self.folder.text()), str(self.fmt.currentData()), str(self.status.currentData())


# ---------------------------------------------------------------------------- the panel
class SynthesisPanel(QWidget):
    """Live lesion preview over the viewer; see the module docstring."""

    translated = Signal()  # a (current) translation arrived and is shown
    reblended = Signal(float)  # the blended views show a new n
    kept = Signal(int)  # a sample was saved (its id)

    def __init__(self, host: PanelHost, session: ProjectSession) -> None:
        super().__init__()
        self.main = host
        self.session = session
        self.canvas = host.viewer
        self.translators = TranslatorCache()
        self.pool = TaskPool(threads=1, parent=self)
        self.pool.done.connect(self._arrived)
        self.pool.failed.connect(self._failed)
        self.result: SynthesisResult | None = None
        self.translation: Translation | None = None
        self.n = N_DEFAULT
        self.stale_dropped = 0
        self.last_reblend_s = 0.0
        self._generation = 0
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
        self.model_combo = ModelCombo(self.reload_models)
        self.model_combo.setToolTip("The UNIT translator (models trained on this project)")
        self.model_combo.currentIndexChanged.connect(self._model_changed)

        self.patch_model = QStandardItemModel(self)
        self.patch_list = QListView()
        self.patch_list.setModel(self.patch_model)
        self.patch_list.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.patch_list.setMaximumHeight(96)
        self.patch_list.selectionModel().currentChanged.connect(self._patch_clicked)
        hint = QLabel("…or draw a window (W) on the image")
        hint.setObjectName("muted")

        self.n_slider = QSlider(Qt.Orientation.Horizontal)
        self.n_slider.setRange(0, SLIDER_STEPS)
        self.n_slider.setSingleStep(SLIDER_STEPS // 60)  # arrow keys: ×1.07 per step
        self.n_slider.setPageStep(SLIDER_STEPS // 6)  # one octave
        self.n_slider.setValue(n_to_slider(self.n))
        self.n_slider.setToolTip("Blending exponent n (log scale): larger n widens the fully translated centre")
        self.n_slider.valueChanged.connect(self._slider_moved)
        self.n_spin = QDoubleSpinBox()
        self.n_spin.setRange(N_MIN, N_MAX)
        self.n_spin.setDecimals(2)
        self.n_spin.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        self.n_spin.setValue(self.n)
        self.n_spin.valueChanged.connect(self._spin_changed)

        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Seed of the latent noise (stochastic mode)")
        self.seed_spin.valueChanged.connect(lambda _v: self._params_changed())
        self.stochastic = QCheckBox("Stochastic")
        self.stochastic.setToolTip("Sample the latent code (seeded) instead of using its mean")
        self.stochastic.toggled.connect(lambda _c: self._params_changed())
        self.residual = QCheckBox("Residual")
        self.residual.setToolTip("Residual translation: keep the window's own texture and add only what the "
                                 "generator changes over its reconstruction of it (less blur and brightness drift)")
        self.residual.toggled.connect(lambda _c: self._params_changed())
        self.blend_combo = QComboBox()
        for mode, tip in BLEND_TIPS.items():
            self.blend_combo.addItem(mode, mode)
            self.blend_combo.setItemData(self.blend_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.blend_combo.setCurrentIndex(self.blend_combo.findData(DEFAULT_BLEND))
        self.blend_combo.setToolTip("How the translation is blended into its source; changing it only re-blends")
        self.blend_combo.currentIndexChanged.connect(lambda _i: self.set_n(self.n))

        def action_button(key: str, text: str) -> QToolButton:
            """A short-labelled button driving a window action (state, shortcut and tip stay the action's)."""
            button = QToolButton()
            button.setText(text)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            action = self.main.action(key)
            if action is None:
                return button
            button.setToolTip(action.toolTip())
            button.setCheckable(action.isCheckable())
            button.setChecked(action.isChecked())
            button.setEnabled(action.isEnabled())
            button.clicked.connect(lambda _checked=False: action.trigger())
            self.main.listen(action.toggled, button.setChecked)
            self.main.listen(action.changed, lambda: button.setEnabled(action.isEnabled()))
            return button

        self.resample_button = action_button("synthesis_resample", "Resample")
        self.ab_button = action_button("synthesis_ab", "Synthetic (S)")
        self.keep_button = action_button("synthesis_keep", "Keep (K)")
        self.draw_button = action_button("tool_synthesis", "Window (W)")

        self.status = QLabel("")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)

        controls = QWidget()
        controls.setFixedWidth(330)
        controls.setMinimumHeight(250)
        grid = QGridLayout(controls)
        grid.setContentsMargins(6, 4, 6, 4)
        grid.setVerticalSpacing(4)
        grid.addWidget(QLabel("Model"), 0, 0)
        grid.addWidget(self.model_combo, 0, 1, 1, 3)
        grid.addWidget(QLabel("Patch"), 1, 0, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.patch_list, 1, 1, 1, 3)
        grid.addWidget(hint, 2, 1, 1, 3)
        grid.addWidget(QLabel("n"), 3, 0)
        grid.addWidget(self.n_slider, 3, 1, 1, 2)
        grid.addWidget(self.n_spin, 3, 3)
        grid.addWidget(QLabel("Seed"), 4, 0)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.stochastic)
        seed_row.addWidget(self.residual)
        seed_row.addWidget(self.resample_button)
        grid.addLayout(seed_row, 4, 1, 1, 3)
        grid.addWidget(QLabel("Blend"), 5, 0)
        grid.addWidget(self.blend_combo, 5, 1, 1, 3)
        buttons = QHBoxLayout()
        buttons.addWidget(self.draw_button)
        buttons.addWidget(self.ab_button)
        buttons.addWidget(self.keep_button)
        grid.addLayout(buttons, 6, 0, 1, 4)
        grid.addWidget(self.status, 7, 0, 1, 4)
        grid.setRowStretch(8, 1)
        grid.setColumnStretch(1, 1)

        self.views = {key: ContextView(title) for key, title in (
            ("original", "Original"), ("translated", "Translated"), ("blended", "Blended"),
            ("full", "Full image"))}
        views = QHBoxLayout()
        views.setSpacing(6)
        for view in self.views.values():
            views.addWidget(view, 1)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(0, 0, 4, 4)
        scroll = QScrollArea()  # the controls scroll rather than force a tall bottom dock
        scroll.setWidget(controls)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFixedWidth(controls.width() + 14)
        scroll.setMinimumHeight(110)
        outer.addWidget(scroll)
        outer.addLayout(views, 1)
        self._set_status("Pick a normal patch (click it, or choose it in the list) or draw a window (W).")
        for box in (self.n_spin, self.seed_spin):  # after Enter, S / K / W act on the viewer again
            return_focus_on_enter(box, lambda: self.canvas)

    # ------------------------------------------------------------------ models
    def reload_models(self) -> None:
        """Re-read the UNIT models from the registry, keeping the current choice when it still exists."""
        current = self.model_combo.currentData()
        if current is None:
            stored = self.session.project.get_setting(MODEL_SETTING)
            current = int(stored) if stored and stored.isdigit() else None
        from lesion_studio.builtin_models import builtin_models, is_builtin_record

        models = self.session.project.models(kind="unit")
        registered = {m.name for m in models}
        # Built-ins not copied into the project yet: listed by name, registered when chosen.
        extra = [b for b in builtin_models(kind="unit") if b.registered_name not in registered]
        # Those trained on the project's body parts first: the default then fits the images.
        parts = self.session.project.body_parts()
        extra.sort(key=lambda b: (not set(b.body_parts) & parts, b.name))
        self.model_combo.blockSignals(True)
        try:
            self.model_combo.clear()
            for m in models:
                res = m.metadata.get("resolution") or m.config.get("resolution")
                done = "" if m.metadata.get("complete", True) else ", incomplete"
                done += ", built-in" if is_builtin_record(m) else ""
                self.model_combo.addItem(f"{m.name}  ({res} px{done})" if res else m.name, m.id)
            for b in extra:
                self.model_combo.addItem(f"{b.registered_name}  ({b.metadata.get('resolution')} px, built-in)",
                                         f"builtin:{b.name}")
            own = len(models)
            models = [*models, *extra]
            if not models:
                self.model_combo.addItem("No UNIT model yet: train one first", None)
            index = self.model_combo.findData(current) if current is not None else -1
            # Default: the project's newest model, else the first built-in one (fitting ones first).
            self.model_combo.setCurrentIndex(index if index >= 0 else max(own - 1, 0))
        finally:
            self.model_combo.blockSignals(False)
        if self.model_combo.currentData() != current:
            self._model_changed()

    def current_model(self) -> ModelRecord | None:
        model_id = self.model_combo.currentData()
        if model_id is None:
            return None
        if isinstance(model_id, str) and model_id.startswith("builtin:"):
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
        index = self.model_combo.findData(ref)
        if index >= 0:
            self.model_combo.setItemData(index, record.id)
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
        rec = self.main.record
        if rec is None or rec.id != image_id or self.canvas.radiograph is not rg:
            return
        self._reload_patch_list()
        self._window = None
        self._patch_id = None
        self.tool.show_window(None)
        self._clear_views()
        selected = self.main.selected_region()
        if selected is not None and selected[0] == PATCH:
            self._selection_changed(selected)

    def _image_gone(self, *_args: object) -> None:
        self._window = None
        self._patch_id = None
        self.tool.show_window(None)
        self.patch_model.clear()
        self._clear_views()

    def _reload_patch_list(self) -> None:
        self.patch_model.clear()
        rec = self.main.record
        if rec is None:
            return
        for patch in self.session.project.normal_patches(rec.id):
            b = patch.box
            item = QStandardItem(f"Normal patch #{patch.id}   {b.width:.0f}×{b.height:.0f} at {b.x0:.0f},{b.y0:.0f}")
            item.setData(patch.id, Qt.ItemDataRole.UserRole)
            self.patch_model.appendRow(item)
        self._mark_patch(self._patch_id)

    def _mark_patch(self, patch_id: int | None) -> None:
        selection = self.patch_list.selectionModel()
        selection.blockSignals(True)
        try:
            for row in range(self.patch_model.rowCount()):
                index = self.patch_model.index(row, 0)
                if index.data(Qt.ItemDataRole.UserRole) == patch_id:
                    selection.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
                    return
            selection.clearSelection()
            selection.setCurrentIndex(QModelIndex(), QItemSelectionModel.SelectionFlag.Clear)
        finally:
            selection.blockSignals(False)

    def _patch_clicked(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.main.select_region((PATCH, int(current.data(Qt.ItemDataRole.UserRole))))

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
        self._mark_patch(patch_id)
        self.set_window(window, patch_id)

    def _regions_changed(self, image_id: int) -> None:
        rec = self.main.record
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
        self._mark_patch(None)
        self.set_window(box, None)

    def set_window(self, box: Box | None, patch_id: int | None = None) -> None:
        """Translate this window of the current image (None clears); unchanged windows are not redone."""
        self._patch_id = patch_id
        if box == self._window and self.translation is not None and self._still_valid(self.translation.request):
            self.tool.show_window(box)
            return
        self._window = box
        self.tool.show_window(box)
        self._request()

    @property
    def window_box(self) -> Box | None:
        return self._window

    # ------------------------------------------------------------------ translation
    def _params_changed(self) -> None:
        self._request()

    def translation_mode(self) -> str:
        """The translation the panel asks for (synthesis.pipeline.TRANSLATIONS)."""
        return "residual" if self.residual.isChecked() else "direct"

    def _still_valid(self, req: PreviewRequest) -> bool:
        rec, model = self.main.record, self.model_combo.currentData()
        return (rec is not None and req.image_id == rec.id and req.model_id == model and req.window == self._window
                and req.seed == self.seed_spin.value() and req.stochastic == self.stochastic.isChecked()
                and req.translation == self.translation_mode())

    def _request(self) -> None:
        """Ask the worker for a translation of the current window; overtaken requests are dropped."""
        if self._closed:
            return
        rg, rec = self.canvas.radiograph, self.main.record
        if rg is None or rec is None or self._window is None:
            self._generation += 1  # anything in flight is for a window no longer shown
            self._clear_views()
            return
        model = self.current_model()
        if model is None:
            self._generation += 1
            self._clear_views()
            self._set_status("There is no UNIT model in this project yet. Train one (Training panel, or "
                             "lesion-studio train-gan) and choose it above.")
            return
        if not self.isVisible():
            self._pending = True  # translate when the panel is shown, not for a hidden panel
            return
        self._pending = False
        self._generation += 1
        req = PreviewRequest(self._generation, rec.id, model.id, self._window, self.seed_spin.value(),
                             self.stochastic.isChecked(), self.translation_mode())
        self.pool.drop_queued()
        project, cache, n = self.session.project, self.translators, self.n
        self.pool.submit(("translate", req.generation), lambda: translate(project, cache, model, rg, req, n))
        self._set_status(f"Translating {self._window.width:.0f}×{self._window.height:.0f} px with {model.name}…")

    def _arrived(self, key: object, value: object) -> None:
        if not (isinstance(key, tuple) and key[0] == "translate"):
            return
        assert isinstance(value, Translation)
        if key[1] != self._generation or not self._still_valid(value.request):
            self.stale_dropped += 1
            return
        self.translation = value
        result = value.result
        same = abs(result.n - self.n) < 1e-9 and result.blend_mode == self.blend_mode()
        self.result = result if same else result.reblend(self.n, self.blend_mode())
        self._show_translation()
        w = value.request.window
        self._set_status(f"{w.width:.0f}×{w.height:.0f} px window translated in {value.seconds * 1000:.0f} ms "
                         f"({value.device}); n and A/B are instant.")
        self.translated.emit()

    def _failed(self, key: object, message: str) -> None:
        if isinstance(key, tuple) and key[0] == "translate" and key[1] == self._generation:
            self._set_status(f"Translation failed: {message}")
            self.main.show_message(f"Synthesis preview: {message}", "error")

    # ------------------------------------------------------------------ showing
    def _levels(self) -> tuple[float, float]:
        return self.canvas.levels()

    def _show_translation(self) -> None:
        rg, result = self.canvas.radiograph, self.result
        if rg is None or result is None:
            return
        levels, window = self._levels(), result.window
        ctx = context_box(window, rg.width, rg.height)
        base = crop(rg.pixels, ctx)
        full_box = Box(0.0, 0.0, float(rg.width), float(rg.height))
        for key, view in self.views.items():
            view.set_levels(levels)
            view.set_inverted(self.canvas.inverted)
            if key == "full":
                view.set_base(downsampled(rg.pixels), full_box, window)
            else:
                view.set_base(base, ctx, window)
        self.views["original"].set_patch(None, None)
        self.views["translated"].set_patch(result.translated_patch, window)
        self._show_blend()

    def _show_blend(self) -> None:
        result = self.result
        if result is None:
            return
        self.views["blended"].set_patch(result.blended_patch, result.window)
        self.views["full"].set_patch(result.blended_patch, result.window)
        self.views["blended"].title.setText(f"Blended (n = {result.n:.2f})")
        self._sync_overlay()

    def _sync_overlay(self) -> None:
        """The viewer's overlay follows the A/B toggle; hidden, it is not even updated."""
        if self.showing_synthetic() and self.result is not None:
            self.overlay.show_patch(self.result.blended_patch, self.result.window)
            self.overlay.set_visible(True)
            self.canvas.set_badge("SYNTHETIC")
        else:
            self.overlay.set_visible(False)
            self.canvas.set_badge(None)

    def _clear_views(self) -> None:
        self.result = None
        self.translation = None
        for view in self.views.values():
            view.set_base(None, None, None)
        self.views["blended"].title.setText("Blended")
        self.overlay.show_patch(None, None)
        self.overlay.set_visible(False)
        self.canvas.set_badge(None)
        if self._window is None:
            self._set_status("Pick a normal patch (click it, or choose it in the list) or draw a window (W).")

    def _levels_changed(self, lo: float, hi: float) -> None:
        for view in self.views.values():
            view.set_levels((lo, hi))

    def _inverted(self, inverted: bool) -> None:
        for view in self.views.values():
            view.set_inverted(inverted)

    def _set_status(self, text: str) -> None:
        self.status.setText(text)

    # ------------------------------------------------------------------ n
    def _slider_moved(self, value: int) -> None:
        n = slider_to_n(value)
        self.n_spin.blockSignals(True)
        self.n_spin.setValue(n)
        self.n_spin.blockSignals(False)
        self.set_n(n)

    def _spin_changed(self, n: float) -> None:
        self.n_slider.blockSignals(True)
        self.n_slider.setValue(n_to_slider(n))
        self.n_slider.blockSignals(False)
        self.set_n(n)

    def blend_mode(self) -> str:
        """The blend mode chosen in the panel (``synthesis.blend.BLEND_MODES``)."""
        return str(self.blend_combo.currentData())

    def set_n(self, n: float) -> None:
        """Re-blend the current translation with exponent n and the chosen mode (never re-translates)."""
        self.n = float(min(max(n, N_MIN), N_MAX))
        if self.result is None or self.translation is None:
            return
        t0 = time.perf_counter()
        self.result = self.result.reblend(self.n, self.blend_mode())
        self._show_blend()
        self.last_reblend_s = time.perf_counter() - t0
        self.reblended.emit(self.n)

    # ------------------------------------------------------------------ actions
    def toggle_panel(self) -> None:
        self.main.show_dock("synthesis", toggle=True)

    def showing_synthetic(self) -> bool:
        action = self.main.action("synthesis_ab")
        return bool(action is not None and action.isChecked())

    def show_synthetic(self, checked: bool) -> None:
        """A/B: the viewer shows the synthetic image (blended lesion in place) or the real one."""
        if checked and self.result is None:
            self.main.show_message("Nothing synthesized yet: pick a normal patch or draw a window (W).", "info")
        self._sync_overlay()
        self.main.show_status("Showing the synthetic image" if checked and self.result is not None
                              else "Showing the real image", 2000)

    def resample(self) -> None:
        """Another latent sample for the same window: stochastic on, next seed."""
        self.stochastic.blockSignals(True)
        self.stochastic.setChecked(True)
        self.stochastic.blockSignals(False)
        self.seed_spin.setValue(self.seed_spin.value() + 1)  # triggers the request

    def keep(self) -> Job | None:
        """Save the synthetic image as an accepted sample (batch "kept") with full provenance."""
        result, rec, tr = self.result, self.main.record, self.translation
        if result is None or rec is None or tr is None:
            self.main.show_message("Nothing to keep yet: pick a normal patch or draw a window (W) first.", "info")
            return None
        project = self.session.project
        provenance = {**result.provenance, "kept_from": "synthesis panel", "image_id": rec.id,
                      "source": {**result.provenance.get("source", {}), "image_id": rec.id}}

        def job(progress, cancel):  # noqa: ANN001, ANN202
            from lesion_studio.samples.storage import save_synthetic_sample

            return save_synthetic_sample(project, result.image, source_image_id=rec.id, window=result.window,
                                         n=result.n, seed=result.seed, model_id=tr.request.model_id,
                                         provenance=provenance, status="accepted", batch=KEPT_BATCH)

        def done(sample_id: int) -> None:
            self.main.show_message(f"Kept synthetic sample #{sample_id} ({rec.name}, n = {result.n:.2f}, "
                                   f"seed {result.seed}). Export with Tools → Export kept synthetic samples…",
                                   "info")
            self.session.samples_changed.emit()
            self.kept.emit(sample_id)

        return self._start(job, "Keep synthetic sample", done)

    def export_kept_samples(self, out: Path | None = None, fmt: str | None = None,
                            status: str = "accepted") -> Job | None:
        """Export accepted samples (PNG/DICOM + sidecars); asks for folder and format unless given."""
        project = self.session.project
        if out is None or fmt is None:
            dialog = ExportSamplesDialog(project.folder / "exports" / "synthetic", self.main)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return None
            out, fmt, status = dialog.values()
        from lesion_studio.samples.folder_export import export_samples

        target, kind, which = Path(out), str(fmt), status

        def job(progress, cancel):  # noqa: ANN001, ANN202
            return export_samples(project, target, kind, status=which, progress=progress, cancel=cancel)

        def done(report) -> None:  # noqa: ANN001
            text = f"Exported {report.count} synthetic sample(s) as {kind.upper()} to {report.out_dir}."
            if report.failed:
                text += f" {len(report.failed)} could not be read (sample {report.failed[0][0]}: {report.failed[0][1]})"
            self.main.show_message(text, "warning" if report.failed else "info")

        return self.main.run_job(job, "Export synthetic samples", done)

    def _start(self, fn: Callable[..., Any], title: str, done: Callable[[Any], None]) -> Job:
        """A short save on the job queue's light lane (no dialog: it takes a moment)."""
        job = self.main.run_job(fn, title, done, modal=False, dialog=False)
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
        self._generation += 1
        self.pool.shutdown()
        for job in list(self._jobs):  # a keep in flight finishes: it is a short database write
            if job.worker is not None:
                job.worker.wait(30_000)
        self.main.remove_tool("synthesis", self.tool)
        self.tool.remove()
        self.overlay.remove()
        self.canvas.set_badge(None)
        ab = self.main.action("synthesis_ab")
        if ab is not None and ab.isChecked():
            ab.blockSignals(True)
            ab.setChecked(False)
            ab.blockSignals(False)
        self.translators.clear()
