"""The open project as the GUI sees it: the store, the undo stack and change signals.

Panels never talk to each other. They edit through undo commands (which write to the store at
once) and listen to these signals, like napari's views listen to its model. Issue-6 panels
(synthesis, training, gallery) hang off the same object.
"""

from __future__ import annotations

import getpass
import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from lesion_studio.store.project import Project

log = logging.getLogger(__name__)


def current_author() -> str:
    try:
        return getpass.getuser() or "gui"
    except Exception:  # no user database (containers): still an author
        return "gui"


class ProjectSession(QObject):
    """One open project. Every edit is committed by the store before the signal fires."""

    image_changed = Signal(int)  # an image's fields (label, flags, ...) changed
    regions_changed = Signal(int)  # boxes or normal patches of an image changed
    images_reloaded = Signal()  # the image list itself changed (import, relink)
    focus_requested = Signal(int)  # an undo/redo touched an image: show it
    models_changed = Signal()  # a model was trained/registered (training panel, experiments)
    samples_changed = Signal()  # synthetic samples were added (Keep in the synthesis panel)
    reader_view_changed = Signal()  # whose boxes the views show (mine / a reader / all)

    def __init__(self, project: Project, parent: QObject | None = None) -> None:
        from lesion_studio.gui.settings import reader_name

        super().__init__(parent)
        self.project = project
        self.undo_stack = QUndoStack(self)
        #: The reader this user is (settings): every box, label and measurement records it.
        self.author = reader_name()
        #: Whose boxes and rulers the viewer and browser show: None for every reader, else one
        #: reader (this user's own: "mine"). Another reader's boxes are shown read-only.
        self.reader_view: str | None = None

    def set_reader_view(self, reader: str | None) -> None:
        if reader != self.reader_view:
            self.reader_view = reader
            self.reader_view_changed.emit()

    def can_edit(self, reader: str) -> bool:
        """A box or ruler is editable unless the view shows another reader's reads (looked at, not
        changed: adjudication makes a consensus box instead)."""
        return self.reader_view is None or self.reader_view == self.author or reader == self.author

    @property
    def folder(self):  # noqa: ANN201 - pathlib.Path
        return self.project.folder

    def close(self) -> None:
        self.undo_stack.clear()
        self.project.close()
