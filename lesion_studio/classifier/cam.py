"""Localisation maps of the classifier, in numpy: from the model's grid back to image pixels.

A classifier shows where it found evidence with a map on its output-stride-8 grid, in the
prepared square input frame: the lesion map of a network with the box-supervised map head
(``models/drn.py``), or, for the paper's image-only DRN, its class-activation map (the 1x1
classifier applied before pooling, whose mean is the lesion logit; Zhou et al. 2016). The ONNX
classifier returns it (output ``lesion_map``; ``cam`` in older exports). These helpers undo the
preprocessing (the crop to the body, the fit to a square: :class:`InputFrame`) so the map lines up
with the radiograph: the gallery and the viewer overlay it, the generator quality report asks
whether it peaks inside the window where a lesion was painted, and the experiment's pointing game
whether it peaks inside a radiologist's box.
"""

from __future__ import annotations

import numpy as np

from lesion_studio.classifier.preprocess import InputFrame

#: What each kind of map is called where a person reads it (reports, the gallery, the CLI).
MAP_LABELS = {"lesion_map": "lesion map", "cam": "CAM"}


def map_label(kind: str | None) -> str:
    """The readable name of a map kind (``lesion_map`` or ``cam``, as a scorer's
    :attr:`~lesion_studio.classifier.scoring.OnnxClassifier.map_kind` and a stored report say it).
    Reports made before the kind was recorded carry none: their maps were class-activation maps."""
    return MAP_LABELS.get(kind or "cam", str(kind))


def map_overlay_text(kind: str | None) -> str:
    """The label of a switch that overlays a classifier's map: which map it draws (None: no
    classifier chosen yet). The gallery's overlay box reads it."""
    if kind is None:
        return "Classifier's localisation map in the viewer"
    what = "lesion map (learnt from the boxes)" if kind == "lesion_map" else "class-activation map (CAM)"
    return f"Classifier's {what} in the viewer"


def config_map_kind(config: dict | None) -> str:
    """The map kind a classifier will return, from its stored training settings (a model record's
    ``config``), without opening its ONNX file: ``lesion_map`` for the box-supervised map head."""
    return "lesion_map" if isinstance(config, dict) and config.get("head") == "image+map" else "cam"


def map_square(grid: np.ndarray, size: int) -> np.ndarray:
    """The (h, w) map resized (bilinear) to the ``size``² prepared frame, float32."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(grid, dtype=np.float32), mode="F")
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def map_over_image_region(grid: np.ndarray, frame: InputFrame, *, relative: bool = False) -> np.ndarray:
    """The map resized to the prepared square, cut to the part where the radiograph's pixels are
    (not the padding): (resized_height, resized_width) float32, whose pixel (r, c) is input pixel
    (pad_y + r, pad_x + c). ``relative`` scales it to [0, 1] between its lowest and highest value
    over that part (all 0 for a flat map)."""
    y0, y1, x0, x1 = frame.image_region()
    inner = map_square(grid, frame.size)[y0:y1, x0:x1]
    if relative:
        lo, hi = float(inner.min()), float(inner.max())
        inner = (inner - lo) / (hi - lo) if hi > lo else np.zeros_like(inner)
    return inner


def map_to_image(grid: np.ndarray, frame: InputFrame) -> np.ndarray:
    """The map over the radiograph's own pixels, (H, W) float32 scaled to [0, 1] (for overlays);
    0 outside the region the classifier saw (what ``crop_to_body`` cut away)."""
    from PIL import Image

    inner = map_over_image_region(grid, frame, relative=True)
    seen = Image.fromarray(np.ascontiguousarray(inner), mode="F").resize(
        (frame.crop_width, frame.crop_height), Image.Resampling.BILINEAR)
    out = np.zeros((frame.source_height, frame.source_width), dtype=np.float32)
    out[frame.crop_y0:frame.crop_y0 + frame.crop_height, frame.crop_x0:frame.crop_x0 + frame.crop_width] = \
        np.clip(np.asarray(seen, dtype=np.float32), 0.0, 1.0)
    return out


def map_peak(grid: np.ndarray, frame: InputFrame) -> tuple[float, float]:
    """(x, y) in image pixels of the map's maximum, searched over the image (not the padding)."""
    inner = map_over_image_region(grid, frame)
    iy, ix = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return frame.to_source(frame.pad_x + ix + 0.5, frame.pad_y + iy + 0.5)


#: The pointing game's tolerance in the radiograph's own pixels: a peak within this distance of a
#: box counts as a hit. 15 px is the pointing game's own convention (Zhang et al. 2016, "Top-down
#: neural attention by excitation backprop"; TorchRay's ``PointingGame``), which allows for the
#: coarse grid of a network's maps. FracAtlas hand radiographs are about 373 x 454 px and their
#: fracture boxes a median 31 x 25 px, so 15 px is about half a box.
POINTING_TOLERANCE_PX = 15.0

Box = tuple[float, float, float, float]


def distance_to_boxes(x: float, y: float, boxes: list[Box] | tuple[Box, ...]) -> float:
    """The distance (pixels) from the point to the nearest (x0, y0, x1, y1) box; 0 inside one,
    infinity without boxes."""
    best = float("inf")
    for x0, y0, x1, y1 in boxes:
        dx = max(x0 - x, 0.0, x - x1)
        dy = max(y0 - y, 0.0, y - y1)
        best = min(best, float(np.hypot(dx, dy)))
    return best


def pointing_chance(frame: InputFrame, boxes: list[Box] | tuple[Box, ...], *, tolerance: float = 0.0,
                    step: int = 2) -> float:
    """How often a peak placed at random over the part of the radiograph the classifier saw would
    be a hit: the share of that region (sampled every ``step`` pixels) within ``tolerance`` of a
    box. The rate a pointing-game figure has to beat to say the map knows where the lesion is."""
    ys = frame.crop_y0 + np.arange(step / 2, frame.crop_height, step)
    xs = frame.crop_x0 + np.arange(step / 2, frame.crop_width, step)
    if not len(ys) or not len(xs) or not boxes:
        return 0.0
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    near = np.zeros(yy.shape, dtype=bool)
    for x0, y0, x1, y1 in boxes:
        dx = np.maximum(np.maximum(x0 - xx, 0.0), xx - x1)
        dy = np.maximum(np.maximum(y0 - yy, 0.0), yy - y1)
        near |= dx * dx + dy * dy <= tolerance * tolerance
    return float(near.mean())
