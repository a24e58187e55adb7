"""Differentiable augmentation of the discriminators' inputs (DiffAugment, Zhao et al. 2020).

A few hundred lesion boxes is the limited-data case DiffAugment was made for: a discriminator that
sees the same real patches thousands of times memorises them, and its gradients stop teaching the
generator anything general. DiffAugment applies the *same kind* of random, differentiable
transform to real and fake images every time the discriminator looks at them (in its own step and
in the generator's adversarial loss), so neither side can win by exploiting what the transforms
destroy, and the generator still gets gradients through them.

For radiograph patches in [-1, 1] the policies are:

- ``brightness``: add one offset per patch, uniform in ±0.25 (an eighth of the range). This is
  the lever against the "dark square": a discriminator that cannot rely on a patch's overall
  brightness stops rewarding a generator for darkening whole windows.
- ``contrast``: scale each patch about its mean by a factor in [0.7, 1.3].
- ``translation``: shift each patch by up to 1/8 of its side (zero-filled).
- ``cutout``: blank one square of half the side at a random place per patch.

Every draw comes from a seeded generator per iteration, so a resumed run replays the same
augmentations.
"""

from __future__ import annotations

from lesion_studio.extras import require

torch = require("torch", "GAN training")



def _uniform(n: int, lo: float, hi: float, g: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return (torch.rand(n, 1, 1, 1, generator=g) * (hi - lo) + lo).to(like.device, like.dtype)


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], g: torch.Generator) -> torch.Tensor:
    """``x`` (N, C, H, W) transformed by each policy in turn; differentiable in ``x``."""
    n, _, h, w = x.shape
    for name in policy:
        if name == "brightness":
            x = x + _uniform(n, -0.25, 0.25, g, x)
        elif name == "contrast":
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * _uniform(n, 0.7, 1.3, g, x) + mean
        elif name == "translation":
            sy, sx = max(1, h // 8), max(1, w // 8)
            dy = torch.randint(-sy, sy + 1, (n,), generator=g).tolist()
            dx = torch.randint(-sx, sx + 1, (n,), generator=g).tolist()
            padded = torch.nn.functional.pad(x, (sx, sx, sy, sy))
            x = torch.stack([padded[i, :, sy - dy[i]:sy - dy[i] + h, sx - dx[i]:sx - dx[i] + w] for i in range(n)])
        elif name == "cutout":
            ch, cw = max(1, h // 2), max(1, w // 2)
            ys = torch.randint(0, h - ch + 1, (n,), generator=g).tolist()
            xs = torch.randint(0, w - cw + 1, (n,), generator=g).tolist()
            mask = torch.ones(n, 1, h, w, dtype=x.dtype, device=x.device)
            for i in range(n):
                mask[i, :, ys[i]:ys[i] + ch, xs[i]:xs[i] + cw] = 0
            x = x * mask
    return x
