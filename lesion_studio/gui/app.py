"""The application and its main window.

Layout: dataset browser (left dock), image viewer (centre), inspector (right dock), toolbar,
menus and a status bar with pixel value, coordinates, millimetres and zoom. Docks are declared
in :data:`PANELS`, each with its own actions; the window's own actions are in
:mod:`lesion_studio.gui.actions`. Panels see the window only through
:class:`~lesion_studio.gui.host.PanelHost` (which this window implements); their connections to
the window's signals are dropped when the project closes, so any number of projects can be
opened one after another in one window.

Nothing here imports torch: start-up must stay fast, and viewing needs no training stack.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from lesion_studio.errors import LesionStudioError
from lesion_studio.gui import settings as prefs
from lesion_studio.gui.actions import MENUS, ActionSpec, build_action
from lesion_studio.gui.annotation import AnnotationController, body_part_keys
from lesion_studio.gui.assist_actions import AssistActions
from lesion_studio.gui.banner import Banner
from lesion_studio.gui.commands import update_image
from lesion_studio.gui.docks import PANELS, DockLayout, action_specs, scrollable
from lesion_studio.gui.file_jobs import FileJobs
from lesion_studio.gui.host import Connections
from lesion_studio.gui.input_guard import guard_wheel
from lesion_studio.gui.job_queue import JobQueue, confirm_stop
from lesion_studio.gui.panels.browser import BrowserPanel
from lesion_studio.gui.panels.inspector import InspectorPanel
from lesion_studio.gui.panels.thumbnails import ThumbnailCache
from lesion_studio.gui.reader_actions import ReaderActions
from lesion_studio.gui.reading_layout import ReadingLayout
from lesion_studio.gui.session import ProjectSession
from lesion_studio.gui.status_fields import StatusFields
from lesion_studio.gui.tools.base import PanTool
from lesion_studio.gui.tools.regions import RegionTool
from lesion_studio.gui.tools.ruler import RulerTool
from lesion_studio.gui.viewer.canvas import ImageCanvas
from lesion_studio.gui.viewer.loader import ImageLoader
from lesion_studio.gui.window_actions import APP_NAME, WindowActions
from lesion_studio.io.radiograph import Radiograph
from lesion_studio.store.database_file import DB_NAME
from lesion_studio.store.project import Project
from lesion_studio.store.records import ImageRecord

log = logging.getLogger(__name__)


class MainWindow(ReadingLayout, DockLayout, FileJobs, WindowActions, ReaderActions, AssistActions, QMainWindow):
    """The main window; it is the :class:`~lesion_studio.gui.host.PanelHost` of its panels."""

    image_shown = Signal(int, object)  # image id, Radiograph: on the canvas, after the window's own handling
    image_failed = Signal(int, str)
    region_selected = Signal(object)

    def __init__(self, project: Path | None = None) -> None:
        super().__init__()
        self.setObjectName("MainWindow")
        self.session: ProjectSession | None = None
        self.record: ImageRecord | None = None
        self.thumbnails: ThumbnailCache | None = None
        self.docks: dict[str, QDockWidget] = {}
        self.panels: dict[str, QWidget] = {}
        self.actions_by_key: dict[str, QAction] = {}
        self.action_specs = action_specs()
        self._panel_links = Connections()  # the open project's panels → window signals
        # every background job, heavy (training, experiments, batches: one per device) or light
        # (import, export, relink, keep)
        self.job_queue = JobQueue(self)
        self._preset = "dicom"
        self._show_started = 0.0
        self.last_paint_s: float | None = None

        self.canvas = ImageCanvas()
        self.controller = AnnotationController(self.canvas, self)
        self.controller.message.connect(self.show_message)
        self.controller.selection_changed.connect(self._selection_changed)
        self.controller.selection_changed.connect(self.region_selected)
        self.controller.confirm_relabel = self._confirm_relabel
        self.tools = {
            "box": RegionTool(self.canvas, self.controller, "lesion"),
            "patch": RegionTool(self.canvas, self.controller, "patch"),
            "pan": PanTool(self.canvas),
            "ruler": RulerTool(self.canvas, self.controller),
        }
        self.loader = ImageLoader(parent=self)
        self.loader.loaded.connect(self._image_loaded)
        self.loader.failed.connect(self._image_failed)

        self.banner = Banner()
        self.empty = QLabel("Open a project (File → Open project, Ctrl+O)\nor run  lesion-studio demo")
        self.empty.setObjectName("empty")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # an image that cannot be shown (a missing file...) gets this placeholder, never the last one
        self.placeholder = QLabel("")
        self.placeholder.setObjectName("image_placeholder")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.stack = QStackedWidget()
        for page in (self.empty, self.canvas, self.placeholder):
            self.stack.addWidget(page)
        centre = QWidget()
        layout = QVBoxLayout(centre)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.stack, 1)
        self.banner.overlay(centre)  # floats over the image: never moves it
        self.setCentralWidget(centre)

        self._build_docks()
        self._build_actions()
        self.status_fields = StatusFields(self.statusBar(), self.canvas)
        self.canvas.painted.connect(self._painted)
        self.use_tool("box")
        self.resize(1440, 900)
        self._default_state = self.saveState()  # View → Reset layout returns here
        self._restore_layout()
        self._hide_stale_tab_bars()
        self._restore_layout_mode()
        self._update_title()
        self._update_enabled()
        if project is not None:
            self.open_project(project)

    # ------------------------------------------------------------------ building
    def _build_actions(self) -> None:
        menus = {name: self.menuBar().addMenu(f"&{name}") for name in MENUS}
        self.toolbar = self.addToolBar("Main")
        self.toolbar.setObjectName("toolbar_main")
        self.toolbar.setMovable(False)
        groups: dict[str, QActionGroup] = {}
        last_section: dict[str, str] = {}
        for spec in self.action_specs:
            if spec.context not in ("window", "viewer"):
                continue  # a panel's own keys (e.g. "gallery"): the panel binds them to itself
            action = build_action(spec, self, self._handler(spec))
            self.actions_by_key[spec.key] = action
            if spec.context == "viewer":
                self.canvas.addAction(action)
                continue
            self.addAction(action)  # shortcuts work even when the menu bar is hidden
            if spec.group:
                groups.setdefault(spec.group, QActionGroup(self)).addAction(action)
            menu = menus[spec.menu]
            if spec.section and last_section.get(spec.menu) not in (None, spec.section):
                menu.addSeparator()
            if spec.section:
                last_section[spec.menu] = spec.section
            elif spec.menu not in last_section:
                last_section[spec.menu] = ""
            menu.addAction(action)
            if spec.key == "open_project":
                self.recent_menu = menus["File"].addMenu("Open &recent")
                self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        for spec in self.action_specs:
            if spec.toolbar:
                if spec.key in ("undo", "fit", "tool_box"):
                    self.toolbar.addSeparator()
                self.toolbar.addAction(self.actions_by_key[spec.key])
        self.toolbar.addSeparator()
        self.toolbar.addWidget(QLabel(" Patch "))
        self.toolbar.addWidget(self._build_patch_spin())
        self._build_assist_toolbar()
        view_menu = menus["View"]
        view_menu.addSeparator()
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())
        self.actions_by_key["ask_relabel"].setChecked(prefs.get_bool("annotate/ask_relabel", False))

    def _handler(self, spec: ActionSpec) -> Callable[..., Any]:
        if "." in spec.handler:  # "panel.method": a panel's method, looked up when triggered
            key, name = spec.handler.split(".", 1)

            def method(*args: Any) -> None:
                if key in self.panels:
                    getattr(self.panels[key], name)(*args)
        else:
            method = getattr(self, spec.handler)

        def run(*args: Any) -> None:
            try:
                method(*args)
            except LesionStudioError as exc:
                self.show_message(str(exc), "error")
        return run

    # ------------------------------------------------------------------ layout and title
    def _update_title(self) -> None:
        """Project and image only: edits are already saved, so there is never a '*' here."""
        parts = [APP_NAME]
        if self.session is not None:
            parts.insert(0, self.session.folder.name)
        if self.record is not None:
            parts.insert(0, self.record.name)
        self.setWindowTitle(" — ".join(parts))

    def _update_enabled(self) -> None:
        has_project = self.session is not None
        has_image = has_project and self.canvas.radiograph is not None
        for spec in self.action_specs:
            action = self.actions_by_key.get(spec.key)
            if action is None:
                continue
            if spec.needs_image:
                action.setEnabled(has_image)
            elif spec.needs_project:
                action.setEnabled(has_project)
        if has_project:
            assert self.session is not None
            self.actions_by_key["undo"].setEnabled(self.session.undo_stack.canUndo())
            self.actions_by_key["redo"].setEnabled(self.session.undo_stack.canRedo())

    # ------------------------------------------------------------------ messages
    def show_message(self, text: str, level: str = "info", action: tuple[str, Callable[[], None]] | None = None) -> None:
        """Every message the user must see: the banner, the status bar and the log."""
        {"error": log.error, "warning": log.warning}.get(level, log.info)("%s", text)
        self.statusBar().showMessage(text, 8000)
        self.banner.show_message(text, level, action)

    # ------------------------------------------------------------------ project
    def open_project(self, folder: Path | str) -> bool:
        path = Path(folder).expanduser()
        if not path.exists():
            self.show_message(f"{path} does not exist (moved, renamed, or on a drive that is not plugged in). "
                              "Open another project, or start a new one.", "error",
                              action=("New project…", self.new_project))
            return False
        if path.is_dir() and not (path / DB_NAME).exists():
            self.show_message(f"{path} is a folder but not a Lesion Studio project yet.", "warning",
                              action=("Make it a project", lambda: self._create_and_open(path)))
            return False
        if path.is_file() and path.name != DB_NAME:
            # a radiograph opened from the file manager (the .deb associates .dcm files) or the
            # command line: offer a project around it, in the words of the GUI, not the CLI's
            self.show_message(f"{path.name} is an image, not a project. Lesion Studio keeps images and their "
                              "annotations in a project folder.", "info",
                              action=("Create a project for it…", lambda: self.create_project_for_file(path)))
            return False
        try:
            project = Project.open(folder)
        except LesionStudioError as exc:
            self.show_message(str(exc), "error")
            return False
        self.close_project()
        self.session = ProjectSession(project, self)
        self.session.image_changed.connect(self._image_edited)
        self.session.regions_changed.connect(self._regions_edited)
        self.session.focus_requested.connect(self._focus_image)
        self.session.undo_stack.indexChanged.connect(lambda _i: self._edit_done())
        self.thumbnails = ThumbnailCache(project.subfolder("cache") / "thumbnails", parent=self)
        for spec in PANELS:
            widget = spec.factory(self, self.session)
            guard_wheel(widget)  # scrolling over a panel never changes its settings
            self._replace_dock_widget(spec.key, scrollable(widget) if spec.scroll else widget)
            self.panels[spec.key] = widget
        self.browser.image_selected.connect(self.show_image)
        self.browser.selection_changed.connect(self._browser_selection_changed)
        self.browser.reader_view_chosen.connect(self.session.set_reader_view)
        self.session.reader_view_changed.connect(self._reader_view_changed)
        self.inspector.edit_requested.connect(self._inspector_edit)
        self.inspector.region_selected.connect(self.controller.select)
        self.inspector.box_type_requested.connect(self.controller.set_box_type)
        self._show_reader_status()
        self._bind_body_part_keys()
        prefs.add_recent_project(project.folder)
        self.stack.setCurrentWidget(self.canvas)
        self._update_title()
        self._update_enabled()
        log.info("opened project %s", project.folder)
        self._check_missing()
        last = project.get_setting("gui.last_image")
        ids = self.browser.visible_image_ids()
        start = int(last) if last and last.isdigit() and int(last) in ids else (ids[0] if ids else None)
        if start is not None:
            self.browser.select_image(start)
        return True

    def _edit_done(self) -> None:
        self.banner.clear_error()  # an edit went through: an earlier error is history
        self._update_enabled()

    @property
    def browser(self) -> BrowserPanel:
        return self.panels["browser"]  # type: ignore[return-value]

    @property
    def inspector(self) -> InspectorPanel:
        return self.panels["inspector"]  # type: ignore[return-value]

    def close_project(self) -> None:
        if self.session is None:
            return
        if "inspector" in self.panels:
            self.inspector.flush_notes()
        for panel in self.panels.values():  # panels with background work stop it here
            if callable(getattr(panel, "shutdown", None)):
                panel.shutdown()
        # then no signal of the window reaches them again, and they go
        self._panel_links.disconnect_all()
        for key in list(self.panels):
            self._replace_dock_widget(key, QLabel(""))
        self.panels.clear()
        if self.record is not None:
            self.session.project.set_setting("gui.last_image", str(self.record.id))
        self.loader.shutdown()
        self.loader.forget()
        if self.thumbnails is not None:
            self.thumbnails.shutdown()
        self.canvas.set_radiograph(None)
        self.status_fields.clear()
        self.controller.set_image(None, None)
        self.record = None
        self.session.close()
        self.session.deleteLater()
        self.session = None
        self.stack.setCurrentWidget(self.empty)
        self._update_title()
        self._update_enabled()

    # ------------------------------------------------------------------ PanelHost (see gui/host.py)
    @property
    def viewer(self) -> ImageCanvas:
        return self.canvas

    def listen(self, signal: Any, slot: Callable[..., Any]) -> None:
        self._panel_links.connect(signal, slot)

    def action(self, key: str) -> QAction | None:
        return self.actions_by_key.get(key)

    def show_status(self, text: str, timeout_ms: int = 3000) -> None:
        """A passing note of success; it also retires an error banner that no longer applies."""
        self.statusBar().showMessage(text, timeout_ms)
        self.banner.clear_error()

    def select_image(self, image_id: int) -> None:
        if self.session is not None:
            self.browser.select_image(image_id)

    def select_region(self, key: object) -> None:
        self.controller.select(key)  # type: ignore[arg-type]

    def selected_region(self) -> object:
        return self.controller.selected

    def patch_size(self) -> int:
        return self.controller.patch_size

    def add_tool(self, name: str, tool: Any) -> None:
        self.tools[name] = tool

    def remove_tool(self, name: str, tool: Any) -> None:
        if self.tools.get(name) is not tool:
            return
        if self.canvas.tool is tool:
            self.use_tool("box")
        del self.tools[name]

    def _bind_body_part_keys(self) -> None:
        assert self.session is not None
        self.body_parts = body_part_keys(self.session.project)
        for i in range(1, 10):
            action = self.actions_by_key[f"body_part_{i}"]
            name = self.body_parts[i - 1] if i <= len(self.body_parts) else ""
            action.setText(f"Body part: {name}" if name else f"Body part {i} (unassigned)")
            action.setVisible(bool(name))

    # ------------------------------------------------------------------ images
    def show_image(self, image_id: int) -> None:
        if self.session is None:
            return
        self.inspector.flush_notes()
        self.controller.select(None)
        for tool in self.tools.values():
            tool.cancel()
        try:
            rec = self.session.project.image(image_id)
        except LesionStudioError as exc:
            self.show_message(str(exc), "error")
            return
        self.record = rec
        self.session.project.set_setting("gui.last_image", str(image_id))
        self.inspector.show_image(rec, self.body_parts)
        self._show_regions_in_inspector()
        self._update_title()
        self._show_started = time.perf_counter()
        if not rec.abs_path.exists():  # known at once: never leave the previous image to draw on
            self._image_failed(rec.id, "the image file is missing (moved, renamed or on a drive that is "
                                       "not plugged in)")
            return
        self.loader.request(rec.id, rec.abs_path)

    def _image_loaded(self, image_id: int, rg: Radiograph) -> None:
        if self.record is None or self.record.id != image_id:
            return
        if self.banner.isVisible() and self.banner.level == "error":
            self.banner.hide()
        from lesion_studio.io.display import preset_levels

        self.stack.setCurrentWidget(self.canvas)
        self.canvas.set_radiograph(rg, preset_levels(rg, self._preset))
        self.controller.set_image(self.session, self.record)
        self.inspector.set_spacing(rg.pixel_spacing_mm, rg.spacing_source)
        self.inspector.show_tags(rg.tags)
        self._update_enabled()
        self.image_shown.emit(image_id, rg)
        for delta in (1, -1):
            neighbour = self.browser.neighbour_id(delta)
            if neighbour is not None and self.session is not None:
                self.loader.prefetch(neighbour, self.session.project.image(neighbour).abs_path)

    def _image_failed(self, image_id: int, message: str) -> None:
        if self.record is None or self.record.id != image_id:
            return
        self.canvas.set_radiograph(None)
        self.inspector.set_spacing(None, "")
        self.status_fields.clear()
        self.controller.set_image(self.session, None)
        self.controller.unavailable = f"{self.record.name} cannot be shown, so nothing can be drawn on it"
        self.placeholder.setText(f"{self.record.name}\n\nCannot show this image: {message}.\n\n"
                                 f"{self.record.abs_path}")
        self.stack.setCurrentWidget(self.placeholder)
        self.inspector.show_tags({})
        self._update_enabled()
        self.image_failed.emit(image_id, message)
        action = ("Re-link…", self.relink_images) if not self.record.abs_path.exists() else None
        self.show_message(f"Cannot show {self.record.name}: {message}", "error", action)

    def _painted(self) -> None:
        self.last_paint_s = time.perf_counter() - self._show_started

    # ------------------------------------------------------------------ edits arriving from the store
    def _image_edited(self, image_id: int) -> None:
        self.browser.model.refresh_image(image_id)
        if self.record is not None and self.record.id == image_id and self.session is not None:
            self.record = self.session.project.image(image_id)
            self.controller.record = self.record
            self.inspector.show_image(self.record)

    def _regions_edited(self, image_id: int) -> None:
        self.browser.model.refresh_image(image_id)
        if self.record is not None and self.record.id == image_id:
            self.controller.reload_regions()
            self._show_regions_in_inspector()
        self._show_reader_status()

    def _focus_image(self, image_id: int) -> None:
        if self.record is None or self.record.id != image_id:
            self.browser.select_image(image_id)

    def _selection_changed(self, key: object) -> None:
        self.inspector.select_region(key)  # type: ignore[arg-type]

    def _inspector_edit(self, fields: dict, text: str) -> None:
        if self.session is not None and self.record is not None:
            update_image(self.session, self.record.id, text, **fields)

    def use_tool(self, name: str) -> None:
        if name not in self.tools:  # a panel's tool (e.g. "synthesis") before its panel exists
            return
        for tool in self.tools.values():
            tool.cancel()
        self.canvas.tool = self.tools[name]
        self.canvas.viewport().setCursor(self.canvas.tool.cursor)
        key = {"box": "tool_box", "patch": "tool_patch", "pan": "tool_pan"}.get(name, f"tool_{name}")
        if key in self.actions_by_key:
            self.actions_by_key[key].setChecked(True)

    # ------------------------------------------------------------------ closing
    def closeEvent(self, event: QCloseEvent) -> None:
        if self.job_queue.busy() and not confirm_stop(self, self.job_queue):
            event.ignore()
            return
        self.job_queue.shutdown()  # trainers stop at a checkpoint; queued jobs are dropped
        self.save_layout()
        self.close_project()
        self.loader.shutdown()
        super().closeEvent(event)

