"""Reading the annotation files an import accepts: labels CSV, boxes CSV and COCO JSON.

All three feed one neutral form, :class:`Annotations`, keyed by the image's path relative to the
import source (POSIX), so the importer has one matching rule whatever the file format.
"""

from __future__ import annotations

import csv
import json
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


@dataclass
class ImageAnnotation:
    fields: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    lesion_boxes: list[Box] = field(default_factory=list)
    normal_patches: list[Box] = field(default_factory=list)


@dataclass
class Annotations:
    by_key: dict[str, ImageAnnotation] = field(default_factory=dict)

    def get(self, key: str) -> ImageAnnotation:
        return self.by_key.setdefault(key, ImageAnnotation())

    def lookup(self, relative: str) -> ImageAnnotation | None:
        """Match by relative path first, then by file name (CSV files often list bare names)."""
        if relative in self.by_key:
            return self.by_key[relative]
        return self.by_key.get(Path(relative).name)


def _csv_rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
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
            return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except OSError as exc:
        raise LesionStudioError(f"{path.name}: cannot read the file ({exc.strerror}).") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LesionStudioError(f"{path.name}: not a readable CSV file ({exc}).") from exc


def normalise_label(value: str, source: str) -> str:
    label = _LABEL_ALIASES.get(value.strip().lower(), value.strip().lower())
    if label not in LABELS:
        raise LesionStudioError(f"{source}: unknown label {value!r} (use lesion, normal or unreviewed).")
    return label


def _image_fields(row: dict[str, Any], source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split one labels row into store fields and extra metadata."""
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    exclusions: set[str] = set()
    for key, value in row.items():
        if key in ("image", "file_name", "id", "width", "height", "boxes", "polygons"):
            continue
        value = "" if value is None else value
        if key == "label":
            fields["label"] = normalise_label(str(value), source)
        elif key == "split":
            split = str(value).strip().lower() or "unassigned"
            if split not in SPLITS:
                raise LesionStudioError(f"{source}: unknown split {value!r} (use {', '.join(SPLITS)}).")
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
        raise LesionStudioError(
            f"{source}: unknown exclusion reason {sorted(bad)[0]!r} (use {', '.join(EXCLUSION_REASONS)})."
        )
    if exclusions:
        fields["exclusions"] = sorted(exclusions, key=EXCLUSION_REASONS.index)
    return fields, extra


def read_labels_csv(path: Path, into: Annotations) -> None:
    for line, row in enumerate(_csv_rows(path, ("image",)), start=2):
        fields, extra = _image_fields(row, f"{path.name} line {line}")
        ann = into.get(row["image"])
        ann.fields.update(fields)
        ann.extra.update(extra)


def _box_from(row: dict[str, str], source: str) -> Box:
    try:
        box = Box(float(row["x0"]), float(row["y0"]), float(row["x1"]), float(row["y1"])).normalized()
    except ValueError as exc:
        raise LesionStudioError(f"{source}: box coordinates must be numbers ({exc}).") from exc
    if box.width <= 0 or box.height <= 0:
        raise LesionStudioError(f"{source}: the box has no area.")
    return box


def read_boxes_csv(path: Path, into: Annotations) -> None:
    """``image,x0,y0,x1,y1[,kind]``; kind is ``lesion`` (default) or ``normal_patch``."""
    for line, row in enumerate(_csv_rows(path, ("image", "x0", "y0", "x1", "y1")), start=2):
        source = f"{path.name} line {line}"
        box = _box_from(row, source)
        kind = row.get("kind", "") or "lesion"
        ann = into.get(row["image"])
        if kind == "lesion":
            ann.lesion_boxes.append(box)
        elif kind == "normal_patch":
            ann.normal_patches.append(box)
        else:
            raise LesionStudioError(f"{source}: unknown box kind {kind!r} (use lesion or normal_patch).")


def read_coco_json(path: Path, into: Annotations) -> None:
    """COCO detection JSON. Boxes of category ``lesion`` (or any category but ``normal_patch``)
    become lesion boxes; image-level fields come from each image's ``extra`` dict."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        images = {img["id"]: img for img in data["images"]}
        categories = {c["id"]: c.get("name", "") for c in data.get("categories", [])}
        annotations = data.get("annotations", [])
    except OSError as exc:
        raise LesionStudioError(f"{path.name}: cannot read the file ({exc.strerror}).") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise LesionStudioError(f"{path.name}: not a COCO JSON file ({exc}).") from exc
    key_of = {}
    for image_id, img in images.items():
        key = str(img.get("file_name", ""))
        key_of[image_id] = key
        row = dict(img.get("extra") or {})
        fields, extra = _image_fields(row, f"{path.name} image {key}")
        ann = into.get(key)
        ann.fields.update(fields)
        ann.extra.update(extra)
    for a in annotations:
        try:
            x, y, w, h = (float(v) for v in a["bbox"])
            key = key_of[a["image_id"]]
        except (KeyError, ValueError, TypeError) as exc:
            raise LesionStudioError(f"{path.name}: annotation {a.get('id')} is malformed ({exc}).") from exc
        # Our own exports carry the exact corners too, so a round trip loses no float bits.
        xyxy = a.get("xyxy")
        box = Box(*(float(v) for v in xyxy)) if xyxy and len(xyxy) == 4 else Box(x, y, x + w, y + h)
        if categories.get(a.get("category_id")) == "normal_patch":
            into.get(key).normal_patches.append(box)
        else:
            into.get(key).lesion_boxes.append(box)
