"""The open project as the GUI sees it: the store, the undo stack and change signals.

Panels never talk to each other. They edit through undo commands (which write to the store at
once) and listen to these signals, like napari's views listen to its model. Issue-6 panels
(synthesis, training, gallery) hang off the same object.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QUndoStack

from lesion_studio.store.events import on_models_changed
from lesion_studio.store.project import Project

log = logging.getLogger(__name__)


class ProjectSession(QObject):
    """One open project. Every edit is committed by the store before the signal fires."""

    image_changed = Signal(int)  # an image's fields (label, flags, ...) changed
    regions_changed = Signal(int)  # boxes or normal patches of an image changed
    images_reloaded = Signal()  # the image list itself changed (import, relink)
    focus_requested = Signal(int)  # an undo/redo touched an image: show it
    #: The project's model registry changed: a model was registered, updated or deleted, by any
    #: connection on any thread (a trainer's job, an experiment, a built-in's first use). Always
    #: emitted on the GUI thread, once per burst of changes.
    models_changed = Signal()
    samples_changed = Signal()  # synthetic samples were added (Keep in the synthesis panel)
    reader_view_changed = Signal()  # whose boxes the views show (mine / a reader / all)
    _models_announced = Signal()  # from the store, on the committing thread

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
        self._announcement_pending = False
        # queued: models_changed is emitted on this object's (the GUI) thread, never a worker's
        self._models_announced.connect(self._emit_models_changed, Qt.ConnectionType.QueuedConnection)
        self._unsubscribe = on_models_changed(project.folder, self._announce)

    def _announce(self) -> None:
        """Called by the store on the committing thread; hands the news to the GUI thread."""
        if not self._announcement_pending:  # a trainer registers, then adds hashes: one refresh
            self._announcement_pending = True
            # the project may be closing on the GUI thread at this moment: then nobody listens
            with contextlib.suppress(RuntimeError):
                self._models_announced.emit()

    def _emit_models_changed(self) -> None:
        self._announcement_pending = False
        self.models_changed.emit()

    def set_reader_view(self, reader: str | None) -> None:
        if reader != self.reader_view:
            self.reader_view = reader
            self.reader_view_changed.emit()

    def can_edit(self, reader: str) -> bool:
        """A box or ruler is editable unless the view shows another reader's reads (looked at, not
        changed: adjudication makes a consensus box instead)."""
        return self.reader_view is None or self.reader_view == self.author or reader == self.author

    @property
    def folder(self) -> Path:
        return self.project.folder

    def close(self) -> None:
        self._unsubscribe()
        self.undo_stack.clear()
        self.project.close()
