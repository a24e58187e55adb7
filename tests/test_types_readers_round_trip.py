"""Lesion types, readers (boxes and their own labels) and measurements survive COCO and CSV
exports, and come in from the files other tools write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lesion_studio.dataset.exporter import export_project
from lesion_studio.dataset.importer import import_source
from lesion_studio.store import Box, Project, readers
from lesion_studio.store import lesion_types as types
from lesion_studio.store import measurements as meas


def _reads(project: Project) -> dict:
    """Everything the readers put in the project, by image file name."""
    name = {r.id: r.abs_path.name for r in project.images()}
    return {
        "boxes": sorted((name[b.image_id], b.box.as_tuple(), b.lesion_type, b.reader, b.created_at, b.modified_at)
                        for b in project.boxes()),
        "labels": sorted((name[r.image_id], r.reader, r.label, r.labelled_at) for r in readers.reader_labels(project)),
        "measurements": sorted((name[m.image_id], m.x0, m.y0, m.x1, m.y1, m.spacing, m.spacing_source, m.author,
                                m.created_at, m.modified_at) for m in meas.measurements(project)),
        "types": types.lesion_types(project),
        "images": sorted((r.abs_path.name, r.label, r.lesion_type) for r in project.images()),
    }


@pytest.fixture
def read_demo(demo_project: Project) -> Project:
    """The demo with a second reader: typed boxes, both readers' labels, rulers with and without spacing."""
    p = demo_project
    types.add_lesion_types(p, ["enchondroma"])
    lesion = [r for r in p.images() if r.label == "lesion"][:3]
    normal = [r for r in p.images() if r.label == "normal"][:2]
    first = p.boxes(lesion[0].id)[0]
    p.set_box_type(first.id, "lytic")
    for rec in lesion:
        b = p.boxes(rec.id)[0].box
        p.add_box(rec.id, Box(b.x0 + 2.5, b.y0 + 1.25, b.x1 + 2, b.y1), author="Dr Bob", lesion_type="enchondroma")
        readers.put_reader_label(p, rec.id, "Dr Bob", "lesion")
        readers.put_reader_label(p, rec.id, "alice", "lesion")
    # the same box as the reference drawn by alice: two readers may draw identical boxes
    p.add_box(lesion[1].id, p.boxes(lesion[1].id)[0].box, author="alice", lesion_type="sclerotic")
    readers.put_reader_label(p, normal[0].id, "alice", "normal")
    readers.put_reader_label(p, normal[0].id, "Dr Bob", "lesion")
    p.add_box(normal[0].id, Box(10, 10, 40, 30), author="Dr Bob", lesion_type="")
    meas.add_measurement(p, lesion[0].id, (10.5, 20, 50, 61.25), spacing=(0.15, 0.15), spacing_source="PixelSpacing",
                         author="alice")
    meas.add_measurement(p, normal[1].id, (1, 2, 3, 4), spacing=None, author="Dr Bob")
    return p


@pytest.mark.parametrize("fmt", ["coco", "csv"])
def test_types_readers_and_measurements_round_trip(read_demo: Project, tmp_path: Path, fmt: str) -> None:
    result = export_project(read_demo, tmp_path / fmt, fmt)
    assert (result["measurements"], result["reader_labels"]) == (2, 8)
    copy = Project.create(tmp_path / "copy")
    files = result["files"]
    if fmt == "coco":
        report = import_source(copy, result["image_root"], coco_json=files[0])
    else:
        labels, boxes, reader_labels, measurements = files
        report = import_source(copy, result["image_root"], labels_csv=labels, boxes_csv=boxes,
                               reader_labels_csv=reader_labels, measurements_csv=measurements)
    assert report.problems == [] and (report.measurements, report.reader_labels) == (2, 8)
    assert _reads(copy) == _reads(read_demo)
    assert {"Dr Bob", "alice", "phantom"} <= set(readers.readers(copy))
    copy.close()


def test_types_readers_and_measurements_round_trip_through_yolo(read_demo: Project, tmp_path: Path) -> None:
    """YOLO carries the boxes (6 decimals) and their types (classes); its sidecar
    lesion-studio.json the boxes' readers and times, the readers' own labels and the rulers."""
    result = export_project(read_demo, tmp_path / "yolo", "yolo")
    sidecar = tmp_path / "yolo" / "lesion-studio.json"
    assert str(sidecar) in result["files"]
    copy = Project.create(tmp_path / "copy")
    report = import_source(copy, result["image_root"], yolo=tmp_path / "yolo")
    assert report.problems == [] and (report.measurements, report.reader_labels) == (2, 8)
    want, got = _reads(read_demo), _reads(copy)
    assert (got["labels"], got["measurements"], got["types"]) == (want["labels"], want["measurements"], want["types"])
    assert len(got["boxes"]) == len(want["boxes"]) > 30
    for w, g in zip(want["boxes"], got["boxes"], strict=True):
        assert (g[0], *g[2:]) == (w[0], *w[2:])  # image, type, reader, created and modified
        assert g[1] == pytest.approx(w[1], abs=1e-3)  # within YOLO's 6 decimals
    copy.close()

    # a line edited since the export keeps its box but not the reader recorded for another box;
    # without the sidecar the import is plain YOLO, as before it existed
    label_file = tmp_path / "yolo" / "labels" / json.loads(sidecar.read_text())["label_files"].popitem()[0]
    lines = label_file.read_text().splitlines()
    lines[0] = f"{lines[0].split()[0]} 0.5 0.5 0.25 0.25"  # the same class, another box
    label_file.write_text("\n".join(lines) + "\n")
    with Project.create(tmp_path / "edited") as edited:
        report = import_source(edited, result["image_root"], yolo=tmp_path / "yolo")
        assert [(p["file"], p["action"]) for p in report.problems] == [
            ("lesion-studio.json", "kept without its reader and times")]
        assert len(edited.boxes()) == len(want["boxes"]) and report.measurements == 2
    sidecar.unlink()
    with Project.create(tmp_path / "plain") as plain:
        report = import_source(plain, result["image_root"], yolo=tmp_path / "yolo")
        assert {b.reader for b in plain.boxes()} == {"import"}
        assert (report.measurements, report.reader_labels, report.problems) == (0, 0, [])
        assert len(plain.boxes()) == len(want["boxes"])


def test_coco_type_as_category_or_attribute(tmp_path: Path, demo_project_master: Path) -> None:
    """Another tool's COCO: a category named after a type (FracAtlas's "fracture"), or CVAT-style
    ``attributes``; an unknown category is still refused."""
    images = demo_project_master / "images"
    names = sorted(p.name for p in images.iterdir())[:3]
    coco = {
        "images": [{"id": k, "file_name": n, "width": 320, "height": 384} for k, n in enumerate(names)],
        "categories": [{"id": 1, "name": "fracture"}, {"id": 2, "name": "lesion"}, {"id": 3, "name": "tumour!"}],
        "annotations": [
            {"image_id": 0, "category_id": 1, "bbox": [10, 10, 20, 20]},
            {"image_id": 1, "category_id": 2, "bbox": [10, 10, 20, 20],
             "attributes": {"lesion_type": "Sclerotic", "reader": "cvat-user"}},
            {"image_id": 2, "category_id": 3, "bbox": [10, 10, 20, 20]},
        ],
    }
    (tmp_path / "c.json").write_text(json.dumps(coco))
    with Project.create(tmp_path / "p") as project:
        report = import_source(project, images, coco_json=tmp_path / "c.json")
        got = {(project.image(b.image_id).name, b.lesion_type, b.reader) for b in project.boxes()}
        assert got == {(names[0], "fracture", "import"), (names[1], "sclerotic", "cvat-user")}
        assert len(report.problems) == 1 and "unknown category" in report.problems[0]["reason"]


def test_bad_type_reader_and_time_rows_are_reported(tmp_path: Path, demo_project_master: Path) -> None:
    images = demo_project_master / "images"
    name = sorted(p.name for p in images.iterdir())[0]
    (tmp_path / "boxes.csv").write_text(
        "image,x0,y0,x1,y1,kind,lesion_type,reader,created_at\n"
        f"{name},1,1,9,9,lesion,lytic,ann,2024-01-02T03:04:05+00:00\n"
        f"{name},1,1,9,9,lesion,lytic,ann,\n"  # the same box by the same reader: a duplicate
        f"{name},1,1,9,9,lesion,lytic,ben,\n"  # by another reader: kept
        f"{name},2,2,9,9,lesion,no;type,ann,\n"
        f"{name},3,3,9,9,lesion,lytic,a^b,\n"
        f"{name},4,4,9,9,lesion,lytic,ann,yesterday\n"
        f"{name},5,5,9,9,normal_patch,lytic,ann,\n")
    (tmp_path / "reads.csv").write_text(f"image,reader,label\n{name},ann,lesion\n{name},ann,normal\n{name},,lesion\n")
    (tmp_path / "rulers.csv").write_text(f"image,x0,y0,x1,y1,spacing_row,spacing_col,spacing_source\n"
                                         f"{name},1,1,1,1,,,\n{name},1,1,5,5,0.1,0.1,\n{name},1,1,5,5000,,,\n")
    with Project.create(tmp_path / "p") as project:
        report = import_source(project, images, boxes_csv=tmp_path / "boxes.csv",
                               reader_labels_csv=tmp_path / "reads.csv", measurements_csv=tmp_path / "rulers.csv")
        reasons = [p["reason"] for p in report.problems]
        assert len(reasons) == 10, reasons  # 5 box rows, 2 label rows, 3 rulers
        assert sum("duplicate" in r for r in reasons) == 2
        assert any("not a usable lesion type" in r for r in reasons)
        assert any("'^'" in r for r in reasons) and any("ISO 8601" in r for r in reasons)
        assert any("normal patch has no lesion type" in r for r in reasons)
        assert any("no reader" in r for r in reasons) and any("two different end points" in r for r in reasons)
        assert any("source" in r for r in reasons) and any("outside" in r for r in reasons)
        boxes = project.boxes()
        assert sorted((b.reader, b.created_at is not None) for b in boxes) == [("ann", True), ("ben", True)]
        assert [b.created_at for b in boxes if b.reader == "ann"] == ["2024-01-02T03:04:05+00:00"]
        assert [(r.reader, r.label) for r in readers.reader_labels(project)] == [("ann", "lesion")]
        assert meas.measurements(project) == []


def test_import_reader_option_records_labels_as_that_readers(tmp_path: Path, demo_project_master: Path) -> None:
    images = demo_project_master / "images"
    name = sorted(p.name for p in images.iterdir())[0]
    (tmp_path / "labels.csv").write_text(f"image,label\n{name},normal\n")
    (tmp_path / "boxes.csv").write_text(f"image,x0,y0,x1,y1\n{name},1,1,9,9\n")
    with Project.create(tmp_path / "p") as project:
        import_source(project, images, labels_csv=tmp_path / "labels.csv", boxes_csv=tmp_path / "boxes.csv",
                      author="carol", label_reader="carol")
        assert [(b.reader, b.lesion_type) for b in project.boxes()] == [("carol", "")]
        assert [(r.reader, r.label) for r in readers.reader_labels(project)] == [("carol", "normal")]


def test_cli_reader_option_and_lesion_types(tmp_path: Path, demo_project_master: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from lesion_studio.cli.main import main

    images = demo_project_master / "images"
    name = sorted(p.name for p in images.iterdir())[0]
    (tmp_path / "boxes.csv").write_text(f"image,x0,y0,x1,y1,lesion_type\n{name},1,1,9,9,Enchondroma\n")
    project = tmp_path / "p"
    assert main(["import", str(project), str(images), "--reader", "a^b"]) == 2
    assert "'^'" in capsys.readouterr().err and not project.exists()  # refused before a project is made
    assert main(["import", str(project), str(images), "--boxes", str(tmp_path / "boxes.csv"),
                 "--reader", "dana"]) == 0
    assert "New lesion type(s) added to the project: enchondroma" in capsys.readouterr().out
    assert main(["lesion-types", str(project)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listing] == ["fracture", "lytic", "sclerotic", "mixed", "other",
                                                     "enchondroma"]
    assert listing[-1].split()[1] == "1"
    assert main(["lesion-types", str(project), "--set", "lytic"]) == 2  # enchondroma is still in use
    assert main(["lesion-types", str(project), "--set", "enchondroma,lytic"]) == 0
    with Project.open(project) as p:
        assert types.lesion_types(p) == ["enchondroma", "lytic"]
        assert [(b.reader, b.lesion_type) for b in p.boxes()] == [("dana", "enchondroma")]
