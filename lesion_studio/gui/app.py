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
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSpinBox,
    QStackedWidget,
    QTabBar,
    QVBoxLayout,
    QWidget,
)

from lesion_studio.errors import LesionStudioError
from lesion_studio.gui import settings as prefs
from lesion_studio.gui.actions import MENUS, ActionSpec, build_action
from lesion_studio.gui.annotation import AnnotationController, body_part_keys
from lesion_studio.gui.application import create_app, process_events_until, run_app
from lesion_studio.gui.banner import Banner
from lesion_studio.gui.commands import update_image
from lesion_studio.gui.docks import PANELS, PanelSpec, action_specs, scrollable
from lesion_studio.gui.file_jobs import FileJobs
from lesion_studio.gui.host import Connections
from lesion_studio.gui.input_guard import guard_wheel, return_focus_on_enter
from lesion_studio.gui.job_queue import JobQueue, confirm_stop
from lesion_studio.gui.panels.browser import BrowserPanel
from lesion_studio.gui.panels.inspector import InspectorPanel
from lesion_studio.gui.panels.thumbnails import ThumbnailCache
from lesion_studio.gui.session import ProjectSession
from lesion_studio.gui.tools.base import PanTool
from lesion_studio.gui.tools.regions import RegionTool
from lesion_studio.gui.tools.ruler import RulerTool
from lesion_studio.gui.viewer.canvas import ImageCanvas
from lesion_studio.gui.viewer.loader import ImageLoader
from lesion_studio.io.radiograph import Radiograph
from lesion_studio.store.project import Project
from lesion_studio.store.records import ImageRecord

log = logging.getLogger(__name__)
APP_NAME = "Lesion Studio"


class MainWindow(FileJobs, QMainWindow):
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
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.canvas)
        centre = QWidget()
        layout = QVBoxLayout(centre)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.stack, 1)
        self.banner.overlay(centre)  # floats over the image: never moves it
        self.setCentralWidget(centre)

        self._build_docks()
        self._build_actions()
        self._build_status_bar()
        self.canvas.cursor_moved.connect(self._cursor_moved)
        self.canvas.view_changed.connect(self._zoom_changed)
        self.canvas.levels_changed.connect(self._levels_changed)
        self.canvas.painted.connect(self._painted)
        self.use_tool("box")
        self.resize(1440, 900)
        self._default_state = self.saveState()  # View → Reset layout returns here
        self._restore_layout()
        self._hide_stale_tab_bars()
        self._update_title()
        self._update_enabled()
        if project is not None:
            self.open_project(project)

    # ------------------------------------------------------------------ building
    def _build_docks(self) -> None:
        # the bottom docks (synthesis views, gallery, results) span the whole width: between the
        # side docks the four synthesis views were 60 px wide at 1440×900
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.BottomDockWidgetArea)
        for spec in PANELS:
            dock = QDockWidget(spec.title, self)
            dock.setObjectName(f"dock_{spec.key}")
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                             | QDockWidget.DockWidgetFeature.DockWidgetClosable
                             | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
            dock.setWidget(QLabel(""))
            dock.setMinimumSize(*spec.min_size)
            self.addDockWidget(spec.area, dock)
            if spec.tab_with in self.docks:
                self.tabifyDockWidget(self.docks[spec.tab_with], dock)
            self.docks[spec.key] = dock
        for spec in PANELS:
            if spec.tab_with in self.docks:
                self.docks[spec.tab_with].raise_()  # the first dock of a tab group stays in front
        self._default_dock_sizes()

    def _default_dock_sizes(self) -> None:
        self.resizeDocks([self.docks["browser"], self.docks["inspector"]], [420, 360], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["synthesis"]], [270], Qt.Orientation.Vertical)

    def reset_layout(self) -> None:
        """View → Reset layout: every dock back where it started, at its default size."""
        self.restoreState(self._default_state)
        for key, dock in self.docks.items():
            dock.setFloating(False)
            dock.setVisible(True)
            if key in ("synthesis", "inspector"):
                dock.raise_()  # the first tab of each group in front
        self._default_dock_sizes()
        self._hide_stale_tab_bars()
        self.save_layout()
        self.show_status("Layout reset", 3000)

    def _hide_stale_tab_bars(self) -> None:
        """Work around a Qt layout bug: when a second group of tabbed docks is built, the tab bar of
        its intermediate state (e.g. "Synthesis | Gallery") stays visible, floating over another
        dock. A bar whose tabs are the start of a longer bar's tabs is such a leftover."""
        bars = [b for b in self.findChildren(QTabBar) if b.parent() is self]
        tabs = {id(b): [b.tabText(i) for i in range(b.count())] for b in bars}
        for bar in bars:
            mine = tabs[id(bar)]
            if any(o is not bar and len(tabs[id(o)]) > len(mine) and tabs[id(o)][:len(mine)] == mine for o in bars):
                bar.hide()

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
        self.patch_spin = QSpinBox()
        self.patch_spin.setRange(16, 512)
        self.patch_spin.setSingleStep(8)
        self.patch_spin.setSuffix(" px")
        self.patch_spin.setValue(self.controller.patch_size)
        self.patch_spin.setToolTip("Normal patch size ([ and ] change it)")
        self.patch_spin.valueChanged.connect(self.controller.set_patch_size)
        guard_wheel(self.patch_spin)
        return_focus_on_enter(self.patch_spin, lambda: self.canvas)
        self.toolbar.addWidget(self.patch_spin)
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

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_fields = {k: QLabel("") for k in ("reader", "value", "position", "mm", "zoom", "window")}
        for key, label in self.status_fields.items():
            label.setObjectName(f"status_{key}")
            bar.addPermanentWidget(label)

    # ------------------------------------------------------------------ layout and title
    def _restore_layout(self) -> None:
        s = prefs.app_settings()
        geometry = s.value("window/geometry")
        state = s.value("window/state")
        if isinstance(geometry, QByteArray | bytes):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray | bytes):
            self.restoreState(state)

    def save_layout(self) -> None:
        prefs.set_value("window/geometry", self.saveGeometry())
        prefs.set_value("window/state", self.saveState())

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
        if path.is_dir() and not (path / "project.sqlite").exists():
            self.show_message(f"{path} is a folder but not a Lesion Studio project yet.", "warning",
                              action=("Make it a project", lambda: self._create_and_open(path)))
            return False
        if path.is_file() and path.name != "project.sqlite":
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
        self._clear_image_status()
        self.controller.set_image(None, None)
        self.record = None
        self.session.close()
        self.session.deleteLater()
        self.session = None
        self.stack.setCurrentWidget(self.empty)
        self._update_title()
        self._update_enabled()

    def _replace_dock_widget(self, key: str, widget: QWidget) -> None:
        old = self.docks[key].widget()
        self.docks[key].setWidget(widget)
        if old is not None:
            old.deleteLater()

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

    def show_dock(self, key: str, toggle: bool = False) -> None:
        dock = self.docks.get(key)
        if dock is None:
            return
        if toggle and dock.isVisible():
            dock.hide()
            return
        dock.show()
        dock.raise_()

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

    def _check_missing(self) -> None:
        assert self.session is not None
        missing = self.session.project.missing_images()
        if missing:
            n = len(missing)
            self.show_message(
                f"{n} image file{'s are' if n > 1 else ' is'} missing (moved or on an unplugged drive), "
                f"e.g. {missing[0].abs_path}. Re-link finds them by content.", "warning",
                action=("Re-link…", self.relink_images))

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
        self.loader.request(rec.id, rec.abs_path)

    def _image_loaded(self, image_id: int, rg: Radiograph) -> None:
        if self.record is None or self.record.id != image_id:
            return
        if self.banner.isVisible() and self.banner.level == "error":
            self.banner.hide()
        from lesion_studio.io.display import preset_levels

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
        self._clear_image_status()
        self.controller.set_image(self.session, None)
        self.inspector.show_tags({})
        self._update_enabled()
        self.image_failed.emit(image_id, message)
        action = ("Re-link…", self.relink_images) if not self.record.abs_path.exists() else None
        self.show_message(f"Cannot show {self.record.name}: {message}", "error", action)

    def _painted(self) -> None:
        self.last_paint_s = time.perf_counter() - self._show_started

    def current_radiograph(self) -> Radiograph | None:
        return self.canvas.radiograph

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

    def _reader_view_changed(self) -> None:
        """Mine / another reader / all: the viewer and the inspector show that reader's boxes."""
        self.controller.select(None)
        self.controller.reload_regions()
        self._show_regions_in_inspector()
        self._show_reader_status()

    def _focus_image(self, image_id: int) -> None:
        if self.record is None or self.record.id != image_id:
            self.browser.select_image(image_id)

    def _show_regions_in_inspector(self) -> None:
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

    def _show_reader_status(self) -> None:
        if self.session is None:
            self.status_fields["reader"].setText("")
            return
        view = self.session.reader_view
        shown = "all readers" if view is None else ("mine" if view == self.session.author else view)
        typed = self.controller.current_type or "no type"
        self.status_fields["reader"].setText(f"reader {self.session.author} · showing {shown} · new box: {typed}")

    def _selection_changed(self, key: object) -> None:
        self.inspector.select_region(key)  # type: ignore[arg-type]

    def _inspector_edit(self, fields: dict, text: str) -> None:
        if self.session is not None and self.record is not None:
            update_image(self.session, self.record.id, text, **fields)

    def _confirm_relabel(self, rec: ImageRecord) -> bool:
        if not self.actions_by_key["ask_relabel"].isChecked():
            return True
        answer = QMessageBox.question(
            self, "Relabel as lesion?",
            f"{rec.name} is labelled normal. Relabel it as lesion now that it has a lesion box?")
        return answer == QMessageBox.StandardButton.Yes

    # ------------------------------------------------------------------ status bar
    def _cursor_moved(self, x: float, y: float) -> None:
        f = self.status_fields
        rg = self.canvas.radiograph
        if rg is None or math.isnan(x):
            f["value"].setText("")
            f["position"].setText("")
            f["mm"].setText("")
            return
        col, row = int(x), int(y)
        value = rg.pixels[row, col]
        f["value"].setText(f"value {value:g}" if rg.pixels.dtype.kind == "f" else f"value {int(value)}")
        f["position"].setText(f"x {col}  y {row}")
        if rg.pixel_spacing_mm:
            sr, sc = rg.pixel_spacing_mm
            f["mm"].setText(f"{x * sc:.1f}, {y * sr:.1f} mm")
        else:
            f["mm"].setText("")

    def _clear_image_status(self) -> None:
        """No image: no zoom, window or pixel readout (it used to say "zoom 33200%")."""
        for field in self.status_fields.values():
            field.setText("")

    def _zoom_changed(self, zoom: float) -> None:
        shown = self.canvas.radiograph is not None
        self.status_fields["zoom"].setText(f"zoom {zoom * 100:.0f}%" if shown else "")

    def _levels_changed(self, lo: float, hi: float) -> None:
        self.status_fields["window"].setText(f"W {hi - lo:.0f} L {(lo + hi) / 2:.0f}")

    # ------------------------------------------------------------------ action handlers
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
        from lesion_studio.gui.commands import LESION, DeleteRegionCommand

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

        from lesion_studio.errors import ProjectError

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
        try:
            Project.create(folder).close()
        except LesionStudioError as exc:
            self.show_message(str(exc), "error")
            return False
        if not self.open_project(folder):
            return False
        self.import_images(file)
        return True

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


__all__ = ["APP_NAME", "PANELS", "MainWindow", "PanelSpec", "action_specs", "create_app", "process_events_until",
           "run_app"]
