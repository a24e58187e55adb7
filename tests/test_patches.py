"""Patch-making: exact intensity round trips, window sampling properties, the cached PatchSet."""

from __future__ import annotations

import numpy as np
import pytest

from lesion_studio.errors import LesionStudioError
from lesion_studio.patches.intensity import bit_range, from_unit_range, resize_patch, to_unit_range
from lesion_studio.patches.sampling import (
    air_fraction,
    balanced_order,
    image_levels,
    is_foreground,
    lesion_window,
    normal_windows,
    relative_sides,
    window_air_fractions,
)
from lesion_studio.store.records import Box


@pytest.mark.parametrize(("bits", "dtype", "signed"), [(8, np.uint8, False), (10, np.uint16, False),
                                                        (12, np.uint16, False), (16, np.uint16, False),
                                                        (12, np.int16, True)])
def test_unit_range_round_trip_is_exact(bits: int, dtype: type, signed: bool) -> None:
    lo, hi = bit_range(bits, signed)
    values = np.arange(lo, hi + 1, dtype=np.float64).astype(dtype)
    x = to_unit_range(values, (lo, hi))
    assert x.dtype == np.float32 and x.min() == -1.0 and x.max() == 1.0
    back = from_unit_range(x, (lo, hi), dtype)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, values)
    assert from_unit_range(np.array([5.0, -5.0]), (lo, hi), dtype).tolist() == [hi, lo]  # clipped


def test_resize_patch_shapes() -> None:
    x = np.random.default_rng(0).random((90, 70)).astype(np.float32)
    assert resize_patch(x, 32, 32).shape == (32, 32)
    assert resize_patch(x, 90, 70) is not x
    assert abs(resize_patch(x, 180, 140).mean() - x.mean()) < 0.01


def test_lesion_window_contains_box_within_factors_inside_image_and_seeded() -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        w, h = int(rng.integers(100, 400)), int(rng.integers(100, 400))
        bw, bh = rng.uniform(5, 40, 2)
        x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        box = Box(x0, y0, x0 + bw, y0 + bh)
        win = lesion_window(box, w, h, rng, (1.5, 2.5), jitter=1.0)
        bx0, by0, bx1, by1 = box.as_ints()
        assert win.x0 <= bx0 and win.y0 <= by0 and win.x1 >= bx1 and win.y1 >= by1
        assert win.x0 >= 0 and win.y0 >= 0 and win.x1 <= w and win.y1 <= h
        assert win.width == win.height and float(win.x0).is_integer()
        longer = max(bw, bh)
        assert 1.5 * longer - 1 <= win.width <= 2.5 * longer + 1
    big = lesion_window(Box(10, 10, 60, 60), 80, 120, rng, (3, 4))
    assert big.width == 80  # shrunk to the image's shorter side, still inside
    a = [lesion_window(Box(50, 50, 70, 80), 300, 300, np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    centres = {lesion_window(Box(140, 140, 160, 160), 300, 300, rng, (3, 3), 1.0).x0 for _ in range(30)}
    assert len(centres) > 5  # jittered, not always centred
    with pytest.raises(LesionStudioError):
        lesion_window(Box(400, 400, 420, 420), 300, 300, rng)


def test_normal_windows_match_sizes_and_skip_air_and_text() -> None:
    img = np.zeros((200, 300), np.uint16)
    img[:, 100:200] = 2000 + np.random.default_rng(0).integers(0, 200, (200, 100))  # a "bone" band
    img[5:20, 5:60] = 4095  # burned-in text in the air
    fracs = relative_sides([(Box(0, 0, 40, 40), 400, 400), (Box(0, 0, 60, 60), 400, 400)])
    assert fracs.tolist() == [0.1, 0.15]
    wins = normal_windows(img, 20, np.random.default_rng(3), fracs)
    assert len(wins) == 20
    for w in wins:
        assert w.width in (20, 30) and w.x0 >= 100 - 0.3 * w.width and w.x1 <= 200 + 0.3 * w.width
    assert wins == normal_windows(img, 20, np.random.default_rng(3), fracs)
    assert normal_windows(np.zeros((50, 50), np.uint16), 3, np.random.default_rng(0), fracs, max_tries=5) == []
    assert not is_foreground(img[0:30, 0:60], 100, 4095)
    with pytest.raises(LesionStudioError):
        normal_windows(img, 1, np.random.default_rng(0), [])


def _hand_like_image() -> np.ndarray:
    """A bright 'limb' filling the left 60% of a dark field: windows near its edge hold air."""
    rng = np.random.default_rng(1)
    img = (50 + rng.integers(0, 20, (300, 400))).astype(np.uint16)
    img[:, :240] = 2000 + rng.integers(0, 300, (300, 240))
    return img


def test_air_matched_normal_windows_follow_the_lesion_windows_air_shares() -> None:
    img = _hand_like_image()
    air, _text = image_levels(img)
    fracs = np.full(4, 0.2)
    # lesion windows half in air (a fracture at the skin line): the normal windows must be too
    half = normal_windows(img, 30, np.random.default_rng(0), fracs, air_targets=np.full(4, 0.5))
    assert len(half) >= 20  # a 3-pixel-wide band of centres in 340: most draws find one
    shares = window_air_fractions(img, half)
    assert np.all(np.abs(shares - 0.5) <= 0.03 + 1e-9)
    assert np.all([w.x0 < 240 < w.x1 for w in half])  # every one straddles the limb's edge
    # the tissue rule never returns such windows: it is what taught the generator to paint air
    tissue = normal_windows(img, 30, np.random.default_rng(0), fracs)
    assert max(air_fraction(img[int(w.y0):int(w.y1), int(w.x0):int(w.x1)], air) for w in tissue) <= 0.3
    # air share 0 targets stay inside the limb; windows all in air are never kept
    inside = normal_windows(img, 10, np.random.default_rng(0), fracs, air_targets=np.zeros(4))
    assert inside and all(w.x1 <= 240 + 0.03 * w.width for w in inside)
    assert normal_windows(img, 5, np.random.default_rng(0), fracs, air_targets=np.ones(4), max_tries=5) == []
    with pytest.raises(LesionStudioError, match="one air share per"):
        normal_windows(img, 1, np.random.default_rng(0), fracs, air_targets=[0.5])


def test_patch_set_matches_air_and_saves_the_lesion_windows(demo_project) -> None:  # noqa: ANN001
    from lesion_studio.patches.dataset import PatchParams, build_patch_set

    ps = build_patch_set(demo_project, body_parts=["femur"], params=PatchParams(resolution=32, variants=2),
                         cache="none")
    stats = ps.summary()["lesion_windows"]
    assert len(stats["side_fractions"]) == len(stats["air_fractions"]) == len(ps.lesion)
    assert all(0.0 <= a <= 1.0 for a in stats["air_fractions"])
    tissue = build_patch_set(demo_project, body_parts=["femur"],
                             params=PatchParams(resolution=32, variants=2, normal_match="tissue"), cache="none")
    assert not np.array_equal(tissue.normal, ps.normal)  # the rule is part of the patch identity
    with pytest.raises(LesionStudioError, match="normal_match"):
        PatchParams(normal_match="bone")


def test_balanced_order_repeats_the_smaller_domain() -> None:
    order = balanced_order(3, 10, np.random.default_rng(0))
    assert len(order) == 10 and sorted(order[:9].tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_patch_set_is_balanced_cached_filtered_and_seeded(demo_project) -> None:  # noqa: ANN001
    from lesion_studio.patches.dataset import PatchParams, build_patch_set

    params = PatchParams(resolution=32, variants=2, seed=5)
    ps = build_patch_set(demo_project, body_parts=["femur"], params=params)
    s = ps.summary()
    assert set(s["lesion"]["body_parts"]) == {"femur"} and set(s["normal"]["body_parts"]) == {"femur"}
    assert ps.lesion.shape[1:] == (32, 32) and ps.lesion.dtype == np.float16
    assert ps.lesion.min() >= -1.0 and ps.lesion.max() <= 1.0
    cached = list((demo_project.folder / "cache" / "patches").glob("*.npz"))
    assert len(cached) == s["lesion"]["images"] + s["normal"]["images"]

    # one epoch: each domain contributes epoch_length patches; the smaller one is repeated evenly
    epoch = ps.epoch_length
    seen_l, seen_n = [], []
    for step in range(epoch):
        x_l, x_h = ps.batch(step, 1, augment=False)
        assert x_l.shape == x_h.shape == (1, 1, 32, 32)
        seen_l.append(x_l[0, 0].tobytes())
        seen_n.append(x_h[0, 0].tobytes())
    assert len(seen_l) == len(seen_n)
    assert len(set(seen_l)) == len({p.tobytes() for p in ps.lesion})

    again = build_patch_set(demo_project, body_parts=["femur"], params=params)  # from the cache
    np.testing.assert_array_equal(again.lesion, ps.lesion)
    np.testing.assert_array_equal(again.batch(3, 2)[1], ps.batch(3, 2)[1])
    # two ranks of batch 1 see what one process of batch 2 sees
    both = ps.batch(4, 2, augment=False)[0]
    np.testing.assert_array_equal(ps.batch(4, 1, rank=1, world_size=2, augment=False)[0][0], both[1])
    other = build_patch_set(demo_project, body_parts=["femur"], params=PatchParams(resolution=32, variants=2,
                                                                                    seed=6), cache="memory")
    assert not np.array_equal(other.lesion, ps.lesion)
    with pytest.raises(LesionStudioError, match="no lesion boxes"):
        build_patch_set(demo_project, body_parts=["skull"], params=params)
