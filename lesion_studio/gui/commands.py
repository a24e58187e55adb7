"""Undo commands. Each ``redo``/``undo`` writes to the project database at once (one transaction),
so there is never anything to save and a killed process loses nothing.

Commands carry ids and snapshots, never widgets: undo works across image changes, and undoing an
edit on another image asks the window to show that image (``focus_requested``).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QUndoCommand

from lesion_studio.gui.session import ProjectSession
from lesion_studio.store import measurements as store_measurements
from lesion_studio.store import proposals as store_proposals
from lesion_studio.store import readers as store_readers
from lesion_studio.store.records import Box

LESION = "lesion"
PATCH = "patch"
MEASURE = "measure"
PROPOSAL = "proposal"  # a detector's box proposal: not an annotation until a reader accepts it
KIND_NAMES = {LESION: "lesion box", PATCH: "normal patch", MEASURE: "measurement", PROPOSAL: "box proposal"}


def _add(session: ProjectSession, kind: str, image_id: int, box: Box, region_id: int | None,
         author: str | None = None, lesion_type: str = "", provenance: dict | None = None) -> int:
    p = session.project
    author = session.author if author is None else author
    if kind == LESION:
        return p.add_box(image_id, box, author=author, box_id=region_id, lesion_type=lesion_type,
                         provenance=provenance)
    return p.add_normal_patch(image_id, box, author=author, patch_id=region_id)


def _update(session: ProjectSession, kind: str, region_id: int, box: Box) -> None:
    p = session.project
    (p.update_box if kind == LESION else p.update_normal_patch)(region_id, box)


def _delete(session: ProjectSession, kind: str, region_id: int) -> None:
    p = session.project
    (p.delete_box if kind == LESION else p.delete_normal_patch)(region_id)


class _SessionCommand(QUndoCommand):
    def __init__(self, session: ProjectSession, image_id: int, text: str) -> None:
        super().__init__(text)
        self.session = session
        self.image_id = image_id
        self._first = True

    def _announce(self, regions: bool) -> None:
        """Tell the views; after the first redo (i.e. on undo/redo) bring the image into view."""
        if not self._first:
            self.session.focus_requested.emit(self.image_id)
        self._first = False
        (self.session.regions_changed if regions else self.session.image_changed).emit(self.image_id)


class AddRegionCommand(_SessionCommand):
    """Add a lesion box or normal patch; undo deletes it, redo restores it under the same id.
    The box is the session reader's unless ``author`` names another (adjudication's consensus)."""

    def __init__(self, session: ProjectSession, kind: str, image_id: int, box: Box, *, lesion_type: str = "",
                 author: str | None = None, text: str | None = None) -> None:
        super().__init__(session, image_id, text or f"Add {KIND_NAMES[kind]}")
        self.kind = kind
        self.box = box
        self.lesion_type = lesion_type
        self.author = author
        self.region_id: int | None = None

    def redo(self) -> None:
        self.region_id = _add(self.session, self.kind, self.image_id, self.box, self.region_id, self.author,
                              self.lesion_type)
        self._announce(regions=True)

    def undo(self) -> None:
        assert self.region_id is not None
        _delete(self.session, self.kind, self.region_id)
        self._announce(regions=True)


class ChangeRegionCommand(_SessionCommand):
    """Move or resize a region (the drag is already shown; redo writes the end state)."""

    def __init__(self, session: ProjectSession, kind: str, image_id: int, region_id: int,
                 old: Box, new: Box, verb: str = "Move") -> None:
        super().__init__(session, image_id, f"{verb} {KIND_NAMES[kind]}")
        self.kind, self.region_id, self.old, self.new = kind, region_id, old, new

    def redo(self) -> None:
        _update(self.session, self.kind, self.region_id, self.new)
        self._announce(regions=True)

    def undo(self) -> None:
        _update(self.session, self.kind, self.region_id, self.old)
        self._announce(regions=True)


class DeleteRegionCommand(_SessionCommand):
    """Delete a region; undo puts it back with its old id, reader, type and provenance (so exports,
    an accepted proposal's record of its model, and agreement stay stable)."""

    def __init__(self, session: ProjectSession, kind: str, image_id: int, region_id: int, box: Box) -> None:
        super().__init__(session, image_id, f"Delete {KIND_NAMES[kind]}")
        self.kind, self.region_id, self.box = kind, region_id, box
        p = session.project
        record = p.box(region_id) if kind == LESION else p.normal_patch(region_id)
        self.author = record.author
        self.lesion_type = getattr(record, "lesion_type", "")
        self.provenance = getattr(record, "provenance", None) or None

    def redo(self) -> None:
        _delete(self.session, self.kind, self.region_id)
        self._announce(regions=True)

    def undo(self) -> None:
        _add(self.session, self.kind, self.image_id, self.box, self.region_id, self.author, self.lesion_type,
             self.provenance)
        self._announce(regions=True)


class SetBoxTypeCommand(_SessionCommand):
    """Change a lesion box's type (T or the inspector); its reader stays who drew it."""

    def __init__(self, session: ProjectSession, image_id: int, box_id: int, old: str, new: str) -> None:
        super().__init__(session, image_id, f"Type {new or 'none'}")
        self.box_id, self.old, self.new = box_id, old, new

    def redo(self) -> None:
        self.session.project.set_box_type(self.box_id, self.new)
        self._announce(regions=True)

    def undo(self) -> None:
        self.session.project.set_box_type(self.box_id, self.old)
        self._announce(regions=True)


class AddMeasurementCommand(_SessionCommand):
    """Store a ruler line with the spacing it was measured with; undo deletes it, redo restores it
    under the same id."""

    def __init__(self, session: ProjectSession, image_id: int, line: tuple[float, float, float, float],
                 spacing: tuple[float, float] | None, spacing_source: str) -> None:
        super().__init__(session, image_id, "Add measurement")
        self.line, self.spacing, self.spacing_source = line, spacing, spacing_source
        self.author = session.author
        self.measurement_id: int | None = None

    def redo(self) -> None:
        self.measurement_id = store_measurements.add_measurement(
            self.session.project, self.image_id, self.line, spacing=self.spacing, spacing_source=self.spacing_source,
            author=self.author, measurement_id=self.measurement_id)
        self._announce(regions=True)

    def undo(self) -> None:
        assert self.measurement_id is not None
        store_measurements.delete_measurement(self.session.project, self.measurement_id)
        self._announce(regions=True)


class DeleteMeasurementCommand(_SessionCommand):
    def __init__(self, session: ProjectSession, image_id: int, measurement_id: int) -> None:
        super().__init__(session, image_id, "Delete measurement")
        self.record = store_measurements.measurement(session.project, measurement_id)

    def redo(self) -> None:
        store_measurements.delete_measurement(self.session.project, self.record.id)
        self._announce(regions=True)

    def undo(self) -> None:
        m = self.record
        store_measurements.add_measurement(self.session.project, self.image_id, (m.x0, m.y0, m.x1, m.y1),
                                           spacing=m.spacing, spacing_source=m.spacing_source, author=m.author,
                                           measurement_id=m.id, times=(m.created_at, m.modified_at))
        self._announce(regions=True)


class AcceptProposalCommand(_SessionCommand):
    """A reader accepts a box proposal (``box``: their edit of it): it becomes a lesion box with its
    provenance, and the image may be relabelled lesion (``relabel``). Undo is the store's exact
    inverse (:func:`~lesion_studio.store.proposals.unaccept_proposal`); redo accepts again and
    brings the box back under the same id."""

    def __init__(self, session: ProjectSession, image_id: int, proposal_id: int, *, box: Box | None = None,
                 lesion_type: str = "", relabel: bool = True) -> None:
        super().__init__(session, image_id, "Edit and accept box proposal" if box is not None
                         else "Accept box proposal")
        self.proposal_id, self.box, self.lesion_type, self.relabel = proposal_id, box, lesion_type, relabel
        self.reader = session.author
        self.box_id: int | None = None

    def redo(self) -> None:
        self.box_id = store_proposals.accept_proposal(
            self.session.project, self.proposal_id, self.reader, box=self.box, lesion_type=self.lesion_type,
            relabel=self.relabel, box_id=self.box_id)
        self._announce_both()

    def undo(self) -> None:
        store_proposals.unaccept_proposal(self.session.project, self.proposal_id)
        self._announce_both()

    def _announce_both(self) -> None:
        """The boxes and (through a relabel) the image's label may both have changed."""
        self._announce(regions=True)
        self.session.image_changed.emit(self.image_id)


class RejectProposalCommand(_SessionCommand):
    """A reader rejects a box proposal; undo makes it pending again (nothing else changes)."""

    def __init__(self, session: ProjectSession, image_id: int, proposal_id: int) -> None:
        super().__init__(session, image_id, "Reject box proposal")
        self.proposal_id = proposal_id
        self.reader = session.author

    def redo(self) -> None:
        store_proposals.reject_proposal(self.session.project, self.proposal_id, self.reader)
        self._announce(regions=True)

    def undo(self) -> None:
        store_proposals.unreject_proposal(self.session.project, self.proposal_id)
        self._announce(regions=True)


class UpdateImageCommand(_SessionCommand):
    """Change image fields (label, body part, view, split, exclusions, notes) with a snapshot.

    A label is also recorded as the session reader's own label (with its time), and undo puts
    back that reader's earlier label, or none: every reader's labels stay theirs for agreement."""

    def __init__(self, session: ProjectSession, image_id: int, old: dict[str, Any], new: dict[str, Any],
                 text: str) -> None:
        super().__init__(session, image_id, text)
        self.old, self.new = dict(old), dict(new)
        self.reader = session.author
        self.reader_label = (store_readers.reader_label(session.project, image_id, self.reader)
                             if "label" in self.new else None)

    def redo(self) -> None:
        self.session.project.update_image(self.image_id, **self.new)
        if "label" in self.new:
            store_readers.put_reader_label(self.session.project, self.image_id, self.reader, self.new["label"])
        self._announce(regions=False)

    def undo(self) -> None:
        self.session.project.update_image(self.image_id, **self.old)
        if "label" in self.new:
            store_readers.restore_reader_label(self.session.project, self.image_id, self.reader, self.reader_label)
        self._announce(regions=False)


def image_fields_snapshot(session: ProjectSession, image_id: int, keys: list[str]) -> dict[str, Any]:
    """The current values of some image fields, in the form ``update_image`` accepts."""
    rec = session.project.image(image_id)
    out: dict[str, Any] = {}
    for key in keys:
        value = getattr(rec, key)
        out[key] = list(value) if key == "exclusions" else value
    return out


def update_image(session: ProjectSession, image_id: int, text: str, **new: Any) -> bool:
    """Push an image edit if it changes anything; returns whether it did."""
    old = image_fields_snapshot(session, image_id, list(new))
    normal_new = {k: (list(v) if k == "exclusions" else v) for k, v in new.items()}
    if old == normal_new:
        return False
    session.undo_stack.push(UpdateImageCommand(session, image_id, old, normal_new, text))
    return True
