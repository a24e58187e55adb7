"""Augmentation arms and their controls: what each arm adds to the training set, in equal counts.

A gain from synthetic lesions counts only if it beats cheaper ways of showing the detector more
lesions. Each arm adds the same number of lesion images (``ratio`` × the real training lesions)
under the same training budget (the trainer's epoch is as many draws as there are real images):

- ``oversample``: real training lesion images repeated (no new pixels at all);
- ``copy_paste``: real training lesion windows blended into normal training images with the same
  α blend and placement rule as synthesis (new images, real lesions);
- ``unit``: the paper's synthetic lesions (new images, generated lesions);
- ``unit_pretrain``: the same synthetic images, used in the first epochs only, then fine-tuning
  on the real images.

Every arm that adds new images (copy-paste and UNIT) goes through the same baseline filter.
Pure numpy here (no torch, no project): choosing counts and repeats, and making one copy-paste image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lesion_studio.synthesis.blend import blend, paste_back

ARMS = ("oversample", "copy_paste", "unit", "unit_pretrain")
#: The arms a synthetic arm must beat: repeating real lesions, and pasting real lesions.
CONTROLS = ("oversample", "copy_paste")
#: The arms whose added images are new pictures, vetted by the baseline filter like the paper's.
FILTERED = ("copy_paste", "unit", "unit_pretrain")


def lesion_count(real_lesions: int, ratio: float) -> int:
    """How many lesion images an arm adds: ``ratio`` per real training lesion (at least one)."""
    return max(1, round(real_lesions * ratio))


def equal_count(wanted: int, available: dict[str, int]) -> int:
    """The count every arm adds: ``wanted``, or fewer when a filtered arm kept fewer candidates.

    Arms must add equal counts, or a difference between them could be the count's; so when the
    filter leaves one arm short, all arms add what the shortest has.
    """
    return max(0, min([wanted, *available.values()]))


def choose(ids: Sequence[int], count: int, seed: int) -> list[int]:
    """``count`` of ``ids`` in a seeded random order, cycling through all of them before any repeats
    (the oversampling control asks for more repeats than there are lesions at ratios above 1)."""
    if count <= 0 or not ids:
        return []
    rng = np.random.default_rng(seed)
    out: list[int] = []
    while len(out) < count:
        out += [int(ids[i]) for i in rng.permutation(len(ids))]
    return sorted(out[:count])


def donor_window(shape: tuple[int, int], box: tuple[float, float, float, float],
                 size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a ``size`` = (w, h) window around a lesion ``box`` in an image of ``shape``
    (h, w): centred on the box, shifted to stay inside the image, shrunk only if the image is smaller."""
    h, w = shape
    ww, wh = min(size[0], w), min(size[1], h)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0 = int(round(min(max(cx - ww / 2, 0), w - ww)))
    y0 = int(round(min(max(cy - wh / 2, 0), h - wh)))
    return x0, y0, x0 + ww, y0 + wh


def copy_paste(target: np.ndarray, window: tuple[int, int, int, int], donor: np.ndarray,
               donor_box: tuple[float, float, float, float], *, n: float,
               blend_mode: str) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A real lesion window of ``donor`` blended into ``target`` at ``window`` (x0, y0, x1, y1) with the
    synthesis blend; returns the new image and where the pasted lesion box now is (target pixels).

    The donor's window has the target window's size (centred on the donor's box), its intensities
    mapped onto the target's range by their 1st-99th percentiles (a donor from another exposure or
    bit depth must not bring its brightness along), and it is blended exactly as a translation is.
    """
    x0, y0, x1, y1 = window
    wx0, wy0, wx1, wy1 = donor_window(donor.shape[:2], donor_box, (x1 - x0, y1 - y0))
    patch = donor[wy0:wy1, wx0:wx1].astype(np.float32)
    if patch.shape != (y1 - y0, x1 - x0):  # a donor smaller than the window: stretch it to fit
        from PIL import Image

        patch = np.asarray(Image.fromarray(patch, mode="F").resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR))
        sx, sy = (x1 - x0) / (wx1 - wx0), (y1 - y0) / (wy1 - wy0)
    else:
        sx = sy = 1.0
    t_lo, t_hi = np.percentile(target, [1, 99])
    d_lo, d_hi = np.percentile(donor, [1, 99])
    scale = (t_hi - t_lo) / (d_hi - d_lo) if d_hi > d_lo else 1.0
    patch = (patch - d_lo) * scale + t_lo
    source = target[y0:y1, x0:x1].astype(np.float32)
    blended = np.clip(blend(source, patch, n, mode=blend_mode), float(target.min()), float(target.max()))
    from lesion_studio.store.records import Box

    out = paste_back(target, blended, Box(x0, y0, x1, y1))
    box = ((donor_box[0] - wx0) * sx + x0, (donor_box[1] - wy0) * sy + y0,
           (donor_box[2] - wx0) * sx + x0, (donor_box[3] - wy0) * sy + y0)
    box = (max(box[0], x0), max(box[1], y0), min(box[2], x1), min(box[3], y1))
    return out, box
