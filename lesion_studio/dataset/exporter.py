"""Export a project's annotations as COCO JSON, CSV (the import format), YOLO txt or DICOM SR.

COCO and CSV carry everything the project knows about an image (label, body part, view, split,
group, exclusion flags and notes), every box's lesion type, reader and times, every reader's own
image labels and every ruler measurement, so ``import(export(project))`` rebuilds the same
project. YOLO carries the boxes and their types (as classes), and its sidecar
``lesion-studio.json`` the rest of what the readers added (box readers and times, readers' own
labels, rulers); image labels and fields stay in COCO and CSV. DICOM SR (``sr``) is a TID 1500
measurement report per DICOM image and reader (dataset/dicom_sr.py). File names are written
relative to the images' common root folder, which the export reports: import that folder with
the exported annotation file. ``--deidentify`` instead writes de-identified copies of the images
to ``images/`` beside the annotation files, each named by project image id and content hash, so an
annotation set can leave the site without the source file names. Existing files are never
replaced without ``--force``, and a full disk part-way leaves none of the export's files.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from lesion_studio.dataset.annotations import image_root
from lesion_studio.dataset.yolo_labels import LABELS, SIDECAR_FORMAT, SIDECAR_VERSION, YOLO_SIDECAR
from lesion_studio.errors import LesionStudioError
from lesion_studio.files import OutputFiles, atomic_write, atomic_write_from, atomic_write_json
from lesion_studio.store.project import Project
from lesion_studio.store.records import ImageRecord

FORMATS = ("coco", "csv", "yolo", "sr")
LABEL_COLUMNS = ["image", "label", "body_part", "view", "split", "group", "exclusions", "exclusion_note",
                 "notes", "lesion_type"]
BOX_COLUMNS = ["image", "x0", "y0", "x1", "y1", "kind", "lesion_type", "reader", "created_at", "modified_at"]
READER_LABEL_COLUMNS = ["image", "reader", "label", "labelled_at"]
MEASUREMENT_COLUMNS = ["image", "x0", "y0", "x1", "y1", "length_px", "length_mm", "spacing_row", "spacing_col",
                       "spacing_source", "reader", "created_at", "modified_at"]
#: YOLO classes 0 and 1 keep their meaning; a project's lesion types follow from 2 (see _yolo).
YOLO_BASE_CLASSES = ["lesion", "normal_patch"]


def _image_fields(rec: ImageRecord) -> dict[str, Any]:
    return {
        "label": rec.label, "body_part": rec.body_part, "view": rec.view, "split": rec.split,
        "group": rec.group_key, "exclusions": ",".join(rec.exclusions), "exclusion_note": rec.exclusion_note,
        "notes": rec.notes, "lesion_type": rec.lesion_type,
    }


def export_project(project: Project, out: str | Path, fmt: str, *, force: bool = False,
                   deidentify: bool = False) -> dict[str, Any]:
    """Write the export; returns a summary with the files written and the image root.

    Files already in ``out`` (``labels.csv``, ``boxes.csv``, ``annotations.coco.json``, YOLO
    labels: often the originals beside the images) are never replaced unless ``force``: the
    export then writes nothing and says which exist. ``deidentify``: see :func:`_deidentified_images`.
    """
    if fmt == "sr":
        from lesion_studio.dataset.dicom_sr import export_sr

        return export_sr(project, _plan_checked_format(out, fmt))
    plan = _plan(project, out, fmt, deidentify)
    out, images, names, copies, left_out, root, boxes, patches, reads, writer, planned = plan
    existing = [p for p in planned if p.exists() or p.is_symlink()]
    if existing and not force:
        shown = ", ".join(str(p.relative_to(out)) if p.is_relative_to(out) else str(p) for p in existing[:3])
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        raise LesionStudioError(f"{out} already holds {shown}{more}; nothing was written. Choose an empty folder, "
                                "or replace them (--force).")
    if deidentify:
        images = [replace(r, extra={}) for r in images]  # free-form columns may hold identifiers
    # A full disk part-way leaves none of the export's files (files.OutputFiles).
    with OutputFiles(f"the {fmt} export ({len(planned)} files)", out, expected=len(planned)) as output:
        for path in planned:
            output.add(path)
        for name, write in copies.items():
            write(root / name)
        written = writer(out, images, names, boxes, patches, reads)
    return {"format": fmt, "image_root": str(root), "images": len(images), "boxes": len(boxes),
            "normal_patches": len(patches), "measurements": len(reads.measurements),
            "reader_labels": len(reads.labels), "files": [str(p) for p in written],
            "image_copies": len(copies), "left_out": left_out}


def existing_export_files(project: Project, out: str | Path, fmt: str, *, deidentify: bool = False) -> list[Path]:
    """The files an export to ``out`` would replace (for a caller that asks before ``force``).
    A DICOM SR export writes new files named by their UIDs, so it replaces nothing."""
    if fmt == "sr":
        return []
    planned = _plan(project, out, fmt, deidentify)[-1]
    return [p for p in planned if p.exists() or p.is_symlink()]


def _plan_checked_format(out: str | Path, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise LesionStudioError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    return Path(out).expanduser().resolve()


def _plan(project: Project, out: str | Path, fmt: str, deidentify: bool) -> tuple[Any, ...]:
    """What an export writes: (out, images, names, copies, left_out, root, boxes, patches, reads,
    writer, files)."""
    out = _plan_checked_format(out, fmt)
    images = project.images()
    left_out: list[str] = []
    if deidentify:
        images, names, copies, left_out = _deidentified_images(project, images, out / IMAGES)
        root = out / IMAGES
    else:
        root = image_root(images)
        names = {r.id: r.abs_path.relative_to(root).as_posix() for r in images}
        copies = {}
    kept = {r.id for r in images}
    boxes = [b for b in project.boxes() if b.image_id in kept]
    patches = [p for p in project.normal_patches() if p.image_id in kept]
    reads = _ReaderData.of(project, kept)
    writer = {"coco": _coco, "csv": _csv, "yolo": _yolo}[fmt]
    planned = [*writer(out, images, names, boxes, patches, reads, plan_only=True), *(root / n for n in copies)]
    return out, images, names, copies, left_out, root, boxes, patches, reads, writer, planned

IMAGES = "images"


def _deidentified_images(project: Project, images: list[ImageRecord], folder: Path) -> tuple[
        list[ImageRecord], dict[int, str], dict[str, Callable[[Path], None]], list[str]]:
    """What ``export --deidentify`` writes for each image: a name made of the project image id and
    the first 16 hex digits of the source's SHA-256 (never its file name, which often holds a
    patient's name or record number), and a writer of the copy. A DICOM becomes a new DICOM built
    through the allow-list of :func:`lesion_studio.deid.deidentified_dicom` (no header attribute
    of the source but pixel geometry, modality and laterality; new UIDs); any other image a PNG of
    its pixels with no metadata. A DICOM whose BurnedInAnnotation is YES is left out (its pixels
    may show identifying text), and listed. Pixels are the app's decoded pixels, so a re-import
    gives the same image."""
    from lesion_studio.io.reader import is_probably_dicom, read_source_header

    kept, names, copies, left_out = [], {}, {}, []
    for rec in images:
        dicom = rec.abs_path.exists() and is_probably_dicom(rec.abs_path)
        header = read_source_header(rec.abs_path) if dicom else None
        if header is not None and str(getattr(header, "BurnedInAnnotation", "")).strip().upper() == "YES":
            left_out.append(f"image {rec.id}: burned-in annotation")
            continue
        name = f"image{rec.id:06d}-{rec.sha256[:16]}{'.dcm' if dicom else '.png'}"
        names[rec.id] = name
        copies[name] = _dicom_copy(project, rec, header) if dicom else _png_copy(project, rec)
        kept.append(rec)
    return kept, names, copies, left_out


def _stored_pixels(pixels: Any) -> tuple[Any, float]:
    """Decoded pixels as unsigned integers plus the intercept that restores them (for a DICOM)."""
    import numpy as np

    arr = np.asarray(pixels)
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.array_equal(arr, np.round(arr)):
            raise LesionStudioError("An image's decoded pixels are not whole numbers; it cannot be copied exactly.")
        arr = np.round(arr).astype(np.int64)
    lo = int(arr.min()) if arr.size else 0
    intercept = float(min(lo, 0))
    arr = arr.astype(np.int64) - int(intercept)
    if arr.size and int(arr.max()) > 65535:
        raise LesionStudioError("An image's pixel range is wider than 16 bits; it cannot be copied exactly.")
    return arr.astype(np.uint8 if arr.size and int(arr.max()) < 256 and pixels.dtype == np.uint8 else np.uint16), \
        intercept


def _dicom_copy(project: Project, rec: ImageRecord, header: Any) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        from lesion_studio.deid import deidentified_dicom

        rg = project.open_radiograph(rec.id)
        stored, intercept = _stored_pixels(rg.pixels)
        bits = max(int(rec.bits_stored or 8), int(stored.max()).bit_length() if stored.size else 8)
        ds = deidentified_dicom(stored, header, bits_stored=bits, patient_id=f"LS-{rec.id:06d}", synthetic=False,
                                comments=json.dumps({"source_image_id": rec.id, "source_sha256": rec.sha256}),
                                derivation="De-identified copy: pixels and geometry only (Lesion Studio allow-list)",
                                window=rg.window, rescale_intercept=intercept)
        atomic_write_from(path, lambda fh: ds.save_as(fh, enforce_file_format=True))
    return write


def _png_copy(project: Project, rec: ImageRecord) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        from lesion_studio.io.images import encode_png

        stored, _ = _stored_pixels(project.open_radiograph(rec.id).pixels)
        atomic_write(path, encode_png(stored))
    return write


class _ReaderData:
    """What the readers added: their own labels, the rulers and the project's list of types."""

    def __init__(self, labels: list, measurements: list, types: list[str]) -> None:  # noqa: ANN001
        self.labels, self.measurements, self.types = labels, measurements, types

    @classmethod
    def of(cls, project: Project, images: set[int]) -> _ReaderData:
        """The readers' data of the exported ``images`` (ids)."""
        from lesion_studio.store.lesion_types import lesion_types
        from lesion_studio.store.measurements import measurements
        from lesion_studio.store.readers import reader_labels

        return cls([rl for rl in reader_labels(project) if rl.image_id in images],
                   [m for m in measurements(project) if m.image_id in images], lesion_types(project))


def _box_fields(reg) -> dict[str, Any]:  # noqa: ANN001 - store.records.LesionBox or NormalPatch
    """A box's type, reader and times, as CSV, COCO (its attributes) and the YOLO sidecar carry them."""
    return {"lesion_type": getattr(reg, "lesion_type", ""), "reader": reg.author,
            "created_at": reg.created_at, "modified_at": reg.modified_at}


def _reader_label_fields(rl) -> dict[str, Any]:  # noqa: ANN001 - store.records.ReaderLabel
    return {"reader": rl.reader, "label": rl.label, "labelled_at": rl.labelled_at}


def _measurement_fields(m) -> dict[str, Any]:  # noqa: ANN001 - store.records.Measurement
    return {"x0": m.x0, "y0": m.y0, "x1": m.x1, "y1": m.y1, "length_px": m.length_px, "length_mm": m.length_mm,
            "spacing": list(m.spacing) if m.spacing else None, "spacing_source": m.spacing_source,
            "reader": m.author, "created_at": m.created_at, "modified_at": m.modified_at}


def _coco(out: Path, images, names, boxes, patches, reads: _ReaderData,  # noqa: ANN001
          plan_only: bool = False) -> list[Path]:
    path = out if out.suffix.lower() == ".json" else out / "annotations.coco.json"
    if plan_only:
        return [path]
    labels_of: dict[int, list[dict[str, str]]] = {}
    for rl in reads.labels:
        labels_of.setdefault(rl.image_id, []).append(_reader_label_fields(rl))
    coco_images = []
    for r in images:
        extra = {**r.extra, **_image_fields(r)}
        if r.id in labels_of:
            extra["reader_labels"] = labels_of[r.id]
        coco_images.append({"id": r.id, "file_name": names[r.id], "width": r.width, "height": r.height,
                            "extra": extra})
    annotations = []
    for category, regions in ((1, boxes), (2, patches)):
        for reg in regions:
            b = reg.box
            attributes = {"reader": reg.author}
            if category == 1:
                attributes["lesion_type"] = reg.lesion_type
            annotations.append({
                "id": len(annotations) + 1, "image_id": reg.image_id, "category_id": category,
                "bbox": [b.x0, b.y0, b.width, b.height], "area": b.width * b.height, "iscrowd": 0,
                "xyxy": [b.x0, b.y0, b.x1, b.y1], "author": reg.author, "attributes": attributes,
                "created_at": reg.created_at, "modified_at": reg.modified_at,
            })
    data = {
        "info": {"description": "Lesion Studio export", "version": "1.0", "lesion_types": reads.types},
        "images": coco_images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "lesion", "supercategory": "finding"},
                       {"id": 2, "name": "normal_patch", "supercategory": "source"}],
        # Not COCO: ruler lines (image coordinates) with the pixel spacing they were measured with.
        "measurements": [{"id": k + 1, "image_id": m.image_id, **_measurement_fields(m)}
                         for k, m in enumerate(reads.measurements)],
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


def _csv(out: Path, images, names, boxes, patches, reads: _ReaderData,  # noqa: ANN001
         plan_only: bool = False) -> list[Path]:
    """labels.csv and boxes.csv (the import format), reader_labels.csv and measurements.csv."""
    paths = [out / "labels.csv", out / "boxes.csv", out / "reader_labels.csv", out / "measurements.csv"]
    if plan_only:
        return paths
    extra_cols = sorted({k for r in images for k in r.extra} - set(LABEL_COLUMNS))
    label_rows = [{"image": names[r.id], **{k: r.extra.get(k, "") for k in extra_cols}, **_image_fields(r)}
                  for r in images]
    box_rows = [{"image": names[reg.image_id], "x0": repr(reg.box.x0), "y0": repr(reg.box.y0),
                 "x1": repr(reg.box.x1), "y1": repr(reg.box.y1), "kind": kind, **_box_fields(reg)}
                for kind, regions in (("lesion", boxes), ("normal_patch", patches)) for reg in regions]
    reader_rows = [{"image": names[rl.image_id], **_reader_label_fields(rl)} for rl in reads.labels]
    measurement_rows = []
    for m in reads.measurements:
        row = {k: (repr(v) if isinstance(v, float) else v) for k, v in _measurement_fields(m).items()}
        spacing = m.spacing or ("", "")
        row.update(image=names[m.image_id], spacing_row=repr(spacing[0]) if m.spacing else "",
                   spacing_col=repr(spacing[1]) if m.spacing else "", length_mm=row["length_mm"] or "")
        measurement_rows.append(row)
    for path, columns, rows in zip(paths, (LABEL_COLUMNS + extra_cols, BOX_COLUMNS, READER_LABEL_COLUMNS,
                                           MEASUREMENT_COLUMNS),
                                   (label_rows, box_rows, reader_rows, measurement_rows), strict=True):
        _write_csv(path, columns, rows)
    return paths


def yolo_classes(types: list[str]) -> list[str]:
    """YOLO class names: 0 lesion (a box without a type), 1 normal_patch, then the project's types
    in its order, so an untyped project exports exactly as before types existed."""
    return YOLO_BASE_CLASSES + [t for t in types if t not in YOLO_BASE_CLASSES]


def _yolo(out: Path, images, names, boxes, patches, reads: _ReaderData,  # noqa: ANN001
          plan_only: bool = False) -> list[Path]:
    """One txt per image under labels/ (class cx cy w h, normalised), mirroring the image tree.
    Classes are in classes.txt (:func:`yolo_classes`); images without boxes get an empty file (a
    negative). What YOLO has no place for (each box's reader and times, the readers' own labels,
    the rulers) goes to the sidecar ``lesion-studio.json`` (dataset/yolo_labels.py describes it),
    which ``import --yolo`` reads back and YOLO tools ignore."""
    label_path = {r.id: (out / LABELS / names[r.id]).with_suffix(".txt") for r in images}
    if plan_only:
        labels: dict[Path, str] = {}
        for r in images:  # a.png and a.dcm would share labels/a.txt: one image's boxes would be lost
            path = label_path[r.id]
            if path in labels:
                raise LesionStudioError(f"{labels[path]} and {names[r.id]} would share the YOLO label file "
                                        f"{path.relative_to(out)} (it is named after the image without its "
                                        "suffix). Rename one, or export COCO or CSV.")
            labels[path] = names[r.id]
        return [out / "classes.txt", out / YOLO_SIDECAR, *labels]
    classes = yolo_classes(reads.types)
    by_image: dict[int, list[str]] = {r.id: [] for r in images}
    sidecar: dict[int, dict[str, list[dict[str, Any]]]] = {}
    size = {r.id: (r.width, r.height) for r in images}
    for kind, regions in (("lesion", boxes), ("normal_patch", patches)):
        for reg in regions:
            w, h = size[reg.image_id]
            b = reg.box
            cls = classes.index(reg.lesion_type or "lesion") if kind == "lesion" else 1
            cx, cy = (b.x0 + b.x1) / 2 / w, (b.y0 + b.y1) / 2 / h
            line = f"{cls} {cx:.6f} {cy:.6f} {b.width / w:.6f} {b.height / h:.6f}"
            by_image[reg.image_id].append(line)
            sidecar.setdefault(reg.image_id, {}).setdefault("boxes", []).append(
                {"line": len(by_image[reg.image_id]), "yolo": line, **_box_fields(reg)})
    for rl in reads.labels:
        sidecar.setdefault(rl.image_id, {}).setdefault("reader_labels", []).append(_reader_label_fields(rl))
    for m in reads.measurements:
        sidecar.setdefault(m.image_id, {}).setdefault("measurements", []).append(_measurement_fields(m))
    written = []
    for image_id, lines in by_image.items():
        path = label_path[image_id]
        atomic_write(path, ("\n".join(lines) + ("\n" if lines else "")).encode())
        written.append(path)
    classes_path = out / "classes.txt"
    atomic_write(classes_path, ("\n".join(classes) + "\n").encode())
    sidecar_path = out / YOLO_SIDECAR
    atomic_write_json(sidecar_path, {
        "format": SIDECAR_FORMAT, "version": SIDECAR_VERSION,
        "label_files": {label_path[i].relative_to(out / LABELS).as_posix(): entry
                        for i, entry in sorted(sidecar.items(), key=lambda kv: names[kv[0]])}}, indent=1)
    return [classes_path, sidecar_path, *written]
