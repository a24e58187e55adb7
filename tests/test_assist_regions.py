"""From a localisation map to boxes in image pixels: connected regions, and the way back through
the preprocessing's input frame (fit to a square, crop to the body)."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from lesion_studio.assist.regions import label_components, map_regions
from lesion_studio.classifier.cam import map_peak
from lesion_studio.classifier.preprocess import Preprocessing, prepare_with_frame
from lesion_studio.errors import LesionStudioError


def _flood_labels(mask: np.ndarray) -> list[set[tuple[int, int]]]:
    """The 4-connected components of a mask, by breadth-first search (the reference)."""
    seen = np.zeros_like(mask, dtype=bool)
    out = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        comp, todo = set(), deque([start])
        seen[start] = True
        while todo:
            y, x = todo.popleft()
            comp.add((int(y), int(x)))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    todo.append((ny, nx))
        out.append(comp)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_components_match_a_flood_fill(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((int(rng.integers(1, 20)), int(rng.integers(1, 25)))) < rng.uniform(0.2, 0.7)
    labels, count = label_components(mask)
    want = _flood_labels(mask)
    assert count == len(want)
    got = [{(int(y), int(x)) for y, x in zip(*np.nonzero(labels == k), strict=True)} for k in range(1, count + 1)]
    assert sorted(map(sorted, got)) == sorted(map(sorted, want))
    assert ((labels > 0) == mask).all()


def test_diagonal_neighbours_are_separate_regions() -> None:
    mask = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=bool)
    assert label_components(mask)[1] == 3


def _frame(crop: bool, size: int = 64):
    """A 300×200 radiograph whose body fills rows 100–300, columns 50–200 (air elsewhere)."""
    img = np.zeros((300, 200), np.float32)
    img[100:300, 50:200] = 1.0
    _, frame = prepare_with_frame(img, Preprocessing(size, crop_to_body=crop))
    return frame


def _cell_box(frame, gy: int, gx: int, cell: float) -> tuple[float, float, float, float]:  # noqa: ANN001
    x0, y0 = frame.to_source(gx * cell, gy * cell)
    x1, y1 = frame.to_source((gx + 1) * cell, (gy + 1) * cell)
    return x0, y0, x1, y1


@pytest.mark.parametrize("crop", [False, True])
def test_a_known_peak_lands_on_its_cell_in_image_pixels(crop: bool) -> None:
    """One hot cell of an 8×8 map: the region is that cell's square of the input, carried back to
    the radiograph through the frame (give or take one input pixel of interpolation)."""
    frame = _frame(crop)
    assert (frame.crop_y0 > 0) == crop  # the crop really moved the frame
    grid = np.zeros((8, 8), np.float32)
    # a cell inside the image part of the square, whichever frame
    gy = int((frame.pad_y + frame.resized_height * 0.6) // 8)
    gx = int((frame.pad_x + frame.resized_width * 0.4) // 8)
    grid[gy, gx] = 0.9
    (region,) = map_regions(grid, frame, threshold=0.5)
    want = _cell_box(frame, gy, gx, 8.0)
    tol = 1.0 / frame.scale_x + 1e-6  # one input pixel, in source pixels
    assert region.box.as_tuple() == pytest.approx(want, abs=tol)
    assert region.peak == pytest.approx(1.0)
    # the region's peak is the map's peak, where classifier/cam.py finds it too
    px, py = map_peak(grid, frame)
    assert region.peak_xy == pytest.approx((px, py), abs=tol)
    assert region.box.x0 <= px <= region.box.x1 and region.box.y0 <= py <= region.box.y1
    # a lower threshold gives a larger region around the same peak
    (wide,) = map_regions(grid, frame, threshold=0.1)
    assert wide.box.x0 < region.box.x0 and wide.box.x1 > region.box.x1


def test_crop_to_body_moves_the_box_by_the_crop() -> None:
    """The same map cell means another place in the radiograph when the input was cropped to the
    body: the box follows the frame (here the body starts at row 100, column 50)."""
    plain, cropped = _frame(False), _frame(True)
    grid = np.zeros((8, 8), np.float32)
    grid[4, 4] = 1.0
    (a,) = map_regions(grid, plain)
    (b,) = map_regions(grid, cropped)
    assert b.box.y0 > a.box.y0 and b.box.x0 > a.box.x0  # the cropped input starts inside the body
    assert b.box.width < a.box.width  # and is magnified: a cell covers fewer source pixels
    assert 50 - 10 < b.box.x0 < 200 and 100 - 10 < b.box.y0 < 300


def test_regions_are_strongest_first_and_capped() -> None:
    frame = _frame(False)
    grid = np.zeros((8, 8), np.float32)
    grid[3, 2], grid[3, 6], grid[6, 4] = 0.5, 1.0, 0.9
    regions = map_regions(grid, frame, threshold=0.3)
    assert [round(r.peak, 2) for r in regions] == [1.0, 0.9, 0.5]
    assert len(map_regions(grid, frame, threshold=0.3, max_regions=2)) == 2
    # a higher threshold keeps only the regions that reach it, relative to the map's peak
    assert [round(r.peak, 2) for r in map_regions(grid, frame, threshold=0.6)] == [1.0, 0.9]


def test_a_class_activation_map_in_logits_works_the_same() -> None:
    """CAM values are logits (negative as often as not): the threshold is relative to the span
    from the map's floor to its peak, so a shifted, scaled map gives the same regions."""
    frame = _frame(True)
    grid = np.zeros((8, 8), np.float32)
    grid[5, 3] = 1.0
    shifted = 7.0 * grid - 12.0
    assert [r.box for r in map_regions(shifted, frame)] == [r.box for r in map_regions(grid, frame)]


def test_flat_maps_and_bad_input() -> None:
    frame = _frame(False)
    assert map_regions(np.full((8, 8), 0.3, np.float32), frame) == []
    with pytest.raises(LesionStudioError, match="threshold"):
        map_regions(np.zeros((8, 8)), frame, threshold=0)
    with pytest.raises(LesionStudioError, match="finite"):
        map_regions(np.full((8, 8), np.nan), frame)
