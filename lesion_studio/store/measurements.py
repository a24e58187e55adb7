"""Ruler measurements: a line on an image, stored with the pixel spacing it was measured with.

The spacing (and where it came from: ``PixelSpacing`` or ``ImagerPixelSpacing``) is stored with
the line, not looked up again later, so an exported length in millimetres is the length the
reader saw, and a measurement on an image without spacing stays a length in pixels, said so.
Every edit is one transaction (the GUI wraps each in an undo command).
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lesion_studio.errors import ProjectError
from lesion_studio.store.records import Measurement

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

SPACING_SOURCES = ("PixelSpacing", "ImagerPixelSpacing", "")


@dataclass(frozen=True)
class NewMeasurement:
    """A measurement to insert with its image (import)."""

    x0: float
    y0: float
    x1: float
    y1: float
    spacing: tuple[float, float] | None = None
    spacing_source: str = ""
    author: str = ""
    created_at: str | None = None
    modified_at: str | None = None


def check_line(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
    values = tuple(float(v) for v in (x0, y0, x1, y1))
    if not all(math.isfinite(v) for v in values):
        raise ProjectError("A measurement's end points must be finite numbers.")
    if values[0] == values[2] and values[1] == values[3]:
        raise ProjectError("A measurement needs two different end points.")
    return values  # type: ignore[return-value]


def check_spacing(spacing: tuple[float, float] | None, source: str) -> tuple[tuple[float, float] | None, str]:
    if spacing is None:
        return None, ""
    row, col = float(spacing[0]), float(spacing[1])
    if not (math.isfinite(row) and math.isfinite(col) and row > 0 and col > 0):
        raise ProjectError(f"A pixel spacing must be two positive numbers, not {spacing!r}.")
    if source not in SPACING_SOURCES or not source:
        raise ProjectError(f"A pixel spacing's source must be PixelSpacing or ImagerPixelSpacing, not {source!r}.")
    return (row, col), source


def _row(row: sqlite3.Row) -> Measurement:
    spacing = None if row["spacing_row"] is None else (float(row["spacing_row"]), float(row["spacing_col"]))
    return Measurement(id=row["id"], image_id=row["image_id"], x0=row["x0"], y0=row["y0"], x1=row["x1"],
                       y1=row["y1"], spacing=spacing, spacing_source=row["spacing_source"], author=row["author"],
                       created_at=row["created_at"], modified_at=row["modified_at"])


def add_measurement(project: Project, image_id: int, line: tuple[float, float, float, float], *,
                    spacing: tuple[float, float] | None, spacing_source: str = "", author: str = "",
                    measurement_id: int | None = None, times: tuple[str, str] | None = None) -> int:
    """Store a measurement; ``measurement_id`` and ``times`` (created, modified) restore a deleted
    one as it was (undo)."""
    from lesion_studio.store.records import utc_now

    x0, y0, x1, y1 = check_line(*line)
    spacing, spacing_source = check_spacing(spacing, spacing_source)
    now = utc_now()
    created, modified = times or (now, now)
    with project._tx() as cur:
        cur.execute(
            "INSERT INTO measurements (id, image_id, x0, y0, x1, y1, spacing_row, spacing_col, spacing_source, "
            "author, created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (measurement_id, image_id, x0, y0, x1, y1, *(spacing or (None, None)), spacing_source, author,
             created, modified))
        return int(cur.lastrowid)


def update_measurement(project: Project, measurement_id: int, line: tuple[float, float, float, float]) -> None:
    from lesion_studio.store.records import utc_now

    x0, y0, x1, y1 = check_line(*line)
    with project._tx() as cur:
        cur.execute("UPDATE measurements SET x0 = ?, y0 = ?, x1 = ?, y1 = ?, modified_at = ? WHERE id = ?",
                    (x0, y0, x1, y1, utc_now(), measurement_id))
        if cur.rowcount == 0:
            raise ProjectError(f"There is no measurement {measurement_id}.")


def delete_measurement(project: Project, measurement_id: int) -> None:
    with project._tx() as cur:
        cur.execute("DELETE FROM measurements WHERE id = ?", (measurement_id,))


def measurements(project: Project, image_id: int | None = None, *, reader: str | None = None) -> list[Measurement]:
    active = {k: v for k, v in (("image_id", image_id), ("author", reader)) if v is not None}
    where = " AND ".join(f"{k} = ?" for k in active)
    sql = "SELECT * FROM measurements" + (f" WHERE {where}" if where else "") + " ORDER BY image_id, id"
    return [_row(r) for r in project._query(sql, list(active.values()))]


def measurement(project: Project, measurement_id: int) -> Measurement:
    rows = project._query("SELECT * FROM measurements WHERE id = ?", (measurement_id,))
    if not rows:
        raise ProjectError(f"There is no measurement {measurement_id}.")
    return _row(rows[0])
