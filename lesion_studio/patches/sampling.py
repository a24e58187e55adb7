"""Where patches come from: square windows around lesion boxes and on normal bone. Pure functions.

Windows are integer pixel boxes (``Box`` with whole-number corners) so they slice arrays exactly.
A window is kept *square* and moved inside the image rather than cut at the border, so resizing it
to the model's square resolution never distorts the anatomy; only when the image itself is smaller
than the wanted side is the side reduced to the image's shorter side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lesion_studio.errors import LesionStudioError
from lesion_studio.store.records import Box

#: A lesion window's side is the box's longer side times a factor drawn from this range.
DEFAULT_SIDE_FACTORS = (1.5, 3.0)


def square_window(cx: float, cy: float, side: float, width: int, height: int) -> Box:
    """An integer square of ``side`` centred near (cx, cy), moved (not cut) to lie inside the image."""
    side_i = int(max(1, min(round(side), width, height)))
    x0 = int(round(cx - side_i / 2.0))
    y0 = int(round(cy - side_i / 2.0))
    x0 = min(max(x0, 0), width - side_i)
    y0 = min(max(y0, 0), height - side_i)
    return Box(float(x0), float(y0), float(x0 + side_i), float(y0 + side_i))


def lesion_window(
    box: Box,
    width: int,
    height: int,
    rng: np.random.Generator,
    side_factors: tuple[float, float] = DEFAULT_SIDE_FACTORS,
    jitter: float = 0.5,
) -> Box:
    """A random square window that contains ``box``.

    The side is ``max(box w, box h) × U(side_factors)``; the window is then shifted by up to
    ``jitter`` × the free margin on each axis, so the lesion is not always in the centre (a
    generator that only ever sees centred lesions paints them only in the centre). ``jitter`` is
    in [0, 1]: 0 centres the box, 1 lets it touch the window's edge.
    """
    lo_f, hi_f = side_factors
    if not 0 < lo_f <= hi_f:
        raise LesionStudioError(f"Invalid side factor range {side_factors}: need 0 < min <= max.")
    if not 0.0 <= jitter <= 1.0:
        raise LesionStudioError(f"Jitter must be between 0 and 1, not {jitter}.")
    b = box.normalized().clipped(width, height)
    if b.width <= 0 or b.height <= 0:
        raise LesionStudioError(f"The box {box.as_tuple()} lies outside the {width}×{height} image.")
    x0i, y0i, x1i, y1i = b.as_ints()
    need = max(x1i - x0i, y1i - y0i)
    side = max(float(need), max(b.width, b.height) * float(rng.uniform(lo_f, hi_f)))
    side = min(side, float(width), float(height))
    cx, cy = (x0i + x1i) / 2.0, (y0i + y1i) / 2.0
    free_x = max(0.0, side - (x1i - x0i)) / 2.0
    free_y = max(0.0, side - (y1i - y0i)) / 2.0
    cx += float(rng.uniform(-1.0, 1.0)) * jitter * free_x
    cy += float(rng.uniform(-1.0, 1.0)) * jitter * free_y
    win = square_window(cx, cy, side, width, height)
    # Rounding may leave the box a pixel outside; shift back where the side allows it.
    side_i = int(win.width)
    wx0 = min(max(int(win.x0), x1i - side_i), x0i)
    wy0 = min(max(int(win.y0), y1i - side_i), y0i)
    wx0 = min(max(wx0, 0), width - side_i)
    wy0 = min(max(wy0, 0), height - side_i)
    return Box(float(wx0), float(wy0), float(wx0 + side_i), float(wy0 + side_i))


def patch_window(box: Box, width: int, height: int) -> Box:
    """The square window for a user-picked normal patch: centred on it, side = its longer side."""
    b = box.normalized().clipped(width, height)
    if b.width <= 0 or b.height <= 0:
        raise LesionStudioError(f"The patch {box.as_tuple()} lies outside the {width}×{height} image.")
    cx, cy = b.center
    return square_window(cx, cy, math.ceil(max(b.width, b.height)), width, height)


def relative_sides(windows: Sequence[tuple[Box, int, int]]) -> np.ndarray:
    """Window sides as fractions of their image's shorter side: the size distribution to match.

    Relative sizes transfer between images of different resolution (FracAtlas mixes 373×454 and
    819×1024 images of the same anatomy), absolute pixel sizes would not.
    """
    return np.array([w.width / max(1, min(iw, ih)) for w, iw, ih in windows], dtype=np.float64)


def image_levels(pixels: np.ndarray) -> tuple[float, float]:
    """(air level, text level) of an image, for :func:`is_foreground`.

    Air is below 15 % of the way from the 1st to the 99.5th percentile; burned-in text and
    markers sit at the image's very top value (they are rendered saturated).
    """
    p1, p995 = np.percentile(pixels[::4, ::4], [1.0, 99.5])
    top = float(pixels.max())
    return float(p1 + 0.15 * (p995 - p1)), top


def is_foreground(
    patch: np.ndarray, air_level: float, text_level: float, min_tissue: float = 0.7, max_text: float = 0.01
) -> bool:
    """True when at least ``min_tissue`` of the patch is above air and at most ``max_text`` is saturated."""
    if patch.size == 0:
        return False
    tissue = float(np.mean(patch > air_level))
    text = float(np.mean(patch >= text_level))
    return tissue >= min_tissue and text <= max_text


def air_fraction(patch: np.ndarray, air_level: float) -> float:
    """The share of a window's pixels at or below the image's air level (see :func:`image_levels`)."""
    return float(np.mean(patch <= air_level)) if patch.size else 1.0


def window_air_fractions(pixels: np.ndarray, windows: Sequence[Box]) -> np.ndarray:
    """:func:`air_fraction` of each window of one image (lesion windows: the targets to match)."""
    air, _text = image_levels(pixels)
    out = []
    for w in windows:
        x0, y0, x1, y1 = w.as_ints()
        out.append(air_fraction(pixels[y0:y1, x0:x1], air))
    return np.array(out, dtype=np.float64)


def normal_windows(
    pixels: np.ndarray,
    count: int,
    rng: np.random.Generator,
    side_fractions: Sequence[float] | np.ndarray,
    *,
    avoid: Sequence[Box] = (),
    min_tissue: float = 0.7,
    air_targets: Sequence[float] | np.ndarray | None = None,
    air_tolerance: float = 0.03,
    max_tries: int = 50,
) -> list[Box]:
    """Up to ``count`` random square windows on tissue, sized like the lesion windows.

    Each side is a draw from ``side_fractions`` (relative to the image's shorter side, see
    :func:`relative_sides`). Windows that hold burned-in text or overlap ``avoid`` (lesion boxes)
    are redrawn up to ``max_tries`` times per window; fewer windows are returned when the image
    has too little tissue.

    What counts as "on tissue" comes in two forms:

    * ``air_targets`` is None: at least ``min_tissue`` of the window is above air.
    * ``air_targets`` (one per side fraction, the lesion windows' own air shares): the side and
      the air share are drawn *together* from one lesion window, and a normal window is kept when
      its air share is within ``air_tolerance`` of it (four times ``max_tries`` draws: a narrow
      tolerance keeps the match unbiased, a wide one drifts toward the air-rich windows that random
      draws over-supply). This matches the two patch domains on what is not the lesion. Fracture windows sit on bone near the skin line (fingers, the distal
      radius) and hold ~20% air on FracAtlas hands, against ~10% for tissue-only normal windows;
      a generator trained on the mismatched pair learns "add background", which shows as a dark
      square rather than a fracture.
    """
    fractions = np.asarray(side_fractions, dtype=np.float64)
    if fractions.size == 0:
        raise LesionStudioError("No lesion window sizes to match: the body part has no lesion boxes.")
    targets = None if air_targets is None else np.asarray(air_targets, dtype=np.float64)
    if targets is not None and targets.shape != fractions.shape:
        raise LesionStudioError("air_targets must give one air share per lesion window side.")
    height, width = pixels.shape[:2]
    short = min(width, height)
    air, text = image_levels(pixels)
    out: list[Box] = []
    tries = max_tries if targets is None else 4 * max_tries
    for _ in range(count):
        for _try in range(tries):
            k = int(rng.integers(fractions.size))
            side = float(np.clip(fractions[k] * short, 8, short))
            cx = float(rng.uniform(side / 2, width - side / 2))
            cy = float(rng.uniform(side / 2, height - side / 2))
            win = square_window(cx, cy, side, width, height)
            if any(win.intersects(b) for b in avoid):
                continue
            x0, y0, x1, y1 = win.as_ints()
            patch = pixels[y0:y1, x0:x1]
            if targets is None:
                keep = is_foreground(patch, air, text, min_tissue=min_tissue)
            else:
                share = air_fraction(patch, air)
                keep = (share < 1.0 and abs(share - float(targets[k])) <= air_tolerance
                        and is_foreground(patch, air, text, min_tissue=0.0))  # (the burned-in-text rule)
            if keep:
                out.append(win)
                break
    return out


def balanced_order(n_items: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """``length`` indices into ``n_items``: whole shuffled passes, the last one cut short.

    Used to give both domains the same number of patches per epoch: the smaller domain is
    repeated (reshuffled each pass) up to the size of the larger one.
    """
    if n_items <= 0:
        raise LesionStudioError("Cannot draw patches from an empty set.")
    passes = -(-length // n_items)
    return np.concatenate([rng.permutation(n_items) for _ in range(passes)])[:length]
