"""The pointing game's geometry: tolerance around radiologists' boxes, and the chance rate it is
read against (classifier/cam.py)."""

from __future__ import annotations

import numpy as np
import pytest

from lesion_studio.classifier.cam import (
    POINTING_TOLERANCE_PX,
    distance_to_boxes,
    map_peak,
    pointing_chance,
)
from lesion_studio.classifier.preprocess import Preprocessing, prepare_with_frame


def test_distance_to_boxes_is_zero_inside_and_euclidean_outside() -> None:
    boxes = [(10.0, 10.0, 20.0, 30.0), (100.0, 100.0, 110.0, 110.0)]
    assert distance_to_boxes(15, 20, boxes) == 0.0
    assert distance_to_boxes(25, 20, boxes) == pytest.approx(5.0)  # right of the first box
    assert distance_to_boxes(23, 34, boxes) == pytest.approx(5.0)  # off its corner: 3-4-5
    assert distance_to_boxes(105, 95, boxes) == pytest.approx(5.0)  # above the second
    assert distance_to_boxes(0, 0, []) == float("inf")


def test_the_tolerance_turns_a_near_miss_into_a_hit() -> None:
    # A 256² radiograph fit into a 64² input (scale 0.25); the map peaks in cell (4, 4) of 8×8,
    # whose centre is input (36, 36) → image (144, 144).
    _, frame = prepare_with_frame(np.ones((256, 256), np.float32), Preprocessing(64))
    grid = np.zeros((8, 8), np.float32)
    grid[4, 4] = 1.0
    x, y = map_peak(grid, frame)
    near = [(x + 10.0, y - 5.0, x + 30.0, y + 5.0)]  # 10 px to the right of the peak
    far = [(x + 40.0, y - 5.0, x + 60.0, y + 5.0)]
    peak = map_peak(grid, frame)
    assert distance_to_boxes(*peak, near) == pytest.approx(10.0)  # a miss strictly, a hit with the tolerance
    assert 0 < distance_to_boxes(*peak, near) <= POINTING_TOLERANCE_PX < distance_to_boxes(*peak, far)
    assert distance_to_boxes(*peak, [(x - 1, y - 1, x + 1, y + 1)]) == 0.0


def test_chance_is_the_share_of_the_seen_region_near_a_box() -> None:
    _, frame = prepare_with_frame(np.ones((200, 100), np.float32), Preprocessing(64))
    box = [(0.0, 0.0, 50.0, 100.0)]  # a quarter of the 100 × 200 image
    assert pointing_chance(frame, box, step=1) == pytest.approx(0.25, abs=0.01)
    # 10 px of tolerance adds a 10 px band on its open sides (right 10 × 100, below 50 × 10,
    # the quarter-disc corner): (5000 + 1000 + 500 + 78.5) / 20000.
    assert pointing_chance(frame, box, tolerance=10, step=1) == pytest.approx(6578.5 / 20000, abs=0.01)
    assert pointing_chance(frame, []) == 0.0


def test_chance_only_counts_what_the_classifier_saw() -> None:
    """With the crop to the body, a random peak can only land where the classifier looked."""
    img = np.zeros((400, 400), np.float32)
    img[200:400, 200:400] = 1.0
    _, frame = prepare_with_frame(img, Preprocessing(64, crop_to_body=True))
    outside = [(0.0, 0.0, 150.0, 150.0)]  # where the body is not
    inside = [(frame.crop_x0, frame.crop_y0, frame.crop_x0 + frame.crop_width / 2,
               frame.crop_y0 + frame.crop_height)]
    assert pointing_chance(frame, outside) == 0.0
    assert pointing_chance(frame, inside) == pytest.approx(0.5, abs=0.02)
