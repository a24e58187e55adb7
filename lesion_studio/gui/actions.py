"""Every user action, declared once: text, shortcuts, menu, toolbar and handler.

Menus, the toolbar and Help → Keyboard shortcuts are all built from :data:`ACTIONS`, so a
shortcut cannot be documented in one place and bound differently in another (napari's
app-model idea at our size). Each panel declares its own actions in its module (``ACTIONS``) and
its :class:`~lesion_studio.gui.app.PanelSpec`; the window builds them together with these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

MENUS = ("File", "Edit", "View", "Image", "Tools", "Help")
BODY_PART_KEYS = 9


@dataclass(frozen=True)
class ActionSpec:
    key: str
    text: str
    menu: str
    handler: str  # method name on the main window
    shortcuts: tuple[str, ...] = ()
    tip: str = ""
    checkable: bool = False
    toolbar: bool = False
    group: str = ""  # exclusive group (tools)
    args: tuple[Any, ...] = ()
    section: str = ""  # menu separator before the first action of a new section
    context: str = "window"  # "window", or "viewer": only while the image viewer has focus
    needs_image: bool = False
    needs_project: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


ACTIONS: list[ActionSpec] = [
    # File
    ActionSpec("new_project", "&New project…", "File", "new_project", ("Ctrl+N",), "Create an empty project folder"),
    ActionSpec("open_project", "&Open project…", "File", "open_project_dialog", ("Ctrl+O",), "Open a project folder",
               toolbar=True),
    ActionSpec("import", "&Import images…", "File", "import_images", ("Ctrl+I",),
               "Import DICOM/PNG/JPEG with optional labels, boxes or COCO annotations", section="io",
               needs_project=True, toolbar=True),
    ActionSpec("export", "&Export annotations…", "File", "export_annotations", ("Ctrl+E",),
               "Export as COCO JSON, CSV or YOLO", needs_project=True),
    ActionSpec("export_samples", "Export kept s&ynthetic samples…", "File", "export_kept_samples", (),
               "Write kept/accepted synthetic samples as PNG or DICOM with provenance sidecars",
               needs_project=True),
    ActionSpec("relink", "Re-&link moved images…", "File", "relink_images", (),
               "Find moved image files by content hash", needs_project=True),
    ActionSpec("quit", "&Quit", "File", "close", ("Ctrl+Q",), section="quit"),
    # Edit
    ActionSpec("undo", "&Undo", "Edit", "undo", ("Ctrl+Z",), "Undo the last edit (any image)", toolbar=True,
               needs_project=True),
    ActionSpec("redo", "&Redo", "Edit", "redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo", toolbar=True,
               needs_project=True),
    ActionSpec("delete_region", "&Delete selected region", "Edit", "delete_selected_region",
               ("Del", "Backspace"), section="sel", needs_image=True),
    ActionSpec("deselect", "Deselect", "Edit", "deselect", ("Esc",), needs_image=True),
    ActionSpec("find", "&Find image…", "Edit", "focus_search", ("Ctrl+F",), needs_project=True),
    # View
    ActionSpec("fit", "&Fit to window", "View", "fit_view", ("F",), needs_image=True, toolbar=True),
    ActionSpec("actual_size", "&Actual size (1:1)", "View", "actual_size", ("Ctrl+1",), needs_image=True),
    ActionSpec("zoom_in", "Zoom &in", "View", "zoom_in", ("Ctrl+=", "+"), needs_image=True),
    ActionSpec("zoom_out", "Zoom &out", "View", "zoom_out", ("Ctrl+-", "-"), needs_image=True),
    ActionSpec("wl_dicom", "Window: DICOM default", "View", "apply_preset", ("F5",), args=("dicom",),
               section="wl", needs_image=True),
    ActionSpec("wl_bone", "Window: bone", "View", "apply_preset", ("F6",), args=("bone",), needs_image=True),
    ActionSpec("wl_full", "Window: full range", "View", "apply_preset", ("F7",), args=("full",),
               needs_image=True),
    ActionSpec("wl_auto", "Window: auto (1–99 %)", "View", "apply_preset", ("F8",), args=("auto",),
               needs_image=True),
    ActionSpec("invert", "&Invert", "View", "toggle_invert", ("I",), checkable=True, needs_image=True,
               toolbar=True),
    ActionSpec("hide_overlays", "&Hide boxes and patches", "View", "toggle_overlays", ("H",),
               "Hide lesion boxes, normal patches and the synthesis window to see the image (and a synthetic "
               "lesion) unobstructed", checkable=True, needs_image=True),
    ActionSpec("reading_layout", "Rea&ding layout", "View", "toggle_reading_layout", ("Ctrl+R",),
               "Read: the image large, a thin inspector, the browser collapsed; again for the research docks",
               checkable=True, section="layout"),
    ActionSpec("full_screen", "&Full screen", "View", "toggle_full_screen", ("F11",), checkable=True),
    ActionSpec("reset_layout", "&Reset layout", "View", "reset_layout", (),
               "Put the current layout's panels back where they started, at their default size"),
    # Image (navigation and quick labelling)
    ActionSpec("next_image", "&Next image", "Image", "next_image", ("PgDown",), needs_project=True),
    ActionSpec("prev_image", "&Previous image", "Image", "previous_image", ("PgUp",), needs_project=True),
    ActionSpec("next_image_arrow", "Next image", "Image", "next_image", ("Down", "Right"), context="viewer"),
    ActionSpec("prev_image_arrow", "Previous image", "Image", "previous_image", ("Up", "Left"),
               context="viewer"),
    ActionSpec("next_unreviewed", "Next &unreviewed image", "Image", "next_unreviewed_image", ("G",),
               "The next unreviewed image in the review queue's order (the toolbar's Next: combo); G for go",
               needs_project=True),
    ActionSpec("toggle_label", "Toggle &lesion / normal", "Image", "toggle_label", ("L",), section="label",
               needs_project=True),
    ActionSpec("toggle_excluded", "Toggle &excluded…", "Image", "toggle_excluded", ("E",), needs_project=True),
    ActionSpec("cycle_type", "Next lesion &type", "Image", "cycle_type", ("T",), args=(1,),
               tip="The selected lesion box's type (and new boxes'): the next of the project's types",
               needs_image=True),
    ActionSpec("cycle_type_back", "Previous lesion type", "Image", "cycle_type", ("Shift+T",), args=(-1,),
               needs_image=True),
    ActionSpec("accept_proposal", "&Accept box proposal", "Image", "accept_proposal", ("Return", "Enter"),
               "Accept the selected box proposal as a lesion box (Del rejects it, dragging edits and accepts it)",
               context="viewer", needs_image=True),
    ActionSpec("adjudicate", "&Adjudicate boxes…", "Image", "adjudicate_boxes", (),
               "Compare two readers' boxes on this image and pick or merge them into consensus boxes",
               needs_image=True),
    *[
        ActionSpec(f"body_part_{i}", f"Body part {i}", "Image", "set_body_part_key", (str(i),), args=(i,),
                   needs_project=True, section="body" if i == 1 else "")
        for i in range(1, BODY_PART_KEYS + 1)
    ],
    # Tools
    ActionSpec("tool_box", "&Lesion box tool", "Tools", "use_tool", ("B",), "Drag to draw a lesion box",
               checkable=True, toolbar=True, group="tool", args=("box",)),
    ActionSpec("tool_patch", "&Normal patch tool", "Tools", "use_tool", ("N",),
               "Click to place a normal patch, or drag a rectangle", checkable=True, toolbar=True,
               group="tool", args=("patch",)),
    ActionSpec("tool_pan", "&Pan tool", "Tools", "use_tool", ("P",), "Drag to pan (also: middle button, Space+drag)",
               checkable=True, toolbar=True, group="tool", args=("pan",)),
    ActionSpec("tool_ruler", "&Ruler tool", "Tools", "use_tool", ("M",),
               "Drag to measure a length (mm from the pixel spacing, or pixels without one)", checkable=True,
               toolbar=True, group="tool", args=("ruler",)),
    ActionSpec("patch_smaller", "Smaller normal patch", "Tools", "change_patch_size", ("[",), args=(-8,),
               section="patch"),
    ActionSpec("patch_larger", "Larger normal patch", "Tools", "change_patch_size", ("]",), args=(8,)),
    ActionSpec("ask_relabel", "Ask before relabelling a normal image as lesion", "Tools",
               "toggle_ask_relabel", checkable=True, section="prefs"),
    ActionSpec("reader_name", "Reader &name…", "Tools", "edit_reader_name", (),
               "Who you are: every box, label and ruler you make records it"),
    ActionSpec("agreement", "Reader &agreement…", "Tools", "show_agreement", (),
               "Cohen's κ, box F1 and mean IoU per reader pair, with bootstrap intervals", section="readers",
               needs_project=True),
    ActionSpec("propose", "&Propose boxes on unreviewed images", "Tools", "propose_boxes", (),
               "Run the project's detector over the images selected in the browser (when several are), else the "
               "unreviewed ones: box proposals to accept or reject, never labels", args=("auto",),
               section="assist", needs_project=True),
    ActionSpec("propose_image", "Propose boxes on this image", "Tools", "propose_boxes", (), args=("image",),
               needs_image=True),
    ActionSpec("retrain", "&Retrain detector", "Tools", "retrain_detector", (),
               "Train a new detector on the current labels in the background; the scores and the queue follow it",
               needs_project=True),
    # Help
    ActionSpec("shortcuts", "&Keyboard shortcuts", "Help", "show_shortcuts", ("F1",)),
    ActionSpec("about", "&About Lesion Studio", "Help", "show_about"),
]

#: Gestures that are not actions, listed in Help next to the table.
MOUSE_HELP = (
    ("Left drag", "draw with the active tool; drag a region to move it, its edges to resize"),
    ("Click (patch tool)", "place a square normal patch of the current size"),
    ("Right drag", "window/level: horizontal = width, vertical = level"),
    ("Wheel", "zoom about the cursor"),
    ("Middle drag or Space + drag", "pan"),
    ("Arrow keys in the browser", "previous / next image"),
)


def build_action(spec: ActionSpec, parent: QWidget, handler: Callable[..., Any]) -> QAction:
    action = QAction(spec.text, parent)
    action.setObjectName(spec.key)
    if spec.shortcuts:
        action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
    if spec.tip:
        action.setStatusTip(spec.tip)
        action.setToolTip(f"{spec.text.replace('&', '').rstrip('…')} ({', '.join(spec.shortcuts)})"
                          if spec.shortcuts else spec.tip)
    action.setCheckable(spec.checkable)
    if spec.context == "viewer":
        action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
    if spec.checkable and not spec.group:
        action.toggled.connect(lambda checked: handler(*spec.args, checked))
    else:
        action.triggered.connect(lambda _checked=False: handler(*spec.args))
    return action


def shortcut_rows(specs: list[ActionSpec] | None = None) -> list[tuple[str, str, str]]:
    """(menu, action, shortcuts) for the Help list, in menu order (``specs``: the window's actions)."""
    rows = []
    for menu in MENUS:
        for spec in ACTIONS if specs is None else specs:
            if spec.menu == menu and spec.shortcuts:
                rows.append((menu, spec.text.replace("&", "").rstrip("…"), ", ".join(spec.shortcuts)))
    return rows
