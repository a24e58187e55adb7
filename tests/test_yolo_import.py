"""YOLO import (issue 29): lesion types and boxes round-trip through ``export --format yolo``, and
every bad label line is reported with its file and line, as CSV and COCO rows are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lesion_studio.cli.main import main
from lesion_studio.dataset.exporter import export_project
from lesion_studio.dataset.importer import import_source
from lesion_studio.errors import LesionStudioError
from lesion_studio.store import Box, Project
from lesion_studio.store import lesion_types as types


def _regions(project: Project) -> list[tuple]:
    """(image file, kind, lesion type, corners) of every box and normal patch."""
    name = {r.id: r.abs_path.relative_to(r.abs_path.parents[1]).as_posix() for r in project.images()}
    return sorted([(name[b.image_id], "lesion", b.lesion_type, b.box.as_tuple()) for b in project.boxes()]
                  + [(name[p.image_id], "normal_patch", "", p.box.as_tuple()) for p in project.normal_patches()])


@pytest.fixture
def typed_demo(demo_project: Project) -> Project:
    """The demo with typed boxes: a default type, a type of its own, a sub-pixel box and untyped ones."""
    p = demo_project
    types.add_lesion_types(p, ["enchondroma"])
    boxes = p.boxes()
    p.set_box_type(boxes[0].id, "lytic")
    p.set_box_type(boxes[1].id, "enchondroma")
    p.add_box(boxes[2].image_id, Box(10.25, 20.5, 61.75, 70.125), author="alice", lesion_type="sclerotic")
    return p


def test_types_and_boxes_round_trip_through_yolo(typed_demo: Project, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    result = export_project(typed_demo, tmp_path / "yolo", "yolo")
    assert main(["import", str(tmp_path / "copy"), result["image_root"], "--yolo", str(tmp_path / "yolo")]) == 0
    out = capsys.readouterr().out
    assert "New lesion type(s) added to the project: enchondroma" in out and "skipped" not in out
    with Project.open(tmp_path / "copy") as copy:
        want, got = _regions(typed_demo), _regions(copy)
        assert len(got) == len(want) > 60
        for w, g in zip(want, got, strict=True):
            assert g[:3] == w[:3]  # same image, kind and type
            # whole-pixel corners come back exactly; others within the 6 decimals' rounding
            assert g[3] == pytest.approx(w[3], abs=1e-3)
            if all(v == int(v) for v in w[3]):
                assert g[3] == w[3]
        assert types.lesion_types(copy) == types.lesion_types(typed_demo)
        # YOLO has no image labels: a lesion box makes a lesion image; an empty file says nothing
        boxed = {b.image_id for b in copy.boxes()}
        assert {r.label for r in copy.images() if r.id in boxed} == {"lesion"}
        assert {r.label for r in copy.images() if r.id not in boxed} == {"unreviewed"}


def _yolo_folder(tmp_path: Path, lines: dict[str, str], classes: str = "lesion\nnormal_patch\nfracture\n") -> Path:
    folder = tmp_path / "yolo"
    (folder / "labels").mkdir(parents=True)
    (folder / "classes.txt").write_text(classes)
    for name, text in lines.items():
        (folder / "labels" / name).write_text(text)
    return folder


@pytest.fixture
def two_images(tmp_path: Path) -> tuple[Path, list[str]]:
    """A folder of two 320 x 384 PNGs and their stems."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for stem in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (384, 320), dtype=np.uint8)).save(folder / f"{stem}.png")
    return folder, ["a", "b"]


def test_bad_yolo_lines_are_reported_with_file_and_line(two_images: tuple[Path, list[str]], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    images, (first, second) = two_images
    folder = _yolo_folder(tmp_path, {
        f"{first}.txt": "\n".join([
            "0 0.5 0.5 0.25 0.25",        # 1: good, untyped lesion
            "2 0.25 0.25 0.125 0.125",    # 2: good, fracture
            "1 0.75 0.75 0.1 0.1",        # 3: good, normal patch
            "0 0.5 0.5 0.25",             # 4: four fields
            "0 0.5 0.5 0.25 0.25 0.9",    # 5: six fields (a detection's confidence)
            "7 0.5 0.5 0.2 0.2",          # 6: no class 7
            "x 0.5 0.5 0.2 0.2",          # 7: class not a number
            "1.0 0.5 0.5 0.2 0.2",        # 8: class not a whole number
            "0 0.5 abc 0.2 0.2",          # 9: not a number
            "0 1.5 0.5 0.2 0.2",          # 10: outside 0..1
            "0 0.5 0.5 -0.2 0.2",         # 11: negative size
            "0 0.5 0.5 0.2 nan",          # 12: not finite
            "0 0.5 0.5 0 0.2",            # 13: no area
            "0 0.5 0.5 0.25 0.25",        # 14: duplicate of line 1
            "0 0.95 0.5 0.2 0.2",         # 15: extends beyond the right edge: clipped
        ]) + "\n",
        f"{second}.txt": "",
        "nosuchimage.txt": "0 0.5 0.5 0.1 0.1\n",
    })
    with Project.create(tmp_path / "p") as project:
        report = import_source(project, images, yolo=folder)
        where = {(p["file"], p["where"]): (p["reason"], p["action"]) for p in report.problems}
        label = f"labels/{first}.txt"
        assert sorted(w for f, w in where if f == label) == sorted(f"line {n}" for n in range(4, 16))
        assert "4 field(s)" in where[(label, "line 4")][0] and "6 field(s)" in where[(label, "line 5")][0]
        assert "class 7 is not in the class list (0..2)" in where[(label, "line 6")][0]
        assert "not a whole number" in where[(label, "line 7")][0]
        assert "not a whole number" in where[(label, "line 8")][0]
        assert "must be a number" in where[(label, "line 9")][0]
        assert "outside 0..1" in where[(label, "line 10")][0] and "outside 0..1" in where[(label, "line 11")][0]
        assert "not a finite number" in where[(label, "line 12")][0]
        assert "no area" in where[(label, "line 13")][0] and "duplicate of line 1" in where[(label, "line 14")][0]
        assert where[(label, "line 15")] == ("the box extends beyond the 320x384 image", "clipped")
        assert report.unmatched_annotations == ["yolo:nosuchimage"]
        got = sorted((b.lesion_type, b.box.as_tuple()) for b in project.boxes())
        assert got == [("", (120.0, 144.0, 200.0, 240.0)), ("", pytest.approx((272.0, 153.6, 320.0, 230.4))),
                       ("fracture", (60.0, 72.0, 100.0, 120.0))]
        assert [p.box.as_tuple() for p in project.normal_patches()] == [pytest.approx((224.0, 268.8, 256.0, 307.2))]
    # --strict: the same folder fails the whole import, with file and line, and writes nothing
    capsys.readouterr()
    assert main(["import", str(tmp_path / "strict"), str(images), "--yolo", str(folder), "--strict"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lesion-studio:")]
    assert len(errors) == 1 and f"labels/{first}.txt line 4: 4 field(s)" in errors[0]
    assert "nothing was imported" in errors[0]
    assert not (tmp_path / "strict").exists()


def test_a_yolo_folder_without_class_names_is_one_clear_error(two_images: tuple[Path, list[str]], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    images, (first, _) = two_images
    folder = _yolo_folder(tmp_path, {f"{first}.txt": "0 0.5 0.5 0.1 0.1\n"})
    (folder / "classes.txt").unlink()
    assert main(["import", str(tmp_path / "p"), str(images), "--yolo", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no classes.txt or data.yaml" in err and "Traceback" not in err
    assert not (tmp_path / "p").exists()
    assert main(["import", str(tmp_path / "p"), str(images), "--yolo", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_data_yaml_names_and_a_flat_labels_folder(two_images: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Ultralytics' data.yaml (names as id: name) beside a labels folder given directly; a class
    name that is no usable type is reported once and its boxes skipped."""
    images, (first, second) = two_images
    folder = tmp_path / "ds"
    (folder / "labels").mkdir(parents=True)
    (folder / "data.yaml").write_text("path: .\nnames:\n  0: Lytic\n  1: normal_patch\n  2: 'bad;name'\n")
    (folder / "labels" / f"{first}.txt").write_text("0 0.5 0.5 0.25 0.25\n1 0.25 0.25 0.125 0.125\n")
    (folder / "labels" / f"{second}.txt").write_text("2 0.5 0.5 0.25 0.25\n")
    with Project.create(tmp_path / "p") as project:
        report = import_source(project, images, yolo=folder / "labels")
        assert [(b.lesion_type, b.box.as_tuple()) for b in project.boxes()] == [("lytic", (120.0, 144.0, 200.0, 240.0))]
        assert [p.box.as_tuple() for p in project.normal_patches()] == [(60.0, 72.0, 100.0, 120.0)]
        reasons = {(p["file"], p["where"]): p["reason"] for p in report.problems}
        assert "not a usable lesion type" in reasons[("data.yaml", "class 2")]
        assert "class 2 ('bad;name') is not a usable lesion type" in reasons[(f"{second}.txt", "line 1")]


def test_two_images_that_would_share_a_label_file(two_images: tuple[Path, list[str]], tmp_path: Path) -> None:
    """a.png and a.jpg both look for labels/a.txt: the export refuses (one image's boxes would be
    overwritten by the other's), and an import gives that file to neither, and says so."""
    images, _ = two_images
    Image.open(images / "a.png").save(images / "a.jpg")
    folder = _yolo_folder(tmp_path, {"a.txt": "0 0.5 0.5 0.25 0.25\n", "b.txt": "2 0.5 0.5 0.25 0.25\n"})
    with Project.create(tmp_path / "p") as project:
        report = import_source(project, images, yolo=folder)
        assert [(project.image(b.image_id).name, b.lesion_type) for b in project.boxes()] == [("b.png", "fracture")]
        (problem,) = report.problems
        assert (problem["file"], problem["where"]) == ("labels/a.txt", "file")
        assert "matches 2 images (a.jpg, a.png)" in problem["reason"]
        with pytest.raises(LesionStudioError, match=r"a\.(png|jpg) and a\.(png|jpg) would share the YOLO label "
                                                    r"file labels/a\.txt"):
            export_project(project, tmp_path / "out", "yolo")
        assert not (tmp_path / "out").exists()
