"""A detector's box proposals and image scores, kept apart from the annotations.

Rules (every function here is one transaction, like every edit of the store):

- A proposal is never an annotation. It becomes a lesion box only through :func:`accept_proposal`
  (a reader's explicit action, optionally with edited coordinates); :func:`reject_proposal`
  marks it rejected. Nothing else here writes a box or a label.
- Re-proposing with a model (:func:`store_detections`) replaces that model's *pending* proposals
  for the image. Accepted and rejected proposals are history and are never touched, nor are
  boxes; a new proposal that overlaps (IoU >= :data:`SUPPRESS_IOU`) a region a reader already
  decided on this image is not stored, so a reader is not asked twice about the same region.
- Every step has its exact inverse, for the GUI's undo commands: :func:`unaccept_proposal`
  undoes an accept (deletes its box, puts back the image's and the reader's label as they
  were, makes the proposal pending), :func:`unreject_proposal` a reject. Redo is the step again;
  an accept redone with ``box_id`` restores its box under the same id, as box undo does.
- An accepted proposal's box records its provenance (``LesionBox.provenance``): the proposing
  model's id, name and weights hash (SQLite may give a deleted model's id to a later model; the
  hash says which weights proposed the box), the proposal's id and scores, the box as proposed, whether the reader
  edited it, and who accepted it when. Its ``author`` is the accepting reader.
- Accepting relabels an image that is not labelled lesion as lesion, and records that label as
  the accepting reader's own, exactly as drawing a box does in the viewer (``relabel=False``
  leaves the labels alone, for a reader who declines the relabel of a normal image).

Image scores (``image_scores``): one lesion probability per image and model, with its time, so
the browser can sort by it and the review queue can order by it (``lesion_studio/assist``).
A model's deletion deletes its scores and its pending proposals (``Project._forget_model``).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lesion_studio.errors import ProjectError
from lesion_studio.store.readers import check_reader, write_reader_label
from lesion_studio.store.records import PROPOSAL_STATES, Box, ImageScore, Proposal, dumps, loads, utc_now

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

#: A new proposal overlapping a decided one on the same image at least this much is not stored.
SUPPRESS_IOU = 0.5


def _row(row: sqlite3.Row) -> Proposal:
    return Proposal(id=row["id"], image_id=row["image_id"], model_id=row["model_id"], model_name=row["model_name"],
                    box=Box(row["x0"], row["y0"], row["x1"], row["y1"]), score=row["score"],
                    image_score=row["image_score"], state=row["state"], created_at=row["created_at"],
                    decided_by=row["decided_by"], decided_at=row["decided_at"], box_id=row["box_id"])


def _check_probability(value: float, what: str) -> float:
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ProjectError(f"A {what} must be a number in [0, 1], not {value}.")
    return value


def _check_box(box: Box, width: int, height: int) -> Box:
    values = box.as_tuple()
    if not all(math.isfinite(float(v)) for v in values):
        raise ProjectError("A box's corners must be finite numbers.")
    clipped = box.normalized().clipped(width, height)
    if not (clipped.x1 > clipped.x0 and clipped.y1 > clipped.y0):
        raise ProjectError(f"The box {tuple(round(v, 1) for v in values)} has no area inside the "
                           f"{width}x{height} image.")
    return clipped


def _image_size(cur: sqlite3.Cursor, image_id: int) -> tuple[int, int, str]:
    row = cur.execute("SELECT width, height, label FROM images WHERE id = ?", (image_id,)).fetchone()
    if row is None:
        raise ProjectError(f"There is no image with id {image_id} in this project.")
    return int(row[0]), int(row[1]), str(row[2])


def _model(cur: sqlite3.Cursor, model_id: int) -> str:
    row = cur.execute("SELECT name FROM models WHERE id = ?", (model_id,)).fetchone()
    if row is None:
        raise ProjectError(f"There is no model with id {model_id} in this project.")
    return str(row[0])


def _write_score(cur: sqlite3.Cursor, image_id: int, model_id: int, score: float, now: str) -> None:
    cur.execute("INSERT OR REPLACE INTO image_scores (image_id, model_id, score, scored_at) VALUES (?, ?, ?, ?)",
                (image_id, model_id, _check_probability(score, "image score"), now))


# ------------------------------------------------------------------------------ writing proposals
def store_detections(project: Project, image_id: int, model_id: int, image_score: float,
                     detections: Sequence[tuple[Box, float]], *, suppress_iou: float = SUPPRESS_IOU) -> list[int]:
    """Store what a model found on one image, in one transaction: its image score, and its box
    proposals ``(box, score)`` (image pixels), replacing the model's pending proposals of that
    image. Returns the new proposals' ids (those not suppressed by a decided region)."""
    now = utc_now()
    with project._tx() as cur:
        width, height, _ = _image_size(cur, image_id)
        name = _model(cur, model_id)
        _write_score(cur, image_id, model_id, image_score, now)
        cur.execute("DELETE FROM proposals WHERE image_id = ? AND model_id = ? AND state = 'pending'",
                    (image_id, model_id))
        decided = [Box(*r) for r in cur.execute(
            "SELECT x0, y0, x1, y1 FROM proposals WHERE image_id = ? AND state != 'pending'", (image_id,))]
        ids = []
        for box, score in detections:
            box = _check_box(box, width, height)
            if any(box.iou(d) >= suppress_iou for d in decided):
                continue
            cur.execute(
                "INSERT INTO proposals (image_id, model_id, model_name, x0, y0, x1, y1, score, image_score, state, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                (image_id, model_id, name, *box.as_tuple(), _check_probability(score, "proposal score"),
                 float(image_score), now))
            ids.append(int(cur.lastrowid))
    return ids


def store_image_scores(project: Project, model_id: int, scores: Mapping[int, float]) -> None:
    """Store a model's image scores ``{image id: probability}`` (one transaction, one time)."""
    now = utc_now()
    with project._tx() as cur:
        _model(cur, model_id)
        for image_id, score in scores.items():
            _write_score(cur, int(image_id), model_id, score, now)


# ------------------------------------------------------------------------------ reading
def proposals(project: Project, image_id: int | None = None, *, state: str | None = None,
              model_id: int | None = None, min_score: float | None = None) -> list[Proposal]:
    """Proposals, of one image / state / model, at or above ``min_score`` (best score first per image)."""
    if state is not None and state not in PROPOSAL_STATES:
        raise ProjectError(f"A proposal's state is one of {', '.join(PROPOSAL_STATES)}, not {state!r}.")
    where, params = [], []
    for column, value in (("image_id", image_id), ("state", state), ("model_id", model_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if min_score is not None:
        where.append("score >= ?")
        params.append(float(min_score))
    sql = ("SELECT * FROM proposals" + (f" WHERE {' AND '.join(where)}" if where else "")
           + " ORDER BY image_id, score DESC, id")
    return [_row(r) for r in project._query(sql, params)]


def proposal(project: Project, proposal_id: int) -> Proposal:
    rows = project._query("SELECT * FROM proposals WHERE id = ?", (proposal_id,))
    if not rows:
        raise ProjectError(f"There is no box proposal {proposal_id} in this project.")
    return _row(rows[0])


def pending_count(project: Project, image_id: int | None = None, *, min_score: float = 0.0) -> int:
    """How many pending proposals (of one image) score at least ``min_score`` (the viewer's count)."""
    sql = "SELECT COUNT(*) FROM proposals WHERE state = 'pending' AND score >= ?"
    params: list[Any] = [float(min_score)]
    if image_id is not None:
        sql += " AND image_id = ?"
        params.append(image_id)
    return int(project._query(sql, params)[0][0])


def image_scores(project: Project, model_id: int) -> dict[int, ImageScore]:
    """A model's stored image scores, by image id."""
    rows = project._query("SELECT s.*, m.name AS model_name FROM image_scores s JOIN models m ON m.id = s.model_id "
                          "WHERE s.model_id = ?", (model_id,))
    return {int(r["image_id"]): ImageScore(int(r["image_id"]), int(r["model_id"]), r["model_name"],
                                           float(r["score"]), r["scored_at"]) for r in rows}


def latest_scoring_model(project: Project) -> int | None:
    """The model that scored images most recently (the review queue's default), or None."""
    rows = project._query("SELECT model_id FROM image_scores ORDER BY scored_at DESC, model_id DESC LIMIT 1")
    return int(rows[0][0]) if rows else None


# ------------------------------------------------------------------------------ decisions
def _pending(cur: sqlite3.Cursor, proposal_id: int, want: str) -> sqlite3.Row:
    row = cur.execute("SELECT * FROM proposals WHERE id = ?", (proposal_id,)).fetchone()
    if row is None:
        raise ProjectError(f"There is no box proposal {proposal_id} in this project.")
    if row["state"] != want:
        by = f" by {row['decided_by']}" if row["decided_by"] else ""
        raise ProjectError(f"Box proposal {proposal_id} is {row['state']}{by}, not {want}.")
    return row


def accept_proposal(project: Project, proposal_id: int, reader: str, *, box: Box | None = None,
                    lesion_type: str = "", relabel: bool = True, box_id: int | None = None) -> int:
    """A reader accepts a pending proposal: it becomes a lesion box by ``reader`` (with ``box``,
    the reader's edit, instead of the proposed coordinates), with its provenance; the image is
    labelled lesion (and so is the reader's own label) unless it already is or ``relabel`` is
    False. One transaction. ``box_id`` restores the box under an earlier id (redo). Returns the
    box's id."""
    reader = check_reader(reader)
    now = utc_now()
    with project._tx() as cur:
        row = _pending(cur, proposal_id, "pending")
        image_id = int(row["image_id"])
        width, height, label = _image_size(cur, image_id)
        proposed = Box(row["x0"], row["y0"], row["x1"], row["y1"])
        final = _check_box(box, width, height) if box is not None else proposed
        sha = cur.execute("SELECT sha256 FROM models WHERE id = ?", (row["model_id"],)).fetchone()
        provenance = {"source": "proposal", "proposal_id": proposal_id, "model_id": row["model_id"],
                      "model_name": row["model_name"], "model_sha256": sha[0] if sha else None,
                      "score": row["score"], "image_score": row["image_score"],
                      "proposed_box": list(proposed.as_tuple()), "edited": final != proposed,
                      "accepted_by": reader, "accepted_at": now}
        new_box = project._insert_region(cur, "lesion_boxes", image_id, final, reader, box_id,
                                         {"lesion_type": lesion_type, "provenance": dumps(provenance)})
        restore: dict[str, Any] = {}
        if relabel and label != "lesion":
            mine = cur.execute("SELECT label, labelled_at FROM reader_labels WHERE image_id = ? AND reader = ?",
                               (image_id, reader)).fetchone()
            restore = {"image_label": label, "reader": reader,
                       "reader_label": list(mine) if mine is not None else None}
            cur.execute("UPDATE images SET label = 'lesion', modified_at = ? WHERE id = ?", (now, image_id))
            write_reader_label(cur, image_id, reader, "lesion", now)
        cur.execute("UPDATE proposals SET state = 'accepted', decided_by = ?, decided_at = ?, box_id = ?, "
                    "restore = ? WHERE id = ?", (reader, now, new_box, dumps(restore), proposal_id))
    return new_box


def unaccept_proposal(project: Project, proposal_id: int) -> None:
    """Undo :func:`accept_proposal` exactly: delete the box it made, put back the image's label and
    the reader's own label as they were before the accept, and make the proposal pending again."""
    now = utc_now()
    with project._tx() as cur:
        row = _pending(cur, proposal_id, "accepted")
        image_id = int(row["image_id"])
        made = cur.execute("SELECT provenance FROM lesion_boxes WHERE id = ?", (row["box_id"],)).fetchone()
        if made is not None and loads(made[0]).get("proposal_id") == proposal_id:  # never another box
            cur.execute("DELETE FROM lesion_boxes WHERE id = ?", (row["box_id"],))
        restore = loads(row["restore"])
        if restore:
            cur.execute("UPDATE images SET label = ?, modified_at = ? WHERE id = ?",
                        (restore["image_label"], now, image_id))
            before = restore.get("reader_label")
            write_reader_label(cur, image_id, restore["reader"], before[0] if before else None,
                               before[1] if before else "")
        cur.execute("UPDATE proposals SET state = 'pending', decided_by = '', decided_at = NULL, box_id = NULL, "
                    "restore = '{}' WHERE id = ?", (proposal_id,))


def reject_proposal(project: Project, proposal_id: int, reader: str) -> None:
    """A reader rejects a pending proposal (no box, no label changes)."""
    reader = check_reader(reader)
    with project._tx() as cur:
        _pending(cur, proposal_id, "pending")
        cur.execute("UPDATE proposals SET state = 'rejected', decided_by = ?, decided_at = ? WHERE id = ?",
                    (reader, utc_now(), proposal_id))


def unreject_proposal(project: Project, proposal_id: int) -> None:
    """Undo :func:`reject_proposal`: the proposal is pending again."""
    with project._tx() as cur:
        _pending(cur, proposal_id, "rejected")
        cur.execute("UPDATE proposals SET state = 'pending', decided_by = '', decided_at = NULL WHERE id = ?",
                    (proposal_id,))
