"""Connections to database files that are not a project's live database: one being built before it
gets its name, a backup, or a file only looked at. Apart from :mod:`store.opening` (which opens
live projects and offers backups when one is damaged) so that :mod:`store.backup` needs no opening.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

#: A project's live database, inside the project folder.
DB_NAME = "project.sqlite"


def connect_file(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection to a database file that is not a project's live database: one being built
    before it gets its name, a backup, or a file only looked at (``read_only``, never written)."""
    if read_only:
        return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    return sqlite3.connect(path, isolation_level=None)
