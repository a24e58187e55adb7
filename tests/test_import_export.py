"""Import of real collections, export in three formats, and exact round trips."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lesion_studio.dataset.exporter import export_project
from lesion_studio.dataset.importer import import_source
from lesion_studio.errors import LesionStudioError
from lesion_studio.store import Project


@pytest.fixture(scope="module")
def fracatlas(xray_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project.create(tmp_path_factory.mktemp("fa") / "fracatlas")
    report = import_source(project, xray_dir / "images", labels_csv=xray_dir / "labels.csv",
                           boxes_csv=xray_dir / "boxes.csv")
    project.import_report = report  # type: ignore[attr-defined]
    yield project
    project.close()


def _expected_counts(xray_dir: Path) -> dict:
    counts: dict = {}
    with open(xray_dir / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            part = counts.setdefault(row["body_part"], {"lesion": 0, "normal": 0})
            part[row["label"]] += 1
    return counts


def test_fracatlas_imports_with_exact_counts(fracatlas: Project, xray_dir: Path) -> None:
    report = fracatlas.import_report  # type: ignore[attr-defined]
    assert report.added == 2274 and report.skipped == [] and report.unmatched_annotations == []
    s = fracatlas.summary()
    assert (s["images"], s["lesion"], s["normal"], s["boxes"]) == (2274, 390, 1884, 498)
    for part, want in _expected_counts(xray_dir).items():
        got = s["body_parts"][part]
        assert (got["lesion"], got["normal"]) == (want["lesion"], want["normal"]), part
    assert (s["body_parts"]["hand"]["lesion"], s["body_parts"]["hand"]["normal"]) == (193, 493)
    assert (s["body_parts"]["leg"]["lesion"], s["body_parts"]["leg"]["normal"]) == (120, 1074)
    # FracAtlas's hardware column becomes the 'hardware' exclusion flag.
    hardware = [r for r in fracatlas.images() if "hardware" in r.exclusions]
    assert hardware and all(r.extra.get("hardware") == "1" for r in hardware)


def test_dicom_folder_imports_12_and_reports_the_two_malformed(dicom_dir: Path, tmp_path: Path) -> None:
    with Project.create(tmp_path / "p") as project:
        report = import_source(project, dicom_dir)
        assert report.added == 12
        assert sorted(s.name for s in report.skipped) == ["RG2_JPLY.dcm", "RG3_JPLY.dcm"]
        assert all("could not be decoded" in s.reason for s in report.skipped)
        rg3 = [r for r in project.images() if r.name == "RG3_UNC.dcm"][0]
        assert (rg3.width, rg3.height, rg3.bits_stored, rg3.modality) == (1760, 1760, 10, "CR")
        assert rg3.body_part == "extremity" and rg3.group_key  # study UID groups a study's files
        # Importing the same folder again adds nothing.
        again = import_source(project, dicom_dir)
        assert again.added == 0 and again.already_present == 12


def _snapshot(project: Project) -> list:
    out = []
    for r in project.images():
        out.append((r.abs_path.name, r.label, r.body_part, r.view, r.split, r.group_key, r.exclusions,
                    r.exclusion_note, r.notes, r.lesion_type, r.extra,
                    sorted(b.box.as_tuple() for b in project.boxes(r.id)),
                    sorted(p.box.as_tuple() for p in project.normal_patches(r.id))))
    return sorted(out, key=lambda row: row[0])


@pytest.mark.parametrize("fmt", ["coco", "csv"])
def test_round_trip_on_fracatlas_is_exact(fracatlas: Project, tmp_path: Path, fmt: str) -> None:
    from lesion_studio.dataset.splits import plan_splits

    # Give the project splits and a note so the round trip has more than labels to carry.
    fracatlas.set_splits(plan_splits(fracatlas.images(), seed=3))
    first = fracatlas.images()[0]
    fracatlas.update_image(first.id, notes="check, again", exclusion_note="wrist brace")
    result = export_project(fracatlas, tmp_path / "out", fmt)
    copy = Project.create(tmp_path / "copy")
    if fmt == "coco":
        report = import_source(copy, result["image_root"], coco_json=result["files"][0])
    else:
        report = import_source(copy, result["image_root"], labels_csv=result["files"][0],
                               boxes_csv=result["files"][1])
    assert report.added == 2274 and report.boxes == 498
    assert _snapshot(copy) == _snapshot(fracatlas)
    copy.close()


def test_round_trip_on_demo_carries_normal_patches_and_flags(demo_project: Project, tmp_path: Path) -> None:
    for fmt in ("coco", "csv"):
        result = export_project(demo_project, tmp_path / fmt, fmt)
        copy = Project.create(tmp_path / f"copy-{fmt}")
        files = result["files"]
        if fmt == "coco":
            import_source(copy, result["image_root"], coco_json=files[0])
        else:
            import_source(copy, result["image_root"], labels_csv=files[0], boxes_csv=files[1])
        assert _snapshot(copy) == _snapshot(demo_project)
        assert copy.summary()["normal_patches"] == demo_project.summary()["normal_patches"] > 0
        copy.close()


def test_yolo_export_normalised_boxes(demo_project: Project, tmp_path: Path) -> None:
    result = export_project(demo_project, tmp_path / "yolo", "yolo")
    assert (tmp_path / "yolo" / "classes.txt").read_text().split() == ["lesion", "normal_patch"]
    box = demo_project.boxes()[0]
    rec = demo_project.image(box.image_id)
    label_file = tmp_path / "yolo" / "labels" / Path(rec.abs_path.name).with_suffix(".txt")
    cls, cx, cy, w, h = label_file.read_text().split()
    assert cls == "0"
    assert float(cx) == pytest.approx((box.box.x0 + box.box.x1) / 2 / rec.width, abs=1e-6)
    assert float(h) == pytest.approx(box.box.height / rec.height, abs=1e-6)
    assert len(result["files"]) == 1 + 96  # classes + one txt per image (empty = negative)


def test_coco_export_structure(demo_project: Project, tmp_path: Path) -> None:
    result = export_project(demo_project, tmp_path / "c.json", "coco")
    data = json.loads(Path(result["files"][0]).read_text())
    assert [c["name"] for c in data["categories"]] == ["lesion", "normal_patch"]
    assert {"label", "body_part", "split", "exclusions"} <= set(data["images"][0]["extra"])
    ann = data["annotations"][0]
    x, y, w, h = ann["bbox"]
    assert ann["area"] == pytest.approx(w * h)


def test_bad_annotation_files_are_reported_clearly(tmp_path: Path, demo_project_master: Path) -> None:
    bad = tmp_path / "labels.csv"
    bad.write_text("file,label\nx.dcm,lesion\n")
    with Project.create(tmp_path / "p") as project:
        with pytest.raises(LesionStudioError, match="missing column"):
            import_source(project, demo_project_master / "images", labels_csv=bad)
        bad.write_text("image,label\nfemur_000.dcm,perhaps\n")
        with pytest.raises(LesionStudioError, match="unknown label"):
            import_source(project, demo_project_master / "images", labels_csv=bad, strict=True)
        coco = tmp_path / "c.json"
        coco.write_text("{not json")
        with pytest.raises(LesionStudioError, match="not a COCO JSON"):
            import_source(project, demo_project_master / "images", coco_json=coco)
        assert project.image_count() == 0  # nothing half-imported


def test_unreadable_files_in_a_folder_are_skipped_and_reported(tmp_path: Path, demo_project_master: Path) -> None:
    import shutil

    src = tmp_path / "mixed"
    src.mkdir()
    shutil.copy(demo_project_master / "images" / "femur_000.dcm", src / "good.dcm")
    (src / "broken.dcm").write_bytes((demo_project_master / "images" / "femur_000.dcm").read_bytes()[:900])
    (src / "photo.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (src / "README.md").write_text("ignored")
    with Project.create(tmp_path / "p") as project:
        report = import_source(project, src)
    assert report.added == 1
    assert sorted(s.name for s in report.skipped) == ["broken.dcm", "photo.jpg"]
