"""Annotation imports validate every row before writing: bad rows are reported and skipped,
``--strict`` fails whole with nothing written, and a failed import leaves no empty project."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lesion_studio.cli.main import main
from lesion_studio.dataset.importer import import_source
from lesion_studio.errors import LesionStudioError
from lesion_studio.store import Project

W, H = 100, 80


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(4):
        Image.fromarray(rng.integers(0, 255, (H, W), dtype=np.uint8)).save(folder / f"img{k}.png")
    return folder


BAD_BOXES = """image,x0,y0,x1,y1,kind
img0.png,10,10,30,30,lesion
img0.png,10,10,30,30,lesion
img1.png,200,200,300,300,lesion
img1.png,10,10,10,40,lesion
img1.png,40,40,20,20,lesion
img2.png,nan,1,5,5,lesion
img2.png,1,2,3,4,lesion,extra
img2.png,abc,1,5,5,lesion
img2.png,90,70,120,90,normal_patch
img3.png,1,1,9,9,tumour
"""


def _wheres(problems: list[dict]) -> dict[str, str]:
    return {p["where"]: p["reason"] for p in problems}


def test_bad_box_rows_are_reported_and_skipped(images: Path, tmp_path: Path) -> None:
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(BAD_BOXES)
    with Project.create(tmp_path / "p") as project:
        report = import_source(project, images, boxes_csv=boxes)
        assert report.added == 4 and report.boxes == 1 and report.normal_patches == 1
        reasons = _wheres(report.problems)
        assert "duplicate" in reasons["line 3"]
        assert "outside the 100x80 image" in reasons["line 4"]
        assert "no area" in reasons["line 5"] and "flipped" in reasons["line 6"]
        assert "not a finite number" in reasons["line 7"]
        assert "7 fields but the header has 6" in reasons["line 8"]
        assert "must be a number" in reasons["line 9"]
        assert "beyond" in reasons["line 10"]
        assert "unknown box kind" in reasons["line 11"]
        assert all(p["file"] == "boxes.csv" for p in report.problems)
        clipped = [p for p in report.problems if p["action"] == "clipped"]
        assert [p["where"] for p in clipped] == ["line 10"]
        assert [b.box.as_tuple() for b in project.boxes()] == [(10.0, 10.0, 30.0, 30.0)]
        assert project.normal_patches()[0].box.as_tuple() == (90.0, 70.0, 100.0, 80.0)


def test_strict_writes_nothing(images: Path, tmp_path: Path) -> None:
    boxes = tmp_path / "boxes.csv"
    # Only the last row is bad: a batched import used to commit everything before it.
    boxes.write_text("image,x0,y0,x1,y1\n" + "".join(f"img{k}.png,1,1,9,9\n" for k in range(3))
                     + "img3.png,5,5,5,5\n")
    with Project.create(tmp_path / "p") as project:
        salt = project.get_setting("group_key_salt")  # made with the project, not by its first import
        with pytest.raises(LesionStudioError, match=r"1 annotation row\(s\).*boxes.csv line 5: .*no area"):
            import_source(project, images, boxes_csv=boxes, strict=True)
        assert project.image_count() == 0 and project.boxes() == []
        assert salt and project.get_setting("group_key_salt") == salt


def test_labels_duplicates_and_coco_problems(images: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("image,label,split\nimg0.png,lesion,train\nimg0.png,normal,test\nimg1.png,perhaps,\n"
                      "img2.png,normal,holiday\n")
    coco = tmp_path / "c.json"
    coco.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "img3.png", "extra": "not an object"},
                   {"id": 2, "file_name": "img2.png", "extra": {"notes": "ok"}},
                   {"id": 3, "file_name": "img1.png"}],
        "categories": [{"id": 1, "name": "lesion"}, {"id": 2, "name": "normal_patch"}, {"id": 7, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 2, "category_id": 1, "bbox": [10, 10, -5, 8]},
            {"id": 2, "image_id": 2, "category_id": 7, "bbox": [1, 1, 5, 5]},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": ["a", 1, 5, 5]},
            {"id": 4, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 5, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 6, "image_id": 9, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 7, "image_id": 3, "category_id": 2, "bbox": [1, 1, 5, 5]},
        ],
    }))
    with Project.create(tmp_path / "p") as project:
        report = import_source(project, images, labels_csv=labels, coco_json=coco)
        by_file = {(p["file"], p["where"]): p["reason"] for p in report.problems}
        assert "duplicate row for img0.png (first at line 2)" in by_file[("labels.csv", "line 3")]
        assert "unknown label" in by_file[("labels.csv", "line 4")]
        assert "unknown split" in by_file[("labels.csv", "line 5")]
        assert "'extra' must be an object" in by_file[("c.json", "image #1")]
        assert "negative bbox size" in by_file[("c.json", "annotation #1")]
        assert "unknown category 7 (cat)" in by_file[("c.json", "annotation #2")]
        assert "must be a number" in by_file[("c.json", "annotation #3")]
        assert "duplicate lesion box" in by_file[("c.json", "annotation #5")]
        assert "unknown image id 9" in by_file[("c.json", "annotation #6")]
        assert len(report.problems) == 9
        recs = {r.name: r for r in project.images()}
        assert recs["img0.png"].label == "lesion" and recs["img0.png"].split == "train"  # the first row wins
        assert recs["img2.png"].notes == "ok" and len(project.boxes(recs["img2.png"].id)) == 1
        assert len(project.normal_patches(recs["img1.png"].id)) == 1


def test_deeply_nested_json_is_a_clear_error(images: Path, tmp_path: Path) -> None:
    coco = tmp_path / "deep.json"
    coco.write_text("[" * 100_000 + "]" * 100_000)
    with Project.create(tmp_path / "p") as project:
        with pytest.raises(LesionStudioError, match="not a COCO JSON file"):
            import_source(project, images, coco_json=coco)
        coco.write_text(json.dumps({"images": {"1": "x"}}))
        with pytest.raises(LesionStudioError, match="no 'images' list"):
            import_source(project, images, coco_json=coco)


def test_cli_strict_failure_leaves_no_project(images: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("image,x0,y0,x1,y1\nimg0.png,1,1,9,9\nimg1.png,1,1,9,9,extra\n")
    target = tmp_path / "new-project"
    assert main(["import", str(target), str(images), "--boxes", str(boxes), "--strict"]) == 2
    assert "boxes.csv line 3" in capsys.readouterr().err
    assert not target.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    assert main(["import", str(existing), str(images), "--boxes", str(boxes), "--strict"]) == 2
    assert sorted(p.name for p in existing.iterdir()) == ["keep.txt"]
    assert main(["import", str(target), str(images), "--boxes", str(boxes)]) == 0
    out = capsys.readouterr().out
    assert "Imported 4 image(s), 1 lesion box(es)" in out and "boxes.csv line 3" in out
