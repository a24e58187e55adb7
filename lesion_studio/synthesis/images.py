"""Small image helpers for previews: float patches → 8-bit, grids, PNG files (numpy + Pillow)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def to_uint8(patch: np.ndarray, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """Map [lo, hi] linearly to 0..255 (a fixed window, so images stay comparable)."""
    x = (np.asarray(patch, dtype=np.float32) - lo) / max(1e-12, hi - lo)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def window_uint8(pixels: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Native pixels through a (center, width) display window to 0..255."""
    center, width = window
    return to_uint8(pixels, center - width / 2.0, center + width / 2.0)


def grid(rows: Sequence[Sequence[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile 2-D uint8 tiles (equal sizes) into one image with ``gap`` px black gutters."""
    h = max(t.shape[0] for r in rows for t in r)
    w = max(t.shape[1] for r in rows for t in r)
    ncols = max(len(r) for r in rows)
    out = np.zeros((len(rows) * (h + gap) - gap, ncols * (w + gap) - gap), np.uint8)
    for i, row in enumerate(rows):
        for j, tile in enumerate(row):
            y, x = i * (h + gap), j * (w + gap)
            out[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    return out


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write a 2-D uint8 or uint16 array as a grayscale PNG (16-bit stays 16-bit)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(image)
    if arr.dtype not in (np.uint8, np.uint16):
        arr = arr.astype(np.uint16) if arr.dtype.kind in "iu" and arr.max() > 255 else arr.astype(np.uint8)
    Image.fromarray(np.ascontiguousarray(arr)).save(path)
    return path
