"""tools/device_bundle.py: the folder that carries one body part to the GPU machine must rebuild,
on import there, the same images, labels, splits, exclusions and boxes as the source project
(the GPU numbers are compared with CPU numbers measured on those splits), and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from lesion_studio.dataset.importer import import_source
from lesion_studio.errors import LesionStudioError
from lesion_studio.store import Project


def _state(project: Project, body_part: str) -> dict[str, tuple]:
    boxes: dict[int, list] = {}
    for b in project.boxes():
        boxes.setdefault(b.image_id, []).append(tuple(round(v, 2) for v in (b.box.x0, b.box.y0, b.box.x1, b.box.y1)))
    return {r.sha256: (r.label, r.split, tuple(r.exclusions), r.view, sorted(boxes.get(r.id, [])))
            for r in project.images() if r.body_part == body_part}


def test_a_bundle_rebuilds_one_body_parts_splits_labels_and_boxes(demo_project: Project, tmp_path: Path) -> None:
    from tools.device_bundle import bundle

    images = demo_project.images()
    femur = [r for r in images if r.body_part == "femur"]
    assert femur and len(femur) < len(images)
    # Make the splits and an exclusion something a fresh split on femur alone would not redraw.
    demo_project.set_splits({r.id: ("val" if i % 3 == 0 else "test" if i % 3 == 1 else "train")
                             for i, r in enumerate(femur)})
    demo_project.update_image(femur[0].id, exclusions=["hardware"])
    expected = _state(demo_project, "femur")
    excluded = sum(1 for label, split, exclusions, *_ in expected.values() if exclusions)
    assert any(boxes for *_, boxes in expected.values())
    source = Path(demo_project.folder)
    demo_project.close()

    out = tmp_path / "bundle"
    summary = bundle(source, out, ["femur"])
    assert summary["images"] == len(femur) == len(list((out / "images").rglob("*.dcm")))
    assert summary["excluded"] == excluded >= 1
    assert not (tmp_path / "bundle.partial").exists()

    with Project.open_or_create(tmp_path / "rebuilt") as rebuilt:
        import_source(rebuilt, out / "images", labels_csv=out / "labels.csv", boxes_csv=out / "boxes.csv",
                      strict=True)
        assert {r.body_part for r in rebuilt.images()} == {"femur"}
        assert _state(rebuilt, "femur") == expected


def test_a_bundle_never_replaces_a_folder_or_packs_nothing(demo_project: Project, tmp_path: Path) -> None:
    from tools.device_bundle import bundle

    source = Path(demo_project.folder)
    demo_project.close()
    (tmp_path / "taken").mkdir()
    with pytest.raises(LesionStudioError, match="already exists"):
        bundle(source, tmp_path / "taken", ["femur"])
    with pytest.raises(LesionStudioError, match="no image of skull"):
        bundle(source, tmp_path / "new", ["skull"])
    assert not (tmp_path / "new").exists()
