"""Display helpers in pure numpy: windows, 8-bit rendering and thumbnails.

They live in the core, not the GUI, so the thumbnail cache, reports and the CLI render images the
same way the viewer does, and so they can be tested without Qt. None of them changes the
radiograph's stored pixels: they return new arrays or plain numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lesion_studio.files import atomic_write_from
from lesion_studio.io.radiograph import Radiograph
from lesion_studio.io.reader import open_radiograph

#: Display-window presets the viewer offers, in menu order (key, label).
WINDOW_PRESETS = (
    ("dicom", "DICOM default"),
    ("bone", "Bone"),
    ("full", "Full range"),
    ("auto", "Auto (1–99 %)"),
)


def _sample(pixels: np.ndarray, max_samples: int = 250_000) -> np.ndarray:
    """A strided subsample: percentiles of a 3-megapixel image need not look at every pixel."""
    step = max(1, int(np.sqrt(pixels.size / max_samples)))
    return pixels[::step, ::step]


def percentile_levels(pixels: np.ndarray, lo: float = 1.0, hi: float = 99.0) -> tuple[float, float]:
    """(low, high) display levels between two percentiles; never an empty window."""
    a, b = (float(v) for v in np.percentile(_sample(pixels), (lo, hi)))
    if b <= a:
        b = a + 1.0
    return a, b


def anatomy_sample(pixels: np.ndarray) -> np.ndarray:
    """The pixels of the exposed field, without the collimated border (a strided subsample, flat).

    Collimator blades leave bands along the border at the detector's extreme value (burnt out
    white in the bone-bright orientation, or black); on a CR like NEMA's RG3 they are 40 % of the
    image, and percentiles over the whole image then describe the collimator, not the patient
    (F6 "bone" became W 232 / L 907 and hid the lesion). Border rows and columns that are mostly
    at an extreme value are dropped, then any pixel left at an extreme (markers, burn-out).
    Without collimation this is simply every pixel.
    """
    s = _sample(pixels)
    if s.ndim != 2 or s.size == 0:
        return s.ravel()
    lo, hi = s.min(), s.max()
    extreme = (s == lo) | (s == hi)
    rows = extreme.mean(axis=1) < 0.5
    cols = extreme.mean(axis=0) < 0.5
    if rows.any() and cols.any():
        r0, r1 = int(np.argmax(rows)), len(rows) - int(np.argmax(rows[::-1]))
        c0, c1 = int(np.argmax(cols)), len(cols) - int(np.argmax(cols[::-1]))
        s, extreme = s[r0:r1, c0:c1], extreme[r0:r1, c0:c1]
    inner = s[~extreme]
    return inner if inner.size >= 100 else s.ravel()  # a near-binary image: keep what there is


def anatomy_levels(pixels: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """(low, high) levels between two percentiles of the anatomy (see :func:`anatomy_sample`)."""
    a, b = (float(v) for v in np.percentile(anatomy_sample(pixels), (lo, hi)))
    if b <= a:
        b = a + 1.0
    return a, b


def preset_levels(rg: Radiograph, preset: str) -> tuple[float, float]:
    """The (low, high) levels of a named preset for this radiograph.

    ``bone`` spreads the contrast over the brighter half of the anatomy's histogram (cortex and
    trabeculae in the bone-bright orientation), which is what a reader wants for lesion work on a
    radiograph where, unlike CT, there are no Hounsfield units to anchor a fixed bone window.
    ``bone`` and ``auto`` are computed over the exposed field, never the collimated border.
    """
    if preset == "dicom":
        return rg.window_levels()
    if preset == "full":
        lo, hi = rg.value_range
        return float(lo), float(hi) if hi > lo else float(lo) + 1.0
    if preset == "auto":
        return anatomy_levels(rg.pixels, 1.0, 99.0)
    if preset == "bone":
        return anatomy_levels(rg.pixels, 45.0, 99.8)
    raise ValueError(f"unknown window preset {preset!r}")


def to_uint8(pixels: np.ndarray, levels: tuple[float, float], invert: bool = False) -> np.ndarray:
    """Map pixels through a display window (low, high) to 0..255, rounded to the nearest level.

    The app's one 8-bit mapping: thumbnails, training sample grids and PNG previews all use it, so
    the same value shows as the same grey everywhere. Returns a new array.
    """
    lo, hi = levels
    scale = 255.0 / max(hi - lo, 1e-9)
    out = np.clip(np.rint((np.asarray(pixels, dtype=np.float32) - lo) * scale), 0.0, 255.0).astype(np.uint8)
    return 255 - out if invert else out


def thumbnail_array(rg: Radiograph, size: int = 96) -> np.ndarray:
    """An 8-bit thumbnail at most ``size`` pixels on its long side, in the radiograph's own window."""
    h, w = rg.pixels.shape[:2]
    step = max(1, int(max(h, w) // (size * 2)))
    small = to_uint8(rg.pixels[::step, ::step], rg.window_levels())
    from PIL import Image

    im = Image.fromarray(small)
    im.thumbnail((size, size), Image.Resampling.BILINEAR)
    return np.asarray(im)


def cached_thumbnail(path: str | Path, sha256: str, cache_dir: str | Path, size: int = 96) -> np.ndarray:
    """The thumbnail of an image file, from ``cache_dir/<sha256>.png`` or rendered and stored there.

    Keyed by content hash, so a re-linked or renamed file keeps its thumbnail and an edited file
    gets a new one. The PNG is written to a temporary name and renamed, so a crash mid-write
    never leaves a truncated thumbnail behind.
    """
    from PIL import Image

    cache = Path(cache_dir) / f"{sha256}.png"
    if cache.is_file():
        try:
            with Image.open(cache) as im:
                return np.asarray(im.convert("L"))
        except OSError:
            cache.unlink(missing_ok=True)  # damaged: render again
    arr = thumbnail_array(open_radiograph(path), size)
    atomic_write_from(cache, lambda fh: Image.fromarray(arr).save(fh, format="PNG"))
    return arr
