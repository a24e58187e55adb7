"""A project: one folder holding ``project.sqlite`` plus caches, models, runs and synthetic images.

Durability contract: every public method that changes data runs in exactly one transaction and
commits before it returns. The database runs in WAL mode with ``synchronous=FULL``, so a process
killed at any instant (SIGKILL, power loss) loses no committed edit and never corrupts the file.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import lesion_studio.store.lifecycle as lifecycle
import lesion_studio.store.opening as opening
from lesion_studio.errors import DiskFullError, JobCancelled, ProjectError, ReadOnlyProjectError, is_disk_full
from lesion_studio.files import file_sha256
from lesion_studio.jobs import CancelToken, ProgressCallback, ProgressEvent, no_progress
from lesion_studio.store.database_file import DB_NAME
from lesion_studio.store.events import announce_models_changed
from lesion_studio.store.records import (
    EXCLUSION_REASONS,
    LABELS,
    SPLITS,
    Box,
    ImageRecord,
    LesionBox,
    ModelRecord,
    NewRegion,
    NormalPatch,
    RunRecord,
    SyntheticSample,
    dumps,
    loads,
    resolve_stored_path,
    utc_now,
)
from lesion_studio.store.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)

#: The settings key of the project's secret group-key salt (made with the project; see deid.py).
GROUP_SALT_KEY = "group_key_salt"
_IMAGE_FIELDS = {
    "path", "name", "sha256", "width", "height", "modality", "bits_stored", "body_part", "view",
    "label", "split", "group_key", "exclusions", "exclusion_note", "notes", "lesion_type", "extra",
}


def _project_folder(folder: str | Path) -> Path:
    return Path(folder).expanduser().resolve()


class Project:
    """The project store. Thin: it validates, writes one transaction per edit, and reads records."""

    def __init__(self, folder: Path, conn: sqlite3.Connection, *, read_only: bool = False,
                 presence: lifecycle.ProjectLock | None = None) -> None:
        self.folder = folder
        self._conn = conn
        self._lock = threading.RLock()
        self._run_locks: dict[int, Any] = {}
        #: Opened read-only (a read-only mount or folder): reads work, every edit raises ReadOnlyProjectError.
        self.read_only = read_only
        #: Whether opening this project created it (``open_or_create``).
        self.created = False
        self._presence = presence  # the shared lock that says "in use" (see store/lifecycle.py)
        self._session_settings: dict[str, str] = {}  # a read-only project's settings, this session only

    # ------------------------------------------------------------------ opening
    # The rules (atomic creation, presence lock, read-only and damage checks, backups) live in
    # store/lifecycle.py, store/opening.py and store/backup.py; these methods only put them in order.
    @classmethod
    def create(cls, folder: str | Path, *, first_import: bool = False) -> Project:
        """A new, empty project in ``folder``. ``first_import``: the project is made by an import
        and marked so until an import succeeds (:func:`lifecycle.remove_if_abandoned`)."""
        folder = _project_folder(folder)
        project = cls._create_or_open(folder, first_import=first_import, must_create=True)
        return project

    @classmethod
    def open(cls, folder: str | Path) -> Project:
        folder = _project_folder(folder)
        if folder.is_file() and folder.name == DB_NAME:
            folder = folder.parent
        lifecycle.remove_if_abandoned(folder)  # an empty project a killed first import left
        if not (folder / DB_NAME).exists():
            raise ProjectError(
                f"{folder} is not a Lesion Studio project (no {DB_NAME} inside). "
                "Create one with `lesion-studio new FOLDER`."
            )
        return cls._connect(folder)

    @classmethod
    def open_or_create(cls, folder: str | Path, *, first_import: bool = False) -> Project:
        """The project in ``folder``, created when there is none (``.created`` says which)."""
        folder = _project_folder(folder)
        lifecycle.remove_if_abandoned(folder)
        if (folder / DB_NAME).exists():
            return cls._connect(folder)
        return cls._create_or_open(folder, first_import=first_import, must_create=False)

    @classmethod
    def _create_or_open(cls, folder: Path, *, first_import: bool, must_create: bool) -> Project:
        if folder.exists() and not folder.is_dir():
            raise ProjectError(f"{folder} is a file, not a folder. Choose a folder for the project.")
        if must_create and (folder / DB_NAME).exists():
            raise ProjectError(f"{folder} already holds a project. Open it instead of creating it.")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(f"Cannot create the project folder {folder}: {exc.strerror}.") from exc
        presence = lifecycle.ProjectLock.shared(folder)  # held while the database appears
        try:
            created = lifecycle.create_database(folder, lambda conn: cls._initialise(conn, folder),
                                                first_import=first_import)
        except BaseException as exc:
            if presence is not None:
                presence.release()
            if isinstance(exc, sqlite3.Error | OSError) and is_disk_full(exc):
                raise DiskFullError("a new project", folder, opening.new_database_bytes(";".join(MIGRATIONS)),
                                    estimated=True) from exc
            raise
        if not created and must_create:
            if presence is not None:
                presence.release()
            raise ProjectError(f"{folder} already holds a project. Open it instead of creating it.")
        project = cls._connect(folder, presence=presence)
        project.created = created
        return project

    @classmethod
    def _initialise(cls, conn: sqlite3.Connection, folder: Path) -> None:
        """The whole schema and the group-key salt, in the new database before it has its name."""
        import secrets

        project = cls(folder, conn)
        project._migrate()
        with project._tx() as cur:
            cur.execute("INSERT INTO settings (key, value) VALUES (?, ?)", (GROUP_SALT_KEY, secrets.token_hex(16)))

    @classmethod
    def _connect(cls, folder: Path, presence: lifecycle.ProjectLock | None = None) -> Project:
        db = folder / DB_NAME
        conn = None
        try:
            opening.check_file(folder, db)  # 0 bytes or not SQLite: damaged, read without SQLite
            read_only = not opening.is_writable(folder, db)
            if presence is None:
                presence = lifecycle.ProjectLock.shared(folder, create=not read_only)
            conn = opening.connect(folder, db, read_only=read_only)  # checked before anything writes
            project = cls(folder, conn, read_only=read_only, presence=presence)
            if read_only:
                project._check_schema_read_only()
            else:
                project._migrate()
                project._mark_interrupted_runs()
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if presence is not None:
                presence.release()
            if isinstance(exc, sqlite3.DatabaseError):
                translated = opening.translate_error(exc, folder, "opening the project", opening.opening_bytes)
                if translated is exc:
                    translated = ProjectError(f"The project database in {folder} cannot be read ({exc}).")
                raise translated from exc
            raise
        return project

    def _check_schema_read_only(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            self._migrate()  # raises the "newer Lesion Studio" message
        if version < SCHEMA_VERSION:
            raise ProjectError(f"The project in {self.folder} was made by an older Lesion Studio and needs an "
                               "upgrade, which a read-only project cannot get. Open it once where it can be "
                               "written, or copy it to a writable folder.")

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ProjectError(
                f"The project in {self.folder} was written by a newer Lesion Studio "
                f"(schema {version}, this version knows {SCHEMA_VERSION}). Update Lesion Studio."
            )
        if 0 < version < SCHEMA_VERSION:
            self.backup(f"before-schema-{SCHEMA_VERSION}")
        for number in range(version, SCHEMA_VERSION):
            with self._tx() as cur:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        cur.execute(statement)
                cur.execute(f"PRAGMA user_version = {number + 1}")
            log.info("migrated %s to schema %d", self.folder, number + 1)

    def backup(self, reason: str) -> Path:
        """A rotating backup of the database (before a schema change or a large import)."""
        from lesion_studio.store.backup import make_backup

        with self._lock:
            return make_backup(self._conn, self.folder, reason)

    def close(self) -> None:
        for run_id in list(self._run_locks):
            self._release_run_lock(run_id)
        with self._lock:
            if not self.read_only:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA optimize")
            self._conn.close()
        if self._presence is not None:
            self._presence.release()
            self._presence = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------------ folders
    def subfolder(self, name: str) -> Path:
        """A folder inside the project (``images``, ``cache``, ``models``, ``runs``, ``synthetic``...).

        A read-only project's ``cache`` lives in the user's cache folder instead, so the caches that
        viewing and scoring fill still work (they are keyed by content, never by place)."""
        path = self.folder / name
        if self.read_only:
            if name != "cache":
                return path
            import hashlib

            from lesion_studio.paths import user_cache_dir

            path = user_cache_dir() / "read-only-projects" / hashlib.sha256(str(self.folder).encode()).hexdigest()[:16]
        path.mkdir(parents=True, exist_ok=True)
        return path

    def store_path(self, path: str | Path) -> str:
        """How a file path is stored: relative (POSIX) when inside the project, else absolute."""
        path = Path(path).expanduser().resolve()
        try:
            return path.relative_to(self.folder).as_posix()
        except ValueError:
            return str(path)

    def resolve_path(self, stored: str) -> Path:
        return resolve_stored_path(self.folder, stored)

    # ------------------------------------------------------------------ transactions
    @contextlib.contextmanager
    def _tx(self, what: str = "the change", pages: Callable[[], int] | None = None) -> Iterator[sqlite3.Cursor]:
        """One write transaction. BEGIN IMMEDIATE takes the write lock up front, so two writers
        (the GUI and a worker) queue instead of failing half-way with SQLITE_BUSY.

        On a full disk the error names ``what`` and estimates the bytes it needed from the pages
        it changes: ``pages`` where the caller can count them, else a guess from the rows changed
        (:func:`opening.changed_rows_pages`)."""
        if self.read_only:
            raise ReadOnlyProjectError(self.folder)
        with self._lock:
            cur = self._conn.cursor()
            before = self._conn.total_changes
            try:
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    if self._conn.in_transaction:
                        cur.execute("ROLLBACK")
                    raise
                else:
                    cur.execute("COMMIT")
            except sqlite3.Error as exc:  # a full disk, a read-only file, damage: in the user's terms
                rows = self._conn.total_changes - before
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        cur.execute("ROLLBACK")
                counted = pages or (lambda: opening.changed_rows_pages(rows))
                translated = opening.translate_error(exc, self.folder, what,
                                                     lambda: opening.log_bytes(self._conn, counted()))
                if translated is exc:
                    raise
                raise translated from exc
            finally:
                cur.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                translated = opening.translate_error(exc, self.folder, "reading the project")
                if translated is exc:
                    raise
                raise translated from exc

    def _select(self, table: str, filters: dict[str, Any], order: str = "id") -> list[sqlite3.Row]:
        """Rows of ``table`` whose columns equal the non-None ``filters`` (column -> value)."""
        active = {k: v for k, v in filters.items() if v is not None}
        where = " AND ".join(f"{k} = ?" for k in active)
        sql = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "") + f" ORDER BY {order}"
        return self._query(sql, list(active.values()))

    def _update(self, table: str, row_id: int, values: dict[str, Any]) -> None:
        """Set the non-None ``values`` on one row, in one transaction (nothing to set: no write)."""
        active = {k: v for k, v in values.items() if v is not None}
        if not active:
            return
        with self._tx() as cur:
            cur.execute(f"UPDATE {table} SET {', '.join(f'{k} = ?' for k in active)} WHERE id = ?",
                        [*active.values(), row_id])

    # ------------------------------------------------------------------ images
    def _image_row(self, row: sqlite3.Row) -> ImageRecord:
        exclusions = tuple(x for x in row["exclusions"].split(",") if x)
        return ImageRecord(
            id=row["id"], path=row["path"], abs_path=self.resolve_path(row["path"]), name=row["name"],
            sha256=row["sha256"], width=row["width"], height=row["height"], modality=row["modality"],
            bits_stored=row["bits_stored"], body_part=row["body_part"], view=row["view"],
            label=row["label"], split=row["split"], group_key=row["group_key"], exclusions=exclusions,
            exclusion_note=row["exclusion_note"], notes=row["notes"], lesion_type=row["lesion_type"],
            extra=loads(row["extra"]),
        )

    @staticmethod
    def _check_image_fields(fields: dict[str, Any]) -> dict[str, Any]:
        unknown = set(fields) - _IMAGE_FIELDS
        if unknown:
            raise ProjectError(f"Unknown image field(s): {', '.join(sorted(unknown))}.")
        out = dict(fields)
        if "label" in out and out["label"] not in LABELS:
            raise ProjectError(f"Label must be one of {', '.join(LABELS)}, not {out['label']!r}.")
        if "split" in out and out["split"] not in SPLITS:
            raise ProjectError(f"Split must be one of {', '.join(SPLITS)}, not {out['split']!r}.")
        if "exclusions" in out:
            flags = out["exclusions"]
            flags = [f for f in (flags.split(",") if isinstance(flags, str) else flags) if f]
            bad = [f for f in flags if f not in EXCLUSION_REASONS]
            if bad:
                raise ProjectError(
                    f"Exclusion reason must be one of {', '.join(EXCLUSION_REASONS)}, not {bad[0]!r}."
                )
            out["exclusions"] = ",".join(sorted(set(flags), key=EXCLUSION_REASONS.index))
        if "extra" in out:
            out["extra"] = dumps(out["extra"])
        return out

    def add_image(self, path: str | Path, *, sha256: str, width: int, height: int, **fields: Any) -> int:
        return self.add_images([dict(path=path, sha256=sha256, width=width, height=height, **fields)])[0]

    def add_images(self, rows: Iterable[dict[str, Any]]) -> list[int]:
        """Add many images in one transaction (an import batch is one unit of work).

        A row may carry ``lesion_boxes`` and ``normal_patches``: lists of (Box, author) pairs or
        :class:`NewRegion` items inserted with their image, so an image never appears without its
        annotations; and ``reader_labels`` and ``measurements`` (see :mod:`store.import_rows`).
        """
        from lesion_studio.store.import_rows import insert_image_annotations

        now = utc_now()
        ids = []
        with self._tx() as cur:
            for row in rows:
                row = dict(row)
                regions = {t: row.pop(t, ()) for t in ("lesion_boxes", "normal_patches")}
                reader_rows = {t: row.pop(t, ()) for t in ("reader_labels", "measurements")}
                abs_path = Path(row.pop("path"))
                row.setdefault("name", abs_path.name)
                fields = self._check_image_fields(row)
                fields["path"] = self.store_path(abs_path)
                fields["added_at"] = fields["modified_at"] = now
                cols = ", ".join(fields)
                marks = ", ".join("?" for _ in fields)
                try:
                    cur.execute(f"INSERT INTO images ({cols}) VALUES ({marks})", list(fields.values()))
                except sqlite3.IntegrityError as exc:
                    raise ProjectError(f"{abs_path.name} is already in the project.") from exc
                image_id = int(cur.lastrowid)
                ids.append(image_id)
                for table, boxes in regions.items():
                    for item in boxes:
                        region = item if isinstance(item, NewRegion) else NewRegion(*item)
                        box = region.box.normalized()
                        typed = table == "lesion_boxes"
                        cur.execute(
                            f"INSERT INTO {table} (image_id, x0, y0, x1, y1, author, created_at, modified_at"
                            f"{', lesion_type' if typed else ''}) VALUES (?, ?, ?, ?, ?, ?, ?, ?"
                            f"{', ?' if typed else ''})",
                            (image_id, *box.as_tuple(), region.author, region.created_at or now,
                             region.modified_at or region.created_at or now,
                             *((region.lesion_type,) if typed else ())),
                        )
                insert_image_annotations(cur, image_id, now, **reader_rows)
        return ids

    def image(self, image_id: int) -> ImageRecord:
        rows = self._query("SELECT * FROM images WHERE id = ?", (image_id,))
        if not rows:
            raise ProjectError(f"There is no image with id {image_id} in this project.")
        return self._image_row(rows[0])

    def image_by_path(self, path: str | Path) -> ImageRecord | None:
        rows = self._query("SELECT * FROM images WHERE path = ?", (self.store_path(path),))
        return self._image_row(rows[0]) if rows else None

    def images(
        self,
        *,
        label: str | None = None,
        body_parts: Iterable[str] | None = None,
        split: str | None = None,
        include_excluded: bool = True,
    ) -> list[ImageRecord]:
        where, params = [], []
        if label is not None:
            where.append("label = ?")
            params.append(label)
        if body_parts is not None:
            parts = list(body_parts)
            where.append(f"body_part IN ({', '.join('?' for _ in parts)})")
            params.extend(parts)
        if split is not None:
            where.append("split = ?")
            params.append(split)
        if not include_excluded:
            where.append("exclusions = ''")
        sql = "SELECT * FROM images" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [self._image_row(r) for r in self._query(sql, params)]

    def image_count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM images")[0][0])

    def body_parts(self) -> set[str]:
        """The body parts the project's images name (one indexed query, for choosing defaults)."""
        return {str(r[0]) for r in self._query("SELECT DISTINCT body_part FROM images WHERE body_part != ''")}

    def update_image(self, image_id: int, **fields: Any) -> ImageRecord:
        if not fields:
            return self.image(image_id)
        fields = self._check_image_fields(fields)
        if "path" in fields:
            fields["path"] = self.store_path(fields["path"])
        fields["modified_at"] = utc_now()
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._tx() as cur:
            cur.execute(f"UPDATE images SET {assignments} WHERE id = ?", [*fields.values(), image_id])
            if cur.rowcount == 0:
                raise ProjectError(f"There is no image with id {image_id} in this project.")
        return self.image(image_id)

    def set_splits(self, assignment: dict[int, str]) -> None:
        """Assign many splits at once (one transaction, so a split is never half-applied)."""
        bad = {s for s in assignment.values() if s not in SPLITS}
        if bad:
            raise ProjectError(f"Unknown split(s): {', '.join(sorted(bad))}.")
        now = utc_now()
        # Every image's row changes: each page of the images table (and its indexes) goes to the log.
        with self._tx(f"assigning splits to {len(assignment)} image(s)",
                      lambda: opening.table_pages(self._conn, "images")) as cur:
            cur.executemany(
                "UPDATE images SET split = ?, modified_at = ? WHERE id = ?",
                [(s, now, i) for i, s in assignment.items()],
            )

    def remove_image(self, image_id: int) -> None:
        with self._tx() as cur:
            cur.execute("DELETE FROM images WHERE id = ?", (image_id,))

    def open_radiograph(self, image_id: int):  # noqa: ANN201 - avoids importing io at module load
        from lesion_studio.io import open_radiograph

        return open_radiograph(self.image(image_id).abs_path)

    def missing_images(self) -> list[ImageRecord]:
        return [r for r in self.images() if not r.abs_path.exists()]

    def relink(self, folder: str | Path, *, progress: ProgressCallback = no_progress,
               cancel: CancelToken | None = None) -> dict[int, Path]:
        """Find moved images by content hash under ``folder`` and point the project at them.

        Every file under ``folder`` is a candidate, but files named like a missing image are
        hashed first and the search stops once every missing image is found, so the common case (a
        moved folder) hashes little. Returns {image_id: new path}. Cancelled, it records what it
        found so far and raises ``JobCancelled`` with that as ``partial`` (the one cancel contract).
        """
        missing = self.missing_images()
        if not missing:
            return {}
        by_hash: dict[str, list[ImageRecord]] = {}
        for rec in missing:
            by_hash.setdefault(rec.sha256, []).append(rec)
        names = {rec.name for rec in missing}
        candidates = [p for p in Path(folder).rglob("*") if p.is_file()]
        # Same-name files first: the common case of a moved folder resolves without hashing much.
        candidates.sort(key=lambda p: p.name not in names)
        found: dict[int, Path] = {}
        cancelled = False
        for i, path in enumerate(candidates):
            if len(found) == len(missing):
                break
            if cancel is not None and cancel.cancelled:
                cancelled = True
                break
            progress(ProgressEvent("relink", i, len(candidates), "comparing file contents"))
            digest = file_sha256(path)
            for rec in by_hash.get(digest, []):
                if rec.id not in found:
                    found[rec.id] = path.resolve()
                    break
        with self._tx() as cur:
            for image_id, path in found.items():
                cur.execute(
                    "UPDATE images SET path = ?, modified_at = ? WHERE id = ?",
                    (self.store_path(path), utc_now(), image_id),
                )
        if cancelled:
            raise JobCancelled("Re-linking", partial=found)
        return found

    # ------------------------------------------------------------------ boxes and patches
    # Lesion boxes and normal patches share one implementation; the table name is the only difference.
    def _add_region(self, table: str, image_id: int, box: Box, author: str, region_id: int | None,
                    extra: dict[str, Any] | None = None) -> int:
        with self._tx() as cur:
            return self._insert_region(cur, table, image_id, box, author, region_id, extra)

    @staticmethod
    def _insert_region(cur: sqlite3.Cursor, table: str, image_id: int, box: Box, author: str,
                       region_id: int | None, extra: dict[str, Any] | None = None) -> int:
        """Insert a box or patch inside the caller's transaction (an accepted proposal writes its
        box and its decision in one)."""
        box = box.normalized()
        if not (box.x1 > box.x0 and box.y1 > box.y0):
            raise ProjectError("A box needs a positive width and height.")
        now = utc_now()
        extra = extra or {}
        cols = "".join(f", {k}" for k in extra)
        marks = "".join(", ?" for _ in extra)
        cur.execute(
            f"INSERT INTO {table} (id, image_id, x0, y0, x1, y1, author, created_at, modified_at{cols}) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?{marks})",
            (region_id, image_id, *box.as_tuple(), author, now, now, *extra.values()),
        )
        return int(cur.lastrowid)

    def _update_region(self, table: str, region_id: int, box: Box) -> None:
        box = box.normalized()
        with self._tx() as cur:
            cur.execute(
                f"UPDATE {table} SET x0 = ?, y0 = ?, x1 = ?, y1 = ?, modified_at = ? WHERE id = ?",
                (*box.as_tuple(), utc_now(), region_id),
            )
            if cur.rowcount == 0:
                raise ProjectError(f"There is no region {region_id} to update.")

    def _delete_region(self, table: str, region_id: int) -> None:
        with self._tx() as cur:
            cur.execute(f"DELETE FROM {table} WHERE id = ?", (region_id,))

    def _regions(self, table: str, image_id: int | None, author: str | None = None) -> list[sqlite3.Row]:
        where = [c for c, v in (("image_id = ?", image_id), ("author = ?", author)) if v is not None]
        params = [v for v in (image_id, author) if v is not None]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return self._query(f"SELECT * FROM {table}{clause} ORDER BY image_id, id", params)

    @staticmethod
    def _region_fields(row: sqlite3.Row) -> dict[str, Any]:
        return dict(
            id=row["id"], image_id=row["image_id"], box=Box(row["x0"], row["y0"], row["x1"], row["y1"]),
            author=row["author"], created_at=row["created_at"], modified_at=row["modified_at"],
        )

    def add_box(self, image_id: int, box: Box, *, author: str = "", box_id: int | None = None,
                lesion_type: str = "", provenance: dict[str, Any] | None = None) -> int:
        """Add a lesion box drawn by reader ``author``. ``box_id`` restores a deleted box under
        its old id (undo), and ``provenance`` its record of where it came from
        (:attr:`LesionBox.provenance`: pass it back when restoring an accepted proposal's box)."""
        return self._add_region("lesion_boxes", image_id, box, author, box_id,
                                {"lesion_type": lesion_type, "provenance": dumps(provenance)})

    def update_box(self, box_id: int, box: Box) -> None:
        self._update_region("lesion_boxes", box_id, box)

    def set_box_type(self, box_id: int, lesion_type: str) -> None:
        """Set a box's lesion type (one transaction); its reader stays who drew it."""
        with self._tx() as cur:
            cur.execute("UPDATE lesion_boxes SET lesion_type = ?, modified_at = ? WHERE id = ?",
                        (lesion_type, utc_now(), box_id))
            if cur.rowcount == 0:
                raise ProjectError(f"There is no lesion box {box_id}.")

    def delete_box(self, box_id: int) -> None:
        self._delete_region("lesion_boxes", box_id)

    def boxes(self, image_id: int | None = None, *, reader: str | None = None) -> list[LesionBox]:
        """Lesion boxes, of one image and/or one reader (None: all)."""
        return [self._box_row(r) for r in self._regions("lesion_boxes", image_id, reader)]

    def box(self, box_id: int) -> LesionBox:
        rows = self._query("SELECT * FROM lesion_boxes WHERE id = ?", (box_id,))
        if not rows:
            raise ProjectError(f"There is no lesion box {box_id}.")
        return self._box_row(rows[0])

    def _box_row(self, row: sqlite3.Row) -> LesionBox:
        return LesionBox(**self._region_fields(row), lesion_type=row["lesion_type"],
                         provenance=loads(row["provenance"]))

    def add_normal_patch(
        self, image_id: int, box: Box, *, author: str = "", patch_id: int | None = None
    ) -> int:
        return self._add_region("normal_patches", image_id, box, author, patch_id)

    def update_normal_patch(self, patch_id: int, box: Box) -> None:
        self._update_region("normal_patches", patch_id, box)

    def delete_normal_patch(self, patch_id: int) -> None:
        self._delete_region("normal_patches", patch_id)

    def normal_patches(self, image_id: int | None = None) -> list[NormalPatch]:
        return [NormalPatch(**self._region_fields(r)) for r in self._regions("normal_patches", image_id)]

    def normal_patch(self, patch_id: int) -> NormalPatch:
        rows = self._query("SELECT * FROM normal_patches WHERE id = ?", (patch_id,))
        if not rows:
            raise ProjectError(f"There is no normal patch {patch_id}.")
        return NormalPatch(**self._region_fields(rows[0]))

    # ------------------------------------------------------------------ models and runs
    def _model_row(self, row: sqlite3.Row) -> ModelRecord:
        return ModelRecord(
            id=row["id"], name=row["name"], kind=row["kind"], path=row["path"], sha256=row["sha256"],
            body_parts=tuple(x for x in row["body_parts"].split(",") if x), config=loads(row["config"]),
            metadata=loads(row["metadata"]), created_at=row["created_at"],
        )

    def register_model(
        self, name: str, kind: str, path: str | Path, *, sha256: str, body_parts: Iterable[str] = (),
        config: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
        replace_existing: bool = False,
    ) -> int:
        with self._tx() as cur:
            if replace_existing:
                for (old_id,) in cur.execute("SELECT id FROM models WHERE name = ?", (name,)).fetchall():
                    self._forget_model(cur, old_id)
            try:
                cur.execute(
                    "INSERT INTO models (name, kind, path, sha256, body_parts, config, metadata, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (name, kind, self.store_path(path), sha256, ",".join(body_parts), dumps(config),
                     dumps(metadata), utc_now()),
                )
            except sqlite3.IntegrityError as exc:
                raise ProjectError(f"A model named {name!r} already exists. Choose another name.") from exc
            model_id = int(cur.lastrowid)
        announce_models_changed(self.folder)
        return model_id

    def models(self, kind: str | None = None) -> list[ModelRecord]:
        return [self._model_row(r) for r in self._select("models", {"kind": kind})]

    def find_model(self, name: str) -> ModelRecord | None:
        """The model registered under ``name``, or None (for callers that treat absence as normal)."""
        rows = self._query("SELECT * FROM models WHERE name = ?", (name,))
        return self._model_row(rows[0]) if rows else None

    def model(self, ref: int | str) -> ModelRecord:
        """A model by id or by name."""
        column = "id" if isinstance(ref, int) or str(ref).isdigit() else "name"
        rows = self._query(f"SELECT * FROM models WHERE {column} = ?", (ref,))
        if not rows:
            known = ", ".join(m.name for m in self.models()) or "none yet"
            raise ProjectError(f"There is no model {ref!r} in this project (known: {known}).")
        return self._model_row(rows[0])

    def update_model_metadata(self, model_id: int, **values: Any) -> ModelRecord:
        """Merge ``values`` into a model's metadata (one transaction), e.g. a derived file's hash."""
        with self._tx() as cur:
            row = cur.execute("SELECT metadata FROM models WHERE id = ?", (model_id,)).fetchone()
            if row is None:
                raise ProjectError(f"There is no model with id {model_id}.")
            cur.execute("UPDATE models SET metadata = ? WHERE id = ?",
                        (dumps({**loads(row[0]), **values}), model_id))
        announce_models_changed(self.folder)
        return self.model(model_id)

    def delete_model(self, model_id: int) -> None:
        with self._tx() as cur:
            self._forget_model(cur, model_id)
        announce_models_changed(self.folder)

    @staticmethod
    def _forget_model(cur: sqlite3.Cursor, model_id: int) -> None:
        """Delete a model row. Its pending box proposals go with it (nobody decided them, and no
        model can propose them again); its decided ones stay, as history, under its name, and its
        image scores go by cascade."""
        cur.execute("DELETE FROM proposals WHERE model_id = ? AND state = 'pending'", (model_id,))
        cur.execute("DELETE FROM models WHERE id = ?", (model_id,))

    def _run_row(self, row: sqlite3.Row) -> RunRecord:
        return RunRecord(
            id=row["id"], kind=row["kind"], name=row["name"], status=row["status"], model_id=row["model_id"],
            config=loads(row["config"]), metrics=loads(row["metrics"]), output_dir=row["output_dir"],
            started_at=row["started_at"], finished_at=row["finished_at"],
        )

    def start_run(self, kind: str, *, name: str = "", config: dict[str, Any] | None = None,
                  output_dir: str | Path = "") -> int:
        """Record a run as ``running``. The process holds a lock file for it until the run is
        finished, so a project opened after a crash can tell a dead run from a live one."""
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO runs (kind, name, status, config, output_dir, started_at) VALUES (?, ?, ?, ?, ?, ?)",
                (kind, name, "running", dumps(config), self.store_path(output_dir) if output_dir else "",
                 utc_now()),
            )
            run_id = int(cur.lastrowid)
            self._hold_run_lock(run_id)  # inside the transaction: no opener sees the row unlocked
            return run_id

    def update_run(self, run_id: int, *, status: str | None = None, metrics: dict[str, Any] | None = None,
                   model_id: int | None = None, finished: bool = False) -> None:
        self._update("runs", run_id, {
            "status": status, "metrics": dumps(metrics) if metrics is not None else None, "model_id": model_id,
            "finished_at": utc_now() if finished else None,
        })
        if finished:
            self._release_run_lock(run_id)

    # A run's liveness is an flock on runs/.run-<id>.lock: the kernel drops it when the process
    # dies (kill -9 included), so no pid bookkeeping and no stale pid reuse.
    def _run_lock_path(self, run_id: int) -> Path:
        return self.folder / "runs" / f".run-{run_id}.lock"

    def _hold_run_lock(self, run_id: int) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: runs are not tracked; an interrupted run stays 'running'
            return
        path = self._run_lock_path(run_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(path, "a+")  # noqa: SIM115 - held open for the run's lifetime
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            log.warning("cannot lock run %d (%s); it will not be marked interrupted if it dies", run_id, exc)
            return
        self._run_locks[run_id] = fh

    def _release_run_lock(self, run_id: int) -> None:
        fh = self._run_locks.pop(run_id, None)
        if fh is not None:
            with contextlib.suppress(OSError):
                self._run_lock_path(run_id).unlink()
            fh.close()

    def _run_is_dead(self, run_id: int) -> bool:
        try:
            import fcntl
        except ImportError:
            return False
        path = self._run_lock_path(run_id)
        if run_id in self._run_locks:
            return False
        try:
            fh = open(path, "r+")  # noqa: SIM115
        except FileNotFoundError:
            return True  # finished without a status, or started by an older version
        except OSError:
            return False
        with fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # another process holds it: the run is alive
        with contextlib.suppress(OSError):
            path.unlink()
        return True

    def _mark_interrupted_runs(self) -> None:
        """Runs left ``running`` by a process that died (kill -9, power loss) become ``interrupted``."""
        if not self._query("SELECT 1 FROM runs WHERE status = 'running' LIMIT 1"):
            return
        try:
            with self._tx() as cur:
                ids = [r[0] for r in cur.execute("SELECT id FROM runs WHERE status = 'running'").fetchall()]
                dead = [i for i in ids if self._run_is_dead(i)]
                now = utc_now()
                cur.executemany("UPDATE runs SET status = 'interrupted', finished_at = ? WHERE id = ?",
                                [(now, i) for i in dead])
        except (sqlite3.OperationalError, ReadOnlyProjectError) as exc:  # a read-only file still opens
            log.warning("could not mark interrupted runs in %s (%s)", self.folder, exc)
            return
        for run_id in dead:
            log.warning("run %d was interrupted (its process ended without finishing it)", run_id)

    def runs(self, kind: str | None = None) -> list[RunRecord]:
        return [self._run_row(r) for r in self._select("runs", {"kind": kind})]

    def run(self, run_id: int) -> RunRecord:
        rows = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise ProjectError(f"There is no run {run_id}.")
        return self._run_row(rows[0])

    # ------------------------------------------------------------------ synthetic samples
    def _sample_row(self, row: sqlite3.Row) -> SyntheticSample:
        return SyntheticSample(
            id=row["id"], source_image_id=row["source_image_id"], model_id=row["model_id"],
            box=Box(row["x0"], row["y0"], row["x1"], row["y1"]), n=row["n"], seed=row["seed"],
            path=row["path"], score=row["score"], status=row["status"], batch=row["batch"],
            provenance=loads(row["provenance"]), created_at=row["created_at"],
            map_peak=(None if row["map_peak_x"] is None or row["map_peak_y"] is None
                      else (float(row["map_peak_x"]), float(row["map_peak_y"]))),
        )

    def add_synthetic_sample(
        self, source_image_id: int, box: Box, *, n: float, seed: int, model_id: int | None,
        path: str | Path = "", score: float | None = None, status: str = "candidate", batch: str = "",
        provenance: dict[str, Any] | None = None,
    ) -> int:
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO synthetic_samples (source_image_id, model_id, x0, y0, x1, y1, n, seed, path, "
                "score, status, batch, provenance, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (source_image_id, model_id, *box.normalized().as_tuple(), float(n), int(seed),
                 self.store_path(path) if path else "", score, status, batch, dumps(provenance), utc_now()),
            )
            return int(cur.lastrowid)

    def update_synthetic_sample(self, sample_id: int, *, score: float | None = None,
                                status: str | None = None, path: str | Path | None = None,
                                map_peak: tuple[float, float] | None = None) -> None:
        """Set what is given. ``map_peak``: the scoring classifier's map peak (image pixels),
        stored with its ``score``; a score given without a peak clears an older peak, which
        belonged to another scoring."""
        if status is not None and status not in ("candidate", "accepted", "rejected"):
            raise ProjectError(f"Unknown sample status {status!r}.")
        values: dict[str, Any] = {"status": status, "path": self.store_path(path) if path is not None else None}
        if score is not None:
            values.update(score=float(score), map_peak_x=None if map_peak is None else float(map_peak[0]),
                          map_peak_y=None if map_peak is None else float(map_peak[1]))
        if map_peak is not None and score is None:
            raise ProjectError("A map peak is stored with the score it came with.")
        active = {k: v for k, v in values.items() if v is not None or k.startswith("map_peak")}
        if not active:
            return
        with self._tx() as cur:
            cur.execute(f"UPDATE synthetic_samples SET {', '.join(f'{k} = ?' for k in active)} WHERE id = ?",
                        [*active.values(), sample_id])

    def synthetic_samples(self, *, status: str | None = None, batch: str | None = None) -> list[SyntheticSample]:
        return [self._sample_row(r) for r in self._select("synthetic_samples", {"status": status, "batch": batch})]

    def synthetic_sample(self, sample_id: int) -> SyntheticSample:
        rows = self._query("SELECT * FROM synthetic_samples WHERE id = ?", (sample_id,))
        if not rows:
            raise ProjectError(f"There is no synthetic sample {sample_id}.")
        return self._sample_row(rows[0])

    # ------------------------------------------------------------------ realism ratings
    def add_rating(self, rater: str, session: str, item_kind: str, item_ref: str, answer: str) -> int:
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO realism_ratings (rater, session, item_kind, item_ref, answer, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (rater, session, item_kind, item_ref, answer, utc_now()),
            )
            return int(cur.lastrowid)

    def ratings(self, rater: str | None = None, session: str | None = None) -> list[dict[str, Any]]:
        return [dict(r) for r in self._select("realism_ratings", {"rater": rater, "session": session})]

    # ------------------------------------------------------------------ settings
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        if key in self._session_settings:
            return self._session_settings[key]
        rows = self._query("SELECT value FROM settings WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_setting(self, key: str, value: str) -> None:
        """Store a setting (the viewer's last image, the chosen model...). A read-only project keeps
        it for this session only: settings are preferences, and viewing must not fail for them."""
        if self.read_only:
            self._session_settings[key] = value
            return
        with self._tx() as cur:
            cur.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))

    def setting_or_init(self, key: str, make: Callable[[], str]) -> str:
        """The setting ``key``; when absent, ``make()`` is stored first, in one transaction, so two
        processes asking at once both get the one value that was stored."""
        value = self.get_setting(key)
        if value is not None:
            return value
        with self._tx() as cur:
            cur.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, make()))
            return str(cur.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0])

    # ------------------------------------------------------------------ summary
    def summary(self) -> dict[str, Any]:
        """Counts for `lesion-studio info`: overall, per body part and per split."""

        def block(where: str = "", params: Sequence[Any] = ()) -> dict[str, int]:
            clause = f"WHERE {where}" if where else ""
            row = self._query(
                "SELECT COUNT(*) AS images, "
                "COALESCE(SUM(label = 'lesion'), 0) AS lesion, COALESCE(SUM(label = 'normal'), 0) AS normal, "
                "COALESCE(SUM(label = 'unreviewed'), 0) AS unreviewed, "
                "COALESCE(SUM(exclusions != ''), 0) AS excluded, "
                f"(SELECT COUNT(*) FROM lesion_boxes b JOIN images i ON b.image_id = i.id {clause}) AS boxes, "
                f"(SELECT COUNT(*) FROM normal_patches p JOIN images i ON p.image_id = i.id {clause}) "
                f"AS normal_patches FROM images i {clause}",
                [*params, *params, *params],
            )[0]
            return {k: int(row[k]) for k in row.keys()}  # noqa: SIM118 - sqlite3.Row

        out = block()
        parts = [r[0] for r in self._query("SELECT DISTINCT body_part FROM images ORDER BY body_part")]
        out["body_parts"] = {p or "(none)": block("i.body_part = ?", (p,)) for p in parts}
        splits = [r[0] for r in self._query("SELECT DISTINCT split FROM images ORDER BY split")]
        out["splits"] = {s: block("i.split = ?", (s,)) for s in splits}
        out["models"] = int(self._query("SELECT COUNT(*) FROM models")[0][0])
        out["synthetic_samples"] = int(self._query("SELECT COUNT(*) FROM synthetic_samples")[0][0])
        return out


