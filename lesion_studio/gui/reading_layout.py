"""Two window layouts, Read and Research, and full screen (a mixin of
:class:`~lesion_studio.gui.app.MainWindow`, beside :class:`~lesion_studio.gui.docks.DockLayout`).

*Research* is the docks as they have always been. *Read* gives the image the screen: the
research docks (synthesis, training, experiments, gallery, results) are hidden, the inspector is
a thin column on the right, and the dataset browser is collapsed (View → Dataset brings it back).
Each layout keeps its own saved state (``window/state`` and ``window/state_read`` in the
settings), so arranging one never disturbs the other, and Reset layout resets the current one.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, Qt

from lesion_studio.gui import settings as prefs

RESEARCH, READ = "research", "read"
STATE_KEYS = {RESEARCH: "window/state", READ: "window/state_read"}
MODE_KEY = "window/layout"
READ_INSPECTOR_WIDTH = 180  # thin: the image gets >= 75 % of a 1440x900 window
READ_MIN_WIDTH = 160


class ReadingLayout:
    """Read / Research layouts (View → Reading layout, Ctrl+R) and full screen (F11)."""

    layout_mode: str = RESEARCH

    def state_key(self) -> str:
        """Where the current layout's dock state is saved."""
        return STATE_KEYS[self.layout_mode]

    def toggle_reading_layout(self, checked: bool | None = None) -> None:
        """Ctrl+R: Read ⇄ Research (``checked``: Read or not, from the menu's check mark); the
        layout left behind keeps its state for the way back."""
        if checked is None:
            checked = self.layout_mode != READ
        self.set_layout_mode(READ if checked else RESEARCH)

    def set_layout_mode(self, mode: str) -> None:
        if mode == self.layout_mode:
            return
        self.save_layout()  # the layout being left, under its own key
        self.layout_mode = mode
        prefs.set_value(MODE_KEY, mode)
        state = prefs.app_settings().value(self.state_key())
        self._apply_minimums()
        if isinstance(state, QByteArray | bytes) and self.restoreState(state):
            self._hide_stale_tab_bars()
        elif mode == READ:
            self.apply_read_defaults()
        else:
            self.restoreState(self._default_state)
            self._show_research_docks()
        action = self.actions_by_key.get("reading_layout")
        if action is not None:
            action.blockSignals(True)
            action.setChecked(mode == READ)
            action.blockSignals(False)
        self.show_status("Reading layout (Ctrl+R: research layout)" if mode == READ
                         else "Research layout (Ctrl+R: reading layout)", 3000)

    def _apply_minimums(self) -> None:
        """In Read the inspector may be thinner than the research docks allow."""
        from lesion_studio.gui.docks import PANELS

        for spec in PANELS:
            width = min(spec.min_size[0], READ_MIN_WIDTH) if self.layout_mode == READ else spec.min_size[0]
            self.docks[spec.key].setMinimumSize(width, spec.min_size[1])

    def apply_read_defaults(self) -> None:
        """Read's own defaults: the image large, a thin inspector, the browser collapsed."""
        for key, dock in self.docks.items():
            dock.setFloating(False)
            dock.setVisible(key == "inspector")
        self.docks["inspector"].raise_()
        self.resizeDocks([self.docks["inspector"]], [READ_INSPECTOR_WIDTH], Qt.Orientation.Horizontal)

    def _show_research_docks(self) -> None:
        for key, dock in self.docks.items():
            dock.setFloating(False)
            dock.setVisible(True)
            if key in ("synthesis", "inspector"):
                dock.raise_()
        self._default_dock_sizes()
        self._hide_stale_tab_bars()

    def _restore_layout_mode(self) -> None:
        """At start: the layout the user left the app in."""
        if str(prefs.app_settings().value(MODE_KEY, RESEARCH)) == READ:
            self.set_layout_mode(READ)

    def toggle_full_screen(self, checked: bool | None = None) -> None:
        """F11: full screen and back."""
        if checked is None:
            checked = not self.isFullScreen()
        if checked:
            self.showFullScreen()
        else:
            self.showNormal()
