"""Rotating backups of a project's database, made before a schema change or a large import.

A backup is a consistent copy made through SQLite's online backup API (a reader, so other
connections may keep working), written atomically as ``backups/project-<UTC time>-<reason>.sqlite``
in the rollback-journal mode, so it is one self-contained file. The newest :data:`KEEP` are
kept. When the database is found damaged, :func:`last_good_backup` names the newest backup that
passes SQLite's own check, and the error message offers it.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from lesion_studio.errors import DiskFullError, is_disk_full
from lesion_studio.files import atomic_path
from lesion_studio.store.database_file import connect_file

log = logging.getLogger(__name__)

BACKUPS = "backups"
KEEP = 3
_NAME = re.compile(r"^project-(\d{8}T\d{6}\d*Z)-[A-Za-z0-9_.+-]*\.sqlite$")


def backups(folder: str | Path) -> list[Path]:
    """The project's backups, newest first."""
    root = Path(folder) / BACKUPS
    try:
        found = [p for p in root.iterdir() if _NAME.match(p.name) and p.is_file()]
    except OSError:
        return []
    return sorted(found, key=lambda p: _NAME.match(p.name).group(1), reverse=True)  # type: ignore[union-attr]


def make_backup(conn: sqlite3.Connection, folder: str | Path, reason: str) -> Path:
    """Copy the database behind ``conn`` to a new backup and drop all but the newest :data:`KEEP`."""
    root = Path(folder) / BACKUPS
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    reason = re.sub(r"[^A-Za-z0-9_.+-]+", "-", reason)[:40]
    target = root / f"project-{stamp}-{reason}.sqlite"
    try:
        with atomic_path(target) as tmp:
            dest = connect_file(tmp)
            try:
                conn.backup(dest)
                dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            finally:
                dest.close()
    except sqlite3.Error as exc:
        if is_disk_full(exc):
            raise DiskFullError("a backup of the project database", root,
                                _database_bytes(conn)) from exc
        raise
    for old in backups(folder)[KEEP:]:
        try:
            old.unlink()
        except OSError as exc:
            log.warning("could not remove the old backup %s (%s)", old, exc)
    log.info("backed up %s to %s", folder, target.name)
    return target


def _database_bytes(conn: sqlite3.Connection) -> int | None:
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    except sqlite3.Error:
        return None
    return int(pages) * int(size)


def is_sound(path: Path) -> bool:
    """Whether a database file passes SQLite's quick check (opened read-only, never written)."""
    try:
        conn = connect_file(path, read_only=True)
    except sqlite3.Error:
        return False
    try:
        return conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def last_good_backup(folder: str | Path) -> Path | None:
    """The newest backup that passes SQLite's quick check, or None."""
    return next((p for p in backups(folder) if is_sound(p)), None)
