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
    MEASURE,
    PATCH,
    PROPOSAL,
    AcceptProposalCommand,
    AddMeasurementCommand,
    AddRegionCommand,
    ChangeRegionCommand,
    DeleteMeasurementCommand,
    DeleteRegionCommand,
    RejectProposalCommand,
    SetBoxTypeCommand,
    UpdateImageCommand,
    image_fields_snapshot,
)
from lesion_studio.gui.session import ProjectSession
from lesion_studio.gui.viewer.canvas import ImageCanvas
from lesion_studio.gui.viewer.overlays import MeasurementItem, ProposalItem, RegionItem
from lesion_studio.io.spacing import length_text
from lesion_studio.store import measurements as store_measurements
from lesion_studio.store import proposals as store_proposals
from lesion_studio.store.lesion_types import lesion_types
from lesion_studio.store.project import Project
from lesion_studio.store.readers import CONSENSUS
from lesion_studio.store.records import Box, ImageRecord

log = logging.getLogger(__name__)

MIN_REGION_PX = 4
MIN_RULER_PX = 1.0  # a ruler shorter than this (image px) is a click, not a measurement
PATCH_SIZES = (16, 512)
DEFAULT_PATCH = 64
DEFAULT_PROPOSAL_SCORE = 0.5  # the threshold slider's start: proposals scoring below it are not shown


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
        #: The lesion type a new box gets (T cycles it, or the selected box's type).
        self.current_type = ""
        self._types_of: ProjectSession | None = None
        #: Called when a box is drawn on an image labelled normal; returns True to relabel as lesion.
        self.confirm_relabel: Callable[[ImageRecord], bool] = lambda _rec: True
        #: Why the selected image has nothing to draw on (its file is missing...), said on any edit.
        self.unavailable = ""
        #: The threshold slider: pending box proposals scoring below this are not drawn.
        self.proposal_min_score = DEFAULT_PROPOSAL_SCORE

    # ------------------------------------------------------------------ state
    def set_image(self, session: ProjectSession | None, record: ImageRecord | None) -> None:
        if record is None or self.record is None or record.id != self.record.id:
            self.selected = None
        self.session, self.record = session, record
        self.unavailable = ""
        if session is not None and session is not self._types_of:  # a new project: its first type
            types = lesion_types(session.project)
            self.current_type = types[0] if types else ""
            self._types_of = session
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

    def _owner(self, reader: str, several: bool) -> str:
        """How a box is drawn: consensus green; another reader's violet where the image holds
        boxes of several readers (an image read by one reader, e.g. imported, stays orange)."""
        assert self.session is not None
        if reader == CONSENSUS:
            return "consensus"
        return "other" if several and reader != self.session.author else "mine"

    def reload_regions(self) -> None:
        if self.session is None or self.record is None or self.canvas.radiograph is None:
            self.canvas.set_regions([])
            self.canvas.set_measurements([])
            return
        p = self.session.project
        view = self.session.reader_view
        boxes = p.boxes(self.record.id, reader=view)
        several = len({b.reader for b in boxes}) > 1
        items = [RegionItem(LESION, b.id, b.box, owner=self._owner(b.reader, several),
                            editable=self.session.can_edit(b.reader), reader=b.reader, lesion_type=b.lesion_type)
                 for b in boxes]
        items += [RegionItem(PATCH, n.id, n.box, reader=n.author) for n in p.normal_patches(self.record.id)]
        items += self._proposal_items()
        self.canvas.set_regions(items)
        rulers = [MeasurementItem(m.id, (m.x0, m.y0, m.x1, m.y1),
                                  length_text(m.length_px, m.length_mm, m.spacing_source),
                                  editable=self.session.can_edit(m.author), reader=m.author)
                  for m in store_measurements.measurements(p, self.record.id, reader=view)]
        self.canvas.set_measurements(rulers)
        if self.selected is not None and self._item(self.selected) is None:
            self.selected = None
        self._paint_selection()

    def _proposal_items(self) -> list[ProposalItem]:
        """The image's pending proposals at or above the slider's score (reading only: nothing is stored)."""
        assert self.session is not None and self.record is not None
        mine = self.session.reader_view in (None, self.session.author)
        return [ProposalItem(pr.id, pr.box, pr.score, pr.model_name, editable=mine)
                for pr in store_proposals.proposals(self.session.project, self.record.id, state="pending",
                                                    min_score=self.proposal_min_score)]

    def set_proposal_min_score(self, score: float) -> None:
        """The threshold slider moved: show the proposals scoring at least ``score`` (no store change)."""
        self.proposal_min_score = float(score)
        self.reload_regions()

    def _item(self, key: tuple[str, int]) -> RegionItem | MeasurementItem | None:
        if key[0] == MEASURE:
            return self.canvas.measurement(key[1])
        return self.canvas.region(*key)

    def select(self, key: tuple[str, int] | None) -> None:
        if key == self.selected:
            return
        self.selected = key
        self._paint_selection()
        self.selection_changed.emit(key)

    def _paint_selection(self) -> None:
        for item in [*self.canvas.regions, *self.canvas.measurements]:
            item.set_selected(item.key == self.selected)

    def _lesion_boxes(self, exclude: int | None = None) -> list[Box]:
        return [r.box for r in self.canvas.regions if r.kind == LESION and r.region_id != exclude]

    def _check(self, kind: str, box: Box, region_id: int | None = None) -> bool:
        if box.width < MIN_REGION_PX or box.height < MIN_REGION_PX:
            self.message.emit(
                f"That {'patch' if kind == PATCH else 'box'} is smaller than {MIN_REGION_PX} pixels; "
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
        if self.session.reader_view not in (None, self.session.author):
            self.message.emit(f"These are {self.session.reader_view}'s boxes (read-only). Show your own or all "
                              "readers' boxes to draw.", "warning")
            return None
        stack = self.session.undo_stack
        cmd = AddRegionCommand(self.session, kind, self.record.id, box,
                               lesion_type=self.current_type if kind == LESION else "")
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

    def _read_only(self, item: RegionItem | MeasurementItem) -> bool:
        if item.editable:
            return False
        self.message.emit(f"That is {item.reader}'s (read-only here). Adjudicate (Image → Adjudicate boxes) to "
                          "make a consensus box from it.", "info")
        return True

    def change_region(self, item: RegionItem, box: Box, verb: str = "Move") -> bool:
        if not self._editable():
            return False
        if self._read_only(item):
            return False
        box = snap(box, *self.size())
        if item.kind == PROPOSAL:  # dragging a proposal edits it, and that accepts it
            return self._check(LESION, box) and self.accept_proposal(item.region_id, box) is not None
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
        item = self._item(self.selected)
        if item is None or self._read_only(item):
            return False
        if isinstance(item, ProposalItem):
            self.session.undo_stack.push(RejectProposalCommand(self.session, self.record.id, item.region_id))
        elif isinstance(item, MeasurementItem):
            self.session.undo_stack.push(DeleteMeasurementCommand(self.session, self.record.id, item.measurement_id))
        else:
            self.session.undo_stack.push(
                DeleteRegionCommand(self.session, item.kind, self.record.id, item.region_id, self._stored_box(item)))
        self.select(None)
        return True

    # ------------------------------------------------------------------ box proposals
    def accept_selected(self) -> int | None:
        """Enter: accept the selected box proposal as drawn; returns the new lesion box's id."""
        if self.selected is None or self.selected[0] != PROPOSAL:
            self.message.emit("Select a box proposal first (click it), then press Enter to accept it.", "info")
            return None
        return self.accept_proposal(self.selected[1])

    def accept_proposal(self, proposal_id: int, box: Box | None = None) -> int | None:
        """A reader accepts a proposal (``box``: their edit of it) as one undoable step; a normal
        image is relabelled lesion only with the reader's consent, as when drawing a box."""
        if not self._editable():
            return None
        item = self.canvas.region(PROPOSAL, proposal_id)
        if item is not None and self._read_only(item):
            return None
        relabel = self.record.label != "lesion"
        if relabel and self.record.label == "normal" and not self.confirm_relabel(self.record):
            relabel = False
        cmd = AcceptProposalCommand(self.session, self.record.id, proposal_id, box=box,
                                    lesion_type=self.current_type, relabel=relabel)
        self.session.undo_stack.push(cmd)
        if cmd.box_id is not None:
            self.select((LESION, cmd.box_id))
        return cmd.box_id

    # ------------------------------------------------------------------ lesion types
    def set_box_type(self, box_id: int, lesion_type: str) -> bool:
        """Type one lesion box (undoable); a read-only box is refused with a message."""
        if self.session is None or self.record is None:
            return False
        item = self.canvas.region(LESION, box_id)
        if item is not None and self._read_only(item):
            return False
        old = self.session.project.box(box_id).lesion_type
        self.current_type = lesion_type
        if old == lesion_type:
            return False
        self.session.undo_stack.push(SetBoxTypeCommand(self.session, self.record.id, box_id, old, lesion_type))
        return True

    def cycle_type(self, step: int = 1) -> str:
        """T: the next lesion type, for the selected box when one is selected, and for new boxes."""
        if self.session is None:
            return self.current_type
        types = lesion_types(self.session.project)
        if not types:
            return self.current_type
        selected = self.selected if self.selected is not None and self.selected[0] == LESION else None
        now = self.session.project.box(selected[1]).lesion_type if selected else self.current_type
        nxt = types[(types.index(now) + step) % len(types)] if now in types else types[0]
        if selected:
            self.set_box_type(selected[1], nxt)
        self.current_type = nxt
        return nxt

    # ------------------------------------------------------------------ measurements
    def create_measurement(self, line: tuple[float, float, float, float]) -> int | None:
        """Store a ruler line (clipped to the image) with the shown image's pixel spacing."""
        if not self._editable() or self.canvas.radiograph is None:
            return None
        w, h = self.size()
        x0, y0, x1, y1 = (min(max(v, 0.0), lim) for v, lim in zip(line, (w, h, w, h), strict=True))
        if ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 < MIN_RULER_PX:
            return None
        if self.session.reader_view not in (None, self.session.author):
            self.message.emit(f"These are {self.session.reader_view}'s reads (read-only).", "warning")
            return None
        rg = self.canvas.radiograph
        cmd = AddMeasurementCommand(self.session, self.record.id, (x0, y0, x1, y1), rg.pixel_spacing_mm,
                                    rg.spacing_source if rg.pixel_spacing_mm else "")
        self.session.undo_stack.push(cmd)
        if cmd.measurement_id is not None:
            self.select((MEASURE, cmd.measurement_id))
        return cmd.measurement_id

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
