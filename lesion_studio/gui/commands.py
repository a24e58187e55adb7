"""Undo commands. Each ``redo``/``undo`` writes to the project database at once (one transaction),
so there is never anything to save and a killed process loses nothing.

Commands carry ids and snapshots, never widgets: undo works across image changes, and undoing an
edit on another image asks the window to show that image (``focus_requested``).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QUndoCommand

from lesion_studio.gui.session import ProjectSession
from lesion_studio.store.records import Box

LESION = "lesion"
PATCH = "patch"
KIND_NAMES = {LESION: "lesion box", PATCH: "normal patch"}


def _add(session: ProjectSession, kind: str, image_id: int, box: Box, region_id: int | None) -> int:
    p = session.project
    if kind == LESION:
        return p.add_box(image_id, box, author=session.author, box_id=region_id)
    return p.add_normal_patch(image_id, box, author=session.author, patch_id=region_id)


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
    """Add a lesion box or normal patch; undo deletes it, redo restores it under the same id."""

    def __init__(self, session: ProjectSession, kind: str, image_id: int, box: Box) -> None:
        super().__init__(session, image_id, f"Add {KIND_NAMES[kind]}")
        self.kind = kind
        self.box = box
        self.region_id: int | None = None

    def redo(self) -> None:
        self.region_id = _add(self.session, self.kind, self.image_id, self.box, self.region_id)
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
    """Delete a region; undo puts it back with its old id (so exports and provenance stay stable)."""

    def __init__(self, session: ProjectSession, kind: str, image_id: int, region_id: int, box: Box) -> None:
        super().__init__(session, image_id, f"Delete {KIND_NAMES[kind]}")
        self.kind, self.region_id, self.box = kind, region_id, box

    def redo(self) -> None:
        _delete(self.session, self.kind, self.region_id)
        self._announce(regions=True)

    def undo(self) -> None:
        _add(self.session, self.kind, self.image_id, self.box, self.region_id)
        self._announce(regions=True)


class UpdateImageCommand(_SessionCommand):
    """Change image fields (label, body part, view, split, exclusions, notes) with a snapshot."""

    def __init__(self, session: ProjectSession, image_id: int, old: dict[str, Any], new: dict[str, Any],
                 text: str) -> None:
        super().__init__(session, image_id, text)
        self.old, self.new = dict(old), dict(new)

    def redo(self) -> None:
        self.session.project.update_image(self.image_id, **self.new)
        self._announce(regions=False)

    def undo(self) -> None:
        self.session.project.update_image(self.image_id, **self.old)
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
