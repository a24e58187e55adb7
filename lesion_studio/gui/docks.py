"""The docks of the main window, in one table: each panel, where it goes, and its actions.

A new panel is one :class:`PanelSpec` here (its factory takes the
:class:`~lesion_studio.gui.host.PanelHost` and the project session) plus its module's
``ACTIONS``. Kept apart from ``gui/app.py`` so the window's assembly and the list of what it
holds can each be read on their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QWidget

from lesion_studio.gui.actions import ACTIONS, ActionSpec
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
    factory: Callable[[Any, ProjectSession], QWidget]
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


def _browser(window: Any, session: ProjectSession) -> QWidget:
    return BrowserPanel(session.project, window.thumbnails, me=session.author)


def _inspector(window: Any, session: ProjectSession) -> QWidget:
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
              tab_with="synthesis", actions=gallery.ACTIONS, min_size=(400, 200)),
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
