"""Training-time augmentation of classifier batches, in torch: one affine warp for a whole batch,
applied alike to the images and their lesion masks, and box-aware random crops.

Why batched: warping sample by sample through torchvision's transforms costs a Python round trip
and a small kernel per image; one ``affine_grid`` + ``grid_sample`` call per batch does the same
work in one kernel, on the CPU or the GPU the batch already lives on. Why masks go through the
same warp: the lesion-map head learns where the lesion is, so its target must move exactly as the
image does (bilinear sampling turns the mask's edges fractional, which is what the map's average
pooling to its output stride does anyway).

Every random draw comes from the ``torch.Generator`` the trainer seeds per step, so a resumed run
draws what the uninterrupted run drew.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from torch import Tensor


@dataclass(frozen=True)
class AffineRange:
    """The random affine's ranges (``ClassifierConfig``: rotation_deg, translate, scale_min/max, hflip)."""

    rotation_deg: float = 10.0
    translate: float = 0.05
    scale_min: float = 0.9
    scale_max: float = 1.1
    hflip: bool = True


def random_affine(n: int, spec: AffineRange, generator: torch.Generator) -> Tensor:
    """(n, 2, 3) inverse affine matrices in ``affine_grid``'s normalised coordinates: rotation by
    ±``rotation_deg``, scale in [min, max], shift by up to ±``translate`` of the side, and a mirror
    with probability ½ when ``hflip``."""
    u = torch.rand(n, 5, generator=generator, dtype=torch.float64)
    angle = (2 * u[:, 0] - 1) * math.radians(spec.rotation_deg)
    scale = spec.scale_min + u[:, 1] * (spec.scale_max - spec.scale_min)
    # translate is a fraction of the side; normalised coordinates span 2 per side
    tx, ty = (2 * u[:, 2] - 1) * 2 * spec.translate, (2 * u[:, 3] - 1) * 2 * spec.translate
    flip = torch.where(u[:, 4] < 0.5, -1.0, 1.0) if spec.hflip else torch.ones(n, dtype=torch.float64)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    return theta.float()


def warp(x: Tensor, theta: Tensor, fill: float = 0.0) -> Tensor:
    """Warp (N, C, H, W) by ``theta`` (bilinear), filling what comes from outside with ``fill``."""
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + fill if fill else out


def random_intensity(x: Tensor, jitter: float, generator: torch.Generator, *, mean: float, std: float) -> Tensor:
    """Each image of a standardised (N, C, H, W) batch with its exposure changed: its [0, 1]
    intensities raised to a gamma drawn log-uniformly from [1/(1 + jitter), 1 + jitter], then
    scaled by a contrast factor drawn from [1 - jitter/2, 1 + jitter/2] (clipped to [0, 1]).

    Why: radiographs of one bone differ in exposure, detector and post-processing far more than a
    few hundred training images show, and the percentile normalisation evens out only the ends of
    the range. Gamma and contrast keep black black (the padding, the background fill), so the
    body-region crop and the map targets are untouched. ``jitter`` 0 returns ``x`` and draws nothing.
    """
    if jitter <= 0:
        return x
    u = torch.rand(len(x), 2, generator=generator, dtype=torch.float64).to(x.device, x.dtype)
    gamma = torch.exp((2 * u[:, 0] - 1) * math.log1p(jitter)).view(-1, 1, 1, 1)
    contrast = (1 + (u[:, 1] - 0.5) * jitter).view(-1, 1, 1, 1)
    x01 = (x * std + mean).clamp(0.0, 1.0)
    return ((x01 ** gamma) * contrast).clamp(0.0, 1.0).sub(mean).div(std)


def crop_origins(masks: Tensor | None, has_mask: Tensor, size: int, crop: int, lesion_prob: float,
                 generator: torch.Generator) -> list[tuple[int, int]]:
    """The (top, left) of a ``crop``² square in each ``size``² sample.

    A sample with a lesion mask gets, with probability ``lesion_prob``, a crop that holds a
    lesion pixel drawn at random (placed at a random spot away from the crop's edge), so that the
    few lesion pixels of a batch are not left to chance; every other crop is placed uniformly.
    """
    span = size - crop
    out = []
    for k in range(len(has_mask)):
        u = torch.rand(3, generator=generator)
        top = int(u[0] * (span + 1)) if span > 0 else 0
        left = int(u[1] * (span + 1)) if span > 0 else 0
        if masks is not None and bool(has_mask[k]) and float(u[2]) < lesion_prob:
            ys, xs = torch.nonzero(masks[k, 0] > 0.5, as_tuple=True)
            if len(ys):
                j = int(torch.randint(0, len(ys), (1,), generator=generator))
                margin = crop // 8
                off = torch.randint(margin, max(margin + 1, crop - margin), (2,), generator=generator)
                top = min(max(int(ys[j]) - int(off[0]), 0), span)
                left = min(max(int(xs[j]) - int(off[1]), 0), span)
        out.append((top, left))
    return out


def crop_batch(x: Tensor, origins: list[tuple[int, int]], crop: int) -> Tensor:
    """The ``crop``² squares of (N, C, H, W) at ``origins``."""
    return torch.stack([x[k, :, top:top + crop, left:left + crop] for k, (top, left) in enumerate(origins)])


def crop_labels(masks: Tensor, has_mask: Tensor, labels: Tensor) -> Tensor:
    """A crop's label: lesion when it holds part of a lesion box (any mask pixel above ½), normal
    when it holds none; a sample without a mask keeps its image label (nothing says where its
    lesion is)."""
    holds = (masks.flatten(1) > 0.5).any(dim=1).to(labels.dtype)
    return torch.where(has_mask.to(torch.bool), holds, labels)
