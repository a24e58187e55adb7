"""The main window's reader actions (a mixin of :class:`~lesion_studio.gui.app.MainWindow`):
who this user is as a reader, whose boxes are shown (viewer, inspector and status bar), the lesion
type of new boxes, the agreement report and adjudication.

Kept apart from ``gui/app.py`` as :mod:`lesion_studio.gui.window_actions` is: each method is an
action's handler named in :data:`lesion_studio.gui.actions.ACTIONS`, or keeps the status bar's
reader field current.
"""

from __future__ import annotations

from typing import Any

from lesion_studio.errors import ProjectError
from lesion_studio.gui import settings as prefs


class ReaderActions:
    """Reader name, reader view, lesion type, agreement and adjudication."""

    def _reader_view_changed(self) -> None:
        """Mine / another reader / all: the viewer and the inspector show that reader's boxes."""
        self.controller.select(None)
        self.controller.reload_regions()
        self._show_regions_in_inspector()
        self._show_reader_status()

    def _show_regions_in_inspector(self) -> None:
        """The inspector lists the regions the reader view shows, the measurements, the lesion
        types to choose from and every reader's label of the image."""
        if self.session is None or self.record is None:
            return
        from lesion_studio.store.lesion_types import lesion_types
        from lesion_studio.store.measurements import measurements
        from lesion_studio.store.readers import reader_labels

        p = self.session.project
        view = self.session.reader_view
        self.inspector.show_regions(p.boxes(self.record.id, reader=view), p.normal_patches(self.record.id),
                                    self.controller.selected, measurements(p, self.record.id, reader=view),
                                    lesion_types(p))
        self.inspector.show_reader_labels(reader_labels(p, self.record.id), self.session.author)
        self._show_assist_status()

    def _show_reader_status(self) -> None:
        self._show_assist_status()
        if self.session is None:
            self.status_fields["reader"].setText("")
            return
        view = self.session.reader_view
        shown = "all readers" if view is None else ("mine" if view == self.session.author else view)
        typed = self.controller.current_type or "no type"
        self.status_fields["reader"].setText(f"reader {self.session.author} · showing {shown} · new box: {typed}")

    def cycle_type(self, step: int) -> None:
        """T / Shift+T: the selected box's lesion type (and the type of boxes drawn next)."""
        if self.session is None:
            return
        name = self.controller.cycle_type(step)
        selected = self.controller.selected
        what = f"box #{selected[1]}" if selected and selected[0] == "lesion" else "new boxes"
        self.statusBar().showMessage(f"Lesion type for {what}: {name or 'none'}", 3000)
        self._show_reader_status()

    def edit_reader_name(self) -> None:
        """Tools → Reader name…: who this user is (kept in the settings, asked once)."""
        from PySide6.QtWidgets import QInputDialog

        current = prefs.reader_name()
        name, ok = QInputDialog.getText(self, "Reader name", "Your name as a reader (it is recorded with every box, "
                                        "label and ruler you make):", text=current)
        if not ok:
            return
        try:
            name = prefs.set_reader_name(name)
        except ProjectError as exc:
            self.show_message(str(exc), "error")
            return
        if self.session is not None:
            self.session.author = name
            self.browser.me = name
            self.browser.fill_readers()
            self._reader_view_changed()
        self.show_status(f"Reader: {name}")

    def show_agreement(self) -> Any:
        """Tools → Reader agreement…: κ, box F1 and mean IoU per reader pair, computed in the background."""
        if self.session is None:
            return None
        from lesion_studio.dataset.agreement import agreement_report
        from lesion_studio.gui.panels.agreement import AgreementDialog

        project = self.session.project

        def job(progress, cancel):  # noqa: ANN001, ANN202
            return agreement_report(project)

        def done(report) -> None:  # noqa: ANN001
            self.agreement_dialog = AgreementDialog(report, self)
            self.agreement_dialog.show()

        return self.run_job(job, "Reader agreement", done)

    def adjudicate_boxes(self) -> None:
        """Image → Adjudicate boxes…: two readers' boxes on this image, picked or merged into consensus."""
        if self.session is None or self.record is None:
            return
        from lesion_studio.gui.panels.agreement import AdjudicationDialog

        dialog = AdjudicationDialog(self.session, self.record.id, self)
        if not dialog.has_readers():
            self.show_message("Adjudication needs boxes from two readers on this image.", "info")
            return
        self.adjudication_dialog = dialog
        dialog.show()
