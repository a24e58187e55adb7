"""A window with its surroundings, and the display window to show it in (numpy only, no Qt).

One context crop (:func:`context_box` / :func:`crop`) serves the synthesis preview's views, the
gallery's thumbnails and the blinded review's tiles, and one display-window rule
(:func:`display_window`) says how to show a sample: its source radiograph's own window when the
provenance recorded it, else the crop's 1–99 % range.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from lesion_studio.io.display import percentile_levels
from lesion_studio.io.images import window_uint8
from lesion_studio.store.records import Box

if TYPE_CHECKING:
    from lesion_studio.store.project import Project
    from lesion_studio.store.records import SyntheticSample

#: Context shown around a window, as a fraction of its side.
CONTEXT_MARGIN = 0.5
#: The gallery's thumbnail side in pixels.
THUMB = 128


def context_box(window: Box, width: int, height: int, margin: float = CONTEXT_MARGIN) -> Box:
    """The window grown by ``margin`` × its side on every side, clipped to the image (whole pixels)."""
    w = window.normalized()
    pad_x, pad_y = math.ceil(w.width * margin), math.ceil(w.height * margin)
    x0, y0, x1, y1 = w.as_ints()
    return Box(float(max(0, x0 - pad_x)), float(max(0, y0 - pad_y)),
               float(min(width, x1 + pad_x)), float(min(height, y1 + pad_y)))


def crop(pixels: np.ndarray, box: Box) -> np.ndarray:
    """The pixels inside ``box`` (a view, not a copy)."""
    x0, y0, x1, y1 = box.as_ints()
    return pixels[max(0, y0):max(0, y1), max(0, x0):max(0, x1)]


def percentile_window(pixels: np.ndarray) -> tuple[float, float]:
    """(center, width) spanning the 1st to 99th percentile of ``pixels``; never an empty window."""
    lo, hi = percentile_levels(pixels, 1.0, 99.0)
    return (lo + hi) / 2, hi - lo


def display_window(pixels: np.ndarray, provenance: dict[str, Any] | None = None) -> tuple[float, float]:
    """(center, width): the source radiograph's display window recorded in a sample's provenance,
    else the 1–99 % range of ``pixels``."""
    try:
        center, width = (provenance or {})["source"]["display_window"]
        if float(width) > 0:
            return float(center), float(width)
    except (KeyError, TypeError, ValueError):
        pass
    return percentile_window(pixels)


def fit_tile(pixels: np.ndarray, size: int, window: tuple[float, float]) -> np.ndarray:
    """A size×size uint8 tile: ``pixels`` resized to fit (aspect kept, centred on black), then windowed."""
    from lesion_studio.patches.intensity import resize_patch

    h, w = pixels.shape[:2]
    scale = size / max(h, w, 1)
    small = resize_patch(pixels.astype(np.float32), max(1, round(h * scale)), max(1, round(w * scale)))
    tile = window_uint8(small, window)
    out = np.zeros((size, size), np.uint8)
    oy, ox = (size - tile.shape[0]) // 2, (size - tile.shape[1]) // 2
    out[oy:oy + tile.shape[0], ox:ox + tile.shape[1]] = tile
    return out


def sample_thumbnail(project: Project, sample: SyntheticSample, size: int = THUMB) -> np.ndarray:
    """A synthetic sample's window with context, in its source's display window (off the GUI thread)."""
    from lesion_studio.samples.storage import load_sample_pixels

    pixels = load_sample_pixels(project, sample)
    context = crop(pixels, context_box(sample.box, pixels.shape[1], pixels.shape[0]))
    return fit_tile(context if context.size else pixels, size, display_window(pixels, sample.provenance))


def window_tile(pixels: np.ndarray, window: Box, size: int) -> np.ndarray:
    """Just the window, stretched to size×size and windowed by its own 1–99 % range: the same
    processing for every item of the blinded review, real or synthetic, so only pixels differ."""
    from lesion_studio.patches.intensity import resize_patch

    height, width = pixels.shape[:2]
    part = crop(pixels, window.normalized().clipped(width, height))
    part = (part if part.size else pixels).astype(np.float32)
    square = resize_patch(part, size, size)
    return window_uint8(square, percentile_window(square))
