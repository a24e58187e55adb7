"""Reading the annotation files an import accepts: labels CSV, boxes CSV and COCO JSON.

All three feed one neutral form, :class:`Annotations`, keyed by the image's path relative to the
import source (POSIX), so the importer has one matching rule whatever the file format.

Every row is validated here, before anything is written: a row that cannot be used (unknown
label, non-numeric or non-finite coordinates, a flipped or empty box, an unknown COCO category,
a duplicate) becomes an :class:`AnnotationProblem` naming the file, the line (or COCO entry) and
the reason, and is skipped. Only a file that is not what it claims to be as a whole (no header,
missing columns, not JSON, not COCO) raises.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lesion_studio.errors import LesionStudioError
from lesion_studio.store.records import EXCLUSION_REASONS, LABELS, SPLITS, Box

#: Labels CSV columns the project understands; others are kept in the image's ``extra`` dict.
IMAGE_COLUMNS = ("label", "body_part", "view", "split", "group", "exclusions", "exclusion_note",
                 "notes", "lesion_type")
_LABEL_ALIASES = {"1": "lesion", "0": "normal", "positive": "lesion", "negative": "normal",
                  "fracture": "lesion", "abnormal": "lesion", "": "unreviewed"}
_TRUE = {"1", "true", "yes", "y"}
#: COCO category names that mean a lesion box, and the one that means a normal patch.
LESION_CATEGORIES = {"lesion", "fracture", "abnormal", "positive"}
PATCH_CATEGORY = "normal_patch"
#: Largest annotation file read (a COCO file of 100,000 boxes is ~20 MB).
MAX_ANNOTATION_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class AnnotationProblem:
    """One annotation row that was skipped (or, for ``action='clipped'``, changed)."""

    file: str
    where: str  # "line 12", "image 3", "annotation 17"
    reason: str
    action: str = "skipped"

    def __str__(self) -> str:
        return f"{self.file} {self.where}: {self.reason} ({self.action})"


@dataclass
class ImageAnnotation:
    fields: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    lesion_boxes: list[Box] = field(default_factory=list)
    normal_patches: list[Box] = field(default_factory=list)
    #: (kind, index) -> (file, where) of each box, for problems found once the image size is known.
    box_sources: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)
    #: file -> where the image's row is in it (a second row in the same file is a duplicate).
    row_sources: dict[str, str] = field(default_factory=dict)


@dataclass
class Annotations:
    by_key: dict[str, ImageAnnotation] = field(default_factory=dict)
    problems: list[AnnotationProblem] = field(default_factory=list)

    def get(self, key: str) -> ImageAnnotation:
        return self.by_key.setdefault(key, ImageAnnotation())

    def lookup(self, relative: str) -> ImageAnnotation | None:
        """Match by relative path first, then by file name (CSV files often list bare names)."""
        if relative in self.by_key:
            return self.by_key[relative]
        return self.by_key.get(Path(relative).name)

    def problem(self, file: str, where: str, reason: str, action: str = "skipped") -> None:
        self.problems.append(AnnotationProblem(file, where, reason, action))

    def add_box(self, key: str, kind: str, box: Box, file: str, where: str) -> None:
        """Add a box unless the same image already has the same box of the same kind."""
        ann = self.get(key)
        boxes = ann.lesion_boxes if kind == "lesion" else ann.normal_patches
        if box in boxes:
            self.problem(file, where, f"duplicate {kind.replace('_', ' ')} box {_fmt(box)} for {key}")
            return
        ann.box_sources[(kind, len(boxes))] = (file, where)
        boxes.append(box)


def _fmt(box: Box) -> str:
    return f"({box.x0:g}, {box.y0:g}, {box.x1:g}, {box.y1:g})"


class RowError(ValueError):
    """A reason to skip one row."""


def _check_size(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LesionStudioError(f"{path.name}: cannot read the file ({exc.strerror}).") from exc
    if size > MAX_ANNOTATION_BYTES:
        raise LesionStudioError(f"{path.name}: {size / 2**20:.0f} MB is too large for an annotation file.")


def _csv_rows(path: Path, required: tuple[str, ...], into: Annotations) -> list[tuple[int, dict[str, str]]]:
    """(line, row) pairs. A row with more fields than the header is reported and skipped."""
    _check_size(path)
    csv.field_size_limit(16 * 1024 * 1024)
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in required if c not in header]
            if missing:
                raise LesionStudioError(
                    f"{path.name}: missing column(s) {', '.join(missing)}. "
                    f"The file needs at least: {', '.join(required)}."
                )
            for row in reader:
                line = reader.line_num
                if None in row:
                    into.problem(path.name, f"line {line}",
                                 f"{len(header) + len(row[None])} fields but the header has {len(header)}")
                    continue
                rows.append((line, {(k or "").strip(): (v or "").strip() for k, v in row.items()}))
    except OSError as exc:
        raise LesionStudioError(f"{path.name}: cannot read the file ({exc.strerror}).") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LesionStudioError(f"{path.name}: not a readable CSV file ({exc}).") from exc
    return rows


def _image_fields(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split one labels row into store fields and extra metadata; raises RowError for bad values."""
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    exclusions: set[str] = set()
    for key, value in row.items():
        if key in ("image", "file_name", "id", "width", "height", "boxes", "polygons"):
            continue
        if not isinstance(key, str):
            raise RowError(f"field name {key!r} is not text")
        value = "" if value is None else value
        if isinstance(value, dict | list):
            if key in IMAGE_COLUMNS:
                raise RowError(f"{key} must be a single value, not {type(value).__name__}")
            extra[key] = json.loads(json.dumps(value))  # plain JSON only
            continue
        if key == "label":
            label = _LABEL_ALIASES.get(str(value).strip().lower(), str(value).strip().lower())
            if label not in LABELS:
                raise RowError(f"unknown label {value!r} (use lesion, normal or unreviewed)")
            fields["label"] = label
        elif key == "split":
            split = str(value).strip().lower() or "unassigned"
            if split not in SPLITS:
                raise RowError(f"unknown split {value!r} (use {', '.join(SPLITS)})")
            fields["split"] = split
        elif key == "group":
            fields["group_key"] = str(value)
        elif key == "exclusions":
            exclusions.update(x.strip() for x in str(value).replace(";", ",").split(",") if x.strip())
        elif key in ("body_part", "view", "exclusion_note", "notes", "lesion_type"):
            fields[key] = str(value)
        elif key in EXCLUSION_REASONS and str(value).strip().lower() in _TRUE:
            # FracAtlas-style flag columns (hardware=1) become exclusion flags.
            exclusions.add(key)
            extra[key] = value
        else:
            extra[key] = value
    bad = exclusions - set(EXCLUSION_REASONS)
    if bad:
        raise RowError(f"unknown exclusion reason {sorted(bad)[0]!r} (use {', '.join(EXCLUSION_REASONS)})")
    if exclusions:
        fields["exclusions"] = sorted(exclusions, key=EXCLUSION_REASONS.index)
    return fields, extra


def _add_image_row(into: Annotations, key: str, row: dict[str, Any], file: str, where: str) -> None:
    if not key:
        into.problem(file, where, "no image name")
        return
    try:
        fields, extra = _image_fields(row)
    except RowError as exc:
        into.problem(file, where, str(exc))
        return
    ann = into.get(key)
    if file in ann.row_sources:
        into.problem(file, where, f"duplicate row for {key} (first at {ann.row_sources[file]})")
        return
    ann.row_sources[file] = where
    ann.fields.update(fields)
    ann.extra.update(extra)


def read_labels_csv(path: Path, into: Annotations) -> None:
    for line, row in _csv_rows(path, ("image",), into):
        _add_image_row(into, row["image"], row, path.name, f"line {line}")


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RowError(f"{name} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except ValueError:
        raise RowError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise RowError(f"{name} is {value!r}, not a finite number")
    return number


def checked_box(x0: Any, y0: Any, x1: Any, y1: Any) -> Box:
    """A box from four corner values: numbers, finite, x0 < x1 and y0 < y1 (never flipped silently)."""
    box = Box(_number(x0, "x0"), _number(y0, "y0"), _number(x1, "x1"), _number(y1, "y1"))
    if box.x1 < box.x0 or box.y1 < box.y0:
        raise RowError(f"the box {_fmt(box)} is flipped (x1 < x0 or y1 < y0)")
    if box.width == 0 or box.height == 0:
        raise RowError(f"the box {_fmt(box)} has no area")
    return box


def read_boxes_csv(path: Path, into: Annotations) -> None:
    """``image,x0,y0,x1,y1[,kind]``; kind is ``lesion`` (default) or ``normal_patch``."""
    for line, row in _csv_rows(path, ("image", "x0", "y0", "x1", "y1"), into):
        where = f"line {line}"
        try:
            if not row["image"]:
                raise RowError("no image name")
            box = checked_box(row["x0"], row["y0"], row["x1"], row["y1"])
            kind = row.get("kind", "") or "lesion"
            if kind not in ("lesion", "normal_patch"):
                raise RowError(f"unknown box kind {kind!r} (use lesion or normal_patch)")
        except RowError as exc:
            into.problem(path.name, where, str(exc))
            continue
        into.add_box(row["image"], kind, box, path.name, where)


def _load_json(path: Path) -> Any:
    _check_size(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LesionStudioError(f"{path.name}: cannot read the file ({exc.strerror}).") from exc
    except RecursionError as exc:
        raise LesionStudioError(f"{path.name}: not a COCO JSON file (nested too deeply).") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise LesionStudioError(f"{path.name}: not a COCO JSON file ({exc}).") from exc


def read_coco_json(path: Path, into: Annotations) -> None:
    """COCO detection JSON. Category ``lesion`` (or fracture/abnormal/positive) gives lesion boxes,
    ``normal_patch`` normal patches; any other category is reported and skipped. Image-level fields
    come from each image's ``extra`` object."""
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise LesionStudioError(f"{path.name}: not a COCO JSON file (no 'images' list).")
    annotations = data.get("annotations", [])
    categories_list = data.get("categories", [])
    if not isinstance(annotations, list) or not isinstance(categories_list, list):
        raise LesionStudioError(f"{path.name}: not a COCO JSON file ('annotations' and 'categories' must be lists).")
    name = path.name
    categories: dict[Any, str] = {}
    for k, cat in enumerate(categories_list):
        if isinstance(cat, dict) and isinstance(cat.get("id"), int | str) and not isinstance(cat.get("id"), bool):
            categories[cat["id"]] = str(cat.get("name", ""))
        else:
            into.problem(name, f"category #{k + 1}", "not an object with an id")
    key_of: dict[Any, str] = {}
    for k, img in enumerate(data["images"]):
        where = f"image #{k + 1}"
        if not isinstance(img, dict):
            into.problem(name, where, "not an object")
            continue
        image_id, key = img.get("id"), img.get("file_name")
        if not isinstance(image_id, int | str) or isinstance(image_id, bool) or not isinstance(key, str) or not key:
            into.problem(name, where, "needs an id and a file_name")
            continue
        if image_id in key_of:
            into.problem(name, where, f"duplicate image id {image_id!r}")
            continue
        extra = img.get("extra") or {}
        if not isinstance(extra, dict):
            into.problem(name, where, f"'extra' must be an object, not {type(extra).__name__}")
            continue
        key_of[image_id] = key
        _add_image_row(into, key, extra, name, f"{where} ({key})")
    for k, a in enumerate(annotations):
        where = f"annotation #{k + 1}"
        try:
            if not isinstance(a, dict):
                raise RowError("not an object")
            if a.get("image_id") not in key_of:
                raise RowError(f"refers to unknown image id {a.get('image_id')!r}")
            category = categories.get(a.get("category_id"))
            if category is None or (category not in LESION_CATEGORIES and category != PATCH_CATEGORY):
                raise RowError(f"unknown category {a.get('category_id')!r}"
                               f"{f' ({category})' if category else ''}; use lesion or normal_patch")
            # Our own exports carry the exact corners too, so a round trip loses no float bits.
            xyxy = a.get("xyxy")
            if isinstance(xyxy, list) and len(xyxy) == 4:
                box = checked_box(*xyxy)
            else:
                bbox = a.get("bbox")
                if not isinstance(bbox, list) or len(bbox) != 4:
                    raise RowError("bbox must be a list of four numbers [x, y, width, height]")
                x, y, w, h = (_number(v, f"bbox[{i}]") for i, v in enumerate(bbox))
                if w < 0 or h < 0:
                    raise RowError(f"negative bbox size {w:g}x{h:g} (COCO boxes are [x, y, width, height])")
                box = checked_box(x, y, x + w, y + h)
        except RowError as exc:
            into.problem(name, where, str(exc))
            continue
        kind = "normal_patch" if category == PATCH_CATEGORY else "lesion"
        into.add_box(key_of[a["image_id"]], kind, box, name, where)
