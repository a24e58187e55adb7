"""From a classifier's localisation map to boxes in image pixels (numpy only, no torch).

The map (the lesion map of a map-head detector, else the class-activation map; see
:mod:`lesion_studio.classifier.cam`) lives on the model's stride-8 grid in the prepared square
input. It is resized to that square, cut to the part the radiograph fills, and scaled between its
floor and its peak there (``cam.map_over_image_region``), so one threshold means the same for a
lesion map's probabilities and a class-activation map's logits. Pixels at or above ``threshold``
form regions (4-connected components); each region's box is carried back to the radiograph's own
pixels through the preprocessing's :class:`InputFrame` (``frame.to_source``: the fit to a square
and the crop to the body undone), so a box lands where the evidence is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lesion_studio.classifier.cam import map_over_image_region
from lesion_studio.classifier.preprocess import InputFrame
from lesion_studio.errors import LesionStudioError
from lesion_studio.store.records import Box

#: A region smaller than this share of one map cell is interpolation noise, not evidence.
MIN_CELL_FRACTION = 0.25


@dataclass(frozen=True)
class MapRegion:
    """A connected region of the map at or above the threshold, in image pixels."""

    box: Box
    peak: float  # the region's highest relative map value, in [threshold, 1]; 1 for the map's peak
    peak_xy: tuple[float, float]  # where that highest value is, image pixels
    pixels: int  # the region's size in prepared-input pixels


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected components of a 2-D boolean mask: (labels int32 with 1..n inside, 0 outside; n).

    Union-find over the runs of each row (a run joins the runs of the row above it overlaps), so the
    Python work grows with the number of runs, not of pixels.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise LesionStudioError(f"A map region mask must be 2-D, not {mask.shape}.")
    h, w = mask.shape
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    starts_r, starts_c = np.nonzero(edges == 1)
    _, ends_c = np.nonzero(edges == -1)  # same row-major order as the starts: one end per start
    runs = list(zip(starts_r.tolist(), starts_c.tolist(), ends_c.tolist(), strict=True))
    parent = list(range(len(runs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    row_first = np.searchsorted(starts_r, np.arange(h + 1)).tolist()
    for r in range(1, h):
        above = range(row_first[r - 1], row_first[r])
        j = above.start
        for i in range(row_first[r], row_first[r + 1]):
            _, s, e = runs[i]
            while j < above.stop and runs[j][2] <= s:  # runs above that end before this one starts
                j += 1
            k = j
            while k < above.stop and runs[k][1] < e:  # overlapping columns: 4-connected
                a, b = root(i), root(k)
                if a != b:
                    parent[max(a, b)] = min(a, b)
                k += 1
    labels = np.zeros((h, w), dtype=np.int32)
    ids: dict[int, int] = {}
    for i, (r, s, e) in enumerate(runs):
        labels[r, s:e] = ids.setdefault(root(i), len(ids) + 1)
    return labels, len(ids)


def map_regions(grid: np.ndarray, frame: InputFrame, *, threshold: float = 0.5,
                max_regions: int | None = None) -> list[MapRegion]:
    """The regions where the map is at least ``threshold`` of the way from its floor to its peak
    over the image (0 < threshold <= 1), strongest first, at most ``max_regions``; boxes in image
    pixels (clipped to the image). A flat map has no regions."""
    if not 0.0 < threshold <= 1.0:
        raise LesionStudioError(f"The map threshold is a share of the map's peak in (0, 1], not {threshold}.")
    grid = np.asarray(grid, dtype=np.float32)
    if grid.ndim != 2 or not np.all(np.isfinite(grid)):
        raise LesionStudioError("A localisation map must be a 2-D array of finite numbers.")
    relative = map_over_image_region(grid, frame, relative=True)
    if not relative.size or float(relative.max()) <= 0.0:
        return []
    labels, count = label_components(relative >= threshold)
    if count == 0:
        return []
    flat = labels.ravel()
    sizes = np.bincount(flat, minlength=count + 1)
    peaks = np.zeros(count + 1, dtype=np.float32)
    np.maximum.at(peaks, flat, relative.ravel())
    cell = frame.size / max(grid.shape)  # a map cell's side in input pixels
    keep = [k for k in range(1, count + 1) if sizes[k] >= MIN_CELL_FRACTION * cell * cell]
    keep.sort(key=lambda k: (-float(peaks[k]), k))
    out = []
    for k in keep[:max_regions] if max_regions is not None else keep:
        rows, cols = np.nonzero(labels == k)
        in_region = np.where(labels == k, relative, -1.0)
        py, px = np.unravel_index(int(np.argmax(in_region)), in_region.shape)
        x0, y0 = frame.to_source(frame.pad_x + int(cols.min()), frame.pad_y + int(rows.min()))
        x1, y1 = frame.to_source(frame.pad_x + int(cols.max()) + 1, frame.pad_y + int(rows.max()) + 1)
        box = Box(x0, y0, x1, y1).clipped(frame.source_width, frame.source_height)
        if box.width <= 0 or box.height <= 0:
            continue
        out.append(MapRegion(box=box, peak=float(peaks[k]),
                             peak_xy=frame.to_source(frame.pad_x + px + 0.5, frame.pad_y + py + 0.5),
                             pixels=int(sizes[k])))
    return out
