"""Readers: who labelled an image and who drew a box, so several readers can be compared.

A reader is a name (``alice``, ``Dr Smith``) set once per user: the GUI keeps it in its
settings, the CLI takes ``--reader`` or the environment variable ``LESION_STUDIO_READER``. Every
lesion box records its reader (the ``author`` column) and times; every image label a reader
gives is kept as that reader's own row in ``reader_labels``, beside the project's working label
(``images.label``, which training uses). Imports record their boxes and labels under a reader too
(``import`` unless a file names one), so an imported reference standard is one more reader.

These functions belong to the store package: they use the project's one-transaction-per-edit
helpers (``Project._tx`` / ``Project._query``), so every edit here commits before it returns.
"""

from __future__ import annotations

import getpass
import os
import sqlite3
from typing import TYPE_CHECKING

from lesion_studio.errors import ProjectError
from lesion_studio.store.records import LABELS, ReaderLabel

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

READER_ENV = "LESION_STUDIO_READER"
#: The reader adjudicated boxes are written as.
CONSENSUS = "consensus"
#: The reader an import records when its files name none.
IMPORT_READER = "import"
MAX_READER_LENGTH = 64  # a DICOM person name component group holds 64 characters
_FORBIDDEN = set("^=\\")  # DICOM person-name separators: a reader survives an SR round trip


def check_reader(name: str) -> str:
    """A valid reader name (stripped), or a :class:`ProjectError` saying what is wrong with it."""
    name = str(name).strip()
    if not name:
        raise ProjectError("A reader name cannot be empty.")
    if len(name) > MAX_READER_LENGTH:
        raise ProjectError(f"A reader name may have at most {MAX_READER_LENGTH} characters, "
                           f"not {len(name)}.")
    bad = sorted({c for c in name if c in _FORBIDDEN or not c.isprintable()})
    if bad:
        raise ProjectError(f"The reader name {name!r} contains {' '.join(repr(c) for c in bad)}; "
                           "use letters, digits, spaces and . _ - @.")
    return name


def default_reader(given: str | None = None) -> str:
    """The reader for this process: ``given`` (a CLI option), else ``$LESION_STUDIO_READER``,
    else the login name."""
    for candidate in (given, os.environ.get(READER_ENV)):
        if candidate and candidate.strip():
            return check_reader(candidate)
    try:
        login = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database (containers): still a reader
        login = ""
    try:
        return check_reader(login or "reader")
    except ProjectError:
        return "reader"


# ---------------------------------------------------------------------------- reader labels
def _row(row: sqlite3.Row) -> ReaderLabel:
    return ReaderLabel(image_id=row["image_id"], reader=row["reader"], label=row["label"],
                       labelled_at=row["labelled_at"])


def reader_labels(project: Project, image_id: int | None = None, reader: str | None = None) -> list[ReaderLabel]:
    active = {k: v for k, v in (("image_id", image_id), ("reader", reader)) if v is not None}
    where = " AND ".join(f"{k} = ?" for k in active)
    sql = "SELECT * FROM reader_labels" + (f" WHERE {where}" if where else "") + " ORDER BY image_id, reader"
    return [_row(r) for r in project._query(sql, list(active.values()))]


def reader_label(project: Project, image_id: int, reader: str) -> ReaderLabel | None:
    rows = reader_labels(project, image_id, reader)
    return rows[0] if rows else None


def put_reader_label(project: Project, image_id: int, reader: str, label: str,
                     labelled_at: str | None = None) -> None:
    """Record ``reader``'s label for an image (replacing their earlier one), in one transaction."""
    from lesion_studio.store.records import utc_now

    if label not in LABELS:
        raise ProjectError(f"Label must be one of {', '.join(LABELS)}, not {label!r}.")
    reader = check_reader(reader)
    with project._tx() as cur:
        write_reader_label(cur, image_id, reader, label, labelled_at or utc_now())


def write_reader_label(cur: sqlite3.Cursor, image_id: int, reader: str, label: str | None,
                       labelled_at: str = "") -> None:
    """Set (or, with ``label`` None, remove) a reader's label inside the caller's transaction
    (an accepted box proposal labels its image in the same transaction as its box)."""
    if label is None:
        cur.execute("DELETE FROM reader_labels WHERE image_id = ? AND reader = ?", (image_id, reader))
        return
    cur.execute("INSERT OR REPLACE INTO reader_labels (image_id, reader, label, labelled_at) "
                "VALUES (?, ?, ?, ?)", (image_id, reader, label, labelled_at))


def restore_reader_label(project: Project, image_id: int, reader: str, previous: ReaderLabel | None) -> None:
    """Put back what :func:`reader_label` returned before an edit (None: the reader had no label)."""
    if previous is not None:
        put_reader_label(project, image_id, reader, previous.label, previous.labelled_at)
        return
    with project._tx() as cur:
        cur.execute("DELETE FROM reader_labels WHERE image_id = ? AND reader = ?", (image_id, reader))


def readers(project: Project) -> list[str]:
    """Every reader the project knows: of a box, a label or a measurement (sorted)."""
    rows = project._query(
        "SELECT author FROM lesion_boxes WHERE author != '' UNION SELECT reader FROM reader_labels "
        "UNION SELECT author FROM measurements WHERE author != ''")
    return sorted({str(r[0]) for r in rows})


def images_read_by(project: Project, reader: str) -> set[int]:
    """Images ``reader`` has read: labelled, or drew a box on."""
    rows = project._query("SELECT image_id FROM reader_labels WHERE reader = ? "
                          "UNION SELECT image_id FROM lesion_boxes WHERE author = ?", (reader, reader))
    return {int(r[0]) for r in rows}
