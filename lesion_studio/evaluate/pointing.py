"""The pointing game on radiologists' boxes: does a detector's localisation map peak at the lesion?

One summary for the experiment's evaluation (the seed-mean map of each row) and for the
``evaluate`` command (one model's map): the rate over the lesions the detector finds and over every
boxed lesion, each with a percentile bootstrap CI over the lesion images, the strict rate (a peak
inside a box) beside the tolerant one (within ``tolerance`` image pixels: the pointing game's own
convention, :data:`lesion_studio.classifier.cam.POINTING_TOLERANCE_PX`), and the chance rate a
peak placed at random over the radiograph would reach. Without the chance rate a pointing figure
cannot be read: boxes cover well under 1 % of a hand radiograph.

``lesions`` lists each boxed lesion (its file, boxes, where the map peaked, how far from a box,
the detector's probability), so the Results panel can show where the detector looked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lesion_studio.classifier.cam import distance_to_boxes, map_peak, pointing_chance
from lesion_studio.classifier.data import Example
from lesion_studio.classifier.preprocess import InputFrame
from lesion_studio.evaluate.metrics import pointing_game


def pointing_rule(tolerance: float | None) -> str:
    """How a hit was counted, for a sentence "the map's peak … a radiologist's box"."""
    return f"within {tolerance:g} px of" if tolerance else "inside"


def pointing_summary(probabilities: np.ndarray, maps: np.ndarray, examples: Sequence[Example],
                     frame_of: Callable[[int], InputFrame], *, tolerance: float, map_kind: str,
                     n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> dict[str, Any] | None:
    """The pointing game over the boxed lesion images among ``examples``; None when there are none.

    ``probabilities`` (N,) and ``maps`` (N, h, w) belong to ``examples`` (prepared-frame maps, as
    the classifier returns them); ``frame_of(i)`` lays example i's map over its radiograph. A
    lesion counts as detected when its probability exceeds 0.5.
    """
    boxed = [i for i, e in enumerate(examples) if e.label == 1 and e.boxes]
    if not boxed:
        return None
    distance, chance, chance_strict, lesions = [], [], [], []
    for i in boxed:
        e, frame = examples[i], frame_of(i)
        x, y = map_peak(maps[i], frame)
        d = distance_to_boxes(x, y, e.boxes)
        distance.append(d)
        chance.append(pointing_chance(frame, e.boxes, tolerance=tolerance))
        chance_strict.append(pointing_chance(frame, e.boxes))
        lesions.append({"image_id": e.image_id, "sha256": e.key, "path": str(e.path),
                        "size": [frame.source_width, frame.source_height],
                        "boxes": [[round(float(v), 2) for v in b] for b in e.boxes],
                        "peak": [round(float(x), 2), round(float(y), 2)], "distance_px": round(float(d), 2),
                        "hit": bool(d <= tolerance), "probability": float(probabilities[i])})
    dist = np.asarray(distance, dtype=float)
    found = np.asarray([probabilities[i] > 0.5 for i in boxed], dtype=bool)
    opts = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    hits, inside = dist <= tolerance, dist <= 0.0
    return {"detected": pointing_game(hits[found], **opts), "all": pointing_game(hits, **opts),
            "tolerance_px": float(tolerance),
            "strict": {"detected": pointing_game(inside[found], **opts), "all": pointing_game(inside, **opts)},
            "chance": {"tolerance": float(np.mean(chance)), "strict": float(np.mean(chance_strict))},
            "map": map_kind, "lesions": lesions}
