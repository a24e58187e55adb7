"""Split assignment (stratified, grouped, seeded) and the demo generator."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from lesion_studio.dataset.splits import plan_splits
from lesion_studio.demo import build_demo_project, generate_phantom
from lesion_studio.io import open_radiograph
from lesion_studio.store import Project
from lesion_studio.store.records import ImageRecord


def _records(n: int, *, groups: int | None = None, seed: int = 0) -> list[ImageRecord]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        out.append(ImageRecord(
            id=i + 1, path=f"{i}.png", abs_path=Path(f"{i}.png"), name=f"{i}.png", sha256="", width=1,
            height=1, modality="", bits_stored=8, body_part=str(rng.choice(["hand", "leg", "hip"])), view="",
            label=str(rng.choice(["lesion", "normal"], p=[0.25, 0.75])), split="unassigned",
            group_key=f"p{rng.integers(groups)}" if groups else "", exclusions=(), exclusion_note="",
            notes="", lesion_type="",
        ))
    return out


def test_splits_are_stratified_by_label_and_body_part() -> None:
    records = _records(2000)
    plan = plan_splits(records, (0.7, 0.15, 0.15), seed=1)
    assert len(plan) == 2000
    strata: dict = defaultdict(Counter)
    for r in records:
        strata[(r.label, r.body_part)][plan[r.id]] += 1
    for counts in strata.values():
        total = sum(counts.values())
        assert abs(counts["train"] / total - 0.7) < 0.02
        assert abs(counts["test"] / total - 0.15) < 0.02


def test_groups_never_span_splits() -> None:
    records = _records(1500, groups=300)
    plan = plan_splits(records, seed=2)
    by_group: dict = defaultdict(set)
    for r in records:
        by_group[r.group_key].add(plan[r.id])
    assert all(len(s) == 1 for s in by_group.values())
    shares = Counter(plan.values())
    assert abs(shares["train"] / 1500 - 0.7) < 0.05


def test_splits_are_seeded() -> None:
    records = _records(500, groups=120)
    assert plan_splits(records, seed=5) == plan_splits(records, seed=5)
    assert plan_splits(records, seed=5) != plan_splits(records, seed=6)


def test_demo_is_deterministic_and_has_ground_truth(tmp_path: Path) -> None:
    a = generate_phantom(7, body_part="tibia", lesion=True)
    b = generate_phantom(7, body_part="tibia", lesion=True)
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert a.pixels.dtype == np.uint16 and a.pixels.max() <= 4095
    box = a.lesion_box
    assert box is not None
    # The lesion is lytic: inside the box the bone is less dense than the same rows of the
    # lesion-free phantom with the same seed.
    clean = generate_phantom(7, body_part="tibia", lesion=False)
    x0, y0, x1, y1 = box.as_ints()
    assert a.pixels[y0:y1, x0:x1].mean() < clean.pixels[y0:y1, x0:x1].mean() - 50


def test_demo_project_files_are_real_dicoms(demo_project: Project) -> None:
    records = demo_project.images()
    mono1 = 0
    for rec in records[:10]:
        rg = open_radiograph(rec.abs_path)
        assert rg.modality == "CR" and rg.bits_stored == 12 and rg.pixel_spacing_mm == (0.15, 0.15)
        mono1 += rg.inverted
        # Bone bright whatever the photometric interpretation: the shaft beats the image border.
        centre = rg.pixels[:, rg.width // 3 : 2 * rg.width // 3].max()
        assert centre > np.percentile(rg.pixels, 10) + 1000
    assert mono1 >= 1
    assert {r.split for r in records} == {"train", "val", "test"}
    for box in demo_project.boxes():
        assert demo_project.image(box.image_id).label == "lesion"


def test_demo_build_is_reopened_not_rebuilt(tmp_path: Path) -> None:
    """A deterministic rebuild would give the same hashes, so the test edits the built project
    (a note, a label, a marker file beside an image) and checks the edits are still there."""
    project = build_demo_project(tmp_path / "d", n_images=6)
    first = project.images()
    project.update_image(first[0].id, notes="my edit", label="unreviewed")
    project.close()
    image = first[1].abs_path
    stamp = image.stat().st_mtime_ns
    marker = tmp_path / "d" / "images" / "marker.txt"
    marker.write_text("kept")
    again = build_demo_project(tmp_path / "d", n_images=6)
    assert [r.sha256 for r in again.images()] == [r.sha256 for r in first]
    assert (again.image(first[0].id).notes, again.image(first[0].id).label) == ("my edit", "unreviewed")
    assert marker.read_text() == "kept" and image.stat().st_mtime_ns == stamp  # no file rewritten
    again.close()
    with pytest.raises(FileExistsError):
        Project.create(tmp_path / "other").close()
        build_demo_project(tmp_path / "other")
