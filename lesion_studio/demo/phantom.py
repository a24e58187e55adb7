"""Procedural radiographs of long bones, with lytic lesions whose boxes are known exactly.

The image is built as an X-ray is: attenuation is integrated along the beam, so a tubular bone
projects as a bright cortical rim (long chords through the shell) around a darker medullary
canal, inside a soft-tissue cylinder. Trabecular texture is band-limited noise in the medulla and
the epiphyses. A lesion is a lytic ellipse (attenuation removed) with a sclerotic rim (attenuation
added). The result is log-transformed like a CR detector, quantised to 12 bits and noised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lesion_studio.store.records import Box

BONES = {
    # body part: (shaft half-width as a fraction of image width, flare at the joint end, cortex fraction)
    "femur": (0.105, 0.55, 0.30),
    "tibia": (0.085, 0.65, 0.26),
    "humerus": (0.075, 0.50, 0.28),
}


@dataclass(frozen=True)
class PhantomCase:
    pixels: np.ndarray  # uint16, 12-bit, bone bright (MONOCHROME2 orientation)
    body_part: str
    view: str
    lesion_box: Box | None
    bone_box: Box  # where bone is, for placing normal patches on bone
    seed: int


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Gaussian-filtered white noise via the FFT, unit variance; ``scale`` is the blur sigma in px."""
    noise = rng.standard_normal(shape)
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    kernel = np.exp(-2.0 * (np.pi * scale) ** 2 * (fx**2 + fy**2))
    out = np.fft.irfft2(np.fft.rfft2(noise) * kernel, s=shape)
    return out / (out.std() + 1e-9)


def _chord(r: np.ndarray | float, d: np.ndarray) -> np.ndarray:
    """Length of a beam at distance ``d`` from the axis through a cylinder of radius ``r``."""
    return 2.0 * np.sqrt(np.clip(np.asarray(r) ** 2 - d**2, 0.0, None))


def generate_phantom(
    seed: int,
    *,
    body_part: str = "femur",
    lesion: bool = False,
    size: tuple[int, int] = (384, 320),
) -> PhantomCase:
    rng = np.random.default_rng(seed)
    h, w = size
    half_width, flare, cortex = BONES[body_part]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)

    angle = rng.uniform(-0.12, 0.12)
    cx = w * rng.uniform(0.42, 0.58)
    axis_x = cx + np.tan(angle) * (yy - h / 2)
    d = (xx - axis_x) * np.cos(angle)
    joint_at_top = rng.random() < 0.5
    joint_y = h * rng.uniform(0.02, 0.12) if joint_at_top else h * rng.uniform(0.88, 0.98)
    r0 = w * half_width * rng.uniform(0.9, 1.1)
    widening = 1.0 + flare * np.exp(-(((yy - joint_y) / (0.22 * h)) ** 2))
    r_out = r0 * widening
    r_in = r_out * (1.0 - cortex * (1.0 - 0.6 * (widening - 1.0) / flare))
    soft_r = r0 * rng.uniform(2.6, 3.4)

    texture = 0.5 * _smooth_noise(rng, size, 1.2) + 0.5 * _smooth_noise(rng, size, 3.0)
    soft = _chord(soft_r, d) * (1.0 + 0.05 * _smooth_noise(rng, size, 20.0))
    shell = _chord(r_out, d) - _chord(r_in, d)
    medulla = _chord(r_in, d)
    trabecular = (0.35 + 0.15 * (widening - 1.0) / flare) * (1.0 + 0.35 * texture)
    bone_attn = 1.0 * shell + trabecular * medulla

    lesion_box = None
    if lesion:
        # A lytic lesion in the medullary canal near the metaphysis, where bone tumours sit.
        ly = joint_y + (1 if joint_at_top else -1) * h * rng.uniform(0.12, 0.35)
        lx = cx + np.tan(angle) * (ly - h / 2) + rng.uniform(-0.3, 0.3) * r0
        a = r0 * rng.uniform(0.45, 0.95)
        b = a * rng.uniform(0.8, 1.6)
        theta = rng.uniform(0, np.pi)
        u = (xx - lx) * np.cos(theta) + (yy - ly) * np.sin(theta)
        v = -(xx - lx) * np.sin(theta) + (yy - ly) * np.cos(theta)
        rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        lytic = np.clip(1.15 - rho, 0.0, 1.0) ** 0.5
        rim = np.exp(-(((rho - 1.05) / 0.12) ** 2))
        depth = rng.uniform(0.65, 0.9)
        bone_attn = bone_attn * (1.0 - depth * lytic) + rng.uniform(0.25, 0.45) * r0 * rim * (bone_attn > 0)
        mask = (lytic > 0) | (rim > 0.2)
        ys, xs = np.nonzero(mask & (bone_attn >= 0))
        pad = 3.0
        lesion_box = Box(
            float(max(0, xs.min() - pad)), float(max(0, ys.min() - pad)),
            float(min(w, xs.max() + 1 + pad)), float(min(h, ys.max() + 1 + pad)),
        )

    # Chords scale with the bone's size; normalise so every bone uses the detector's range.
    attenuation = 0.30 * soft / (2.0 * soft_r) + 0.80 * bone_attn / (2.0 * r0)
    # Detector: exposure falls off exponentially; CR stores roughly the log of exposure, so the
    # stored value is linear in attenuation. Add a heel-effect gradient and quantum noise.
    heel = 1.0 + 0.08 * (xx / w - 0.5)
    signal = attenuation * heel + 0.08
    signal += rng.normal(0.0, 0.012, size) + 0.01 * _smooth_noise(rng, size, 1.0)
    pixels = np.clip(signal / 1.45 * 4095.0, 0, 4095).astype(np.uint16)

    xs = np.nonzero((np.abs(d) < r_out).any(axis=0))[0]
    bone_box = Box(float(xs.min()), 0.0, float(xs.max() + 1), float(h))
    view = "ap" if rng.random() < 0.6 else "lateral"
    return PhantomCase(pixels, body_part, view, lesion_box, bone_box, seed)
