"""The project store: schema, edits, durability under SIGKILL, re-linking."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lesion_studio.errors import ProjectError
from lesion_studio.store import Box, Project
from lesion_studio.store.schema import SCHEMA_VERSION


def _add(project: Project, name: str = "a.png", **fields) -> int:
    return project.add_image(project.folder / name, sha256="0" * 64, width=100, height=80, **fields)


def test_create_open_and_schema(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "p")
    assert project.schema_version == SCHEMA_VERSION
    mode = project._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert project._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    project.close()
    with pytest.raises(ProjectError, match="already holds a project"):
        Project.create(tmp_path / "p")
    with pytest.raises(ProjectError, match="not a Lesion Studio project"):
        Project.open(tmp_path / "elsewhere")
    Project.open(tmp_path / "p").close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Project.create(tmp_path / "p").close()
    conn = sqlite3.connect(tmp_path / "p" / "project.sqlite")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ProjectError, match="newer Lesion Studio"):
        Project.open(tmp_path / "p")


def test_corrupt_database_gives_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "project.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ProjectError, match="is damaged .the file is not an SQLite database.. Nothing was written"):
        Project.open(tmp_path / "p")
    assert (tmp_path / "p" / "project.sqlite").read_bytes() == b"this is not sqlite" * 100


def test_image_fields_are_validated(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p") as project:
        image_id = _add(project, label="lesion", body_part="femur", exclusions=["hardware"])
        rec = project.image(image_id)
        assert rec.path == "a.png"  # inside the project: stored relative
        assert rec.abs_path == project.folder / "a.png"
        assert rec.exclusions == ("hardware",) and rec.status == "excluded"
        with pytest.raises(ProjectError, match="Label must be"):
            project.update_image(image_id, label="maybe")
        with pytest.raises(ProjectError, match="Exclusion reason"):
            project.update_image(image_id, exclusions=["sunburn"])
        with pytest.raises(ProjectError, match="Unknown image field"):
            project.update_image(image_id, colour="red")
        with pytest.raises(ProjectError, match="already in the project"):
            _add(project)
        project.update_image(image_id, exclusions=[], label="normal")
        assert project.image(image_id).status == "annotated"


def test_boxes_patches_and_undo_restore_with_same_id(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p") as project:
        image_id = _add(project)
        box_id = project.add_box(image_id, Box(30, 20, 10, 5), author="rad")
        assert project.box(box_id).box == Box(10, 5, 30, 20)  # normalised
        project.update_box(box_id, Box(11, 6, 31, 21))
        project.delete_box(box_id)
        assert project.boxes(image_id) == []
        assert project.add_box(image_id, Box(11, 6, 31, 21), box_id=box_id) == box_id
        patch_id = project.add_normal_patch(image_id, Box(50, 50, 70, 70))
        assert [p.id for p in project.normal_patches(image_id)] == [patch_id]
        with pytest.raises(ProjectError, match="positive width"):
            project.add_box(image_id, Box(5, 5, 5, 9))
        # Deleting an image removes its boxes (foreign keys with ON DELETE CASCADE).
        project.remove_image(image_id)
        assert project.boxes() == [] and project.normal_patches() == []


def test_summary_counts(demo_project: Project) -> None:
    s = demo_project.summary()
    assert s["images"] == 96
    assert s["lesion"] + s["normal"] + s["unreviewed"] == 96
    assert s["boxes"] == s["lesion"]  # the phantom puts one box on each lesion image
    assert set(s["body_parts"]) == {"femur", "tibia", "humerus"}
    assert sum(v["images"] for v in s["splits"].values()) == 96
    assert s["excluded"] == sum(1 for r in demo_project.images() if r.excluded) > 0


WRITER = r"""
import sys, time
from lesion_studio.store import Project, Box
project = Project.open(sys.argv[1])
image_id = int(sys.argv[2])
i = 0
while True:
    project.add_box(image_id, Box(i % 50, 1, i % 50 + 5, 9), author=f"edit-{i}")
    print(i, flush=True)
    i += 1
"""


def test_sigkill_mid_run_loses_no_committed_edit(tmp_path: Path) -> None:
    """A writer is killed with SIGKILL while committing edits in a loop. Every edit it reported
    as committed is in the database afterwards, and the database passes an integrity check.

    A killed process leaves the OS page cache intact, so this holds even with ``synchronous=OFF``:
    it checks the transactions, not the disk. What survives an OS crash or power loss is the
    fsync at each commit, which :func:`test_every_connection_is_wal_synchronous_full` checks."""
    with Project.create(tmp_path / "p") as project:
        image_id = _add(project)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path / "p"), str(image_id)],
        stdout=subprocess.PIPE, text=True,
    )
    reported = -1
    assert proc.stdout is not None
    while reported < 40:  # however long 40 commits take: the suite's hang guard stops a stuck writer
        line = proc.stdout.readline()
        if not line:  # the writer died before it got going
            break
        if line.strip():
            reported = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert reported >= 40, "the writer did not get going"
    with Project.open(tmp_path / "p") as project:
        assert project._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        authors = {b.author for b in project.boxes(image_id)}
    # Each printed number was printed after its commit returned: all must be there.
    assert {f"edit-{i}" for i in range(reported + 1)} <= authors


def _durability_pragmas(conn: sqlite3.Connection) -> tuple[str, int, int]:
    return (conn.execute("PRAGMA journal_mode").fetchone()[0], conn.execute("PRAGMA synchronous").fetchone()[0],
            conn.execute("PRAGMA foreign_keys").fetchone()[0])


def test_every_connection_is_wal_synchronous_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every SQLite connection the package opens (create, open, open an older schema, import,
    build the demo, the CLI) runs in WAL mode with ``synchronous=FULL`` (2) and foreign keys on:
    a commit is on disk when it returns, not only in the OS cache."""
    import ast

    import lesion_studio
    from lesion_studio.cli.main import main as cli_main
    from lesion_studio.demo import build_demo_project

    # Connections are opened in one place only, so recording that place sees every one. Those to
    # a project's live database are checked; the others are a database being built before it gets
    # its name, backups, and read-only looks (store/database_file.py connect_file).
    package = Path(lesion_studio.__file__).parent
    openers = sorted(str(f.relative_to(package)) for f in package.rglob("*.py")
                     if any(isinstance(n, ast.Attribute) and n.attr == "connect"
                            and isinstance(n.value, ast.Name) and n.value.id == "sqlite3"
                            for n in ast.walk(ast.parse(f.read_text()))))
    assert openers == ["store/database_file.py", "store/opening.py"]

    opened: list[sqlite3.Connection] = []
    seen: list[tuple[str, int, int]] = []
    real_close = sqlite3.Connection.close
    connect = sqlite3.connect

    class Recorded(sqlite3.Connection):
        closed = False

        def close(self) -> None:  # the pragmas as they stand after the whole session
            if not self.closed and any(c is self for c in opened):
                seen.append(_durability_pragmas(self))
                self.closed = True
            real_close(self)

    def recording_connect(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        conn = connect(*args, factory=Recorded, **kwargs)
        if Path(str(args[0])).name == "project.sqlite":  # the live database, opened writable
            opened.append(conn)
        return conn

    monkeypatch.setattr(sqlite3, "connect", recording_connect)
    with Project.create(tmp_path / "p") as project:
        _add(project)
    Project.open(tmp_path / "p").close()
    Project.open_or_create(tmp_path / "q").close()
    build_demo_project(tmp_path / "demo").close()
    assert cli_main(["info", str(tmp_path / "demo")]) == 0
    # An older schema (here: none yet, in a valid database file) is migrated through the same connection.
    blank = connect(tmp_path / "r.sqlite")
    blank.execute("PRAGMA user_version = 0")  # writes SQLite's header: a 0-byte file is refused as damaged
    blank.commit()
    blank.close()
    (tmp_path / "r").mkdir()
    (tmp_path / "r.sqlite").rename(tmp_path / "r" / "project.sqlite")
    Project.open(tmp_path / "r").close()
    for conn in opened:  # connections left open (the CLI's) are checked as they are now
        if not conn.closed:
            seen.append(_durability_pragmas(conn))
    assert len(opened) >= 6 and len(seen) == len(opened)
    assert set(seen) == {("wal", 2, 1)}


def _project_at_version(folder: Path, version: int) -> None:
    """A project database as a release with ``version`` migrations wrote it, holding one image."""
    from lesion_studio.store.schema import MIGRATIONS

    folder.mkdir()
    conn = sqlite3.connect(folder / "project.sqlite", isolation_level=None)
    for migration in MIGRATIONS[:version]:
        conn.executescript(migration)
    if version:
        conn.execute("INSERT INTO images (path, name, sha256, width, height, label, notes, added_at, modified_at) "
                     "VALUES ('a.png', 'a.png', ?, 100, 80, 'lesion', 'kept', 'then', 'then')", ("0" * 64,))
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()


def _schema(db: Path) -> set[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return {(r[0], r[1]) for r in conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")}
    finally:
        conn.close()


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
def test_older_schema_is_upgraded_keeping_its_data(tmp_path: Path, version: int) -> None:
    """Every older schema version opens: the missing migrations run, the result equals a new
    project's schema, and the rows written by the older version are still there."""
    _project_at_version(tmp_path / "old", version)
    Project.create(tmp_path / "new").close()
    with Project.open(tmp_path / "old") as project:
        assert project.schema_version == SCHEMA_VERSION
        if version:
            (rec,) = project.images()
            assert (rec.path, rec.label, rec.notes) == ("a.png", "lesion", "kept")
    assert _schema(tmp_path / "old" / "project.sqlite") == _schema(tmp_path / "new" / "project.sqlite")


def test_a_new_migration_upgrades_in_place_and_a_failing_one_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The migration mechanism with one more migration than this release has: a project written
    by this release is upgraded with its data; a migration that fails half-way is rolled back
    whole, so the project still opens with the release that wrote it."""
    import lesion_studio.store.project as store_project
    from lesion_studio.store.schema import MIGRATIONS

    with Project.create(tmp_path / "p") as project:
        image_id = _add(project, label="lesion", notes="kept")
    broken = MIGRATIONS + ["ALTER TABLE images ADD COLUMN laterality TEXT NOT NULL DEFAULT '';"
                           "CREATE TABLE half (id INTEGER);"
                           "INSERT INTO no_such_table VALUES (1)"]
    monkeypatch.setattr(store_project, "MIGRATIONS", broken)
    monkeypatch.setattr(store_project, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(ProjectError, match="cannot be read"):
        Project.open(tmp_path / "p")
    monkeypatch.undo()
    before = _schema(tmp_path / "p" / "project.sqlite")
    with Project.open(tmp_path / "p") as project:  # the release that wrote it still opens it
        assert project.schema_version == SCHEMA_VERSION
        assert project.image(image_id).notes == "kept"
    assert not any(name == "half" for name, _ in before)

    monkeypatch.setattr(store_project, "MIGRATIONS", [*MIGRATIONS, "ALTER TABLE images ADD COLUMN laterality "
                                                                   "TEXT NOT NULL DEFAULT 'left'"])
    monkeypatch.setattr(store_project, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Project.open(tmp_path / "p") as project:
        assert project.schema_version == SCHEMA_VERSION + 1
        assert project.image(image_id).label == "lesion"
        assert project._conn.execute("SELECT laterality FROM images").fetchone()[0] == "left"


def test_relink_moved_folder_by_content_hash(tmp_path: Path) -> None:
    from lesion_studio.dataset.importer import import_source
    from lesion_studio.demo import generate_phantom
    from lesion_studio.demo.project import write_demo_dicom

    src = tmp_path / "scans"
    for i in range(3):
        write_demo_dicom(generate_phantom(i), src / f"case{i}.dcm", i, monochrome1=False)
    with Project.create(tmp_path / "p") as project:
        import_source(project, src)
        assert project.missing_images() == []
        src.rename(tmp_path / "moved")
        (tmp_path / "moved" / "case1.dcm").rename(tmp_path / "moved" / "renamed.dcm")
        assert len(project.missing_images()) == 3
        found = project.relink(tmp_path)
        assert len(found) == 3 and project.missing_images() == []
        names = sorted(r.abs_path.name for r in project.images())
        assert names == ["case0.dcm", "case2.dcm", "renamed.dcm"]
