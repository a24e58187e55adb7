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
    # boxes.csv's lesion_type column types every box; the import's reader is "import"
    assert {(b.lesion_type, b.reader) for b in fracatlas.boxes()} == {("fracture", "import")}


def test_dicom_folder_imports_all_14_wg04_files(dicom_dir: Path, tmp_path: Path) -> None:
    """The two 12-bit lossy JPEGs with the malformed scan header too (io/jpeg_lossy.py)."""
    with Project.create(tmp_path / "p") as project:
        report = import_source(project, dicom_dir)
        assert report.added == 14 and report.skipped == []
        jply = [r for r in project.images() if r.name == "RG2_JPLY.dcm"][0]
        assert (jply.width, jply.height, jply.bits_stored) == (1760, 2140, 10)
        rg3 = [r for r in project.images() if r.name == "RG3_UNC.dcm"][0]
        assert (rg3.width, rg3.height, rg3.bits_stored, rg3.modality) == (1760, 1760, 10, "CR")
        assert rg3.body_part == "extremity" and rg3.group_key  # study UID groups a study's files
        # Importing the same folder again adds nothing.
        again = import_source(project, dicom_dir)
        assert again.added == 0 and again.already_present == 14


def _snapshot(project: Project) -> list:
    out = []
    for r in project.images():
        out.append((r.abs_path.name, r.label, r.body_part, r.view, r.split, r.group_key, r.exclusions,
                    r.exclusion_note, r.notes, r.lesion_type, r.extra,
                    sorted((b.box.as_tuple(), b.lesion_type, b.reader, b.created_at, b.modified_at)
                           for b in project.boxes(r.id)),
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
    typed = demo_project.boxes()[1]
    demo_project.set_box_type(typed.id, "lytic")
    result = export_project(demo_project, tmp_path / "yolo", "yolo")
    # 0 and 1 keep their meaning (an untyped box, a normal patch); the project's types follow
    assert (tmp_path / "yolo" / "classes.txt").read_text().split() == [
        "lesion", "normal_patch", "fracture", "lytic", "sclerotic", "mixed", "other"]
    typed_file = tmp_path / "yolo" / "labels" / Path(demo_project.image(typed.image_id).abs_path.name).with_suffix(".txt")
    assert typed_file.read_text().split()[0] == "3"
    box = demo_project.boxes()[0]
    rec = demo_project.image(box.image_id)
    label_file = tmp_path / "yolo" / "labels" / Path(rec.abs_path.name).with_suffix(".txt")
    cls, cx, cy, w, h = label_file.read_text().split()
    assert cls == "0"
    assert float(cx) == pytest.approx((box.box.x0 + box.box.x1) / 2 / rec.width, abs=1e-6)
    assert float(h) == pytest.approx(box.box.height / rec.height, abs=1e-6)
    assert len(result["files"]) == 2 + 96  # classes, the readers' sidecar, one txt per image (empty = negative)


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


def _dicoms(folder: Path, studies: list[str | None]) -> list[Path]:
    """Small phantom DICOMs, the i-th in study ``studies[i]`` (None: no Study Instance UID at all)."""
    import pydicom

    from lesion_studio.demo import generate_phantom
    from lesion_studio.demo.project import write_demo_dicom

    paths = []
    for i, study in enumerate(studies):
        path = folder / f"case{i}.dcm"
        write_demo_dicom(generate_phantom(i, size=(96, 80)), path, i, monochrome1=False)
        ds = pydicom.dcmread(path)
        if study is None:
            del ds.StudyInstanceUID
        else:
            ds.StudyInstanceUID = study
        ds.save_as(path)
        paths.append(path)
    return paths


def test_dicom_files_group_by_study_instance_uid(tmp_path: Path) -> None:
    """A study's files share one group (so one split); without a Study UID the Patient ID groups.
    The key stored is the identifier's salted hash (the project keeps no UID)."""
    from lesion_studio.dataset.splits import assign_splits
    from lesion_studio.deid import hashed_group_key
    from lesion_studio.store.project import GROUP_SALT_KEY

    _dicoms(tmp_path / "src", ["1.2.3.1", "1.2.3.1", "1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4", None])
    with Project.create(tmp_path / "p") as project:
        import_source(project, tmp_path / "src")
        salt = project.get_setting(GROUP_SALT_KEY)
        groups = {r.name: r.group_key for r in project.images()}
        expected = {"case0.dcm": "1.2.3.1", "case1.dcm": "1.2.3.1", "case2.dcm": "1.2.3.1",
                    "case3.dcm": "1.2.3.2", "case4.dcm": "1.2.3.3", "case5.dcm": "1.2.3.4", "case6.dcm": "DEMO-006"}
        assert groups == {name: hashed_group_key(uid, salt) for name, uid in expected.items()}
        assert len(set(groups.values())) == 5
        study = groups["case0.dcm"]
        for seed in range(5):
            assign_splits(project, (0.34, 0.33, 0.33), seed=seed)
            assert len({r.split for r in project.images() if r.group_key == study}) == 1, seed


def test_an_imported_box_makes_an_unreviewed_image_a_lesion_image(tmp_path: Path) -> None:
    """A lesion box is an expert's statement that there is a lesion: unreviewed images become
    lesion images; a label given in the CSV wins, and a normal patch says nothing of a lesion."""
    _dicoms(tmp_path / "src", ["1.1", "1.2", "1.3", "1.4", "1.5"])
    (tmp_path / "labels.csv").write_text("image,label\ncase1.dcm,unreviewed\ncase2.dcm,normal\n")
    (tmp_path / "boxes.csv").write_text("image,x0,y0,x1,y1,kind\n"
                                        "case0.dcm,10,10,30,30,lesion\ncase1.dcm,10,10,30,30,lesion\n"
                                        "case2.dcm,10,10,30,30,lesion\ncase3.dcm,10,10,40,40,normal_patch\n")
    with Project.create(tmp_path / "p") as project:
        import_source(project, tmp_path / "src", labels_csv=tmp_path / "labels.csv",
                      boxes_csv=tmp_path / "boxes.csv")
        labels = {r.name: r.label for r in project.images()}
        assert labels == {"case0.dcm": "lesion", "case1.dcm": "lesion", "case2.dcm": "normal",
                          "case3.dcm": "unreviewed", "case4.dcm": "unreviewed"}
        assert {project.image(b.image_id).name for b in project.boxes()} == {"case0.dcm", "case1.dcm", "case2.dcm"}
