"""Where training examples come from (docs/synthesis.md, "Patches"; docs/experiments.md's
class-balanced sampling), checked so that breaking a rule fails.

- A lesion window is centred on its box and shifted by at most ``jitter`` × the free margin, evenly
  to either side (the older test only checked that the box lies inside the window).
- A picked normal patch becomes the square centred on it; automatic normal windows keep off the
  boxes they are told to avoid.
- Excluded images (hardware, pediatric, confounder, other) never give the GAN a patch: each
  reason is set on an image that gave patches before, and its patches must be gone after.
- Batches are mirrored left-right about half the time, seeded; a changed patch parameter is a new
  cache entry; the classifier's sampler draws each class half the time.
"""

from __future__ import annotations

import numpy as np
import pytest

from lesion_studio.patches.sampling import lesion_window, normal_windows, patch_window
from lesion_studio.store.records import EXCLUSION_REASONS, Box


def _free_box(rng: np.random.Generator, w: int, h: int) -> Box:
    """A box far enough from the image's edges that its window never has to be moved inside."""
    bw, bh = rng.uniform(6, 30, 2)
    x0, y0 = rng.uniform(120, w - 120 - bw), rng.uniform(120, h - 120 - bh)
    return Box(x0, y0, x0 + bw, y0 + bh)


def _offset(win: Box, box: Box) -> tuple[float, float]:
    """Window centre minus the centre of the box's integer pixel cover."""
    x0, y0, x1, y1 = box.as_ints()
    return win.center[0] - (x0 + x1) / 2.0, win.center[1] - (y0 + y1) / 2.0


def test_without_jitter_a_lesion_window_is_centred_on_its_box() -> None:
    rng = np.random.default_rng(4)
    for _ in range(300):
        w, h = int(rng.integers(300, 600)), int(rng.integers(300, 600))
        box = _free_box(rng, w, h)
        win = lesion_window(box, w, h, rng, (1.5, 3.0), jitter=0.0)
        dx, dy = _offset(win, box)
        assert abs(dx) <= 0.5 and abs(dy) <= 0.5, (box, win)  # only integer rounding moves it


def test_jitter_shifts_a_window_within_the_free_margin_evenly_to_both_sides() -> None:
    rng = np.random.default_rng(5)
    for jitter in (0.25, 1.0):
        shifts = []
        for _ in range(400):
            box = _free_box(rng, 500, 500)
            win = lesion_window(box, 500, 500, rng, (2.0, 3.0), jitter=jitter)
            x0, y0, x1, y1 = box.as_ints()
            free_x, free_y = (win.width - (x1 - x0)) / 2.0, (win.height - (y1 - y0)) / 2.0
            dx, dy = _offset(win, box)
            assert abs(dx) <= jitter * free_x + 1.0 and abs(dy) <= jitter * free_y + 1.0
            shifts.append((dx / free_x, dy / free_y))
        rel = np.array(shifts)
        # U(-1, 1) × jitter: reaches most of the allowed range, centred on zero.
        assert np.abs(rel).max() > 0.8 * jitter
        assert np.all(np.abs(rel.mean(axis=0)) < 0.1 * jitter), rel.mean(axis=0)
        assert np.all(rel.std(axis=0) > 0.4 * jitter)  # std of U(-j, j) is 0.577 j


def test_a_picked_normal_patch_becomes_the_square_centred_on_it() -> None:
    for box in (Box(100, 50, 140, 70), Box(30.5, 40.2, 50.5, 100.2), Box(200, 200, 264, 264)):
        win = patch_window(box, 400, 400)
        assert win.width == win.height == np.ceil(max(box.width, box.height))
        assert abs(win.center[0] - box.center[0]) <= 0.5 and abs(win.center[1] - box.center[1]) <= 0.5
    moved = patch_window(Box(0, 0, 20, 60), 400, 400)  # at the edge: moved inside, still square
    assert (moved.x0, moved.y0, moved.width) == (0, 0, 60)


def test_automatic_normal_windows_keep_off_the_boxes_they_avoid() -> None:
    img = np.full((240, 240), 2000, np.uint16) + np.random.default_rng(0).integers(0, 200, (240, 240)).astype(np.uint16)
    avoid = [Box(60, 60, 180, 180)]
    wins = normal_windows(img, 30, np.random.default_rng(1), [0.15], avoid=avoid)
    assert len(wins) == 30
    assert not any(w.intersects(avoid[0]) for w in wins)
    free = normal_windows(img, 30, np.random.default_rng(1), [0.15])
    assert any(w.intersects(avoid[0]) for w in free)  # without the rule they would land there


@pytest.mark.parametrize("reason", EXCLUSION_REASONS)
def test_an_excluded_image_gives_the_gan_no_patch(demo_project, reason: str) -> None:  # noqa: ANN001
    from lesion_studio.patches.dataset import PatchParams, build_patch_set

    params = PatchParams(resolution=16, variants=1, normal_source="auto")
    parts = ["femur"]

    def sources() -> tuple[set[int], set[int]]:
        ps = build_patch_set(demo_project, body_parts=parts, splits=["train"], params=params, cache="none")
        return {p.image_id for p in ps.lesion_info}, {p.image_id for p in ps.normal_info}

    lesion_ids, normal_ids = sources()
    already = {r.id for r in demo_project.images(body_parts=parts) if r.excluded}
    assert lesion_ids and normal_ids and not (lesion_ids | normal_ids) & already
    lesion_id, normal_id = min(lesion_ids), min(normal_ids)  # both gave patches so far
    for image_id in (lesion_id, normal_id):
        demo_project.update_image(image_id, exclusions=(reason,))
    lesion_after, normal_after = sources()
    assert lesion_id not in lesion_after and normal_id not in normal_after
    assert lesion_after == lesion_ids - {lesion_id} and normal_after == normal_ids - {normal_id}


def _patch_set(n_lesion: int = 6, n_normal: int = 10, seed: int = 0):  # noqa: ANN202
    from lesion_studio.patches.dataset import PatchParams, PatchSet

    rng = np.random.default_rng(0)
    lesion = rng.uniform(-1, 1, (n_lesion, 8, 8)).astype(np.float16)
    normal = rng.uniform(-1, 1, (n_normal, 8, 8)).astype(np.float16)
    return PatchSet(lesion, normal, [], [], PatchParams(resolution=8, seed=seed))


def test_batches_are_mirrored_left_right_about_half_the_time_and_seeded() -> None:
    ps = _patch_set()
    mirrored = 0
    for step in range(200):
        plain = ps.batch(step, 2, augment=False)
        flipped = ps.batch(step, 2, augment=True)
        for p, f in zip(plain, flipped, strict=True):
            for k in range(2):
                same, mirror = np.array_equal(f[k], p[k]), np.array_equal(f[k, 0], p[k, 0, :, ::-1])
                assert same or mirror  # left-right only: never up-down, never anything else
                mirrored += mirror and not same
    assert 0.4 < mirrored / 800 < 0.6
    assert np.array_equal(ps.batch(7, 2)[0], ps.batch(7, 2)[0])  # seeded by (seed, step)
    other = _patch_set(seed=1)
    assert any(not np.array_equal(ps.batch(s, 2)[1], other.batch(s, 2)[1]) for s in range(10))


def test_a_patch_parameter_change_is_a_new_cache_entry(demo_project) -> None:  # noqa: ANN001
    from lesion_studio.patches.dataset import PatchParams, build_patch_set

    def lesions(**changes: float) -> np.ndarray:
        params = PatchParams(resolution=16, variants=1, normal_source="auto", **changes)
        return build_patch_set(demo_project, body_parts=["femur"], splits=["train"], params=params).lesion

    first = lesions(jitter=0.5)
    assert np.array_equal(lesions(jitter=0.5), first)  # read back from the disk cache
    assert not np.array_equal(lesions(jitter=0.0), first)  # not the cached windows of another jitter


def test_class_balanced_sampling_draws_each_class_half_the_time() -> None:
    torch = pytest.importorskip("torch")
    from lesion_studio.classifier.data import epoch_order

    labels = np.array([1] * 10 + [0] * 90)
    drawn = np.concatenate([epoch_order(labels, "sampler", torch.Generator().manual_seed(e)) for e in range(20)])
    assert len(drawn) == 2000 and 0.45 < labels[drawn].mean() < 0.55  # 10 % lesions, drawn half the time
    plain = epoch_order(labels, "none", torch.Generator().manual_seed(0))
    assert sorted(plain.tolist()) == list(range(100))  # a permutation: every image once
