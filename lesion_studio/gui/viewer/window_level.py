"""Window/level display maths for the viewer: plain functions over (low, high) levels, no Qt."""

from __future__ import annotations

#: Screen pixels of drag that sweep the whole value range once.
DRAG_SPAN_PX = 800.0


def dragged_levels(start: tuple[float, float], value_range: tuple[float, float],
                   dx: float, dy: float) -> tuple[float, float]:
    """Levels after a right-drag of (dx, dy) screen pixels from ``start``.

    Horizontal motion changes the width, vertical motion the centre (down = brighter), scaled to
    the image's value range so a 10-bit and a 16-bit image feel the same under the hand.
    """
    lo, hi = start
    span = max(float(value_range[1]) - float(value_range[0]), 1.0)
    per_px = span / DRAG_SPAN_PX
    center = (lo + hi) / 2.0 - dy * per_px
    width = max(1.0, (hi - lo) + dx * per_px)
    return center - width / 2.0, center + width / 2.0
