"""What a panel may ask of the main window (:class:`PanelHost`), and the connections it makes.

Panels are rebuilt for every opened project, but the window, its actions, its viewer and its job
queue live for the whole session. A panel that connects a lambda to a window action and is then
deleted leaves the lambda behind, and the next signal calls into deleted widgets (opening a
second project used to log "Internal C++ object already deleted" from the synthesis panel). So
a panel never calls ``connect`` on a window-lifetime signal itself: it asks the host to
:meth:`~PanelHost.listen`, and the host drops every such connection (:class:`Connections`) when
the project closes, before the panel is deleted.

The protocol is also the whole of what a panel may use: no ``window.canvas``, ``.loader``,
``.controller`` or ``.docks``. The panels import this module, never ``gui.app``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance
    from PySide6.QtGui import QAction

    from lesion_studio.gui.job_queue import Job, JobQueue
    from lesion_studio.gui.panels.thumbnails import ThumbnailCache
    from lesion_studio.gui.session import ProjectSession
    from lesion_studio.gui.viewer.canvas import ImageCanvas
    from lesion_studio.store.records import ImageRecord

log = logging.getLogger(__name__)


class PanelHost(Protocol):
    """The main window as a panel sees it."""

    job_queue: JobQueue
    #: the open project's browser thumbnails (rendered off the GUI thread, cached on disk)
    thumbnails: ThumbnailCache | None
    #: (image id, Radiograph): the viewer shows a newly loaded image (after the window's own handling)
    image_shown: SignalInstance
    #: (image id, message): an image could not be shown
    image_failed: SignalInstance
    #: the selected box or patch key (or None) changed in the viewer
    region_selected: SignalInstance

    @property
    def session(self) -> ProjectSession | None: ...

    @property
    def record(self) -> ImageRecord | None: ...

    @property
    def viewer(self) -> ImageCanvas:
        """The image canvas: panels draw overlays on it and read its levels and inversion."""
        ...

    def show_message(self, text: str, level: str = "info",
                     action: tuple[str, Callable[[], None]] | None = None) -> None: ...

    def show_status(self, text: str, timeout_ms: int = 3000) -> None: ...

    def action(self, key: str) -> QAction | None: ...

    def listen(self, signal: SignalInstance, slot: Callable[..., Any]) -> None:
        """Connect ``slot`` to a window-lifetime ``signal`` until the project closes."""
        ...

    def show_dock(self, key: str, toggle: bool = False) -> None: ...

    def select_image(self, image_id: int) -> None: ...

    def select_region(self, key: object) -> None: ...

    def selected_region(self) -> object: ...

    def patch_size(self) -> int: ...

    def add_tool(self, name: str, tool: Any) -> None: ...

    def remove_tool(self, name: str, tool: Any) -> None: ...

    def use_tool(self, name: str) -> None: ...

    def run_job(self, fn: Callable[..., Any], title: str, on_success: Callable[[Any], None],
                modal: bool = True, dialog: bool = True) -> Job: ...


class Connections:
    """Connections from one project's panels to window-lifetime signals, dropped together.

    Each is dropped through the handle ``connect`` returned (``QObject.disconnect(handle)``), never
    ``signal.disconnect(slot)``: in PySide6 6.12 the latter over-releases a Python ``True`` on
    every call, and a few hundred of them abort the interpreter ("deallocating True or False").
    """

    def __init__(self) -> None:
        self._handles: list[Any] = []

    def connect(self, signal: Any, slot: Callable[..., Any]) -> None:
        self._handles.append(signal.connect(slot))

    def __len__(self) -> int:
        return len(self._handles)

    def disconnect_all(self) -> None:
        from PySide6.QtCore import QObject

        handles, self._handles = self._handles, []
        for handle in reversed(handles):
            # already gone (its sender or receiver was deleted first): nothing left to drop
            with contextlib.suppress(RuntimeError, TypeError), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                QObject.disconnect(handle)
