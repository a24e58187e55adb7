"""Lesion types, readers and measurements in the store, and the schema-2 upgrade of old projects."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lesion_studio.errors import ProjectError
from lesion_studio.store import Box, Project, readers
from lesion_studio.store import lesion_types as types
from lesion_studio.store import measurements as meas
from lesion_studio.store.schema import MIGRATIONS, SCHEMA_VERSION


def _add(project: Project, name: str = "a.png", **fields) -> int:
    return project.add_image(project.folder / name, sha256="0" * 64, width=100, height=80, **fields)


def _schema_1_project(folder: Path) -> None:
    """A project exactly as schema 1 (the release before readers and types) wrote it."""
    folder.mkdir()
    conn = sqlite3.connect(folder / "project.sqlite", isolation_level=None)
    conn.executescript(MIGRATIONS[0])
    conn.execute("INSERT INTO images (id, path, name, sha256, width, height, label, lesion_type, notes, added_at, "
                 "modified_at) VALUES (1, 'a.png', 'a.png', ?, 100, 80, 'lesion', 'fracture', 'kept', 't0', 't0')",
                 ("0" * 64,))
    conn.execute("INSERT INTO images (id, path, name, sha256, width, height, label, added_at, modified_at) "
                 "VALUES (2, 'b.png', 'b.png', ?, 100, 80, 'lesion', 't0', 't0')", ("1" * 64,))
    conn.execute("INSERT INTO lesion_boxes (image_id, x0, y0, x1, y1, author, created_at, modified_at) "
                 "VALUES (1, 10.5, 20, 30, 40, 'import', 't1', 't2')")
    conn.execute("INSERT INTO lesion_boxes (image_id, x0, y0, x1, y1, author, created_at, modified_at) "
                 "VALUES (2, 1, 2, 3, 4, 'rad', 't3', 't3')")
    conn.execute("PRAGMA user_version = 1")
    conn.close()


def test_schema_1_project_upgrades_in_place_with_typed_boxes(tmp_path: Path) -> None:
    _schema_1_project(tmp_path / "old")
    with Project.open(tmp_path / "old") as project:
        assert project.schema_version == SCHEMA_VERSION >= 2
        a, b = project.boxes()
        # the old rows, untouched ...
        assert (a.image_id, a.box, a.author, a.created_at, a.modified_at) == (1, Box(10.5, 20, 30, 40), "import",
                                                                              "t1", "t2")
        assert project.image(1).notes == "kept"
        # ... and the new columns: the image's lesion type moved onto its box, none where it had none
        assert (a.lesion_type, b.lesion_type) == ("fracture", "")
        assert readers.reader_labels(project) == [] and meas.measurements(project) == []
        assert readers.readers(project) == ["import", "rad"]
        # the new tables take rows at once
        readers.put_reader_label(project, 1, "alice", "normal")
        meas.add_measurement(project, 1, (0, 0, 3, 4), spacing=None, author="alice")
        assert types.lesion_types(project)[:5] == ["fracture", "lytic", "sclerotic", "mixed", "other"]
    with Project.open(tmp_path / "old") as project:  # and opening it again changes nothing
        assert project.schema_version == SCHEMA_VERSION and len(readers.reader_labels(project)) == 1


def test_box_types_and_readers(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p") as project:
        image_id = _add(project, label="lesion")
        a = project.add_box(image_id, Box(1, 1, 10, 10), author="alice", lesion_type="lytic")
        b = project.add_box(image_id, Box(2, 2, 12, 12), author="bob")
        assert project.box(a).lesion_type == "lytic" and project.box(a).reader == "alice"
        project.set_box_type(b, "sclerotic")
        assert project.box(b).lesion_type == "sclerotic" and project.box(b).author == "bob"
        assert [x.id for x in project.boxes(image_id, reader="bob")] == [b]
        assert [x.id for x in project.boxes(reader="alice")] == [a]
        with pytest.raises(ProjectError, match="no lesion box"):
            project.set_box_type(999, "lytic")
        assert readers.images_read_by(project, "bob") == {image_id}


def test_lesion_type_list_is_the_projects_own(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p") as project:
        assert types.lesion_types(project) == ["fracture", "lytic", "sclerotic", "mixed", "other"]
        assert types.add_lesion_types(project, ["Enchondroma", "lytic"]) == ["enchondroma"]
        assert types.lesion_types(project)[-1] == "enchondroma"
        image_id = _add(project)
        project.add_box(image_id, Box(1, 1, 5, 5), lesion_type="enchondroma")
        with pytest.raises(ProjectError, match="retype them"):
            types.set_lesion_types(project, ["fracture"])
        assert types.set_lesion_types(project, ["fracture", "enchondroma", "fracture"]) == ["fracture", "enchondroma"]
        with pytest.raises(ProjectError, match="not a usable lesion type"):
            types.check_type("a;b")


def test_reader_names_and_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert readers.check_reader("  Dr Smith ") == "Dr Smith"
    for bad in ("", "a^b", "x" * 65, "tab\there"):
        with pytest.raises(ProjectError):
            readers.check_reader(bad)
    monkeypatch.setenv(readers.READER_ENV, "carol")
    assert readers.default_reader() == "carol" and readers.default_reader("dave") == "dave"
    with Project.create(tmp_path / "p") as project:
        image_id = _add(project)
        readers.put_reader_label(project, image_id, "alice", "lesion")
        before = readers.reader_label(project, image_id, "alice")
        readers.put_reader_label(project, image_id, "alice", "normal")
        assert readers.reader_label(project, image_id, "alice").label == "normal"
        readers.restore_reader_label(project, image_id, "alice", before)
        assert readers.reader_label(project, image_id, "alice") == before
        readers.restore_reader_label(project, image_id, "alice", None)
        assert readers.reader_label(project, image_id, "alice") is None
        with pytest.raises(ProjectError, match="Label must be"):
            readers.put_reader_label(project, image_id, "alice", "maybe")


def test_measurements_store_their_spacing(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p") as project:
        image_id = _add(project)
        m1 = meas.add_measurement(project, image_id, (0, 0, 30, 40), spacing=(0.2, 0.1),
                                  spacing_source="PixelSpacing", author="alice")
        m2 = meas.add_measurement(project, image_id, (0, 0, 3, 4), spacing=None, author="bob")
        first, second = meas.measurements(project, image_id)
        # 30 columns x 0.1 mm = 3 mm across, 40 rows x 0.2 mm = 8 mm down: sqrt(9 + 64) mm
        assert first.length_px == 50 and first.length_mm == pytest.approx(73 ** 0.5)
        assert (second.length_px, second.length_mm, second.spacing_source) == (5.0, None, "")
        meas.update_measurement(project, m1, (1, 1, 4, 5))
        assert meas.measurement(project, m1).length_px == 5.0
        meas.delete_measurement(project, m2)
        restored = meas.add_measurement(project, image_id, (0, 0, 3, 4), spacing=None, author="bob",
                                        measurement_id=m2)
        assert restored == m2 and [m.id for m in meas.measurements(project, reader="bob")] == [m2]
        with pytest.raises(ProjectError, match="two different end points"):
            meas.add_measurement(project, image_id, (1, 1, 1, 1), spacing=None)
        with pytest.raises(ProjectError, match="source"):
            meas.add_measurement(project, image_id, (1, 1, 2, 1), spacing=(0.1, 0.1), spacing_source="guess")
