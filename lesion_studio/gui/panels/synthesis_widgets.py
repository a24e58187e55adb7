"""The Synthesis panel's small widgets: the blend menu, the normal-patch list, the n control, and
buttons that drive window actions."""

from __future__ import annotations

import math

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QListView,
    QSizePolicy,
    QSlider,
    QToolButton,
    QWidget,
)

from lesion_studio.gui.host import PanelHost
from lesion_studio.store.records import NormalPatch
from lesion_studio.synthesis.blend import BLEND_MODES, DEFAULT_BLEND
from lesion_studio.synthesis.preview import N_MAX, N_MIN

SLIDER_STEPS = 1000
#: The blend modes the panel offers, each with its tooltip (synthesis/blend.py has the maths).
BLEND_TIPS = {
    "paper": "The paper's alpha blend, as published",
    "matched": "Drop the translation's brightness offset outside the lesion core first (no dark square)",
    "moments": "Give the translation the source's brightness and contrast outside the lesion core first",
}
assert tuple(BLEND_TIPS) == BLEND_MODES, "every blend mode needs a tooltip"


def slider_to_n(value: int) -> float:
    """Slider position 0..SLIDER_STEPS → n in [N_MIN, N_MAX], evenly on a log scale."""
    return N_MIN * (N_MAX / N_MIN) ** (min(max(value, 0), SLIDER_STEPS) / SLIDER_STEPS)


def n_to_slider(n: float) -> int:
    n = min(max(n, N_MIN), N_MAX)
    return round(SLIDER_STEPS * math.log(n / N_MIN) / math.log(N_MAX / N_MIN))


class BlendCombo(QComboBox):
    """The blend modes, each with its tooltip; the default chosen."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        for mode, tip in BLEND_TIPS.items():
            self.addItem(mode, mode)
            self.setItemData(self.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.setCurrentIndex(self.findData(DEFAULT_BLEND))
        self.setToolTip("How the translation is blended into its source; changing it only re-blends")


class NControl(QWidget):
    """The blending exponent: a log-scale slider and a box that follow each other; ``changed(n)``."""

    changed = Signal(float)

    def __init__(self, n: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setSingleStep(SLIDER_STEPS // 60)  # arrow keys: ×1.07 per step
        self.slider.setPageStep(SLIDER_STEPS // 6)  # one octave
        self.slider.setValue(n_to_slider(n))
        self.slider.setToolTip("Blending exponent n (log scale): larger n widens the fully translated centre")
        self.slider.valueChanged.connect(self._slider_moved)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(N_MIN, N_MAX)
        self.spin.setDecimals(2)
        self.spin.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        self.spin.setValue(n)
        self.spin.valueChanged.connect(self._spin_changed)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.slider, 2)
        row.addWidget(self.spin, 1)

    def _slider_moved(self, value: int) -> None:
        n = slider_to_n(value)
        with QSignalBlocker(self.spin):
            self.spin.setValue(n)
        self.changed.emit(n)

    def _spin_changed(self, n: float) -> None:
        with QSignalBlocker(self.slider):
            self.slider.setValue(n_to_slider(n))
        self.changed.emit(n)


class PatchList(QListView):
    """The current image's normal patches; clicking one emits ``picked(patch id)``."""

    picked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.items = QStandardItemModel(self)
        self.setModel(self.items)
        self.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.setMaximumHeight(96)
        self.selectionModel().currentChanged.connect(self._clicked)

    def show_patches(self, patches: list[NormalPatch], marked: int | None) -> None:
        self.items.clear()
        for patch in patches:
            b = patch.box
            item = QStandardItem(f"Normal patch #{patch.id}   {b.width:.0f}×{b.height:.0f} at {b.x0:.0f},{b.y0:.0f}")
            item.setData(patch.id, Qt.ItemDataRole.UserRole)
            self.items.appendRow(item)
        self.mark(marked)

    def mark(self, patch_id: int | None) -> None:
        """Select ``patch_id``'s row (or none) without emitting ``picked``."""
        selection = self.selectionModel()
        with QSignalBlocker(selection):
            for row in range(self.items.rowCount()):
                index = self.items.index(row, 0)
                if index.data(Qt.ItemDataRole.UserRole) == patch_id:
                    selection.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
                    return
            selection.clearSelection()
            selection.setCurrentIndex(QModelIndex(), QItemSelectionModel.SelectionFlag.Clear)

    def _clicked(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.picked.emit(int(current.data(Qt.ItemDataRole.UserRole)))


def action_button(host: PanelHost, key: str, text: str) -> QToolButton:
    """A short-labelled button driving a window action (state, shortcut and tip stay the action's)."""
    button = QToolButton()
    button.setText(text)
    button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    action = host.action(key)
    if action is None:
        return button
    button.setToolTip(action.toolTip())
    button.setCheckable(action.isCheckable())
    button.setChecked(action.isChecked())
    button.setEnabled(action.isEnabled())
    button.clicked.connect(lambda _checked=False: action.trigger())
    host.listen(action.toggled, button.setChecked)
    host.listen(action.changed, lambda: button.setEnabled(action.isEnabled()))
    return button
