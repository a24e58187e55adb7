"""A live training curve: one pyqtgraph curve per named series, cheap to feed at any rate.

Trainers report every iteration (hundreds per second for the tiny presets). Repainting on every
point would starve the GUI thread, so points go into growable numpy buffers and the curves are
redrawn by a timer at most ``fps`` times a second, with pyqtgraph's own downsampling and
clipping to the view for long runs.
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


def colour_for(name: str) -> str:
    """A colour that depends on the series' name only, never on the order curves appeared in."""
    import zlib

    if name in KNOWN:
        return PALETTE[KNOWN.index(name) % len(PALETTE)]
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


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
                 symbols: bool = False, parent: QWidget | None = None) -> None:
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
        self.setMinimumHeight(140)
        self._symbols = symbols
        self._series: dict[str, _Series] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(max(1, 1000 // fps))
        self._timer.timeout.connect(self.flush)
        self.repaints = 0  # how many times curves were redrawn (tests and benchmarks read it)

    def add(self, x: float, values: Mapping[str, float | None]) -> None:
        for name, y in values.items():
            if y is None or not np.isfinite(y):
                continue
            series = self._series.get(name)
            if series is None:
                series = self._series[name] = _Series()
                color = colour_for(name)
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
        self._series.clear()
        self._dirty = False
