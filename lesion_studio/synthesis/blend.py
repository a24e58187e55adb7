"""Alpha blending of a translated patch into its source, and paste-back into the full image.

The paper's mask is α(i, j) = cos(|i|^n·π/2)·cos(|j|^n·π/2) with i, j evenly spaced over [−1, 1]
across the patch: 1 at the centre, 0 on the border, so the translated lesion fades into the
untouched surroundings. Larger n widens the plateau of α≈1 (n → ∞ is a hard paste); n = 1 is a
plain cosine bump. Pure numpy, so the GUI's n slider never needs torch or the translator.

Two blend modes:

- ``paper``: exactly the paper's α·x_h→l + (1−α)·x_h.
- ``matched``: the same, after removing the translation's brightness offset measured *outside the
  lesion core* (where α < ½). A weak generator tends to darken or brighten its whole output
  window; blended in, that offset shows as a soft square (the "dark square" failure), which a
  classifier can learn instead of the lesion. Subtracting the median offset of the periphery keeps
  everything the generator drew *relative to its surroundings* (the lesion) and drops the
  window-wide shift. Where the generator changes nothing in the periphery, both modes agree.
- ``moments``: the translation is first given the source's mean *and* spread over that periphery
  (an affine map of its intensities, gain bounded to [½, 2]), then blended with the paper's α. A
  generator that flattens or exaggerates the texture around the lesion changes the window's
  contrast, which ``matched`` leaves in place; this keeps the translation's structure (and what it
  draws in the core, relative to its surroundings) at the source's brightness and contrast.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from lesion_studio.errors import LesionStudioError
from lesion_studio.store.records import Box


@lru_cache(maxsize=64)
def _alpha_cached(height: int, width: int, n: float) -> np.ndarray:
    def axis(size: int) -> np.ndarray:
        t = np.abs(np.linspace(-1.0, 1.0, size, dtype=np.float64)) if size > 1 else np.zeros(1)
        a = np.cos(np.power(t, n) * (math.pi / 2.0))
        a[t >= 1.0] = 0.0  # exactly 0 on the border (cos(π/2) is 6e-17 in floating point)
        return a

    alpha = np.outer(axis(height), axis(width)).astype(np.float32)
    alpha.setflags(write=False)  # shared by the cache: callers must not change it
    return alpha


def blend_alpha(height: int, width: int, n: float) -> np.ndarray:
    """α for an ``height``×``width`` patch, float32, read-only and cached per (h, w, n)."""
    if height < 1 or width < 1:
        raise LesionStudioError(f"Cannot blend an empty {height}×{width} patch.")
    if not n > 0 or not math.isfinite(n):
        raise LesionStudioError(f"The blending exponent n must be a positive number, not {n}.")
    return _alpha_cached(int(height), int(width), float(n))


BLEND_MODES = ("paper", "matched", "moments")
#: What the product blends with unless told otherwise (the GUI, ``translate``, experiments, the
#: quality report). Chosen by the generator quality report on FracAtlas hand validation windows
#: (docs/synthesis.md): for both generators measured and both window rules, ``matched`` was the
#: more realistic, had the higher lesion signal and half the intensity drift of ``paper``.
#: :func:`blend` itself keeps the paper's formula as its default: it is the paper's maths.
DEFAULT_BLEND = "matched"

#: The blending exponent the product uses unless told otherwise (the GUI, ``translate``, the
#: quality report, new experiment configs). The paper's α family with n = 1 (a plain cosine bump)
#: rather than n = 2: on FracAtlas hand validation windows, n = 1 kept the lesion signal of n = 2
#: (lesion rate ratio 0.53-0.59 vs 0.56-0.58) while the surroundings, where a generator's texture
#: and brightness changes are not a lesion, take less of the translation (drift 1.7-1.9 % vs
#: 3.1-3.5 %, realism AUC 0.72-0.74 vs 0.75-0.79): docs/synthesis.md, "The third round".
DEFAULT_N = 1.0

#: α below which a pixel counts as the window's periphery (outside the lesion core).
CORE_ALPHA = 0.5


def periphery_mask(height: int, width: int, n: float) -> np.ndarray:
    """The window's periphery, outside the lesion core: where α < ½ (both blend corrections measure there)."""
    return blend_alpha(height, width, n) < CORE_ALPHA


def periphery_offset(source: np.ndarray, translated: np.ndarray, n: float) -> np.ndarray:
    """The translation's median brightness change outside the core (α < ½), per patch (shape (...))."""
    ring = periphery_mask(source.shape[-2], source.shape[-1], n)
    if not ring.any():  # a window too small to have a periphery
        return np.zeros(source.shape[:-2], dtype=np.float32)
    diff = translated.astype(np.float32, copy=False) - source.astype(np.float32, copy=False)
    return np.median(diff[..., ring], axis=-1).astype(np.float32)


#: Bounds of the ``moments`` contrast gain: a near-flat periphery on either side must not turn
#: the translation into noise or a flat patch.
MAX_GAIN = 2.0


def match_periphery_moments(source: np.ndarray, translated: np.ndarray, n: float) -> np.ndarray:
    """``translated`` mapped affinely so that its periphery (α < ½) has the source's mean and spread.

    Per patch: μ_s + (t − μ_t)·g with g = σ_s/σ_t over the periphery, bounded to [1/MAX_GAIN,
    MAX_GAIN] (1 where the translation's periphery is flat). Float32, the shape of ``translated``.
    """
    t = translated.astype(np.float32, copy=False)
    ring = periphery_mask(source.shape[-2], source.shape[-1], n)
    if not ring.any():
        return t
    s_ring, t_ring = source.astype(np.float32, copy=False)[..., ring], t[..., ring]
    mu_s, mu_t = s_ring.mean(axis=-1), t_ring.mean(axis=-1)
    sd_s, sd_t = s_ring.std(axis=-1), t_ring.std(axis=-1)
    flat = sd_t <= 1e-6 * np.maximum(1.0, np.abs(mu_t))
    gain = np.clip(np.where(flat, 1.0, sd_s / np.where(flat, 1.0, sd_t)), 1.0 / MAX_GAIN, MAX_GAIN)
    return (mu_s[..., None, None] + (t - mu_t[..., None, None]) * gain[..., None, None]).astype(np.float32)


def blend(source: np.ndarray, translated: np.ndarray, n: float, mode: str = "paper") -> np.ndarray:
    """α·translated + (1−α)·source, as float32 of the same shape (2-D, or (..., h, w)).

    ``mode="matched"`` first subtracts :func:`periphery_offset` from the translation;
    ``mode="moments"`` first applies :func:`match_periphery_moments` (module docs).
    """
    source = np.asarray(source)
    translated = np.asarray(translated)
    if source.shape != translated.shape:
        raise LesionStudioError(f"Source {source.shape} and translated {translated.shape} patches differ in shape.")
    if mode not in BLEND_MODES:
        raise LesionStudioError(f"Unknown blend mode {mode!r}; choose one of {', '.join(BLEND_MODES)}.")
    alpha = blend_alpha(source.shape[-2], source.shape[-1], n)
    s = source.astype(np.float32, copy=False)
    if mode == "moments":
        translated = match_periphery_moments(source, translated, n)
    residual = translated.astype(np.float32, copy=False) - s
    if mode == "matched":
        residual = residual - periphery_offset(source, translated, n)[..., None, None]
    return s + alpha * residual


def paste_back(image: np.ndarray, patch: np.ndarray, box: Box) -> np.ndarray:
    """A copy of ``image`` with ``patch`` written into ``box`` (integer pixel bounds).

    The patch must be the box's size. Parts of the box outside the image are dropped with the
    matching part of the patch. Values are rounded (integer images) and clipped to the dtype's
    range; clip to a narrower range (e.g. 12 bits) before calling, as the pipeline does.
    """
    image = np.asarray(image)
    x0, y0, x1, y1 = box.normalized().as_ints()
    if patch.shape[:2] != (y1 - y0, x1 - x0):
        raise LesionStudioError(f"The patch is {patch.shape[1]}×{patch.shape[0]} px but the box is "
                                f"{x1 - x0}×{y1 - y0} px.")
    h, w = image.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx0 >= cx1 or cy0 >= cy1:
        raise LesionStudioError(f"The box {box.as_tuple()} lies outside the {w}×{h} image.")
    part = np.asarray(patch)[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    out = image.copy()
    if out.dtype.kind in "iu":
        info = np.iinfo(out.dtype)
        part = np.clip(np.rint(part), info.min, info.max)
    elif out.dtype.kind == "b":
        part = part > 0.5
    out[cy0:cy1, cx0:cx1] = part.astype(out.dtype, copy=False)
    return out
