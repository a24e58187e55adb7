"""Import a folder (or one file) of radiographs with optional labels, boxes and COCO annotations.

Every file is decoded once at import: a file that cannot be read is reported (name and reason)
and skipped, never half-imported. Every annotation row is validated before anything is written
(see :mod:`annotations`), and the images go into the store with their boxes in one transaction:
an import lands whole or not at all.
"""

from __future__ import annotations

import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lesion_studio.dataset.annotations import (
    Annotations,
    ImageAnnotation,
    read_boxes_csv,
    read_coco_json,
    read_labels_csv,
)
from lesion_studio.deid import hashed_group_key
from lesion_studio.errors import JobCancelled, LesionStudioError
from lesion_studio.files import file_sha256
from lesion_studio.io.reader import DICOM_SUFFIXES, RASTER_SUFFIXES, is_probably_dicom, open_radiograph
from lesion_studio.jobs import CancelToken, EtaClock, ProgressCallback, ProgressEvent, no_progress
from lesion_studio.store.project import Project

log = logging.getLogger(__name__)

#: Files that are obviously not images are passed over silently (annotation files, docs).
IGNORED_SUFFIXES = {".csv", ".json", ".txt", ".md", ".yaml", ".yml", ".xml", ".toml", ".html", ".pdf",
                    ".zip", ".gz", ".py", ".log", ".ini", ".db", ".sqlite", ".sqlite-wal", ".sqlite-shm"}
GROUP_SALT_KEY = "group_key_salt"


@dataclass
class SkippedFile:
    name: str
    reason: str


@dataclass
class ImportReport:
    added: int = 0
    already_present: int = 0
    boxes: int = 0
    normal_patches: int = 0
    labelled: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    unmatched_annotations: list[str] = field(default_factory=list)
    #: Annotation rows skipped (or clipped), each {file, where, reason, action}.
    problems: list[dict[str, str]] = field(default_factory=list)
    cancelled: bool = False
    source: str = ""
    files_found: int = 0  # image-like files under the source, before reading any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """The one line both faces print: what was imported, or why nothing could be."""
        if not self.files_found:
            return (f"No images found in {self.source}: it holds no DICOM, PNG, JPEG or TIFF file (hidden files "
                    "and folders are skipped). Choose the folder the images are in.")
        text = (f"Imported {self.added} image(s), {self.boxes} lesion box(es), {self.normal_patches} normal "
                f"patch(es); {self.already_present} already in the project.")
        return text + (" Cancelled: the images imported so far are kept." if self.cancelled else "")


def candidate_files(source: Path) -> list[Path]:
    """Image-like files under ``source`` in a stable order (hidden files and folders skipped)."""
    if source.is_file():
        return [source]
    out = []
    for root, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            suffix = Path(name).suffix.lower()
            if suffix in IGNORED_SUFFIXES:
                continue
            if suffix in RASTER_SUFFIXES or suffix in DICOM_SUFFIXES or is_probably_dicom(Path(root) / name):
                out.append(Path(root) / name)
            else:
                out.append(Path(root) / name)  # unknown suffix: try it, report it if unreadable
    return out


def load_annotations(labels: Path | None, boxes: Path | None, coco: Path | None) -> Annotations:
    ann = Annotations()
    if coco:
        read_coco_json(Path(coco), ann)
    if labels:
        read_labels_csv(Path(labels), ann)
    if boxes:
        read_boxes_csv(Path(boxes), ann)
    return ann


def _probe(path: Path) -> dict[str, Any]:
    """Decode one file and collect what the store keeps about it."""
    rg = open_radiograph(path)
    tags = rg.tags
    return {
        "path": path,
        "sha256": file_sha256(path),
        "width": rg.width,
        "height": rg.height,
        "modality": rg.modality,
        "bits_stored": rg.bits_stored,
        "body_part": tags.get("Body part", "").lower(),
        "view": tags.get("View", "").lower(),
        # Raw identifier: hashed with the project's salt before it is stored (see group_salt).
        "group_key": tags.get("Study UID", "") or tags.get("Patient ID", ""),
    }


def group_salt(project: Project) -> str:
    """The project's secret salt for group keys (a new one until the first import saves it).

    Group keys taken from DICOM identifiers (Study Instance UID, else Patient ID) are stored as
    salted one-way hashes: images of one study still share a key, so splits keep them together,
    but neither the database nor an export holds the identifier.
    """
    return project.get_setting(GROUP_SALT_KEY) or secrets.token_hex(16)


def import_source(
    project: Project,
    source: str | Path,
    *,
    labels_csv: str | Path | None = None,
    boxes_csv: str | Path | None = None,
    coco_json: str | Path | None = None,
    author: str = "import",
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    workers: int = 2,
    strict: bool = False,
) -> ImportReport:
    """Import ``source`` with its annotations: decode and validate everything, then write once.

    Each annotation row that cannot be used is reported (file, line, reason) and skipped; with
    ``strict`` any such row fails the whole import before anything is written. The images and
    their boxes go into the store in one transaction, so an import never stops half-way. A
    cancelled import writes the images decoded so far (whole, with their annotations), then raises
    ``JobCancelled`` with the report as ``partial``, as every long job does.
    """
    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise LesionStudioError(f"{source} does not exist. Check the folder to import.")
    annotations = load_annotations(
        Path(labels_csv) if labels_csv else None,
        Path(boxes_csv) if boxes_csv else None,
        Path(coco_json) if coco_json else None,
    )
    files = candidate_files(source)
    root = source if source.is_dir() else source.parent
    report = ImportReport(source=str(source), files_found=len(files))
    matched_keys: set[str] = set()
    known_paths = {r.path for r in project.images()}
    todo = []
    for path in files:
        if project.store_path(path) in known_paths:
            report.already_present += 1
        else:
            todo.append(path)

    salt = group_salt(project)
    clock = EtaClock(len(todo))
    rows: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        # Decoding releases the GIL in Pillow and pylibjpeg, so two threads use both cores.
        results = pool.map(_safe_probe, todo)
        for done, (path, info, error) in enumerate(results, start=1):
            if cancel is not None and cancel.cancelled:
                report.cancelled = True
                break
            if error is not None:
                report.skipped.append(SkippedFile(path.name, error))
                log.info("skipped %s: %s", path, error)
            else:
                relative = path.relative_to(root).as_posix()
                ann = annotations.lookup(relative)
                info["group_key"] = hashed_group_key(info["group_key"], salt)
                if ann is not None:
                    matched_keys.add(relative if relative in annotations.by_key else path.name)
                    _attach(info, ann, annotations, author)
                rows.append(info)
            progress(ProgressEvent("import", done, len(todo), path.name, clock.eta(done)))
    report.problems = [asdict(p) for p in annotations.problems]
    report.unmatched_annotations = sorted(set(annotations.by_key) - matched_keys)
    bad = [p for p in annotations.problems if p.action == "skipped"]
    if strict and bad:
        shown = "; ".join(str(p) for p in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise LesionStudioError(
            f"{len(bad)} annotation row(s) cannot be used, so nothing was imported (--strict): {shown}{more}."
        )
    report.labelled = sum(1 for r in rows if r.pop("_labelled", False))
    report.boxes = sum(len(r.get("lesion_boxes", ())) for r in rows)
    report.normal_patches = sum(len(r.get("normal_patches", ())) for r in rows)
    if rows:
        if project.get_setting(GROUP_SALT_KEY) != salt:
            project.set_setting(GROUP_SALT_KEY, salt)
        project.add_images(rows)
    report.added = len(rows)
    if report.cancelled:  # the one cancel contract: what was done is kept, then JobCancelled
        raise JobCancelled("The import", partial=report)
    return report


def _attach(info: dict[str, Any], ann: ImageAnnotation, annotations: Annotations, author: str) -> None:
    """Merge one image's annotations into its row, checking each box against the image size."""
    info.update(ann.fields)  # a group named by the labels file replaces the hashed one, as given
    info["extra"] = dict(ann.extra)
    info["_labelled"] = "label" in ann.fields
    width, height = info["width"], info["height"]
    for kind, boxes in (("lesion", ann.lesion_boxes), ("normal_patch", ann.normal_patches)):
        kept = []
        for k, box in enumerate(boxes):
            file, where = ann.box_sources.get((kind, k), ("annotations", f"box {k + 1}"))
            clipped = box.clipped(width, height)
            if clipped.width <= 0 or clipped.height <= 0:
                annotations.problem(file, where, f"the box lies outside the {width}x{height} image")
                continue
            if clipped != box:
                annotations.problem(file, where, f"the box extends beyond the {width}x{height} image",
                                    action="clipped")
            kept.append((clipped, author))
        info["lesion_boxes" if kind == "lesion" else "normal_patches"] = kept
    if info["lesion_boxes"] and info.get("label", "unreviewed") == "unreviewed":
        info["label"] = "lesion"  # a box is an expert's statement that there is a lesion


def _safe_probe(path: Path) -> tuple[Path, dict[str, Any] | None, str | None]:
    try:
        return path, _probe(path), None
    except LesionStudioError as exc:
        reason = getattr(exc, "problem", None) or str(exc)
        return path, None, reason
    except Exception as exc:  # a decoder bug must not abort a 2,000-file import
        log.exception("unexpected error reading %s", path)
        return path, None, f"unexpected error ({type(exc).__name__}: {exc})"
