"""Projects under faults and hostile input: imports that never delete another's data, read-only and
damaged databases, a full disk, special files, names that try to leave their folder, exports that
never overwrite. Each test reproduces a finding of issue 25 (it failed before the fix)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from lesion_studio.cli.main import main
from lesion_studio.dataset.importer import import_source
from lesion_studio.errors import DiskFullError
from lesion_studio.store import Project, lifecycle

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(4):
        Image.fromarray(rng.integers(0, 255, (80, 100), dtype=np.uint8)).save(folder / f"img{k}.png")
    return folder


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- imports and creation
def test_a_failed_first_import_never_deletes_what_another_import_committed(images: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys) -> None:  # noqa: ANN001
    """Two first imports into one new folder: B commits 4 images and prints "Imported", then A fails
    (--strict, a full disk, Ctrl-C...). Before, A ran rmtree on the folder and B's data was gone."""
    target = tmp_path / "shared"
    real = import_source
    calls = {"n": 0}

    def a_then_b(project, source, **kwargs):  # noqa: ANN001, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 1:  # A: while it works, B imports into the same folder and finishes
            assert main(["import", str(target), str(images)]) == 0
            raise KeyboardInterrupt  # then A is interrupted
        return real(project, source, **kwargs)

    monkeypatch.setattr("lesion_studio.dataset.importer.import_source", a_then_b)
    assert main(["import", str(target), str(images)]) == 130
    assert "Imported 4 image(s)" in capsys.readouterr().out
    with Project.open(target) as project:
        assert project.image_count() == 4  # B's images survived A's failure
    assert not lifecycle.is_marked(target)


def test_a_failed_first_import_leaves_a_project_someone_has_open(images: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """B has the new project open (about to commit) when A fails: A must not remove it."""
    target = tmp_path / "busy"
    holder: dict[str, Project] = {}

    def fail_after_b_opened(project, source, **kwargs):  # noqa: ANN001, ANN003, ANN202
        holder["b"] = Project.open(target)
        raise KeyboardInterrupt

    monkeypatch.setattr("lesion_studio.dataset.importer.import_source", fail_after_b_opened)
    assert main(["import", str(target), str(images)]) == 130
    b = holder["b"]
    assert (target / "project.sqlite").exists()
    assert import_source(b, images).added == 4  # B commits into the project that was left alone
    b.close()
    with Project.open(target) as project:
        assert project.image_count() == 4


def test_two_first_imports_share_one_group_key_salt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, each first import made its own salt and the last to store it won, so one
    StudyInstanceUID got two group keys and a split could put one patient on both sides."""
    from test_import_export import _dicoms

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _dicoms(tmp_path / "a", ["1.2.3.9"])
    for path in _dicoms(tmp_path / "b", ["1.2.3.9"]):
        path.rename(path.with_name("other.dcm"))
    target = tmp_path / "p"
    first = Project.open_or_create(target)
    second = Project.open_or_create(target)  # the second first import: the project exists now

    def progress(event) -> None:  # noqa: ANN001 - B runs to the end while A is still decoding
        if not progress.done:
            progress.done = True
            import_source(second, tmp_path / "b")

    progress.done = False
    import_source(first, tmp_path / "a", progress=progress)
    keys = {r.name: r.group_key for r in first.images()}
    assert keys["case0.dcm"] == keys["other.dcm"] and keys["case0.dcm"].startswith("g-")
    assert first.created and not second.created
    first.close()
    second.close()
    # Two processes creating one project at once: the loser of the race opens the winner's.
    assert lifecycle.create_database(tmp_path / "p", lambda conn: None, first_import=False) is False


_KILLED_IMPORT = textwrap.dedent("""
    import os, sys
    from lesion_studio.cli.main import main
    from lesion_studio.store.project import Project
    Project.add_images = lambda self, rows: os._exit(9)  # killed just before the import commits
    main(["import", sys.argv[1], sys.argv[2]])
""")


def test_a_killed_first_import_leaves_no_empty_project(images: Path, tmp_path: Path) -> None:
    target = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.run([sys.executable, "-c", _KILLED_IMPORT, str(target), str(images)], env=env, timeout=600)
    assert child.returncode == 9 and (target / "project.sqlite").exists()
    assert main(["info", str(target)]) == 2  # opening it cleans it up: it is no project
    assert not (target / "project.sqlite").exists() and not lifecycle.is_marked(target)
    assert main(["import", str(target), str(images)]) == 0
    with Project.open(target) as project:
        assert project.image_count() == 4


def test_special_files_and_links_out_of_the_folder_are_skipped(images: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """A FIFO in an import folder used to hang the import; a link led to files outside it."""
    os.mkfifo(images / "pipe.png")
    (images / "zero.png").symlink_to("/dev/zero")
    outside = tmp_path / "elsewhere.png"
    shutil.copy(images / "img0.png", outside)
    (images / "leak.png").symlink_to(outside)
    (images / "sub").mkdir()
    (images / "sub" / "ok.png").symlink_to(images / "img2.png")  # a link inside the folder is fine
    assert main(["import", str(tmp_path / "p"), str(images), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    reasons = {s["name"]: s["reason"] for s in report["skipped"]}
    assert "FIFO" in reasons["pipe.png"] and "character device" in reasons["zero.png"]
    assert "outside the imported folder" in reasons["leak.png"]
    assert report["added"] == 4 and report["already_present"] == 1  # sub/ok.png is img2.png


def test_importing_a_project_into_itself_skips_its_own_outputs(tmp_path: Path, images: Path) -> None:
    """`import P P` took in the project's own synthetic PNGs (and would take caches and models)."""
    target = tmp_path / "p"
    shutil.copytree(images, target / "images")
    assert main(["import", str(target), str(target / "images")]) == 0
    for folder in ("synthetic/kept", "cache/thumbnails", "models/m/samples", "backups"):
        (target / folder).mkdir(parents=True)
        shutil.copy(images / "img0.png", target / folder / "made.png")
    assert main(["import", str(target), str(target)]) == 0
    with Project.open(target) as project:
        assert sorted(r.path for r in project.images()) == [f"images/img{k}.png" for k in range(4)]
    assert main(["import", str(target), str(target / "synthetic")]) == 2


# ---------------------------------------------------------------------------- read-only projects
@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` as a read-only mount (as root, where permissions do not stop writes), else with
    its write permissions removed. Skips the test when neither can be arranged."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            yield folder
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    view = folder.with_name(folder.name + "-ro")
    view.mkdir()
    bind = subprocess.run(["mount", "--bind", str(folder), str(view)], capture_output=True)
    if bind.returncode != 0:
        view.rmdir()
        pytest.skip(f"cannot make a read-only view as root ({bind.stderr.decode().strip()})")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount the view read-only")
        yield view
    finally:
        if subprocess.run(["umount", str(view)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(view)], capture_output=True)  # a file left open in it
        with contextlib.suppress(OSError):
            view.rmdir()


def test_a_read_only_project_can_be_viewed_exported_and_scored(demo_project, tmp_path: Path,  # noqa: ANN001
                                                              capsys) -> None:  # noqa: ANN001
    """On a read-only mount, info, export, models, translate and export-samples failed and advised
    restoring a backup of a healthy database."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from stub_models import register_stub_classifier

    from lesion_studio.samples import save_synthetic_sample
    from lesion_studio.store import Box

    register_stub_classifier(demo_project, "stub")
    rec = demo_project.images()[0]
    save_synthetic_sample(demo_project, demo_project.open_radiograph(rec.id).pixels, source_image_id=rec.id,
                          window=Box(0, 0, 8, 8), n=1.0, seed=0, model_id=None, provenance={}, status="accepted")
    folder = demo_project.folder
    demo_project.close()
    before = _sha(folder / "project.sqlite")
    out = tmp_path / "out"
    with read_only(folder) as ro:
        assert main(["info", str(ro)]) == 0
        assert main(["models", str(ro), "--json"]) == 0
        assert main(["export", str(ro), str(out / "coco"), "--format", "coco"]) == 0
        assert main(["export-samples", str(ro), str(out / "samples")]) == 0
        assert main(["score", str(ro), "--model", "stub", "--split", "test", "--json"]) == 0
        box = ",".join(str(v) for v in (100, 100, 164, 164))
        assert main(["translate", str(ro), "--model", "builtin-phantom-unit", "--image", str(rec.abs_path).replace(
            str(folder), str(ro)), "--box", box, "--out", str(out / "t_sbs.png")]) == 0
        capsys.readouterr()
        assert main(["split", str(ro)]) == 2
        err = capsys.readouterr().err
        assert "this project is read-only" in err.lower() and "backup" not in err.lower()
    assert _sha(folder / "project.sqlite") == before
    assert (out / "coco" / "annotations.coco.json").exists() and (out / "t_sbs.png").exists()


# ---------------------------------------------------------------------------- damage and full disks
def test_a_damaged_database_is_reported_never_written_and_a_backup_offered(demo_project) -> None:  # noqa: ANN001
    """8 KB of random bytes in the middle of the database made every command exit 70, and `info`
    wrote to the damaged file."""
    folder = demo_project.folder
    backup = demo_project.backup("test")
    demo_project.close()
    db = folder / "project.sqlite"
    data = bytearray(db.read_bytes())
    middle = len(data) // 2 // 4096 * 4096
    data[middle:middle + 8192] = np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes()
    db.write_bytes(bytes(data))
    conn = sqlite3.connect(db)
    try:
        sound = conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    except sqlite3.DatabaseError:
        sound = False
    conn.close()
    assert not sound  # really damaged
    damaged = _sha(db)
    for argv in (["info", str(folder)], ["export", str(folder), str(folder.parent / "x"), "--format", "csv"],
                 ["split", str(folder)]):
        proc = subprocess.run([sys.executable, "-m", "lesion_studio.cli.main", *argv], capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
        assert proc.returncode == 2, proc.stderr
        assert "is damaged" in proc.stderr and str(backup) in proc.stderr and "Traceback" not in proc.stderr
    assert _sha(db) == damaged  # never written to
    assert not (folder / "project.sqlite-wal").exists() or (folder / "project.sqlite-wal").stat().st_size == 0


def test_an_empty_database_file_is_refused_as_damaged(images: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """A 0-byte project.sqlite opened as an empty project and `import` re-initialised it silently."""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "project.sqlite").write_bytes(b"")
    assert main(["info", str(tmp_path / "p")]) == 2
    assert main(["import", str(tmp_path / "p"), str(images)]) == 2
    assert "is damaged (the file is empty (0 bytes))" in capsys.readouterr().err
    assert (tmp_path / "p" / "project.sqlite").stat().st_size == 0


def test_backups_rotate_and_are_made_before_a_schema_change(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import lesion_studio.store.project as project_module
    from lesion_studio.store.backup import KEEP, backups, is_sound, make_backup

    with Project.create(tmp_path / "old") as project:
        project.set_setting("kept", "yes")
        version = project.schema_version
    monkeypatch.setattr(project_module, "MIGRATIONS", [*project_module.MIGRATIONS, "CREATE TABLE later (x)"])
    monkeypatch.setattr(project_module, "SCHEMA_VERSION", version + 1)
    with Project.open(tmp_path / "old") as project:
        assert project.schema_version == version + 1
    (made,) = backups(tmp_path / "old")
    assert is_sound(made) and made.name.endswith(f"-before-schema-{version + 1}.sqlite")
    conn = sqlite3.connect(made)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == version  # the database before the change
    assert conn.execute("SELECT value FROM settings WHERE key = 'kept'").fetchone()[0] == "yes"
    conn.close()
    with Project.create(tmp_path / "p") as project:
        for k in range(KEEP + 2):
            make_backup(project._conn, project.folder, f"n{k}")
    kept = backups(tmp_path / "p")
    assert len(kept) == KEEP and kept[0].name.endswith("-n4.sqlite")
    assert sorted(p.name for p in (tmp_path / "p" / "backups").iterdir()) == sorted(p.name for p in kept)


def test_a_full_disk_during_an_import_says_how_much_and_writes_nothing(images: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys) -> None:  # noqa: ANN001
    """SQLite's own "database or disk is full" (a capped page count makes SQLite meet it for real)
    exited 70 as an internal error."""
    from lesion_studio.store import opening

    assert main(["new", str(tmp_path / "p")]) == 0
    real = opening.connect

    def capped(folder, db, *, read_only):  # noqa: ANN001, ANN202
        conn = real(folder, db, read_only=read_only)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    monkeypatch.setattr(opening, "connect", capped)
    labels = tmp_path / "labels.csv"
    labels.write_text("image,label,notes\n" + "".join(f"img{k}.png,normal,{'n' * 5000}\n" for k in range(4)))
    capsys.readouterr()
    assert main(["import", str(tmp_path / "p"), str(images), "--labels", str(labels)]) == 2
    err = capsys.readouterr().err
    assert "is full" in err and "importing 4 image(s) needs about" in err and "(an estimate)" in err
    assert "Nothing was written" in err
    monkeypatch.undo()
    with Project.open(tmp_path / "p") as project:
        assert project.image_count() == 0
        conn = project._conn
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
        with pytest.raises(DiskFullError, match="Nothing was written"):  # any edit: a split, a setting
            project.set_setting("big", "x" * 200_000)
        assert project.get_setting("big") is None


_TMPFS = textwrap.dedent("""
    import sys
    from lesion_studio.cli.main import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs, a file system that really fills up (mounting one needs root: skipped
    otherwise; the injected ENOSPC and SQLITE_FULL tests cover the same paths)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root; the injected ENOSPC and SQLITE_FULL tests cover this")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def _noise_pngs(folder: Path, seed: int, count: int = 40) -> Path:
    """``count`` 100x80 noise PNGs b0.png... in ``folder`` (made here)."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for k in range(count):
        Image.fromarray(rng.integers(0, 255, (80, 100), dtype=np.uint8)).save(folder / f"b{k}.png")
    return folder


def test_a_real_full_disk_on_a_small_tmpfs(images: Path, tmp_path: Path, small_tmpfs: Path) -> None:
    """The same with a real file system that fills up."""
    mnt = small_tmpfs
    big = _noise_pngs(tmp_path / "big", seed=1)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = [sys.executable, "-c", _TMPFS]
    assert subprocess.run([*run, "new", str(mnt / "p")], env=env, timeout=600).returncode == 0
    filler = mnt / "filler"
    free = shutil.disk_usage(mnt).free
    filler.write_bytes(b"\0" * max(0, free - 65536))
    proc = subprocess.run([*run, "import", str(mnt / "p"), str(big), "--labels", str(_labels(big))], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "is full" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    filler.unlink()
    with Project.open(mnt / "p") as project:
        assert project.image_count() == 0


def _labels(folder: Path) -> Path:
    path = folder.parent / "labels.csv"
    path.write_text("image,label,notes\n" + "".join(f"b{k}.png,normal,{'n' * 4000}\n" for k in range(40)))
    return path


class _FullAtCommit:
    """A connection whose COMMIT of a transaction that ran ``marker`` fails as SQLite's does on a
    full disk (SQLITE_FULL, "database or disk is full"); everything else is the real connection.
    Updating rows in place needs no new pages, so a capped page count cannot make a split fail."""

    def __init__(self, conn: sqlite3.Connection, marker: str) -> None:
        self._conn, self._marker, self._armed = conn, marker, False

    def cursor(self) -> Any:
        proxy = self

        class Cursor:
            def __init__(self, cur: sqlite3.Cursor) -> None:
                self._cur = cur

            def execute(self, sql: str, *args: Any) -> Any:
                proxy._seen(sql)
                if sql == "COMMIT" and proxy._armed:
                    proxy._armed = False
                    raise sqlite3.OperationalError("database or disk is full")
                return self._cur.execute(sql, *args)

            def executemany(self, sql: str, *args: Any) -> Any:
                proxy._seen(sql)
                return self._cur.executemany(sql, *args)

            def __getattr__(self, name: str) -> Any:
                return getattr(self._cur, name)

        return Cursor(self._conn.cursor())

    def _seen(self, sql: str) -> None:
        self._armed = self._armed or self._marker in sql

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_a_full_disk_during_a_split_says_how_much_and_writes_nothing(images: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys) -> None:  # noqa: ANN001
    """Disk full during `split` said "the change needs more free space": no size (issue 25)."""
    from lesion_studio.store import opening

    assert main(["import", str(tmp_path / "p"), str(images)]) == 0
    real = opening.connect
    monkeypatch.setattr(opening, "connect", lambda folder, db, *, read_only: _FullAtCommit(
        real(folder, db, read_only=read_only), "SET split"))
    capsys.readouterr()
    assert main(["split", str(tmp_path / "p"), "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert "is full" in err and "assigning splits to 4 image(s) needs about" in err, err
    assert "(an estimate). Nothing was written" in err and "Traceback" not in err
    monkeypatch.undo()
    with Project.open(tmp_path / "p") as project:
        assert {r.split for r in project.images()} == {"unassigned"}
        assert opening.table_pages(project._conn, "images") >= 1


def test_a_real_full_disk_during_a_split_on_a_small_tmpfs(tmp_path: Path, small_tmpfs: Path) -> None:
    """The same on a file system that is really full."""
    from lesion_studio.dataset.splits import assign_splits

    mnt = small_tmpfs
    big = _noise_pngs(tmp_path / "big", seed=2)
    with Project.create(mnt / "p") as project:
        import_source(project, big)
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
        with pytest.raises(DiskFullError, match=r"assigning splits to 40 image\(s\) needs about .* more "
                                                r"\(an estimate\)\. Nothing was written"):
            assign_splits(project, seed=1)
        (mnt / "filler").unlink()
        assert {r.split for r in project.images()} == {"unassigned"}


@contextlib.contextmanager
def _disk_full_in(folder: Path, after: int = 0) -> Iterator[None]:
    """Every atomic write into ``folder`` (or below) after the first ``after`` fails as on a full
    disk: ENOSPC when its temporary file is synced, the step a real full disk fails at the latest."""
    import errno

    import lesion_studio.files as files

    real, count = files._fsync_file, [0]

    def fsync(path: Path) -> None:
        if Path(path).resolve().is_relative_to(folder.resolve()):
            count[0] += 1
            if count[0] > after:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(files, "_fsync_file", fsync)
        yield


def _last_error(capsys) -> str:  # noqa: ANN001
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lesion-studio:")]
    assert len(lines) == 1, lines
    return lines[0]


def test_every_writing_command_says_how_much_a_full_disk_needed(demo_project, tmp_path: Path,
                                                                 capsys) -> None:  # noqa: ANN001
    """The SR export, the de-identified copies, translate and export-samples said "needs more free
    space", with no size; a multi-file export stopped part-way left the files it had written while
    the message said "Nothing was written"; export-samples took a full disk for one sample's failure
    and went on. Now each names a size, and an export part-way leaves none of its files."""
    pytest.importorskip("onnxruntime")
    from test_sample_cli import _keep

    folder = str(demo_project.folder)
    rec = demo_project.images(label="normal")[0]
    for fmt in ("csv", "coco", "yolo", "sr"):
        out = tmp_path / fmt
        with _disk_full_in(out, after=0 if fmt == "coco" else 2):  # part-way: files written, then full
            assert main(["export", folder, str(out), "--format", fmt]) == 2, fmt
        error = _last_error(capsys)
        assert f"the {fmt} export" in error if fmt != "sr" else "the SR export" in error
        assert "needs about" in error and "Nothing was written" in error, error
        assert not out.exists(), fmt  # none of its files, nor the folders it made
    with _disk_full_in(tmp_path / "deid", after=1):
        assert main(["export", folder, str(tmp_path / "deid"), "--format", "csv", "--deidentify"]) == 2
    assert "needs about" in _last_error(capsys) and not (tmp_path / "deid").exists()
    # --force over an earlier export: the files it replaced before the disk filled are said
    assert main(["export", folder, str(tmp_path / "again"), "--format", "csv"]) == 0
    with _disk_full_in(tmp_path / "again", after=2):
        assert main(["export", folder, str(tmp_path / "again"), "--format", "csv", "--force"]) == 2
    assert "2 file(s) that were there before had already been replaced" in _last_error(capsys)

    with _disk_full_in(tmp_path / "one"):
        assert main(["translate", folder, "--model", "builtin-phantom-unit", "--image", str(rec.abs_path),
                     "--box", "100,100,164,164", "--out", str(tmp_path / "one" / "t.png")]) == 2
    error = _last_error(capsys)
    assert "needs about" in error and "Nothing was written" in error and not (tmp_path / "one").exists()
    with _disk_full_in(tmp_path / "batch", after=3):  # the first sample's three files, then full
        assert main(["translate", folder, "--model", "builtin-phantom-unit", "--all-normal-patches", "--limit", "3",
                     "--out-dir", str(tmp_path / "batch")]) == 2
    error = _last_error(capsys)
    assert "translating 3 normal patch(es) needs about" in error and "(an estimate)" in error
    assert "The 1 sample(s) finished before it were written; nothing of the one it was writing was." in error
    assert len(list((tmp_path / "batch").iterdir())) == 3

    capsys.readouterr()
    _keep(demo_project, "accepted")
    _keep(demo_project, "accepted")
    for fmt in ("png", "dicom"):
        out = tmp_path / f"samples-{fmt}"
        with _disk_full_in(out, after=2):  # the first sample and its sidecar, then full
            assert main(["export-samples", folder, str(out), "--format", fmt]) == 2
        error = _last_error(capsys)
        assert "exporting 2 sample(s) needs about" in error and "Nothing was written" in error, error
        assert not out.exists()


# ---------------------------------------------------------------------------- COCO input bounds
def test_coco_numbers_and_ids_are_bounded(images: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """A bbox integer >= 10^309 raised OverflowError, a list or object as image_id or category_id
    TypeError: both exit 70. Now each such row is listed and skipped."""
    coco = {"images": [{"id": 1, "file_name": "img0.png"}, {"id": 2, "file_name": "img1.png"}],
            "categories": [{"id": 1, "name": "lesion"}],
            "annotations": [{"image_id": 1, "category_id": 1, "bbox": [10**309, 1, 5, 5]},
                            {"image_id": [1], "category_id": 1, "bbox": [1, 1, 5, 5]},
                            {"image_id": 1, "category_id": {"id": 1}, "bbox": [1, 1, 5, 5]},
                            {"image_id": {"a": 1}, "category_id": [1], "bbox": [1, 1, 5, 5]},
                            {"image_id": 2, "category_id": 1, "bbox": [1e300, 1e300, 1e300, 1e300]},
                            {"image_id": 2, "category_id": 1, "bbox": [10, 10, 20, 20]}]}
    path = tmp_path / "a.coco.json"
    path.write_text(json.dumps(coco))
    assert main(["import", str(tmp_path / "p"), str(images), "--coco", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    reasons = {p["where"]: p["reason"] for p in report["problems"]}
    assert "too large" in reasons["annotation #1"]
    assert "image_id must be a number or a text, not list" in reasons["annotation #2"]
    assert "category_id must be a number or a text, not dict" in reasons["annotation #3"]
    assert "image_id must be" in reasons["annotation #4"] and "beyond any image" in reasons["annotation #5"]
    assert report["boxes"] == 1


# ---------------------------------------------------------------------------- names
def test_names_cannot_leave_their_folder(demo_project, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """`train-gan --name ../../x`, an absolute path or `..` wrote checkpoints, models and samples
    outside models/, overwriting files there; train-classifier used the same rule."""
    pytest.importorskip("torch")
    folder = demo_project.folder
    before = sorted(p.name for p in folder.parent.iterdir())
    for name in ("../../x", "..", str(tmp_path / "abs"), "a/b", ".hidden", "x" * 101, "classifiers"):
        assert main(["train-gan", str(folder), "--preset", "tiny", "--iterations", "1", "--name", name,
                     "--no-onnx", "--no-assess", "--cpu-threads", "1"]) == 2, name
        assert "cannot be used" in capsys.readouterr().err or name == "classifiers"
    for name in ("../c", str(tmp_path / "abs2")):
        assert main(["train-classifier", str(folder), "--name", name, "--preset", "tiny", "--epochs", "1"]) == 2
    assert sorted(p.name for p in folder.parent.iterdir()) == before
    assert not (tmp_path / "abs").exists() and not (tmp_path / "abs2").exists()
    (folder / "models").mkdir(exist_ok=True)
    (folder / "models" / "escape").symlink_to(tmp_path)  # a link in the way may not lead out either
    assert main(["train-gan", str(folder), "--preset", "tiny", "--iterations", "1", "--name", "escape",
                 "--no-onnx", "--no-assess", "--cpu-threads", "1"]) == 2
    config = tmp_path / "exp.yaml"
    config.write_text("name: ../../escape\nstudies: [{body_parts: [femur]}]\n")
    assert main(["experiment", str(config)]) == 2
    assert "experiment name" in capsys.readouterr().err


# ---------------------------------------------------------------------------- exports
def test_export_never_overwrites_without_force(demo_project, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """`export` silently replaced labels.csv, boxes.csv and annotations.coco.json, e.g. the originals
    beside the images."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "labels.csv").write_text("the original\n")
    (out / "annotations.coco.json").write_text("{}")
    assert main(["export", str(demo_project.folder), str(out), "--format", "csv"]) == 2
    assert "already holds labels.csv" in capsys.readouterr().err
    assert (out / "labels.csv").read_text() == "the original\n" and not (out / "boxes.csv").exists()
    assert main(["export", str(demo_project.folder), str(out), "--format", "coco"]) == 2
    assert main(["export", str(demo_project.folder), str(out), "--format", "csv", "--force"]) == 0
    assert (out / "labels.csv").read_text().startswith("image,label")
    assert main(["export", str(demo_project.folder), str(out / "y"), "--format", "yolo"]) == 0
    assert main(["export", str(demo_project.folder), str(out / "y"), "--format", "yolo"]) == 2


def test_a_250_byte_image_name_exports_as_yolo(tmp_path: Path, images: Path) -> None:
    """The temp names of atomic writes added ~25 bytes: a 250-byte image name failed half-way."""
    long = "r" * 246 + ".png"
    shutil.copy(images / "img0.png", images / long)
    assert main(["import", str(tmp_path / "p"), str(images)]) == 0
    assert main(["export", str(tmp_path / "p"), str(tmp_path / "yolo"), "--format", "yolo"]) == 0
    assert (tmp_path / "yolo" / "labels" / ("r" * 246 + ".txt")).exists()


# ---------------------------------------------------------------------------- model files
def test_a_model_file_that_is_a_fifo_or_a_device_is_refused(demo_project, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """A model file that is a FIFO, or a link to /dev/zero, made translate hang."""
    pytest.importorskip("onnxruntime")
    from lesion_studio.builtin_models import find_builtin, register_builtin

    record = register_builtin(demo_project, find_builtin("builtin-phantom-unit"))
    folder = demo_project.resolve_path(record.path).parent
    rec = demo_project.images()[0]
    args = ["translate", str(demo_project.folder), "--model", record.name, "--image", str(rec.abs_path),
            "--box", "100,100,164,164", "--out", str(tmp_path / "o_sbs.png")]
    (folder / "model.onnx").unlink()
    os.mkfifo(folder / "model.onnx")
    assert main([*args, "--backend", "onnx"]) == 2
    assert "not a regular file (a FIFO)" in capsys.readouterr().err
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").symlink_to("/dev/zero")
    assert main([*args, "--backend", "torch"]) == 2
    assert "character device" in capsys.readouterr().err


def test_translate_out_dir_names_files_by_image_id(demo_project, tmp_path: Path) -> None:  # noqa: ANN001
    """`translate --out-dir` named files after the source file, whose name can hold PHI."""
    pytest.importorskip("onnxruntime")
    out = tmp_path / "batch"
    assert main(["translate", str(demo_project.folder), "--model", "builtin-phantom-unit", "--all-normal-patches",
                 "--limit", "2", "--out-dir", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names and all(n.startswith("image") and n[5:11].isdigit() for n in names)
    sources = {r.abs_path.stem for r in demo_project.images()}
    assert not any(stem in n for n in names for stem in sources)


def test_an_onnx_classifier_without_a_registered_hash_is_not_trusted(demo_project, capsys) -> None:  # noqa: ANN001
    """Before, such a file was trusted on first use and its hash adopted silently."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from stub_models import register_stub_classifier

    from lesion_studio.classifier.scoring import registered_scorer

    register_stub_classifier(demo_project, "planted")
    record = demo_project.model("planted")
    demo_project.update_model_metadata(record.id, onnx_sha256="")  # an ONNX file nobody registered
    with pytest.raises(Exception, match="no registered hash") as refused:
        registered_scorer(demo_project, "planted")
    assert "--register-onnx" in str(refused.value)
    assert demo_project.model("planted").metadata.get("onnx_sha256") == ""  # nothing adopted
    assert main(["score", str(demo_project.folder), "--model", "planted", "--split", "test"]) == 2
    assert main(["score", str(demo_project.folder), "--model", "planted", "--split", "test",
                 "--register-onnx"]) == 0
    assert demo_project.model("planted").metadata["onnx_sha256"]
