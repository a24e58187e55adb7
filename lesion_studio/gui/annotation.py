"""The rules of annotating the current image, shared by mouse tools and keyboard actions.

Tools say *what the hand did* (a rectangle was dragged, a region was moved); this controller
decides *what that means*: snap to whole pixels, clip to the image, refuse boxes below the
minimum size, refuse normal patches that overlap a lesion, relabel a normal image as lesion when
a box is drawn on it. Accepted edits become undo commands; refusals become a visible message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from lesion_studio.gui.commands import (
    LESION,
    PATCH,
    AddRegionCommand,
    ChangeRegionCommand,
    DeleteRegionCommand,
    UpdateImageCommand,
    image_fields_snapshot,
)
from lesion_studio.gui.session import ProjectSession
from lesion_studio.gui.viewer.canvas import ImageCanvas
from lesion_studio.gui.viewer.overlays import RegionItem
from lesion_studio.store.project import Project
from lesion_studio.store.records import Box, ImageRecord

log = logging.getLogger(__name__)

MIN_REGION_PX = 4
PATCH_SIZES = (16, 512)
DEFAULT_PATCH = 64


def snap(box: Box, width: int, height: int) -> Box:
    """Whole-pixel edges inside the image: what the exports and the patch sampler expect."""
    b = box.normalized()
    return Box(float(round(b.x0)), float(round(b.y0)), float(round(b.x1)), float(round(b.y1))).clipped(width, height)


class AnnotationController(QObject):
    message = Signal(str, str)  # text, level ("info" | "warning" | "error")
    selection_changed = Signal(object)  # (kind, id) or None

    def __init__(self, canvas: ImageCanvas, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.session: ProjectSession | None = None
        self.record: ImageRecord | None = None
        self.selected: tuple[str, int] | None = None
        self.patch_size = DEFAULT_PATCH
        #: Called when a box is drawn on an image labelled normal; returns True to relabel as lesion.
        self.confirm_relabel: Callable[[ImageRecord], bool] = lambda _rec: True
        #: Why the selected image has nothing to draw on (its file is missing...), said on any edit.
        self.unavailable = ""

    # ------------------------------------------------------------------ state
    def set_image(self, session: ProjectSession | None, record: ImageRecord | None) -> None:
        if record is None or self.record is None or record.id != self.record.id:
            self.selected = None
        self.session, self.record = session, record
        self.unavailable = ""
        self.reload_regions()

    def _editable(self) -> bool:
        """Whether there is an image to edit; an edit on an image that cannot be shown is refused aloud."""
        if self.session is not None and self.record is not None:
            return True
        if self.unavailable:
            self.message.emit(f"{self.unavailable}. Re-link it (File → Re-link moved images…) or choose "
                              "another image.", "warning")
        return False

    def size(self) -> tuple[int, int]:
        w, h = self.canvas.image_size()
        if (not w or not h) and self.record is not None:
            return self.record.width, self.record.height
        return w, h

    def reload_regions(self) -> None:
        if self.session is None or self.record is None or self.canvas.radiograph is None:
            self.canvas.set_regions([])
            return
        p = self.session.project
        items = [RegionItem(LESION, b.id, b.box) for b in p.boxes(self.record.id)]
        items += [RegionItem(PATCH, n.id, n.box) for n in p.normal_patches(self.record.id)]
        self.canvas.set_regions(items)
        if self.selected is not None and self.canvas.region(*self.selected) is None:
            self.selected = None
        self._paint_selection()

    def select(self, key: tuple[str, int] | None) -> None:
        if key == self.selected:
            return
        self.selected = key
        self._paint_selection()
        self.selection_changed.emit(key)

    def _paint_selection(self) -> None:
        for item in self.canvas.regions:
            item.set_selected(item.key == self.selected)

    def _lesion_boxes(self, exclude: int | None = None) -> list[Box]:
        return [r.box for r in self.canvas.regions if r.kind == LESION and r.region_id != exclude]

    def _check(self, kind: str, box: Box, region_id: int | None = None) -> bool:
        if box.width < MIN_REGION_PX or box.height < MIN_REGION_PX:
            self.message.emit(
                f"That {'box' if kind == LESION else 'patch'} is smaller than {MIN_REGION_PX} pixels; "
                "drag a larger rectangle.", "warning")
            return False
        if kind == PATCH:
            hit = [b for b in self._lesion_boxes() if b.intersects(box)]
            if hit:
                self.message.emit("Normal patch refused: it overlaps a lesion box. "
                                  "Place normal patches on healthy bone only.", "warning")
                return False
        return True

    # ------------------------------------------------------------------ edits
    def create_region(self, kind: str, box: Box) -> int | None:
        if not self._editable():
            return None
        box = snap(box, *self.size())
        if not self._check(kind, box):
            return None
        stack = self.session.undo_stack
        cmd = AddRegionCommand(self.session, kind, self.record.id, box)
        relabel = kind == LESION and self.record.label != "lesion"
        if relabel and self.record.label == "normal" and not self.confirm_relabel(self.record):
            relabel = False
        if relabel:
            stack.beginMacro("Add lesion box")
            old = image_fields_snapshot(self.session, self.record.id, ["label"])
            stack.push(UpdateImageCommand(self.session, self.record.id, old, {"label": "lesion"}, "Label lesion"))
            stack.push(cmd)
            stack.endMacro()
            self.message.emit("Image relabelled as lesion (Ctrl+Z undoes both).", "info")
        else:
            stack.push(cmd)
        if kind == LESION:
            overlapping = [r for r in self.canvas.regions if r.kind == PATCH and r.box.intersects(box)]
            if overlapping:
                self.message.emit(f"This lesion box overlaps normal patch #{overlapping[0].region_id}; "
                                  "delete that patch (select it, Del).", "warning")
        if cmd.region_id is not None:
            self.select((kind, cmd.region_id))
        return cmd.region_id

    def place_patch_at(self, x: float, y: float) -> int | None:
        """A square normal patch of the current size centred on (x, y), kept inside the image."""
        if not self._editable():
            return None
        w, h = self.size()
        side = float(min(self.patch_size, w, h))
        x0 = min(max(x - side / 2, 0.0), w - side)
        y0 = min(max(y - side / 2, 0.0), h - side)
        return self.create_region(PATCH, Box(x0, y0, x0 + side, y0 + side))

    def change_region(self, item: RegionItem, box: Box, verb: str = "Move") -> bool:
        if not self._editable():
            return False
        box = snap(box, *self.size())
        if box == item.box and box == self._stored_box(item):
            return False
        if not self._check(item.kind, box, item.region_id):
            return False
        old = self._stored_box(item)
        if old == box:
            return False
        self.session.undo_stack.push(
            ChangeRegionCommand(self.session, item.kind, self.record.id, item.region_id, old, box, verb))
        return True

    def _stored_box(self, item: RegionItem) -> Box:
        assert self.session is not None
        p = self.session.project
        rec = p.box(item.region_id) if item.kind == LESION else p.normal_patch(item.region_id)
        return rec.box

    def delete_selected(self) -> bool:
        if self.session is None or self.record is None or self.selected is None:
            self.message.emit("Select a box or patch first (click it), then press Del.", "info")
            return False
        item = self.canvas.region(*self.selected)
        if item is None:
            return False
        self.session.undo_stack.push(
            DeleteRegionCommand(self.session, item.kind, self.record.id, item.region_id, self._stored_box(item)))
        self.select(None)
        return True

    def set_patch_size(self, size: int) -> int:
        self.patch_size = int(min(max(size, PATCH_SIZES[0]), PATCH_SIZES[1]))
        return self.patch_size


DEFAULT_BODY_PARTS = ("femur", "tibia", "humerus", "fibula", "radius", "ulna", "pelvis", "hand", "foot")
BODY_PART_SETTING = "gui.body_part_keys"


def body_part_keys(project: Project) -> list[str]:
    """The body parts bound to keys 1–9 for this project, fixed once chosen.

    The project's own body parts come first (sorted), then common long bones. The list is stored
    in the project so digits keep their meaning for every reader of the project.
    """
    stored = project.get_setting(BODY_PART_SETTING)
    if stored:
        return [p for p in stored.split(",") if p][:9]
    own = sorted({r.body_part for r in project.images() if r.body_part})
    keys = (own + [p for p in DEFAULT_BODY_PARTS if p not in own])[:9]
    project.set_setting(BODY_PART_SETTING, ",".join(keys))
    return keys
