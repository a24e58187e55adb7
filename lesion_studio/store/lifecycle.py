"""How a project comes into being, who has it open, and when an abandoned one may go again.

- **Creation is atomic.** The database is built complete (schema, group-key salt) in a hidden
  temporary file and hard-linked to ``project.sqlite`` in one step that fails when the name is
  taken; the temporary name is then removed, so the database has one name. Two first imports
  into one new folder therefore share one database and one salt: the loser of the race opens the
  winner's project.
- **Presence.** Every open :class:`~lesion_studio.store.project.Project` holds a shared ``flock``
  on ``.lesion-studio.lock`` in its folder; the kernel drops it when the process ends (``kill -9``
  included). Removing a project needs the exclusive lock, which no one gets while anyone has the
  project open.
- **A first import's marker.** A project created by an import carries ``.lesion-studio.creating``
  until an import into it succeeds. A failed or killed first import leaves the marker; the
  project is removed (:func:`remove_if_abandoned`) only when it is still marked, no one has it
  open, and it holds nothing at all (no image, model, run or sample): an import never deletes
  what another import committed. Opening such a project later removes it the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import IO

from lesion_studio.files import _fsync_directory, temp_path
from lesion_studio.store.database_file import DB_NAME, connect_file

log = logging.getLogger(__name__)

LOCK_NAME = ".lesion-studio.lock"
CREATING_NAME = ".lesion-studio.creating"
#: Tables whose rows mean "someone committed something here".
CONTENT_TABLES = ("images", "models", "runs", "synthetic_samples", "realism_ratings")

try:
    import fcntl
except ImportError:  # Windows: no flock; removal then rests on the emptiness check alone
    fcntl = None  # type: ignore[assignment]


class ProjectLock:
    """A held ``flock`` on a project's lock file (shared: "in use"; exclusive: "being removed")."""

    def __init__(self, path: Path, fh: IO[str]) -> None:
        self.path, self._fh = path, fh

    @classmethod
    def _take(cls, folder: Path, exclusive: bool, create: bool) -> ProjectLock | None:
        if fcntl is None:
            return None
        path = folder / LOCK_NAME
        for _ in range(100):
            try:
                fh = open(path, "a+" if create else "r")  # noqa: SIM115 - held for the project's lifetime
            except OSError:
                return None  # a read-only folder without a lock file: nobody can remove it anyway
            try:
                flags = fcntl.LOCK_EX | fcntl.LOCK_NB if exclusive else fcntl.LOCK_SH
                fcntl.flock(fh.fileno(), flags)
            except OSError:
                fh.close()
                return None  # exclusive: someone has the project open
            # A remover may have unlinked the file while we waited for it: lock the one in place.
            try:
                same = os.path.samestat(os.stat(path), os.fstat(fh.fileno()))
            except OSError:
                same = False
            if same:
                return cls(path, fh)
            fh.close()
        return None

    @classmethod
    def shared(cls, folder: Path, *, create: bool = True) -> ProjectLock | None:
        """Wait for (and hold) the shared lock: the project is in use while it is held."""
        return cls._take(folder, exclusive=False, create=create)

    @classmethod
    def exclusive(cls, folder: Path) -> ProjectLock | None:
        """The exclusive lock when no one has the project open, else None (never waits)."""
        return cls._take(folder, exclusive=True, create=True)

    def release(self, *, remove_file: bool = False) -> None:
        if remove_file:
            with contextlib.suppress(OSError):
                self.path.unlink()
        self._fh.close()


def create_database(folder: Path, init: Callable[[sqlite3.Connection], None], *, first_import: bool) -> bool:
    """Build the database with ``init`` in a temporary file and give it its name, unless a project
    appeared there first. Returns whether this call created it (False: open the one that exists)."""
    db = folder / DB_NAME
    tmp = temp_path(db)
    if first_import:
        (folder / CREATING_NAME).touch()  # before the database appears, so no window lacks it
    try:
        conn = connect_file(tmp)
        try:
            init(conn)
        finally:
            conn.close()
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, db)
            created = True
        except FileExistsError:
            created = False
        except OSError:  # a file system without hard links: a plain rename, checked first
            created = not db.exists()
            if created:
                os.replace(tmp, db)
        _fsync_directory(folder)
    finally:
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(f"{tmp}{suffix}")
    if first_import and not created:
        clear_first_import_marker(folder)  # it was ours, and the project is someone else's
    return created


def clear_first_import_marker(folder: Path) -> None:
    with contextlib.suppress(OSError):
        (folder / CREATING_NAME).unlink()


def is_marked(folder: Path) -> bool:
    return (folder / CREATING_NAME).exists()


def _holds_nothing(db: Path) -> bool:
    try:
        conn = connect_file(db, read_only=True)
    except sqlite3.Error:
        return False
    try:
        return all(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] == 0 for t in CONTENT_TABLES)
    except sqlite3.Error:
        return False  # damaged or foreign: never removed by us
    finally:
        conn.close()


def remove_if_abandoned(folder: Path, *, remove_folder: bool = False) -> bool:
    """Remove the project in ``folder`` when a first import created it and it was left empty: it is
    still marked, no one has it open, and it holds nothing. ``remove_folder``: also the folder
    itself, when it is empty then (the import made it). Returns whether the project was removed."""
    if not is_marked(folder):
        return False
    lock = ProjectLock.exclusive(folder)
    if lock is None and fcntl is not None:
        return False  # in use: whoever has it open may be committing to it now
    removed = False
    try:
        db = folder / DB_NAME
        if db.exists() and not _holds_nothing(db):
            clear_first_import_marker(folder)  # an import committed to it: it is a real project
            return False
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{db}{suffix}")
        clear_first_import_marker(folder)
        removed = True
        log.info("removed the empty project an unfinished first import left in %s", folder)
    finally:
        if lock is not None:
            lock.release(remove_file=removed)
    if removed and remove_folder:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty: never anything else's files
    return removed
