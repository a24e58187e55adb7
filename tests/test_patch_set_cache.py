"""The prepared patch set is cached whole, keyed by what the patches depend on (issue 24).

A second GAN start with nothing changed must load one file: no decode and not one per-image cache
read. Any edit the patches depend on (a box, an exclusion flag, a label, a setting) must miss, and
the set prepared then must reflect the edit.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from lesion_studio.patches import dataset, set_cache
from lesion_studio.patches.dataset import PatchParams, build_patch_set
from lesion_studio.store.records import Box

PARAMS = PatchParams(resolution=32, variants=2, seed=1)


@pytest.fixture
def counted(demo_project, monkeypatch):  # noqa: ANN001, ANN201
    """The demo project, with decodes (image opens) and per-image cache look-ups counted."""
    calls: Counter[str] = Counter()
    opened = demo_project.open_radiograph
    per_image = dataset._cached

    def open_radiograph(image_id: int):  # noqa: ANN202
        calls["decode"] += 1
        return opened(image_id)

    def cached(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["per-image"] += 1
        return per_image(*args, **kwargs)

    monkeypatch.setattr(demo_project, "open_radiograph", open_radiograph)
    monkeypatch.setattr(dataset, "_cached", cached)
    return demo_project, calls


def _build(project, calls: Counter, **kw):  # noqa: ANN001, ANN003, ANN202
    calls.clear()
    return build_patch_set(project, body_parts=["femur"], params=kw.pop("params", PARAMS), **kw)


def test_the_second_start_loads_the_whole_set_without_decoding(counted) -> None:  # noqa: ANN001
    project, calls = counted
    events = []
    first = _build(project, calls)
    assert calls["decode"] == calls["per-image"] > 0  # a cold cache decodes every source image
    (stored,) = [d for d in (project.folder / "cache" / set_cache.FOLDER).iterdir() if d.is_dir()]
    assert sorted(p.name for p in stored.iterdir()) == ["lesion.npy", "meta.json", "normal.npy", "origins.npz"]

    again = _build(project, calls, progress=events.append)
    assert calls == Counter()  # one file: no decode, no per-image look-up
    np.testing.assert_array_equal(again.lesion, first.lesion)
    np.testing.assert_array_equal(again.normal, first.normal)
    assert isinstance(again.lesion, np.memmap) and not again.lesion.flags.writeable  # read lazily, never changed
    assert again.lesion_info == first.lesion_info and again.normal_info == first.normal_info
    assert again.summary() == first.summary()
    np.testing.assert_array_equal(again.batch(3, 2)[0], first.batch(3, 2)[0])
    assert events[-1].stage == "patches" and events[-1].done == events[-1].total == \
        first.summary()["lesion"]["images"] + first.summary()["normal"]["images"]


def test_a_box_edit_misses_and_the_new_set_has_the_new_box(counted) -> None:  # noqa: ANN001
    project, calls = counted
    first = _build(project, calls)
    lesion = project.images(label="lesion", body_parts=["femur"], include_excluded=False)[0]
    box = project.boxes(lesion.id)[0]
    moved = Box(box.box.x0 + 6, box.box.y0, box.box.x1 + 6, box.box.y1)
    project.update_box(box.id, moved)

    edited = _build(project, calls)
    assert calls["per-image"] > 0 and calls["decode"] >= 1  # missed: the edited image is cut again
    assert edited.lesion_info != first.lesion_info
    assert _build(project, calls).lesion_info == edited.lesion_info and calls == Counter()  # cached again


def test_an_exclusion_or_label_change_misses(counted) -> None:  # noqa: ANN001
    project, calls = counted
    first = _build(project, calls)
    normal = project.images(label="normal", body_parts=["femur"], include_excluded=False)[0]
    project.update_image(normal.id, exclusions=("hardware",))

    excluded = _build(project, calls)
    assert calls["per-image"] > 0  # missed the set (the other images still come from their own cache)
    assert calls["decode"] == 0
    assert normal.id in {p.image_id for p in first.normal_info}
    assert normal.id not in {p.image_id for p in excluded.normal_info}

    project.update_image(normal.id, exclusions=())
    back = _build(project, calls)
    assert calls == Counter()  # exactly the first sources again: the first set, still on disk
    np.testing.assert_array_equal(back.normal, first.normal)

    other = project.images(label="normal", body_parts=["femur"], include_excluded=False)[1]
    project.update_image(other.id, label="unreviewed")
    relabelled = _build(project, calls)
    assert calls["per-image"] > 0  # another set: that image is no longer normal
    assert other.id not in {p.image_id for p in relabelled.normal_info}


def test_settings_filters_and_picked_patches_are_part_of_the_key(counted) -> None:  # noqa: ANN001
    project, calls = counted
    _build(project, calls)
    _build(project, calls, params=PatchParams(resolution=32, variants=2, seed=2))
    assert calls["per-image"] > 0
    _build(project, calls, splits=["train"])
    assert calls["per-image"] > 0
    normal = project.images(label="normal", body_parts=["femur"], include_excluded=False)[0]
    project.add_normal_patch(normal.id, Box(10, 10, 60, 60))
    picked = _build(project, calls)
    assert calls["per-image"] > 0 and calls["decode"] >= 1
    assert any(p.image_id == normal.id and p.window == Box(10, 10, 60, 60) for p in picked.normal_info)


def test_old_sets_are_pruned_and_a_damaged_set_is_prepared_again(counted) -> None:  # noqa: ANN001
    project, calls = counted
    for seed in range(set_cache.KEEP + 2):
        _build(project, calls, params=PatchParams(resolution=32, variants=1, seed=seed))
    folder = project.folder / "cache" / set_cache.FOLDER
    sets = [d for d in folder.iterdir() if d.is_dir()]
    assert len(sets) == set_cache.KEEP
    newest = max(sets, key=lambda p: p.stat().st_mtime)
    (newest / "normal.npy").write_bytes(b"not an array")
    again = _build(project, calls, params=PatchParams(resolution=32, variants=1, seed=set_cache.KEEP + 1))
    assert calls["per-image"] > 0 and len(again.lesion) > 0
    _build(project, calls, params=PatchParams(resolution=32, variants=1, seed=set_cache.KEEP + 1))
    assert calls == Counter()  # the damaged set was replaced by a good one


def test_the_estimate_includes_preparation_and_knows_a_cached_set(demo_project) -> None:  # noqa: ANN001
    from lesion_studio.patches.set_cache import REFERENCE_SECONDS_PER_IMAGE, preparation_estimate

    before = preparation_estimate(demo_project, body_parts=["femur"], splits=None, params=PARAMS)
    assert not before.cached and before.images > 0 and not before.measured
    assert before.seconds == pytest.approx(before.images * REFERENCE_SECONDS_PER_IMAGE)
    ps = build_patch_set(demo_project, body_parts=["femur"], params=PARAMS)
    after = preparation_estimate(demo_project, body_parts=["femur"], splits=None, params=PARAMS)
    assert after.cached and after.images == before.images
    assert after.seconds == set_cache.LOAD_SECONDS
    assert after.measured  # the decoding rate of the first build was kept for the next estimate
    other = preparation_estimate(demo_project, body_parts=["femur"], splits=None,
                                 params=PatchParams(resolution=32, variants=2, seed=9))
    assert not other.cached and other.seconds > 0 and len(ps.lesion) > 0
