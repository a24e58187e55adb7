"""Opening a project's database file: read-only when it must be, never writing to a damaged one.

What this module decides, before :class:`~lesion_studio.store.project.Project` runs a single
statement that could write:

- a database file of 0 bytes, or one that does not start with SQLite's header, is damaged (SQLite
  would open an empty file as an empty database, and the next import would fill it silently);
- a project on a read-only mount, or whose folder or database the user may not write, is opened
  read-only (``mode=ro``, or ``immutable=1`` where SQLite cannot make its shared-memory file):
  viewing, info, export and scoring work, edits say the project is read-only;
- ``PRAGMA quick_check`` runs when the file is small enough for it to be cheap (it reads every
  page: milliseconds for a FracAtlas-sized project); a failure is reported as damage, in the
  user's terms, with the last good backup (:mod:`lesion_studio.store.backup`), and the file is
  left exactly as it was.

SQLite errors met later are translated by :func:`translate_error`: a full disk, a read-only
database and damage each become the app's own error with a message a person can act on.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lesion_studio.errors import DamagedProjectError, DiskFullError, ReadOnlyProjectError, is_disk_full
from lesion_studio.store.backup import last_good_backup
from lesion_studio.store.database_file import DB_NAME, connect_file  # noqa: F401 - used here and by lifecycle

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
#: Databases up to this size get a full ``PRAGMA quick_check`` when opened; larger ones the header
#: check only (quick_check reads every page).
QUICK_CHECK_MAX_BYTES = 256 * 1024 * 1024
_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_READONLY_CODE = 8  # SQLITE_READONLY
_IOERR_CODE = 10  # SQLITE_IOERR: what SQLite says when it cannot even make its -shm file on a full disk


def _nearly_full(folder: Path) -> bool:
    import shutil

    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


def is_writable(folder: Path, db: Path) -> bool:
    """Whether this process may write the database and create files beside it (its -wal and
    -shm). ``os.access`` also answers False on a read-only mount, even for root."""
    return os.access(folder, os.W_OK) and os.access(db, os.W_OK)


def damaged_error(folder: Path, detail: str) -> DamagedProjectError:
    """The message for a damaged database, offering the newest backup that is sound."""
    db = folder / DB_NAME
    backup = last_good_backup(folder)
    if backup is not None:
        advice = (f"The last good backup is {backup} (its name holds the UTC time it was made): close Lesion "
                  f"Studio, move the damaged {db.name} aside and copy the backup in its place.")
    else:
        advice = ("There is no backup of it in the project; restore the folder from your own backup, or create "
                  "a new project and import the images again.")
    return DamagedProjectError(f"The project database {db} is damaged ({detail}). Nothing was written to it. "
                               f"{advice}")


def check_file(folder: Path, db: Path) -> None:
    """Refuse a database file that is empty or is not SQLite at all, reading only its header."""
    try:
        size = db.stat().st_size
        with open(db, "rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        from lesion_studio.errors import ProjectError

        raise ProjectError(f"The project database {db} cannot be read: {exc.strerror or exc}.") from exc
    if size == 0:
        raise damaged_error(folder, "the file is empty (0 bytes)")
    if head != SQLITE_HEADER:
        raise damaged_error(folder, "the file is not an SQLite database")


def connect(folder: Path, db: Path, *, read_only: bool) -> sqlite3.Connection:
    """The one connection to a project's database: checked (:func:`check_integrity`, reads only)
    before anything may write, then in WAL mode with ``synchronous=FULL`` when writable, foreign
    keys on, autocommit (the store runs its own transactions). Read-only first tries ``mode=ro``;
    where SQLite cannot create the -shm file beside a WAL database (a read-only mount) it opens the
    file as ``immutable``, which is safe because nothing can change it there."""
    options: dict[str, Any] = {"isolation_level": None, "check_same_thread": False, "timeout": 30.0}
    if not read_only:
        conn = sqlite3.connect(db, **options)
    else:
        uri = db.resolve().as_uri()
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, **options)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            conn.close()
            wal = Path(f"{db}-wal")
            if wal.exists() and wal.stat().st_size > 0:
                log.warning("%s has changes in its -wal file that a read-only mount keeps from being read; "
                            "opening what the main file holds", db)
            conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, **options)
    try:
        conn.row_factory = sqlite3.Row
        check_integrity(conn, folder, db)
        if not read_only:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    return conn


def check_integrity(conn: sqlite3.Connection, folder: Path, db: Path) -> None:
    """SQLite's quick check where it is cheap; raises :class:`DamagedProjectError`. Reads only."""
    if db.stat().st_size > QUICK_CHECK_MAX_BYTES:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return
    rows = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
    if rows != ["ok"]:
        raise damaged_error(folder, f"SQLite's check says: {rows[0]}")


def translate_error(exc: sqlite3.Error, folder: Path, what: str = "the change",
                    needed: Callable[[], int] | None = None) -> Exception:
    """The app's error for an SQLite error, or ``exc`` itself when it is none of the known faults.
    ``needed`` estimates the bytes the change needed, for the message when the disk is full."""
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if is_disk_full(exc) or (code == _IOERR_CODE and _nearly_full(folder)):
        try:
            estimate = needed() if needed is not None else None
        except sqlite3.Error:
            estimate = None
        return DiskFullError(what, folder, estimate, estimated=True)
    if code == _READONLY_CODE or "readonly database" in str(exc):
        return ReadOnlyProjectError(folder)
    if code in _CORRUPT_CODES or "malformed" in str(exc) or "not a database" in str(exc):
        return damaged_error(folder, str(exc))
    return exc


# ---------------------------------------------------------------------------- what a change needs
#: A write-ahead log starts with a 32-byte header and holds each changed page once per
#: transaction, behind a 24-byte frame header; opening the database in WAL mode also makes the
#: 32 KB shared-memory index (-shm).
_WAL_HEADER, _WAL_FRAME_HEADER, _SHM_BYTES = 32, 24, 32 * 1024


def log_bytes(conn: sqlite3.Connection, pages: int) -> int:
    """What a transaction that changes ``pages`` pages writes to the write-ahead log."""
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    return _WAL_HEADER + max(1, pages) * (page_size + _WAL_FRAME_HEADER)


def table_pages(conn: sqlite3.Connection, table: str) -> int:
    """The pages that hold ``table`` and its indexes: what a change to every one of its rows copies
    into the log. SQLite's ``dbstat`` counts them where it is built in; elsewhere every page of
    the database is counted (an upper bound)."""
    try:
        return int(conn.execute(
            "SELECT COUNT(*) FROM dbstat WHERE name = ? OR name IN "
            "(SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?)", (table, table)).fetchone()[0])
    except sqlite3.Error:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])


def changed_rows_pages(rows: int) -> int:
    """A guess at the pages a transaction that changed ``rows`` rows touched: a table page and an
    index page per row (rows that share a page count it twice, so this errs high)."""
    return 2 * (max(0, rows) + 1)


def opening_bytes(page_size: int = 4096) -> int:
    """What opening a project in WAL mode writes: the shared-memory index and the log's header,
    with a page or two for a schema upgrade or the run bookkeeping that follows."""
    return _SHM_BYTES + _WAL_HEADER + 2 * (page_size + _WAL_FRAME_HEADER)


def new_database_bytes(schema: str, page_size: int = 4096) -> int:
    """What creating a project writes: a page per table and index of ``schema`` (SQL) and the
    file's first page, twice (the file and its journal), and what opening it writes."""
    pages = 1 + schema.upper().count("CREATE TABLE") + schema.upper().count("CREATE INDEX") \
        + schema.upper().count("CREATE UNIQUE INDEX")
    return 2 * pages * page_size + opening_bytes(page_size)
