"""Projects as an older schema wrote them, for the upgrade-in-place tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lesion_studio.store.schema import MIGRATIONS


def project_at_schema(folder: Path, version: int, label: str = "lesion") -> sqlite3.Connection:
    """A project folder whose database stops at schema ``version`` and holds one image ``a.png``
    (id 1, 100×80, ``label``). Returns the open connection for the test's own rows; the test
    closes it before opening the project."""
    folder.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(folder / "project.sqlite", isolation_level=None)
    for migration in MIGRATIONS[:version]:
        conn.executescript(migration)
    conn.execute("INSERT INTO images (id, path, name, sha256, width, height, label, added_at, modified_at) "
                 "VALUES (1, 'a.png', 'a.png', ?, 100, 80, ?, 't0', 't0')", ("0" * 64, label))
    conn.execute(f"PRAGMA user_version = {int(version)}")
    return conn
