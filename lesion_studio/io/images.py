"""Small image helpers for previews: model patches → 8-bit, grids, PNG files (numpy + Pillow).

On the ground floor (io) because the trainer's sample grids, the CLI, the GUI and the experiment
report all write such images; none of them needs to import another for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lesion_studio.files import atomic_path
from lesion_studio.io.display import to_uint8


def patch_uint8(patch: np.ndarray) -> np.ndarray:
    """A model-range patch ([-1, 1]) to 0..255 (a fixed window, so samples stay comparable)."""
    return to_uint8(patch, (-1.0, 1.0))


def window_uint8(pixels: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Native pixels through a (center, width) display window to 0..255."""
    center, width = window
    return to_uint8(pixels, (center - width / 2.0, center + width / 2.0))


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

    arr = np.asarray(image)
    if arr.dtype not in (np.uint8, np.uint16):
        arr = arr.astype(np.uint16) if arr.dtype.kind in "iu" and arr.max() > 255 else arr.astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(arr)).save(tmp)
    return Path(path)


def encode_png(pixels: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """8- or 16-bit grey PNG bytes of ``pixels`` (clipped to 16 bits), with iTXt ``text`` chunks."""
    import io

    from PIL import Image, PngImagePlugin

    if pixels.dtype == np.uint8:
        image = Image.fromarray(pixels, mode="L")
    else:
        clipped = np.clip(pixels, 0, 65535).astype(np.uint16)
        image = Image.fromarray(clipped)
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(key, value)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()
