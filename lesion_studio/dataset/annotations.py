"""Reading the annotation files an import accepts: labels CSV, boxes CSV and COCO JSON (YOLO
label folders in yolo_labels.py, DICOM SR in dicom_sr.py).

All of them feed one neutral form, :class:`Annotations`, keyed by the image's path relative to the
import source (POSIX), so the importer has one matching rule whatever the file format (an SR's
boxes are keyed by SOP Instance UID, a YOLO label file's by the path without its suffix).

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
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lesion_studio.errors import LesionStudioError
from lesion_studio.store.records import (
    DEFAULT_LESION_TYPES,
    EXCLUSION_REASONS,
    LABELS,
    SPLITS,
    Box,
    ReaderLabel,
)

#: Labels CSV columns the project understands; others are kept in the image's ``extra`` dict.
IMAGE_COLUMNS = ("label", "body_part", "view", "split", "group", "exclusions", "exclusion_note",
                 "notes", "lesion_type")
_LABEL_ALIASES = {"1": "lesion", "0": "normal", "positive": "lesion", "negative": "normal",
                  "fracture": "lesion", "abnormal": "lesion", "": "unreviewed"}
_TRUE = {"1", "true", "yes", "y"}
#: COCO category names that mean a lesion box, and the one that means a normal patch.
LESION_CATEGORIES = {"lesion", "fracture", "abnormal", "positive"}
PATCH_CATEGORY = "normal_patch"
#: Largest coordinate accepted, in pixels (an image is at most 64 million pixels, so no side is
#: near this); bigger numbers are typos or attacks, and would overflow once added.
MAX_COORDINATE = 1e9
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


@dataclass(frozen=True)
class BoxMeta:
    """What a file says about one box besides its corners ("" / None: not said)."""

    reader: str = ""
    lesion_type: str = ""
    created_at: str | None = None
    modified_at: str | None = None


@dataclass
class ImageAnnotation:
    fields: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    lesion_boxes: list[Box] = field(default_factory=list)
    normal_patches: list[Box] = field(default_factory=list)
    #: (kind, index) -> (file, where) of each box, for problems found once the image size is known.
    box_sources: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)
    #: (kind, index) -> the box's reader, type and times, when the file gives them.
    box_meta: dict[tuple[str, int], BoxMeta] = field(default_factory=dict)
    #: file -> where the image's row is in it (a second row in the same file is a duplicate).
    row_sources: dict[str, str] = field(default_factory=dict)
    #: Each reader's own label of the image (store/readers.py); image_id is filled in by the store.
    reader_labels: list[ReaderLabel] = field(default_factory=list)
    #: Ruler measurements (store/measurements.py NewMeasurement), with (file, where) for each.
    measurements: list[Any] = field(default_factory=list)
    measurement_sources: list[tuple[str, str]] = field(default_factory=list)
    #: YOLO boxes, in fractions of the image size until the importer knows it
    #: (dataset/yolo_labels.py NormalisedBox).
    normalised_boxes: list[Any] = field(default_factory=list)


@dataclass
class Annotations:
    by_key: dict[str, ImageAnnotation] = field(default_factory=dict)
    problems: list[AnnotationProblem] = field(default_factory=list)
    #: Lesion types the files name, in the order first seen (the import adds them to the project).
    lesion_types: list[str] = field(default_factory=list)

    def get(self, key: str) -> ImageAnnotation:
        return self.by_key.setdefault(key, ImageAnnotation())

    def lookup(self, relative: str) -> ImageAnnotation | None:
        """Match by relative path first, then by file name (CSV files often list bare names)."""
        if relative in self.by_key:
            return self.by_key[relative]
        return self.by_key.get(Path(relative).name)

    def problem(self, file: str, where: str, reason: str, action: str = "skipped") -> None:
        self.problems.append(AnnotationProblem(file, where, reason, action))

    def add_box(self, key: str, kind: str, box: Box, file: str, where: str, meta: BoxMeta | None = None) -> None:
        """Add a box unless the same image already has the same box of the same kind by the same
        reader (two readers may well draw the same box)."""
        ann = self.get(key)
        meta = meta or BoxMeta()
        boxes = ann.lesion_boxes if kind == "lesion" else ann.normal_patches
        if any(b == box and ann.box_meta.get((kind, k), BoxMeta()).reader == meta.reader
               for k, b in enumerate(boxes)):
            self.problem(file, where, f"duplicate {kind.replace('_', ' ')} box {_fmt(box)} for {key}")
            return
        ann.box_sources[(kind, len(boxes))] = (file, where)
        ann.box_meta[(kind, len(boxes))] = meta
        boxes.append(box)
        if meta.lesion_type and meta.lesion_type not in self.lesion_types:
            self.lesion_types.append(meta.lesion_type)


def _fmt(box: Box) -> str:
    return f"({box.x0:g}, {box.y0:g}, {box.x1:g}, {box.y1:g})"


class RowError(ValueError):
    """A reason to skip one row."""


def check_file_size(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LesionStudioError(f"{path.name}: cannot read the file ({exc.strerror}).") from exc
    if size > MAX_ANNOTATION_BYTES:
        raise LesionStudioError(f"{path.name}: {size / 2**20:.0f} MB is too large for an annotation file.")


def _csv_rows(path: Path, required: tuple[str, ...], into: Annotations) -> list[tuple[int, dict[str, str]]]:
    """(line, row) pairs. A row with more fields than the header is reported and skipped."""
    check_file_size(path)
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


def finite_number(value: Any, name: str) -> float:
    """A finite coordinate within ±:data:`MAX_COORDINATE` (an integer too large for a float, or a
    list or object where a number belongs, is a reason to skip the row, not a crash)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RowError(f"{name} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise RowError(f"{name} is too large to be a coordinate") from None
    except ValueError:
        raise RowError(f"{name} must be a number, not {_short(value)}") from None
    if not math.isfinite(number):
        raise RowError(f"{name} is {_short(value)}, not a finite number")
    if abs(number) > MAX_COORDINATE:
        raise RowError(f"{name} is {number:g}, beyond any image (at most {MAX_COORDINATE:g} in size)")
    return number


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _key(value: Any, name: str) -> int | str:
    """A COCO id (image_id, category_id): a whole number or a text, never a list or an object."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RowError(f"{name} must be a number or a text, not {type(value).__name__}")
    return value


def checked_box(x0: Any, y0: Any, x1: Any, y1: Any) -> Box:
    """A box from four corner values: numbers, finite, x0 < x1 and y0 < y1 (never flipped silently)."""
    box = Box(finite_number(x0, "x0"), finite_number(y0, "y0"), finite_number(x1, "x1"), finite_number(y1, "y1"))
    if box.x1 < box.x0 or box.y1 < box.y0:
        raise RowError(f"the box {_fmt(box)} is flipped (x1 < x0 or y1 < y0)")
    if box.width == 0 or box.height == 0:
        raise RowError(f"the box {_fmt(box)} has no area")
    return box


def _timestamp(value: Any, name: str) -> str | None:
    """An ISO 8601 time as written by the store (None when empty)."""
    from datetime import datetime

    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise RowError(f"{name} must be an ISO 8601 time, not {type(value).__name__}")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise RowError(f"{name} {value!r} is not an ISO 8601 time") from None
    return value


def _reader(value: Any) -> str:
    from lesion_studio.errors import ProjectError
    from lesion_studio.store.readers import check_reader

    if value in (None, ""):
        return ""
    try:
        return check_reader(str(value))
    except ProjectError as exc:
        raise RowError(str(exc).rstrip(".")) from None


def lesion_type_name(value: Any) -> str:
    from lesion_studio.errors import ProjectError
    from lesion_studio.store.lesion_types import check_type

    if value in (None, ""):
        return ""
    if not isinstance(value, str):
        raise RowError(f"lesion_type must be text, not {type(value).__name__}")
    try:
        return check_type(value)
    except ProjectError as exc:
        raise RowError(str(exc).rstrip(".")) from None


def box_meta(values: dict[str, Any], *, lesion_type: str = "") -> BoxMeta:
    """A box's reader, type and times from a CSV row or a COCO annotation (and its ``attributes``)."""
    attributes = values.get("attributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    reader = values.get("reader") or attributes.get("reader") or values.get("author") or ""
    return BoxMeta(
        reader=_reader(reader),
        lesion_type=lesion_type or lesion_type_name(values.get("lesion_type") or attributes.get("lesion_type")),
        created_at=_timestamp(values.get("created_at"), "created_at"),
        modified_at=_timestamp(values.get("modified_at"), "modified_at"),
    )


def read_boxes_csv(path: Path, into: Annotations) -> None:
    """``image,x0,y0,x1,y1[,kind][,lesion_type][,reader][,created_at][,modified_at]``; kind is
    ``lesion`` (default) or ``normal_patch``. FracAtlas's boxes.csv names its lesion_type."""
    for line, row in _csv_rows(path, ("image", "x0", "y0", "x1", "y1"), into):
        where = f"line {line}"
        try:
            if not row["image"]:
                raise RowError("no image name")
            box = checked_box(row["x0"], row["y0"], row["x1"], row["y1"])
            kind = row.get("kind", "") or "lesion"
            if kind not in ("lesion", "normal_patch"):
                raise RowError(f"unknown box kind {kind!r} (use lesion or normal_patch)")
            meta = box_meta(row)
            if kind != "lesion" and meta.lesion_type:
                raise RowError("a normal patch has no lesion type")
        except RowError as exc:
            into.problem(path.name, where, str(exc))
            continue
        into.add_box(row["image"], kind, box, path.name, where, meta)


def read_reader_labels_csv(path: Path, into: Annotations) -> None:
    """``image,reader,label[,labelled_at]``: each reader's own image labels (several per image)."""
    seen: dict[tuple[str, str], str] = {}
    for line, row in _csv_rows(path, ("image", "reader", "label"), into):
        where = f"line {line}"
        try:
            if not row["image"]:
                raise RowError("no image name")
            reader = _reader(row["reader"])
            if not reader:
                raise RowError("no reader")
            label = _LABEL_ALIASES.get(row["label"].strip().lower(), row["label"].strip().lower())
            if label not in LABELS:
                raise RowError(f"unknown label {row['label']!r} (use lesion, normal or unreviewed)")
            at = _timestamp(row.get("labelled_at"), "labelled_at")
        except RowError as exc:
            into.problem(path.name, where, str(exc))
            continue
        if (row["image"], reader) in seen:
            into.problem(path.name, where, f"duplicate label of {row['image']} by {reader} "
                                           f"(first at {seen[(row['image'], reader)]})")
            continue
        seen[(row["image"], reader)] = where
        into.get(row["image"]).reader_labels.append(ReaderLabel(0, reader, label, at or ""))


def measurement_from(values: dict[str, Any]) -> Any:
    """A ruler measurement from a CSV row or a COCO ``measurements`` entry (RowError if unusable)."""
    from lesion_studio.errors import ProjectError
    from lesion_studio.store.measurements import NewMeasurement, check_line, check_spacing

    line = tuple(finite_number(values.get(k), k) for k in ("x0", "y0", "x1", "y1"))
    spacing = values.get("spacing")
    if spacing is None and values.get("spacing_row") not in (None, ""):
        spacing = (values.get("spacing_row"), values.get("spacing_col"))
    try:
        check_line(*line)
        if spacing not in (None, ""):
            if not isinstance(spacing, list | tuple) or len(spacing) != 2:
                raise RowError("spacing must be two numbers [row, column] in mm")
            spacing = (finite_number(spacing[0], "spacing row"), finite_number(spacing[1], "spacing column"))
        else:
            spacing = None
        spacing, source = check_spacing(spacing, str(values.get("spacing_source") or ""))
    except ProjectError as exc:
        raise RowError(str(exc).rstrip(".")) from None
    return NewMeasurement(*line, spacing=spacing, spacing_source=source, author=_reader(values.get("reader")),
                          created_at=_timestamp(values.get("created_at"), "created_at"),
                          modified_at=_timestamp(values.get("modified_at"), "modified_at"))


def add_measurement(into: Annotations, key: str, measurement: Any, file: str, where: str) -> None:
    ann = into.get(key)
    if measurement in ann.measurements:
        into.problem(file, where, f"duplicate measurement for {key}")
        return
    ann.measurements.append(measurement)
    ann.measurement_sources.append((file, where))


def read_measurements_csv(path: Path, into: Annotations) -> None:
    """``image,x0,y0,x1,y1[,spacing_row,spacing_col,spacing_source][,reader][,created_at,modified_at]``
    (``length_px`` and ``length_mm``, written by the export for people, are derived and ignored)."""
    for line, row in _csv_rows(path, ("image", "x0", "y0", "x1", "y1"), into):
        where = f"line {line}"
        try:
            if not row["image"]:
                raise RowError("no image name")
            measurement = measurement_from(row)
        except RowError as exc:
            into.problem(path.name, where, str(exc))
            continue
        add_measurement(into, row["image"], measurement, path.name, where)


def load_json(path: Path, what: str = "a COCO JSON file") -> Any:
    check_file_size(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LesionStudioError(f"{path.name}: cannot read the file ({exc.strerror}).") from exc
    except RecursionError as exc:
        raise LesionStudioError(f"{path.name}: not {what} (nested too deeply).") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise LesionStudioError(f"{path.name}: not {what} ({exc}).") from exc


def _coco_reader_labels(into: Annotations, key: str, extra: dict[str, Any], file: str, where: str) -> dict:
    """Take ``reader_labels`` (our export's list of {reader, label, labelled_at}) out of ``extra``."""
    items = extra.get("reader_labels")
    if items is None:
        return extra
    add_reader_labels(into, key, items, file, where)
    return {k: v for k, v in extra.items() if k != "reader_labels"}


def add_reader_labels(into: Annotations, key: str, items: Any, file: str, where: str) -> None:
    """Readers' own labels of the image ``key``, as the exports write them: a list of {reader,
    label, labelled_at} (COCO's ``extra.reader_labels``, the YOLO sidecar's ``reader_labels``)."""
    if not isinstance(items, list):
        into.problem(file, where, "'reader_labels' must be a list")
        return
    seen: set[str] = set()
    for k, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise RowError("not an object")
            reader = _reader(item.get("reader"))
            label = str(item.get("label", ""))
            if not reader or label not in LABELS:
                raise RowError("needs a reader and a label (lesion, normal or unreviewed)")
            if reader in seen:
                raise RowError(f"a second label by {reader}")
            at = _timestamp(item.get("labelled_at"), "labelled_at")
        except RowError as exc:
            into.problem(file, f"{where} reader label #{k + 1}", str(exc))
            continue
        seen.add(reader)
        into.get(key).reader_labels.append(ReaderLabel(0, reader, label, at or ""))


def read_coco_json(path: Path, into: Annotations, known_types: tuple[str, ...] | list[str] = DEFAULT_LESION_TYPES,
                   ) -> None:
    """COCO detection JSON. Category ``lesion`` (or abnormal/positive) gives lesion boxes, a
    category named after a lesion type (``fracture``, ``lytic``... or one of ``known_types``) gives
    lesion boxes of that type, ``normal_patch`` normal patches; any other category is reported and
    skipped. A box's type may also be its ``attributes.lesion_type`` (CVAT's convention, and our
    export's), its reader ``attributes.reader``. Image-level fields come from each image's
    ``extra`` object, readers' own labels from ``extra.reader_labels``, ruler measurements from
    the top-level ``measurements`` list."""
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise LesionStudioError(f"{path.name}: not a COCO JSON file (no 'images' list).")
    annotations = data.get("annotations", [])
    categories_list = data.get("categories", [])
    if not isinstance(annotations, list) or not isinstance(categories_list, list):
        raise LesionStudioError(f"{path.name}: not a COCO JSON file ('annotations' and 'categories' must be lists).")
    name = path.name
    categories = _coco_categories(into, name, categories_list)
    key_of = _coco_images(into, name, data["images"])
    _coco_lesion_types(into, name, data.get("info"))
    for k, a in enumerate(annotations):
        where = f"annotation #{k + 1}"
        try:
            image_id, category, meta, box = _coco_annotation(a, key_of, categories, known_types)
        except RowError as exc:
            into.problem(name, where, str(exc))
            continue
        kind = "normal_patch" if category == PATCH_CATEGORY else "lesion"
        into.add_box(key_of[image_id], kind, box, name, where, meta if kind == "lesion" else
                     BoxMeta(meta.reader, "", meta.created_at, meta.modified_at))
    _coco_measurements(into, name, data.get("measurements", []), key_of)


def _coco_categories(into: Annotations, name: str, categories_list: list[Any]) -> dict[Any, str]:
    categories: dict[Any, str] = {}
    for k, cat in enumerate(categories_list):
        if isinstance(cat, dict) and isinstance(cat.get("id"), int | str) and not isinstance(cat.get("id"), bool):
            categories[cat["id"]] = str(cat.get("name", ""))
        else:
            into.problem(name, f"category #{k + 1}", "not an object with an id")
    return categories


def _coco_images(into: Annotations, name: str, images: list[Any]) -> dict[Any, str]:
    """Each image's row (its ``extra`` fields and readers' labels); COCO image id → file name."""
    key_of: dict[Any, str] = {}
    for k, img in enumerate(images):
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
        extra = _coco_reader_labels(into, key, extra, name, f"{where} ({key})")
        _add_image_row(into, key, extra, name, f"{where} ({key})")
    return key_of


def _coco_lesion_types(into: Annotations, name: str, info: Any) -> None:
    """The lesion types an export lists in ``info.lesion_types`` (in use or not)."""
    if not isinstance(info, dict) or not isinstance(info.get("lesion_types"), list):
        return
    for k, t in enumerate(info["lesion_types"]):
        try:
            listed = lesion_type_name(t)
        except RowError as exc:
            into.problem(name, f"info.lesion_types #{k + 1}", str(exc))
            continue
        if listed and listed not in into.lesion_types:
            into.lesion_types.append(listed)


def _coco_annotation(a: Any, key_of: dict[Any, str], categories: dict[Any, str],
                     known_types: tuple[str, ...] | list[str]) -> tuple[Any, str, BoxMeta, Box]:
    """One COCO annotation as (image id, category, metadata, box); RowError says what is wrong."""
    if not isinstance(a, dict):
        raise RowError("not an object")
    image_id = _key(a.get("image_id"), "image_id")
    if image_id not in key_of:
        raise RowError(f"refers to unknown image id {_short(image_id)}")
    category_id = _key(a.get("category_id"), "category_id")
    category = categories.get(category_id)
    typed = category is not None and category.strip().lower() in known_types
    if category is None or (category not in LESION_CATEGORIES and category != PATCH_CATEGORY and not typed):
        raise RowError(f"unknown category {_short(category_id)}"
                       f"{f' ({category})' if category else ''}; use lesion, normal_patch or a lesion type")
    meta = box_meta(a, lesion_type=lesion_type_name(category) if typed else "")
    # Our own exports carry the exact corners too, so a round trip loses no float bits.
    xyxy = a.get("xyxy")
    if isinstance(xyxy, list) and len(xyxy) == 4:
        return image_id, category, meta, checked_box(*xyxy)
    bbox = a.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise RowError("bbox must be a list of four numbers [x, y, width, height]")
    x, y, w, h = (finite_number(v, f"bbox[{i}]") for i, v in enumerate(bbox))
    if w < 0 or h < 0:
        raise RowError(f"negative bbox size {w:g}x{h:g} (COCO boxes are [x, y, width, height])")
    return image_id, category, meta, checked_box(x, y, x + w, y + h)


def _coco_measurements(into: Annotations, name: str, measurements: Any, key_of: dict[Any, str]) -> None:
    def image_of(m: dict[str, Any]) -> str:
        m_image = _key(m.get("image_id"), "image_id")
        if m_image not in key_of:
            raise RowError(f"refers to unknown image id {_short(m_image)}")
        return key_of[m_image]

    add_measurements(into, measurements, image_of, name)


def add_measurements(into: Annotations, items: Any, image_of: Callable[[dict[str, Any]], str], file: str,
                     prefix: str = "") -> None:
    """Ruler lines as the exports write them (COCO's ``measurements``, the YOLO sidecar's): a list
    of objects with :func:`measurement_from`'s fields; ``image_of`` says whose image each is
    (RowError when none). ``prefix`` starts each place a problem is reported at."""
    if not isinstance(items, list):
        into.problem(file, f"{prefix}measurements", "not a list")
        return
    for k, m in enumerate(items):
        where = f"{prefix}measurement #{k + 1}"
        try:
            if not isinstance(m, dict):
                raise RowError("not an object")
            key = image_of(m)
            measurement = measurement_from(m)
        except RowError as exc:
            into.problem(file, where, str(exc))
            continue
        add_measurement(into, key, measurement, file, where)


def image_root(images: list[Any]) -> Path:
    """The folder every image lies under (their common parent): export files name images relative to it."""
    if not images:
        return Path(".")
    paths = [str(r.abs_path.parent) for r in images]
    return Path(os.path.commonpath(paths))
