"""The built-in generator in the Synthesis panel (the demo translates with no training), and the
training panel of a reading build (no torch) saying how to install the `train` extra."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import Qt

from lesion_studio.demo.project import add_builtin_generators
from lesion_studio.store.project import Project
from tests.gui.conftest import dispose, open_window, show


def _normal_patch(project):  # noqa: ANN001, ANN202
    return next(p for p in project.normal_patches() if project.image(p.image_id).label == "normal")


def _pick(qtbot, panel, patch_id: int) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: panel.patch_list.items.rowCount() > 0)
    row = next(r for r in range(panel.patch_list.items.rowCount())
               if panel.patch_list.items.index(r, 0).data(Qt.ItemDataRole.UserRole) == patch_id)
    rect = panel.patch_list.visualRect(panel.patch_list.items.index(row, 0))
    qtbot.mouseClick(panel.patch_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _synthesis(qtbot, folder: Path):  # noqa: ANN001, ANN202
    window = open_window(qtbot, folder)
    window.docks["synthesis"].show()
    panel = window.panels["synthesis"]
    qtbot.waitUntil(panel.isVisible)
    return window, panel


def _close(window) -> None:  # noqa: ANN001
    window.close()
    dispose(window)


def test_demo_translates_with_the_builtin_generator_at_once(qtbot, demo_project_master, tmp_path) -> None:  # noqa: ANN001
    folder = tmp_path / "demo"
    shutil.copytree(demo_project_master, folder)
    project = Project.open(folder)
    assert add_builtin_generators(project) == ["builtin-phantom-unit"]  # what `lesion-studio demo` does
    patch = _normal_patch(project)
    project.close()

    window, panel = _synthesis(qtbot, folder)
    try:
        assert panel.current_model().name == "builtin-phantom-unit"
        assert "built-in" in panel.model_combo.currentText()
        show(qtbot, window, patch.image_id)
        with qtbot.waitSignal(panel.translated, timeout=30_000):
            _pick(qtbot, panel, patch.id)  # one click: a translated lesion
        assert panel.views["translated"].is_filled() and panel.preview.result is not None
    finally:
        _close(window)


def test_builtin_is_listed_and_copied_into_a_project_only_when_used(qtbot, demo_project_master, tmp_path) -> None:  # noqa: ANN001
    folder = tmp_path / "demo"
    shutil.copytree(demo_project_master, folder)  # a project with no generator of its own
    window, panel = _synthesis(qtbot, folder)
    try:
        labels = [panel.model_combo.itemText(i) for i in range(panel.model_combo.count())]
        assert any(t.startswith("builtin-phantom-unit") and "built-in" in t for t in labels)
        assert window.session.project.models() == []  # listed, not yet copied
        patch = _normal_patch(window.session.project)
        show(qtbot, window, patch.image_id)
        with qtbot.waitSignal(panel.translated, timeout=30_000):
            _pick(qtbot, panel, patch.id)
        [record] = window.session.project.models()
        assert record.name == "builtin-phantom-unit" and record.metadata["builtin"] == "phantom-unit"
    finally:
        _close(window)


def test_reading_build_training_panel_says_how_to_install_the_extra(qtbot, demo_project, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr("lesion_studio.gui.panels.training.training_available", lambda: False)
    window = open_window(qtbot, demo_project.folder, wait_image=False)
    try:
        panel = window.panels["training"]
        panel._update_buttons()
        assert not panel.start_button.isEnabled() and not panel.resume_button.isEnabled()
        assert panel.start() is None
        assert "pip install 'lesion-studio[train]'" in panel.status_label.text()
        assert panel.job is None
    finally:
        _close(window)
