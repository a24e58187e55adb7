"""Export a project's annotations as COCO JSON, CSV (the import format) or YOLO txt.

COCO and CSV carry everything the project knows about an image (label, body part, view, split,
group, exclusion flags and notes), so ``import(export(project))`` rebuilds the same project.
File names are written relative to the images' common root folder, which the export reports:
import that folder with the exported annotation file.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from lesion_studio.errors import LesionStudioError
from lesion_studio.files import atomic_write, atomic_write_json
from lesion_studio.store.project import Project
from lesion_studio.store.records import ImageRecord

FORMATS = ("coco", "csv", "yolo")
LABEL_COLUMNS = ["image", "label", "body_part", "view", "split", "group", "exclusions", "exclusion_note",
                 "notes", "lesion_type"]
BOX_COLUMNS = ["image", "x0", "y0", "x1", "y1", "kind"]


def image_root(images: list[ImageRecord]) -> Path:
    if not images:
        return Path(".")
    paths = [str(r.abs_path.parent) for r in images]
    return Path(os.path.commonpath(paths))


def _image_fields(rec: ImageRecord) -> dict[str, Any]:
    return {
        "label": rec.label, "body_part": rec.body_part, "view": rec.view, "split": rec.split,
        "group": rec.group_key, "exclusions": ",".join(rec.exclusions), "exclusion_note": rec.exclusion_note,
        "notes": rec.notes, "lesion_type": rec.lesion_type,
    }


def export_project(project: Project, out: str | Path, fmt: str) -> dict[str, Any]:
    """Write the export; returns a summary with the files written and the image root."""
    if fmt not in FORMATS:
        raise LesionStudioError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    out = Path(out).expanduser().resolve()
    images = project.images()
    root = image_root(images)
    names = {r.id: r.abs_path.relative_to(root).as_posix() for r in images}
    boxes = project.boxes()
    patches = project.normal_patches()
    written = {"coco": _coco, "csv": _csv, "yolo": _yolo}[fmt](out, images, names, boxes, patches)
    return {"format": fmt, "image_root": str(root), "images": len(images), "boxes": len(boxes),
            "normal_patches": len(patches), "files": [str(p) for p in written]}


def _coco(out: Path, images, names, boxes, patches) -> list[Path]:  # noqa: ANN001
    path = out if out.suffix.lower() == ".json" else out / "annotations.coco.json"
    coco_images = [
        {"id": r.id, "file_name": names[r.id], "width": r.width, "height": r.height,
         "extra": {**r.extra, **_image_fields(r)}}
        for r in images
    ]
    annotations = []
    for category, regions in ((1, boxes), (2, patches)):
        for reg in regions:
            b = reg.box
            annotations.append({
                "id": len(annotations) + 1, "image_id": reg.image_id, "category_id": category,
                "bbox": [b.x0, b.y0, b.width, b.height], "area": b.width * b.height, "iscrowd": 0,
                "xyxy": [b.x0, b.y0, b.x1, b.y1], "author": reg.author,
            })
    data = {
        "info": {"description": "Lesion Studio export", "version": "1.0"},
        "images": coco_images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "lesion", "supercategory": "finding"},
                       {"id": 2, "name": "normal_patch", "supercategory": "source"}],
    }
    atomic_write_json(path, data, indent=1)
    return [path]


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, buf.getvalue().encode())


def _csv(out: Path, images, names, boxes, patches) -> list[Path]:  # noqa: ANN001
    extra_cols = sorted({k for r in images for k in r.extra} - set(LABEL_COLUMNS))
    label_rows = [{"image": names[r.id], **{k: r.extra.get(k, "") for k in extra_cols}, **_image_fields(r)}
                  for r in images]
    box_rows = [{"image": names[reg.image_id], "x0": repr(reg.box.x0), "y0": repr(reg.box.y0),
                 "x1": repr(reg.box.x1), "y1": repr(reg.box.y1), "kind": kind}
                for kind, regions in (("lesion", boxes), ("normal_patch", patches)) for reg in regions]
    labels_path, boxes_path = out / "labels.csv", out / "boxes.csv"
    _write_csv(labels_path, LABEL_COLUMNS + extra_cols, label_rows)
    _write_csv(boxes_path, BOX_COLUMNS, box_rows)
    return [labels_path, boxes_path]


def _yolo(out: Path, images, names, boxes, patches) -> list[Path]:  # noqa: ANN001
    """One txt per image under labels/ (class cx cy w h, normalised), mirroring the image tree.
    Class 0 is lesion, 1 normal_patch; images without boxes get an empty file (a negative)."""
    by_image: dict[int, list[str]] = {r.id: [] for r in images}
    size = {r.id: (r.width, r.height) for r in images}
    for cls, regions in ((0, boxes), (1, patches)):
        for reg in regions:
            w, h = size[reg.image_id]
            b = reg.box
            cx, cy = (b.x0 + b.x1) / 2 / w, (b.y0 + b.y1) / 2 / h
            by_image[reg.image_id].append(f"{cls} {cx:.6f} {cy:.6f} {b.width / w:.6f} {b.height / h:.6f}")
    written = []
    for image_id, lines in by_image.items():
        path = (out / "labels" / names[image_id]).with_suffix(".txt")
        atomic_write(path, ("\n".join(lines) + ("\n" if lines else "")).encode())
        written.append(path)
    classes = out / "classes.txt"
    atomic_write(classes, b"lesion\nnormal_patch\n")
    return [classes, *written]
