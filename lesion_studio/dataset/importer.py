"""Import a folder (or one file) of radiographs with optional labels, boxes and COCO annotations.

Every file is decoded once at import: a file that cannot be read is reported (name and reason)
and skipped, never half-imported. Images go into the store in batches, each batch one
transaction together with its boxes, so an interrupted import leaves whole images only.
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
    read_boxes_csv,
    read_coco_json,
    read_labels_csv,
)
from lesion_studio.deid import hashed_group_key
from lesion_studio.errors import LesionStudioError
from lesion_studio.io.radiograph import DICOM_SUFFIXES, RASTER_SUFFIXES, is_probably_dicom, open_radiograph
from lesion_studio.jobs import CancelToken, EtaClock, ProgressCallback, ProgressEvent, no_progress
from lesion_studio.store.project import Project, file_sha256

log = logging.getLogger(__name__)

#: Files that are obviously not images are passed over silently (annotation files, docs).
IGNORED_SUFFIXES = {".csv", ".json", ".txt", ".md", ".yaml", ".yml", ".xml", ".toml", ".html", ".pdf",
                    ".zip", ".gz", ".py", ".log", ".ini", ".db", ".sqlite", ".sqlite-wal", ".sqlite-shm"}
BATCH = 200
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
    cancelled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    """The project's secret salt for group keys, made on first use and kept in its settings.

    Group keys taken from DICOM identifiers (Study Instance UID, else Patient ID) are stored as
    salted one-way hashes: images of one study still share a key, so splits keep them together,
    but neither the database nor an export holds the identifier.
    """
    salt = project.get_setting(GROUP_SALT_KEY)
    if not salt:
        salt = secrets.token_hex(16)
        project.set_setting(GROUP_SALT_KEY, salt)
    return salt


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
) -> ImportReport:
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
    report = ImportReport()
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
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if batch:
            project.add_images(batch)
            batch.clear()

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        # Decoding releases the GIL in Pillow and pylibjpeg, so two threads use both cores.
        results = pool.map(_safe_probe, todo)
        for done, (path, info, error) in enumerate(results, start=1):
            if cancel is not None and cancel.cancelled:
                report.cancelled = True
                break
            if error is not None:
                report.skipped.append(SkippedFile(path.name, error))
                log.warning("skipped %s: %s", path, error)
            else:
                relative = path.relative_to(root).as_posix()
                info["group_key"] = hashed_group_key(info["group_key"], salt)
                ann = annotations.lookup(relative)
                if ann is not None:
                    matched_keys.add(relative if relative in annotations.by_key else path.name)
                    info.update(ann.fields)
                    info["extra"] = dict(ann.extra)
                    info["lesion_boxes"] = [(b.clipped(info["width"], info["height"]), author)
                                            for b in ann.lesion_boxes]
                    info["normal_patches"] = [(b.clipped(info["width"], info["height"]), author)
                                              for b in ann.normal_patches]
                    report.labelled += 1 if "label" in ann.fields else 0
                    report.boxes += len(ann.lesion_boxes)
                    report.normal_patches += len(ann.normal_patches)
                    if ann.lesion_boxes and info.get("label", "unreviewed") == "unreviewed":
                        info["label"] = "lesion"  # a box is an expert's statement that there is a lesion
                batch.append(info)
                report.added += 1
                if len(batch) >= BATCH:
                    flush()
            progress(ProgressEvent("import", done, len(todo), path.name, clock.eta(done)))
        flush()
    report.unmatched_annotations = sorted(set(annotations.by_key) - matched_keys)
    return report


def _safe_probe(path: Path) -> tuple[Path, dict[str, Any] | None, str | None]:
    try:
        return path, _probe(path), None
    except LesionStudioError as exc:
        reason = getattr(exc, "problem", None) or str(exc)
        return path, None, reason
    except Exception as exc:  # a decoder bug must not abort a 2,000-file import
        log.exception("unexpected error reading %s", path)
        return path, None, f"unexpected error ({type(exc).__name__}: {exc})"
