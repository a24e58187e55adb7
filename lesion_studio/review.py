"""Blinded realism review: real lesion patches and synthetic ones, shuffled, unlabelled.

A rater answers "real" or "synthetic" for each item. Accuracy near 50% means the rater cannot
tell them apart. The interval is Wilson's score interval, which behaves well for the small counts
(tens of items) a reading session has, unlike the normal approximation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lesion_studio.store.project import Project
from lesion_studio.store.records import Box


@dataclass(frozen=True)
class ReviewItem:
    kind: str  # "real" or "synthetic"
    ref: str  # "box:<id>" or "sample:<id>", what the answer is stored against
    image_id: int
    window: Box
    sample_id: int | None = None


@dataclass(frozen=True)
class ReviewScore:
    answered: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    sensitivity_synthetic: float | None  # share of synthetic items called synthetic
    specificity_real: float | None  # share of real items called real


def wilson_interval(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def square_window_around(box: Box, width: int, height: int, scale: float = 2.0) -> Box:
    """A square window centred on a box, side = scale × its longer side, shifted inside the image."""
    side = min(max(box.width, box.height) * scale, float(min(width, height)))
    cx, cy = box.center
    x0 = min(max(cx - side / 2, 0.0), width - side)
    y0 = min(max(cy - side / 2, 0.0), height - side)
    return Box(x0, y0, x0 + side, y0 + side)


def build_review_items(project: Project, count_per_kind: int, seed: int = 0,
                       synthetic_statuses: Sequence[str] = ("accepted", "candidate")) -> list[ReviewItem]:
    """Up to ``count_per_kind`` real and as many synthetic items (equal numbers), shuffled."""
    rng = np.random.default_rng(seed)
    real = []
    for lesion in project.boxes():
        rec = project.image(lesion.image_id)
        if rec.label == "lesion" and not rec.excluded:
            window = square_window_around(lesion.box, rec.width, rec.height)
            real.append(ReviewItem("real", f"box:{lesion.id}", rec.id, window))
    synthetic = [
        ReviewItem("synthetic", f"sample:{s.id}", s.source_image_id, s.box, sample_id=s.id)
        for s in project.synthetic_samples() if s.status in synthetic_statuses and s.path
    ]
    k = min(count_per_kind, len(real), len(synthetic))
    chosen = [real[i] for i in rng.permutation(len(real))[:k]] + [
        synthetic[i] for i in rng.permutation(len(synthetic))[:k]
    ]
    return [chosen[i] for i in rng.permutation(len(chosen))]


#: Every review item is shown at this size, whatever its window's size in pixels.
DISPLAY = 256


def review_patch(project: Project, item: ReviewItem, size: int = DISPLAY) -> np.ndarray:
    """The item's window as a size×size uint8 image, processed identically for real and synthetic
    (:func:`lesion_studio.samples.thumbnails.window_tile`), so only the pixels can give it away."""
    from lesion_studio.samples.storage import load_sample_pixels
    from lesion_studio.samples.thumbnails import window_tile

    if item.sample_id is not None:
        pixels = load_sample_pixels(project, project.synthetic_sample(item.sample_id))
    else:
        pixels = project.open_radiograph(item.image_id).pixels
    return window_tile(pixels, item.window, size)


def score_answers(pairs: Sequence[tuple[str, str]]) -> ReviewScore:
    """``pairs`` of (truth, answer), each "real" or "synthetic"."""
    answered = len(pairs)
    correct = sum(1 for truth, answer in pairs if truth == answer)
    low, high = wilson_interval(correct, answered)
    syn = [a for t, a in pairs if t == "synthetic"]
    real = [a for t, a in pairs if t == "real"]
    return ReviewScore(
        answered=answered,
        correct=correct,
        accuracy=correct / answered if answered else float("nan"),
        ci_low=low,
        ci_high=high,
        sensitivity_synthetic=(syn.count("synthetic") / len(syn)) if syn else None,
        specificity_real=(real.count("real") / len(real)) if real else None,
    )


def rater_score(project: Project, rater: str, session: str | None = None) -> ReviewScore:
    rows = project.ratings(rater=rater, session=session)
    return score_answers([(r["item_kind"], r["answer"]) for r in rows])
