"""Preprocessing as the docs promise it, so that breaking a step fails a test.

The classifier (classifier/preprocess.py, docs/experiments.md): intensities mapped by the image's
own 0.5–99.5 percentiles to [0, 1] and clipped (robust to bit depth), the longer side resized to
the input size keeping the aspect ratio, centred on a square of background, standardised as
(x − 0.5) / 0.25; prepared arrays cached by content hash and settings.

The GAN's patches (patches/intensity.py, docs/synthesis.md): x = 2 (v − lo) / (hi − lo) − 1 over
the radiograph's *possible* value range, so a pixel value means the same model input whatever
else the patch holds; patches are resized with an antialiased filter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lesion_studio.classifier.preprocess import (
    BACKGROUND,
    PreparedCache,
    Preprocessing,
    normalise_intensity,
    prepare,
)
from lesion_studio.patches.intensity import resize_patch, to_unit_range


def _ramp(h: int = 120, w: int = 90, top: float = 4000.0) -> np.ndarray:
    return np.linspace(0, top, h * w).reshape(h, w).astype(np.float32)


def test_intensities_are_mapped_by_the_images_own_half_percent_percentiles() -> None:
    assert (Preprocessing().low_percentile, Preprocessing().high_percentile) == (0.5, 99.5)
    img = _ramp()
    lo, hi = np.percentile(img, [0.5, 99.5])  # the image is small: every pixel is in the sample
    got = normalise_intensity(img, Preprocessing(64))
    np.testing.assert_allclose(got, np.clip((img - lo) / (hi - lo), 0, 1), atol=1e-6)
    assert got.min() == 0.0 and got.max() == 1.0
    assert np.mean(got == 0.0) == pytest.approx(0.005, abs=0.002)  # the darkest 0.5 % are clipped
    assert np.mean(got == 1.0) == pytest.approx(0.005, abs=0.002)
    flat = normalise_intensity(np.full((20, 20), 7.0), Preprocessing(64))
    assert np.array_equal(flat, np.zeros((20, 20)))  # no range: all background, not a division by zero


def test_the_same_image_at_another_bit_depth_prepares_alike() -> None:
    rng = np.random.default_rng(0)
    img8 = rng.integers(0, 256, (150, 100)).astype(np.uint8)
    img16 = img8.astype(np.uint16) * 257  # the same picture, 16-bit
    img12 = (img8.astype(np.uint16) * 16) + 3  # 12-bit with an offset
    a, b, c = (prepare(x, Preprocessing(48)) for x in (img8, img16, img12))
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a, c, atol=1e-5)


def test_prepare_centres_the_resized_image_on_a_background_square_and_standardises() -> None:
    img = np.zeros((200, 100), np.float32)  # three bands: dark, mid-grey, bright
    img[70:130], img[130:] = 0.5, 1.0
    out = prepare(img, Preprocessing(64))
    assert out.shape == (64, 64) and out.dtype == np.float32
    assert BACKGROUND == -2.0  # (0 − 0.5) / 0.25: black after standardisation
    cols = np.flatnonzero(np.any(out != BACKGROUND, axis=0))
    # 100 px wide at 200 px high → 32 of 64 columns, centred: 16 background columns on each side
    assert (cols[0], cols[-1]) == (16, 47)
    assert np.all(out[:, :16] == BACKGROUND) and np.all(out[:, 48:] == BACKGROUND)
    # standardised: [0, 1] becomes (x − 0.5) / 0.25, so the bands read −2, 0 and 2
    assert np.allclose(out[5:18, 20:44], -2.0, atol=1e-5)
    assert np.allclose(out[26:38, 20:44], 0.0, atol=1e-5)
    assert np.allclose(out[46:60, 20:44], 2.0, atol=1e-5)
    wide = prepare(img.T.copy(), Preprocessing(64))
    rows = np.flatnonzero(np.any(wide != BACKGROUND, axis=1))
    assert (rows[0], rows[-1]) == (16, 47)


def test_the_prepared_cache_gives_what_prepare_gives_and_keys_by_settings(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from PIL import Image

    from lesion_studio.classifier import preprocess

    path = tmp_path / "img.png"
    Image.fromarray((_ramp(80, 60, 255.0)).astype(np.uint8)).save(path)
    prep = Preprocessing(32)
    cache = PreparedCache(prep, tmp_path / "cache")
    got = cache.get("key1", path)
    want = prepare(np.asarray(Image.open(path)), prep)
    assert got.dtype == np.float16 and got.shape == (32, 32)
    np.testing.assert_allclose(got.astype(np.float32), want, atol=2e-3)
    assert (tmp_path / "cache" / prep.tag / "key1.npy").is_file()
    other = PreparedCache(Preprocessing(48), tmp_path / "cache")  # other settings: another folder
    assert other.get("key1", path).shape == (48, 48) and Preprocessing(48).tag != prep.tag

    def no_decoding(*_a, **_k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("decoded again although the prepared array is on disk")

    monkeypatch.setattr(preprocess, "prepare_file", no_decoding)
    again = PreparedCache(prep, tmp_path / "cache").get("key1", path)  # a new process: read from disk
    assert np.array_equal(again, got)


# ---------------------------------------------------------------------------- the GAN's patches
def test_a_pixel_value_means_the_same_model_input_whatever_the_patch_holds() -> None:
    vr = (0.0, 4095.0)
    for patch in (np.full((4, 4), 1000, np.uint16), np.array([[1000, 0], [4095, 2000]], np.uint16),
                  np.array([[1000, 1001], [1002, 1003]], np.uint16)):
        assert to_unit_range(patch, vr)[0, 0] == pytest.approx(2 * 1000 / 4095 - 1, abs=1e-6)
    assert to_unit_range(np.array([0, 4095]), vr).tolist() == [-1.0, 1.0]
    signed = to_unit_range(np.array([-2048, 0, 2047], np.int16), (-2048.0, 2047.0))
    assert signed[0] == -1.0 and signed[2] == 1.0 and signed[1] == pytest.approx(2 * 2048 / 4095 - 1, abs=1e-6)


def test_patches_are_resized_with_an_antialiasing_filter() -> None:
    checker = (np.indices((64, 64)).sum(axis=0) % 2).astype(np.float32)  # one-pixel checkerboard
    small = resize_patch(checker, 16, 16)
    assert small.shape == (16, 16)
    assert np.all(np.abs(small - 0.5) < 0.05)  # averaged to grey, not aliased to black or white
    stripe = np.zeros((64, 64), np.float32)
    stripe[:, 30:34] = 1.0
    up = resize_patch(resize_patch(stripe, 32, 32), 64, 64)
    assert up[:, 31:33].mean() > 0.5 and up[:, :20].max() < 0.05  # where it was, not moved
