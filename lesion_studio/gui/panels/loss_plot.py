"""A live training curve: one pyqtgraph curve per named series, cheap to feed at any rate.

Trainers report every iteration (hundreds per second for the tiny presets). Repainting on every
point would starve the GUI thread, so points go into growable numpy buffers and the curves are
redrawn by a timer at most ``fps`` times a second, with pyqtgraph's own downsampling and
clipping to the view for long runs.

Every curve of a plot has its own colour: the trainers' series keep theirs for good (a resumed run
must not repaint them), any other series takes the first colour no curve of the plot has yet. The
plot is tall enough that the curves keep most of it after the axes and the legend's band, and an
empty plot shows a plain 0–1 range until its first point arrives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

#: Distinct colours that read well on the dark theme.
PALETTE = ("#f0a040", "#4fc3f7", "#aed581", "#e57373", "#ba68c8", "#fff176", "#90a4ae", "#4db6ac")
#: The trainers' series, each with its own colour for good (a resumed run must not repaint them).
KNOWN = ("recon", "cycle", "gan", "dis", "kl", "train loss", "val AUC")


#: The least height of a plot: with the axes and the legend's band it leaves the curves ~150 px.
MIN_HEIGHT = 240


def colour_for(name: str, taken: Iterable[str] = ()) -> str:
    """A series' colour: a trainer's series has its own; another takes the first colour not ``taken``."""
    if name in KNOWN:
        return PALETTE[KNOWN.index(name) % len(PALETTE)]
    reserved = set(taken)
    free = [c for c in PALETTE if c not in reserved and c not in {PALETTE[i] for i in range(len(KNOWN))}]
    free += [c for c in PALETTE if c not in reserved]
    if free:
        return free[0]
    return pg.intColor(len(reserved), hues=len(reserved) + 1).name()  # more series than colours


class _Series:
    def __init__(self, capacity: int = 1024) -> None:
        self.x = np.empty(capacity, np.float64)
        self.y = np.empty(capacity, np.float64)
        self.n = 0

    def append(self, x: float, y: float) -> None:
        if self.n == len(self.x):
            self.x = np.resize(self.x, 2 * self.n)
            self.y = np.resize(self.y, 2 * self.n)
        self.x[self.n] = x
        self.y[self.n] = y
        self.n += 1


class CurvePlot(pg.PlotWidget):
    """Curves keyed by name; :meth:`add` is O(1), repaints are batched by a timer."""

    def __init__(self, title: str = "", x_label: str = "", y_label: str = "", fps: int = 10,
                 symbols: bool = False, y_range: tuple[float, float] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, background="#202124")
        self.title = title  # the tab says it; the band above the curves holds the legend
        self.setLabel("bottom", x_label)
        self.setLabel("left", y_label)
        self.showGrid(x=True, y=True, alpha=0.2)
        # the legend is one row above the curves (in the title's band), never over them
        legend = self.addLegend(colCount=6, offset=None)
        legend.setParentItem(self.plotItem)
        legend.anchor(itemPos=(1, 0), parentPos=(1, 0), offset=(-6, 0))
        self._legend = legend
        self.setMinimumHeight(MIN_HEIGHT)
        self._symbols = symbols
        self._y_range = y_range  # a fixed y axis (AUC: 0–1), else it follows the data
        self._series: dict[str, _Series] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.colours: dict[str, str] = {}
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(max(1, 1000 // fps))
        self._timer.timeout.connect(self.flush)
        self.repaints = 0  # how many times curves were redrawn (tests and benchmarks read it)
        self._show_empty()

    def _show_empty(self) -> None:
        """No points: a plain 0–1 view (autoranging nothing once gave an axis of −1200 to −800)."""
        self.plotItem.vb.disableAutoRange()
        self.setRange(xRange=(0.0, 1.0), yRange=self._y_range or (0.0, 1.0), padding=0.02 if self._y_range else 0.0)

    def add(self, x: float, values: Mapping[str, float | None]) -> None:
        for name, y in values.items():
            if y is None or not np.isfinite(y):
                continue
            series = self._series.get(name)
            if series is None:
                if not self._series:
                    self.plotItem.vb.enableAutoRange(axis="x" if self._y_range else "xy")
                series = self._series[name] = _Series()
                color = colour_for(name, self.colours.values())
                self.colours[name] = color
                kwargs = {"symbol": "o", "symbolSize": 6, "symbolBrush": color} if self._symbols else {}
                curve = self.plot([], [], name=name, pen=pg.mkPen(color, width=1.5), **kwargs)
                curve.setDownsampling(auto=True, method="peak")
                curve.setClipToView(True)
                self.curves[name] = curve
                self._fit_legend()
            series.append(float(x), float(y))
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def _fit_legend(self) -> None:
        """Room above the curves for the legend's row, so it never covers them."""
        self._legend.updateSize()
        top = int(self._legend.boundingRect().height()) + 2 if self.curves else 4
        self.plotItem.layout.setContentsMargins(4, top, 4, 4)

    def extend(self, points: Iterable[tuple[float, Mapping[str, float | None]]]) -> None:
        for x, values in points:
            self.add(x, values)
        self.flush()

    def flush(self) -> None:
        if not self._dirty:
            self._timer.stop()
            return
        for name, series in self._series.items():
            self.curves[name].setData(series.x[:series.n], series.y[:series.n])
        self._dirty = False
        self.repaints += 1

    def points(self, name: str) -> np.ndarray:
        """(n, 2) array of the points of one curve, as plotted."""
        s = self._series.get(name)
        return np.stack([s.x[:s.n], s.y[:s.n]], axis=1) if s else np.zeros((0, 2))

    def names(self) -> list[str]:
        return list(self._series)

    def clear_curves(self) -> None:
        self._timer.stop()
        for curve in self.curves.values():
            self.removeItem(curve)
        legend = self.plotItem.legend
        if legend is not None:
            legend.clear()
        self.curves.clear()
        self.colours.clear()
        self._series.clear()
        self._dirty = False
        self._show_empty()
