"""The main window's menu and key actions that edit or navigate (a mixin of
:class:`~lesion_studio.gui.app.MainWindow`).

Each method is an action's handler, named in :data:`lesion_studio.gui.actions.ACTIONS`; they use
the window's session, current record, canvas, annotation controller and browser. Kept apart from
``gui/app.py`` so the window's assembly reads on its own, as :mod:`lesion_studio.gui.file_jobs`
does for import, export and re-link.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QSpinBox

from lesion_studio.errors import LesionStudioError
from lesion_studio.gui import settings as prefs
from lesion_studio.gui.commands import LESION, DeleteRegionCommand, update_image
from lesion_studio.gui.input_guard import guard_wheel, return_focus_on_enter
from lesion_studio.store.project import Project
from lesion_studio.store.records import ImageRecord

APP_NAME = "Lesion Studio"


class WindowActions:
    """New/open project, undo/redo, navigation, view, labelling and help actions."""

    def new_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the new project")
        if folder:
            self._create_and_open(Path(folder))

    def _create_and_open(self, folder: Path) -> bool:
        try:
            Project.create(folder).close()
        except LesionStudioError as exc:
            self.show_message(str(exc), "error")
            return False
        return self.open_project(folder)

    def create_project_for_file(self, file: Path, folder: Path | None = None) -> bool:
        """Make a project next to a radiograph (or in ``folder``), import the file, open it."""
        file = Path(file)
        if folder is None:
            default = file.parent / f"{file.stem} project"
            chosen = QFileDialog.getExistingDirectory(self, f"Folder for the project of {file.name}",
                                                      str(file.parent))
            if not chosen:
                return False
            folder = Path(chosen) if Path(chosen) != file.parent else default
        if not self._create_and_open(folder):
            return False
        self.import_images(file)
        return True

    def open_project_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a project folder")
        if folder:
            self.open_project(folder)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in prefs.recent_projects():
            action = self.recent_menu.addAction(str(path))
            action.triggered.connect(lambda _c=False, p=path: self.open_project(p))
        if not self.recent_menu.actions():
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def undo(self) -> None:
        if self.session is not None:
            self.session.undo_stack.undo()

    def redo(self) -> None:
        if self.session is not None:
            self.session.undo_stack.redo()

    def delete_selected_region(self) -> None:
        self.controller.delete_selected()

    def deselect(self) -> None:
        for tool in self.tools.values():
            tool.cancel()
        self.controller.select(None)

    def focus_search(self) -> None:
        self.browser.search.setFocus()
        self.browser.search.selectAll()

    def fit_view(self) -> None:
        self.canvas.fit()

    def actual_size(self) -> None:
        self.canvas.set_zoom(1.0)

    def zoom_in(self) -> None:
        self.canvas.zoom_by(1.25)

    def zoom_out(self) -> None:
        self.canvas.zoom_by(0.8)

    def apply_preset(self, preset: str) -> None:
        from lesion_studio.io.display import preset_levels

        rg = self.canvas.radiograph
        if rg is None:
            return
        self._preset = preset
        self.canvas.set_levels(*preset_levels(rg, preset))

    def toggle_invert(self, checked: bool) -> None:
        self.canvas.set_inverted(checked)

    def toggle_overlays(self, hidden: bool) -> None:
        self.canvas.set_overlays_hidden(hidden)
        self.statusBar().showMessage("Boxes and patches hidden (H shows them)" if hidden else
                                     "Boxes and patches shown", 2000)

    def next_image(self) -> None:
        if self.session is not None:
            self.browser.step(1)

    def previous_image(self) -> None:
        if self.session is not None:
            self.browser.step(-1)

    def toggle_label(self) -> None:
        """L: lesion ↔ normal. A lesion image with boxes asks first: a normal image has no boxes,
        so relabelling deletes them in the same undo step (drawing a box on a normal image asks too)."""
        if self.session is None or self.record is None:
            return
        rec = self.record
        new = "normal" if rec.label == "lesion" else "lesion"
        boxes = self.session.project.boxes(rec.id) if new == "normal" else []
        if not boxes:
            update_image(self.session, rec.id, f"Label {new}", label=new)
            self.statusBar().showMessage(f"{rec.name}: {new}", 3000)
            return
        n = len(boxes)
        answer = QMessageBox.question(
            self, "Relabel as normal?",
            f"{rec.name} has {n} lesion box{'es' if n > 1 else ''}. A normal image has none: relabel it normal "
            f"and delete {'them' if n > 1 else 'it'}? (Undo brings {'them' if n > 1 else 'it'} back.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            self.statusBar().showMessage(f"{rec.name}: still lesion", 3000)
            return
        stack = self.session.undo_stack
        stack.beginMacro("Label normal (delete its boxes)")
        try:
            self.controller.select(None)
            for box in boxes:
                stack.push(DeleteRegionCommand(self.session, LESION, rec.id, box.id, box.box))
            update_image(self.session, rec.id, "Label normal", label="normal")
        finally:
            stack.endMacro()
        self.statusBar().showMessage(f"{rec.name}: normal ({n} box{'es' if n > 1 else ''} deleted)", 3000)

    def _confirm_relabel(self, rec: ImageRecord) -> bool:
        if not self.actions_by_key["ask_relabel"].isChecked():
            return True
        answer = QMessageBox.question(
            self, "Relabel as lesion?",
            f"{rec.name} is labelled normal. Relabel it as lesion now that it has a lesion box?")
        return answer == QMessageBox.StandardButton.Yes

    def toggle_excluded(self) -> None:
        if self.session is None or self.record is None:
            return
        if self.record.exclusions:
            update_image(self.session, self.record.id, "Include image", exclusions=[], exclusion_note="")
            self.statusBar().showMessage(f"{self.record.name}: included again", 3000)
            return
        from lesion_studio.gui.dialogs import ExclusionDialog

        dialog = ExclusionDialog(self.record.name, self.record.exclusion_note, self)
        if dialog.exec() != ExclusionDialog.DialogCode.Accepted:
            return
        update_image(self.session, self.record.id, "Exclude image", exclusions=[dialog.reason()],
                     exclusion_note=dialog.note.text())
        self.statusBar().showMessage(f"{self.record.name}: excluded ({dialog.reason()})", 3000)

    def set_body_part_key(self, index: int) -> None:
        if self.session is None or self.record is None or index > len(self.body_parts):
            return
        part = self.body_parts[index - 1]
        update_image(self.session, self.record.id, f"Body part {part}", body_part=part)
        self.statusBar().showMessage(f"{self.record.name}: {part}", 3000)

    def _build_patch_spin(self) -> QSpinBox:
        """The toolbar's normal-patch size box ([ and ] change it too)."""
        self.patch_spin = QSpinBox()
        self.patch_spin.setRange(16, 512)
        self.patch_spin.setSingleStep(8)
        self.patch_spin.setSuffix(" px")
        self.patch_spin.setValue(self.controller.patch_size)
        self.patch_spin.setToolTip("Normal patch size ([ and ] change it)")
        self.patch_spin.valueChanged.connect(self.controller.set_patch_size)
        guard_wheel(self.patch_spin)
        return_focus_on_enter(self.patch_spin, lambda: self.canvas)
        return self.patch_spin

    def change_patch_size(self, delta: int) -> None:
        self.patch_spin.setValue(self.controller.set_patch_size(self.controller.patch_size + delta))
        self.statusBar().showMessage(f"Normal patch size {self.controller.patch_size} px", 2000)

    def toggle_ask_relabel(self, checked: bool) -> None:
        prefs.set_value("annotate/ask_relabel", checked)

    def show_shortcuts(self) -> None:
        from lesion_studio.gui.dialogs import ShortcutsDialog

        ShortcutsDialog(self).exec()

    def show_about(self) -> None:
        from lesion_studio import __version__

        QMessageBox.about(self, f"About {APP_NAME}",
                          f"<b>{APP_NAME}</b> {__version__}<br>Curate bone-lesion boxes, synthesize lesions "
                          "and train classifiers.<br>Every edit is saved the moment you make it.")
