"""Blending and paste-back properties (pure numpy)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lesion_studio.errors import LesionStudioError
from lesion_studio.store.records import Box
from lesion_studio.synthesis.blend import blend, blend_alpha, paste_back


@pytest.mark.parametrize("size", [(65, 65), (64, 48), (33, 100)])
def test_alpha_one_at_centre_zero_on_border_symmetric(size: tuple[int, int]) -> None:
    h, w = size
    a = blend_alpha(h, w, 2.0)
    assert a.dtype == np.float32 and a.shape == (h, w)
    assert a.max() <= 1.0 and a.min() >= 0.0
    if h % 2 and w % 2:
        assert a[h // 2, w // 2] == pytest.approx(1.0)
    else:
        assert a[h // 2, w // 2] > 0.99
    assert np.all(a[0] == 0) and np.all(a[-1] == 0) and np.all(a[:, 0] == 0) and np.all(a[:, -1] == 0)
    np.testing.assert_allclose(a, a[::-1], atol=1e-7)
    np.testing.assert_allclose(a, a[:, ::-1], atol=1e-7)
    if h == w:
        np.testing.assert_allclose(a, a.T, atol=1e-7)


@pytest.mark.parametrize("n", [0.5, 1.0, 2.0, 3.0, 8.0])
def test_alpha_values_follow_the_papers_cosine_window(n: float) -> None:
    """α(i, j) = cos(|i|^n·π/2)·cos(|j|^n·π/2), i and j evenly spaced over [−1, 1]: checked at every
    pixel of a 5 × 9 patch, where the positions are exactly ±1, ±0.75, ±0.5, ±0.25 and 0."""
    rows = [1.0, 0.5, 0.0, 0.5, 1.0]
    cols = [1.0, 0.75, 0.5, 0.25, 0.0, 0.25, 0.5, 0.75, 1.0]
    expected = np.array([[math.cos(i**n * math.pi / 2) * math.cos(j**n * math.pi / 2) for j in cols]
                         for i in rows])
    np.testing.assert_allclose(blend_alpha(5, 9, n), expected, rtol=0, atol=1e-6)


def test_alpha_at_known_points() -> None:
    """A few values worked out by hand, so the check does not rest on the same formula twice."""
    assert blend_alpha(5, 5, 1.0)[1, 1] == pytest.approx(0.5, abs=1e-6)  # cos²(π/4)
    assert blend_alpha(5, 5, 2.0)[1, 2] == pytest.approx(0.9238795, abs=1e-6)  # cos(π/8)
    assert blend_alpha(5, 5, 0.5)[2, 1] == pytest.approx(0.4440158, abs=1e-6)  # cos(√½·π/2)
    assert blend_alpha(3, 3, 7.0)[1, 1] == 1.0 and blend_alpha(3, 3, 7.0)[0, 1] == 0.0
    blended = blend(np.zeros((5, 5)), np.full((5, 5), 100.0), 1.0)  # α·translated + (1 − α)·source
    assert blended[1, 1] == pytest.approx(50.0, abs=1e-4) and blended[2, 2] == pytest.approx(100.0)


def test_larger_n_widens_the_plateau() -> None:
    plateaus = [(blend_alpha(101, 101, n) > 0.95).sum() for n in (0.5, 1, 2, 4, 8)]
    assert plateaus == sorted(plateaus) and plateaus[0] < plateaus[-1]
    inner = blend_alpha(101, 101, 1.0) <= blend_alpha(101, 101, 3.0) + 1e-7
    assert inner.all()


def test_large_n_approaches_hard_paste_and_identity_is_identity() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 4095, (64, 64)).astype(np.float32)
    trans = rng.uniform(0, 4095, (64, 64)).astype(np.float32)
    hard = blend(src, trans, 200.0)
    np.testing.assert_allclose(hard[2:-2, 2:-2], trans[2:-2, 2:-2], rtol=0, atol=1e-2)
    np.testing.assert_array_equal(blend(src, src, 2.0), src)
    image = rng.integers(0, 4096, (120, 100)).astype(np.uint16)
    box = Box(10, 20, 74, 84)
    same = paste_back(image, blend(image[20:84, 10:74], image[20:84, 10:74], 2.0), box)
    np.testing.assert_array_equal(same, image)


def test_alpha_is_cached_and_read_only() -> None:
    a = blend_alpha(256, 256, 2.0)
    assert blend_alpha(256, 256, 2.0) is a
    with pytest.raises(ValueError):
        a[0, 0] = 1.0
    with pytest.raises(LesionStudioError):
        blend_alpha(10, 10, 0.0)


def test_paste_back_changes_pixels_inside_the_box_only() -> None:
    image = np.full((50, 60), 100, np.uint16)
    patch = np.full((10, 20), 5000.7, np.float32)
    out = paste_back(image, patch, Box(5, 7, 25, 17))
    assert out.dtype == np.uint16 and image[8, 8] == 100  # the input is untouched
    changed = out != image
    assert changed[7:17, 5:25].all() and changed.sum() == 200
    assert out[10, 10] == 5001
    neg = paste_back(np.zeros((10, 10), np.uint8), np.full((4, 4), -3.0), Box(0, 0, 4, 4))
    assert neg.max() == 0
    edge = paste_back(image, np.full((10, 10), 7.0), Box(55, 45, 65, 55))  # partly outside: cut
    assert (edge != image).sum() == 25
    with pytest.raises(LesionStudioError):
        paste_back(image, patch, Box(0, 0, 5, 5))
    with pytest.raises(LesionStudioError):
        paste_back(image, np.zeros((5, 5)), Box(100, 100, 105, 105))
