"""The docks of the main window, in one table: each panel, where it goes, and its actions.

A new panel is one :class:`PanelSpec` here (its factory takes the
:class:`~lesion_studio.gui.host.PanelHost` and the project session) plus its module's
``ACTIONS``. Kept apart from ``gui/app.py`` so the window's assembly and the list of what it
holds can each be read on their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtWidgets import QDockWidget, QFrame, QLabel, QScrollArea, QTabBar, QWidget

from lesion_studio.gui import settings as prefs
from lesion_studio.gui.actions import ACTIONS, ActionSpec
from lesion_studio.gui.host import PanelHost
from lesion_studio.gui.panels import experiments, gallery, synthesis, training
from lesion_studio.gui.panels.browser import BrowserPanel
from lesion_studio.gui.panels.inspector import InspectorPanel
from lesion_studio.gui.panels.results import ResultsPanel
from lesion_studio.gui.session import ProjectSession


@dataclass(frozen=True)
class PanelSpec:
    """A dock panel: built for each opened project by ``factory(host, session)``, with its actions."""

    key: str
    title: str
    area: Qt.DockWidgetArea
    factory: Callable[[PanelHost, ProjectSession], QWidget]
    tab_with: str = ""  # key of an earlier dock to share a tabbed area with (first layout only)
    # Tall panels sit in a scroll area, so their height never sets the window's minimum size (the
    # canvas must keep the room it needs on a laptop screen).
    scroll: bool = True
    actions: tuple[ActionSpec, ...] = ()  # menu entries and keys of this panel (handlers "<key>.<method>")
    min_size: tuple[int, int] = (160, 120)  # a dock can be made small, never unusable


def scrollable(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(widget)
    return area


def _browser(host: PanelHost, session: ProjectSession) -> QWidget:
    return BrowserPanel(session.project, host.thumbnails, me=session.author)


def _inspector(host: PanelHost, session: ProjectSession) -> QWidget:
    return InspectorPanel()


#: The docks, in one place. Issue 6 appends synthesis, training, gallery and results here.
PANELS: list[PanelSpec] = [
    PanelSpec("browser", "Dataset", Qt.DockWidgetArea.LeftDockWidgetArea, _browser, scroll=False,
              min_size=(260, 200)),
    PanelSpec("inspector", "Inspector", Qt.DockWidgetArea.RightDockWidgetArea, _inspector, min_size=(300, 200)),
    PanelSpec("synthesis", "Synthesis", Qt.DockWidgetArea.BottomDockWidgetArea, synthesis.SynthesisPanel,
              actions=synthesis.ACTIONS, scroll=False, min_size=(600, 250)),
    PanelSpec("training", "Training", Qt.DockWidgetArea.RightDockWidgetArea, training.TrainingPanel,
              tab_with="inspector", actions=training.ACTIONS, min_size=(300, 200)),
    PanelSpec("experiments", "Experiments", Qt.DockWidgetArea.RightDockWidgetArea, experiments.ExperimentsPanel,
              tab_with="inspector", actions=experiments.ACTIONS, min_size=(300, 200)),
    PanelSpec("gallery", "Gallery", Qt.DockWidgetArea.BottomDockWidgetArea, gallery.GalleryPanel,
              tab_with="synthesis", actions=gallery.ACTIONS, scroll=False, min_size=(600, 200)),
    PanelSpec("results", "Results", Qt.DockWidgetArea.BottomDockWidgetArea, ResultsPanel, tab_with="synthesis",
              min_size=(400, 200)),
]


def action_specs() -> list[ActionSpec]:
    """The window's actions and every panel's, checked for duplicate keys."""
    specs = list(ACTIONS) + [a for panel in PANELS for a in panel.actions]
    keys = [s.key for s in specs]
    twice = {k for k in keys if keys.count(k) > 1}
    if twice:
        raise ValueError(f"actions declared twice: {sorted(twice)}")
    return specs


class DockLayout:
    """The main window's docks: built from :data:`PANELS`, laid out, saved and restored (a mixin of
    :class:`~lesion_studio.gui.app.MainWindow`, a QMainWindow with ``docks``)."""

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
        """View → Reset layout: the current layout's defaults (Research: every dock back where it
        started, at its default size; Read: see :mod:`lesion_studio.gui.reading_layout`)."""
        if getattr(self, "layout_mode", "research") == "read":
            self.apply_read_defaults()
            self.save_layout()
            self.show_status("Reading layout reset", 3000)
            return
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

    def _restore_layout(self) -> None:
        s = prefs.app_settings()
        geometry = s.value("window/geometry")
        state = s.value("window/state")  # the research layout's (the reading layout's: reading_layout.py)
        if isinstance(geometry, QByteArray | bytes):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray | bytes):
            self.restoreState(state)

    def save_layout(self) -> None:
        prefs.set_value("window/geometry", self.saveGeometry())
        prefs.set_value(self.state_key() if hasattr(self, "state_key") else "window/state", self.saveState())

    def _replace_dock_widget(self, key: str, widget: QWidget) -> None:
        old = self.docks[key].widget()
        self.docks[key].setWidget(widget)
        if old is not None:
            old.deleteLater()

    def show_dock(self, key: str, toggle: bool = False) -> None:
        dock = self.docks.get(key)
        if dock is None:
            return
        if toggle and dock.isVisible():
            dock.hide()
            return
        dock.show()
        dock.raise_()
