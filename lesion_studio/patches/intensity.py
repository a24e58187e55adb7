"""Normalisation between native pixel values and the model's [-1, 1] range, and patch resizing.

The mapping is linear over the radiograph's *possible* value range (``Radiograph.value_range``,
from BitsStored and the modality LUT), not over the values a patch happens to hold::

    x = 2 * (v - lo) / (hi - lo) - 1          v = lo + (x + 1) / 2 * (hi - lo)

so the same pixel value always means the same model input, whatever else is in the patch, and the
inverse followed by rounding gives back every native integer exactly for 8-, 10-, 12- and 16-bit
data (the arithmetic is done in float64; float32 alone would not round-trip 16-bit values).
"""

from __future__ import annotations

import numpy as np

from lesion_studio.errors import LesionStudioError


def bit_range(bits_stored: int, signed: bool = False) -> tuple[float, float]:
    """The value range of ``bits_stored``-bit pixels (what ``open_radiograph`` reports)."""
    if signed:
        return -float(2 ** (bits_stored - 1)), float(2 ** (bits_stored - 1) - 1)
    return 0.0, float(2**bits_stored - 1)


def _check_range(value_range: tuple[float, float]) -> tuple[float, float]:
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        raise LesionStudioError(f"Invalid pixel value range {value_range}: the high end must exceed the low end.")
    return lo, hi


def to_unit_range(pixels: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Native pixel values → float32 in [-1, 1] (values outside the range are clipped)."""
    lo, hi = _check_range(value_range)
    x = (np.asarray(pixels, dtype=np.float64) - lo) * (2.0 / (hi - lo)) - 1.0
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def from_unit_range_float(x: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """[-1, 1] → native units as float32, unrounded (kept by re-blending for precision)."""
    lo, hi = _check_range(value_range)
    v = (np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0) + 1.0) * ((hi - lo) / 2.0) + lo
    return v.astype(np.float32)


def from_unit_range(x: np.ndarray, value_range: tuple[float, float], dtype: np.dtype | type = np.uint16) -> np.ndarray:
    """[-1, 1] → native values of ``dtype``: the exact inverse of :func:`to_unit_range` after rounding."""
    lo, hi = _check_range(value_range)
    v = (np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0) + 1.0) * ((hi - lo) / 2.0) + lo
    return to_native(v, value_range, dtype)


def to_native(values: np.ndarray, value_range: tuple[float, float], dtype: np.dtype | type) -> np.ndarray:
    """Round (for integer dtypes) and clip float values in native units to ``value_range``."""
    lo, hi = _check_range(value_range)
    dtype = np.dtype(dtype)
    v = np.asarray(values, dtype=np.float64)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = max(lo, float(info.min)), min(hi, float(info.max))
        v = np.rint(v)
    return np.clip(v, lo, hi).astype(dtype)


def resize_patch(patch: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a float 2-D patch with Pillow's antialiased bilinear filter (no torch, no OpenCV).

    Pillow's filters widen their support when shrinking, so large windows are averaged rather
    than aliased when brought down to the model resolution.
    """
    from PIL import Image

    patch = np.asarray(patch, dtype=np.float32)
    if patch.shape == (height, width):
        return patch.copy()
    if patch.ndim != 2 or min(patch.shape) < 1:
        raise LesionStudioError(f"Cannot resize a patch of shape {patch.shape}.")
    img = Image.fromarray(np.ascontiguousarray(patch))  # float32 -> mode "F"
    out = img.resize((int(width), int(height)), Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.float32).copy()
