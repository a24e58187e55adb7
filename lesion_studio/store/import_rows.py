"""The rows an image brings along when it is imported, written inside the import's transaction.

Kept apart from :mod:`lesion_studio.store.readers` and :mod:`lesion_studio.store.measurements`
(which work on an open :class:`~lesion_studio.store.project.Project`) because ``Project.add_images``
calls it with its own cursor: the project imports this module, and this module imports no project.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any


def insert_image_annotations(cur: sqlite3.Cursor, image_id: int, now: str, *,
                             reader_labels: Iterable[Any] = (), measurements: Iterable[Any] = ()) -> None:
    """Insert an imported image's reader labels and measurements inside the import's transaction
    (called by ``Project.add_images``). Items are :class:`ReaderLabel` and
    :class:`~lesion_studio.store.measurements.NewMeasurement`; their ``image_id`` is ignored."""
    for item in reader_labels:
        cur.execute("INSERT OR REPLACE INTO reader_labels (image_id, reader, label, labelled_at) "
                    "VALUES (?, ?, ?, ?)", (image_id, item.reader, item.label, item.labelled_at or now))
    for m in measurements:
        spacing = m.spacing or (None, None)
        cur.execute(
            "INSERT INTO measurements (image_id, x0, y0, x1, y1, spacing_row, spacing_col, spacing_source, "
            "author, created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (image_id, m.x0, m.y0, m.x1, m.y1, spacing[0], spacing[1], m.spacing_source if m.spacing else "",
             m.author, m.created_at or now, m.modified_at or m.created_at or now))
