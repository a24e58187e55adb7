"""Import a folder (or one file) of radiographs with optional labels, boxes, COCO, YOLO or SR annotations.

Every file is decoded once at import: a file that cannot be read is reported (name and reason)
and skipped, never half-imported. Every annotation row is validated before anything is written
(see :mod:`annotations`), and the images go into the store with their boxes in one transaction:
an import lands whole or not at all.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from lesion_studio.dataset.annotations import (
    Annotations,
    BoxMeta,
    ImageAnnotation,
    read_boxes_csv,
    read_coco_json,
    read_labels_csv,
    read_measurements_csv,
    read_reader_labels_csv,
)
from lesion_studio.dataset.dicom_sr import SPACING_FROM_IMAGE
from lesion_studio.dataset.yolo_labels import keys_for, read_yolo_folder, shared_label_files, to_pixels
from lesion_studio.deid import hashed_group_key
from lesion_studio.errors import DiskFullError, JobCancelled, LesionStudioError
from lesion_studio.files import file_sha256
from lesion_studio.io.reader import open_radiograph
from lesion_studio.jobs import CancelToken, EtaClock, ProgressCallback, ProgressEvent, no_progress
from lesion_studio.store.lesion_types import add_lesion_types, lesion_types
from lesion_studio.store.project import GROUP_SALT_KEY, Project
from lesion_studio.store.readers import IMPORT_READER, check_reader
from lesion_studio.store.records import NewRegion, ReaderLabel

log = logging.getLogger(__name__)

#: Files that are obviously not images are passed over silently (annotation files, docs).
IGNORED_SUFFIXES = {".csv", ".json", ".txt", ".md", ".yaml", ".yml", ".xml", ".toml", ".html", ".pdf",
                    ".zip", ".gz", ".py", ".log", ".ini", ".db", ".sqlite", ".sqlite-wal", ".sqlite-shm"}
#: An import of this many images into a project that holds images is preceded by a backup.
LARGE_IMPORT = 100


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
    measurements: int = 0
    reader_labels: int = 0
    #: Lesion types the import added to the project's list.
    new_lesion_types: list[str] = field(default_factory=list)
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


#: Folders the app writes inside a project: an import of the project's own folder passes over them
#: (``import P P`` must not take in its synthetic images, caches or backups).
PROJECT_OUTPUT_FOLDERS = ("cache", "models", "runs", "synthetic", "backups")


def candidate_files(source: Path, *, skipped: list[SkippedFile] | None = None,
                    project_folder: Path | None = None) -> list[Path]:
    """Image-like files under ``source`` in a stable order (hidden files and folders skipped).

    Only regular files are returned: a FIFO, a socket or a device would block the import or never
    end, and a symbolic link that leads out of ``source`` would import a file the user did not
    point at; each is listed in ``skipped`` with its reason. Folder links are not followed. Under
    ``project_folder`` the folders the app writes (:data:`PROJECT_OUTPUT_FOLDERS`) are passed over.
    """
    skipped = skipped if skipped is not None else []
    root = source.resolve()
    if source.is_file() or not source.is_dir():
        return [p for p in [source] if _usable(p, root.parent, skipped)]
    own = {(project_folder / name).resolve() for name in PROJECT_OUTPUT_FOLDERS} if project_folder else set()
    out = []
    for folder, dirs, files in os.walk(source):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() not in own)
        for name in sorted(files):
            if name.startswith("."):
                continue
            suffix = Path(name).suffix.lower()
            if suffix in IGNORED_SUFFIXES:
                continue
            path = here / name
            if _usable(path, root, skipped):
                out.append(path)  # an unknown suffix too: tried, and reported if unreadable
    return out


def _usable(path: Path, root: Path, skipped: list[SkippedFile]) -> bool:
    """Whether ``path`` is a regular file inside ``root`` (links resolved); else noted in ``skipped``."""
    import stat

    from lesion_studio.files import special_kind

    try:
        mode = path.stat().st_mode  # follows a link: what would be read
    except OSError as exc:
        skipped.append(SkippedFile(path.name, f"cannot be read ({exc.strerror or exc})"))
        return False
    if not stat.S_ISREG(mode):
        skipped.append(SkippedFile(path.name, f"not a regular file ({special_kind(mode)}); skipped"))
        return False
    if path.is_symlink() and not path.resolve().is_relative_to(root):
        skipped.append(SkippedFile(path.name, "a link to a file outside the imported folder; skipped"))
        return False
    return True


def load_annotations(labels: Path | None, boxes: Path | None, coco: Path | None, *,
                     reader_labels: Path | None = None, measurements: Path | None = None,
                     known_types: list[str] | None = None) -> Annotations:
    ann = Annotations()
    if coco:
        read_coco_json(Path(coco), ann, **({"known_types": known_types} if known_types else {}))
    if labels:
        read_labels_csv(Path(labels), ann)
    if boxes:
        read_boxes_csv(Path(boxes), ann)
    if reader_labels:
        read_reader_labels_csv(Path(reader_labels), ann)
    if measurements:
        read_measurements_csv(Path(measurements), ann)
    return ann


def _probe(path: Path) -> dict[str, Any]:
    """Decode one file and collect what the store keeps about it."""
    rg = open_radiograph(path)
    tags = rg.tags
    return {
        "_sop_uid": tags.get("SOP UID", ""),  # private keys: used to match SRs, never stored
        "_spacing": (rg.pixel_spacing_mm, rg.spacing_source),
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
    """The project's secret salt for group keys, made with the project (older projects get theirs
    here, stored before it is used, in one transaction: two imports at once share one salt).

    Group keys taken from DICOM identifiers (Study Instance UID, else Patient ID) are stored as
    salted one-way hashes: images of one study still share a key, so splits keep them together,
    but neither the database nor an export holds the identifier.
    """
    return project.setting_or_init(GROUP_SALT_KEY, lambda: secrets.token_hex(16))


def import_source(
    project: Project,
    source: str | Path,
    *,
    labels_csv: str | Path | None = None,
    boxes_csv: str | Path | None = None,
    coco_json: str | Path | None = None,
    author: str = IMPORT_READER,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    workers: int = 2,
    strict: bool = False,
    reader_labels_csv: str | Path | None = None,
    measurements_csv: str | Path | None = None,
    label_reader: str | None = None,
    sr: list[str | Path] | tuple[str | Path, ...] = (),
    yolo: str | Path | None = None,
) -> ImportReport:
    """Import ``source`` with its annotations: decode and validate everything, then write once.

    Each annotation row that cannot be used is reported (file, line, reason) and skipped; with
    ``strict`` any such row fails the whole import before anything is written. The images and
    their boxes go into the store in one transaction, so an import never stops half-way. A
    cancelled import writes the images decoded so far (whole, with their annotations), then raises
    ``JobCancelled`` with the report as ``partial``, as every long job does.

    ``author`` is the reader of boxes and measurements whose file names none. With
    ``label_reader``, the labels file's labels are also recorded as that reader's own labels.
    ``yolo``: a YOLO folder (classes.txt and labels/, as ``export --format yolo`` writes it; see
    :mod:`lesion_studio.dataset.yolo_labels`), matched to the images by their relative paths.
    """
    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise LesionStudioError(f"{source} does not exist. Check the folder to import.")
    author = check_reader(author)
    label_reader = check_reader(label_reader) if label_reader else None
    annotations = load_annotations(
        Path(labels_csv) if labels_csv else None,
        Path(boxes_csv) if boxes_csv else None,
        Path(coco_json) if coco_json else None,
        reader_labels=Path(reader_labels_csv) if reader_labels_csv else None,
        measurements=Path(measurements_csv) if measurements_csv else None,
        known_types=lesion_types(project),
    )
    if sr:
        from lesion_studio.dataset.dicom_sr import read_sr_paths

        read_sr_paths([Path(p).expanduser() for p in sr], annotations)
    if yolo:
        read_yolo_folder(Path(yolo), annotations)
    _refuse_project_output(project, source)
    report = ImportReport(source=str(source))
    files = candidate_files(source, skipped=report.skipped, project_folder=project.folder)
    report.files_found = len(files)
    root = source if source.is_dir() else source.parent
    todo = _files_to_read(project, files, report)
    yolo_matches = {rel: m[0] for rel in (p.relative_to(root).as_posix() for p in files)
                    if (m := _yolo_annotation(annotations, rel)) is not None} if yolo else {}
    rows_of = _RowMaker(annotations, root, shared_label_files(annotations, yolo_matches),
                        group_salt(project), author, label_reader)
    rows = _decoded_rows(todo, rows_of, report, workers=workers, progress=progress, cancel=cancel)
    report.problems = [asdict(p) for p in annotations.problems]
    report.unmatched_annotations = sorted(set(annotations.by_key) - rows_of.matched_keys)
    _refuse_unusable_rows(annotations, strict)
    _count_annotations(report, rows)
    if rows:
        _write_rows(project, rows, annotations, report)
    report.added = len(rows)
    if report.cancelled:  # the one cancel contract: what was done is kept, then JobCancelled
        raise JobCancelled("The import", partial=report)
    return report


def _refuse_project_output(project: Project, source: Path) -> None:
    """An import from inside the project's own output folders would take in what the app made."""
    for name in PROJECT_OUTPUT_FOLDERS:
        if source.is_relative_to((project.folder / name).resolve()):
            raise LesionStudioError(f"{source} is inside the project's own {name}/ folder, which holds what "
                                    "Lesion Studio made; import the original images instead.")


def _files_to_read(project: Project, files: list[Path], report: ImportReport) -> list[Path]:
    """The files the project does not hold yet, each once; the others are counted as already present."""
    known_paths = {r.path for r in project.images()}
    todo = []
    for path in files:
        stored = project.store_path(path)  # a link inside the folder is its target: counted once
        if stored in known_paths:
            report.already_present += 1
        else:
            known_paths.add(stored)
            todo.append(path)
    return todo


@dataclass
class _RowMaker:
    """Turns one decoded file into its store row: its annotations found (by relative path or name,
    by SOP UID from an SR, by YOLO label file) and attached, its group key hashed. Remembers which
    annotation keys found an image, so the rest can be reported as unmatched."""

    annotations: Annotations
    root: Path
    #: YOLO label files two images would take: neither gets them.
    shared: set[str]
    salt: str
    author: str
    label_reader: str | None
    matched_keys: set[str] = field(default_factory=set)

    def __call__(self, path: Path, info: dict[str, Any]) -> dict[str, Any]:
        annotations = self.annotations
        relative = path.relative_to(self.root).as_posix()
        ann = annotations.lookup(relative)
        if ann is not None:
            self.matched_keys.add(relative if relative in annotations.by_key else path.name)
        sop = _sop_annotation(annotations, info.pop("_sop_uid"))
        if sop is not None:
            self.matched_keys.add(sop[0])
            ann = sop[1] if ann is None else _merged(ann, sop[1], annotations)
        yolo_ann = _yolo_annotation(annotations, relative)
        if yolo_ann is not None:
            self.matched_keys.add(yolo_ann[0])
            if yolo_ann[0] not in self.shared:  # a file two images would take is neither's
                ann = yolo_ann[1] if ann is None else _merged(ann, yolo_ann[1], annotations)
        info["group_key"] = hashed_group_key(info["group_key"], self.salt)
        spacing = info.pop("_spacing")
        if ann is not None:
            _attach(info, ann, annotations, self.author, self.label_reader, spacing)
        return info


def _decoded_rows(todo: list[Path], row_of: _RowMaker, report: ImportReport, *, workers: int,
                  progress: ProgressCallback, cancel: CancelToken | None) -> list[dict[str, Any]]:
    """Decode ``todo`` on ``workers`` threads, in order: the rows of the readable files; the others
    go to ``report.skipped``. A cancel stops before the next file and sets ``report.cancelled``."""
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
                rows.append(row_of(path, info))
            progress(ProgressEvent("import", done, len(todo), path.name, clock.eta(done)))
    return rows


def _refuse_unusable_rows(annotations: Annotations, strict: bool) -> None:
    """With ``strict``, any annotation row that was skipped fails the import before it writes."""
    bad = [p for p in annotations.problems if p.action == "skipped"]
    if strict and bad:
        shown = "; ".join(str(p) for p in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise LesionStudioError(
            f"{len(bad)} annotation row(s) cannot be used, so nothing was imported (--strict): {shown}{more}."
        )


def _count_annotations(report: ImportReport, rows: list[dict[str, Any]]) -> None:
    """Count what the rows carry into ``report`` (and drop the private ``_labelled`` flag)."""
    report.labelled = sum(1 for r in rows if r.pop("_labelled", False))
    report.boxes = sum(len(r.get("lesion_boxes", ())) for r in rows)
    report.normal_patches = sum(len(r.get("normal_patches", ())) for r in rows)
    report.measurements = sum(len(r.get("measurements", ())) for r in rows)
    report.reader_labels = sum(len(r.get("reader_labels", ())) for r in rows)


def _write_rows(project: Project, rows: list[dict[str, Any]], annotations: Annotations,
                report: ImportReport) -> None:
    """Write the rows in one transaction (a large import into a non-empty project backs it up first),
    then add the lesion types they brought to the project's list."""
    if len(rows) >= LARGE_IMPORT and project.image_count() > 0:
        project.backup("before-import")
    try:
        project.add_images(rows)
    except DiskFullError as exc:  # the transaction was rolled back: say how much it needed
        raise DiskFullError(f"importing {len(rows)} image(s)", project.folder, _estimated_bytes(rows),
                            estimated=True) from exc
    used = [r.lesion_type for row in rows for r in row.get("lesion_boxes", ()) if r.lesion_type]
    report.new_lesion_types = add_lesion_types(project, [*annotations.lesion_types, *used])


def _estimated_bytes(rows: list[dict[str, Any]]) -> int:
    """About what the rows take in the database and its write-ahead log: their text twice over
    (table and log), a page per row for the indexes, and a megabyte for the rest."""
    text = sum(len(json.dumps(row, default=str)) for row in rows)
    return 2 * text + 4096 * len(rows) + (1 << 20)


def _sop_annotation(annotations: Annotations, sop_uid: str) -> tuple[str, ImageAnnotation] | None:
    """The annotations an SR filed under this image's SOP Instance UID (dataset/dicom_sr.py)."""
    from lesion_studio.dataset.dicom_sr import sop_key

    key = sop_key(sop_uid)
    return (key, annotations.by_key[key]) if sop_uid and key in annotations.by_key else None


def _yolo_annotation(annotations: Annotations, relative: str) -> tuple[str, ImageAnnotation] | None:
    """The YOLO label file of the image at ``relative``: by its path without suffix, else by its
    bare name (dataset/yolo_labels.py)."""
    return next(((k, annotations.by_key[k]) for k in keys_for(relative) if k in annotations.by_key), None)


def _merged(first: ImageAnnotation, second: ImageAnnotation, annotations: Annotations) -> ImageAnnotation:
    """An image named by a CSV/COCO file and by an SR or a YOLO label file: the second's boxes and
    rulers join the first's."""
    scratch = Annotations(by_key={"image": first}, problems=annotations.problems, lesion_types=annotations.lesion_types)
    for kind, boxes in (("lesion", second.lesion_boxes), ("normal_patch", second.normal_patches)):
        for k, box in enumerate(boxes):
            file, where = second.box_sources.get((kind, k), ("SR", f"box {k + 1}"))
            scratch.add_box("image", kind, box, file, where, second.box_meta.get((kind, k)))
    first.measurements += second.measurements
    first.measurement_sources += second.measurement_sources
    first.normalised_boxes += second.normalised_boxes
    return first


def _attach(info: dict[str, Any], ann: ImageAnnotation, annotations: Annotations, author: str,
            label_reader: str | None = None,
            spacing: tuple[tuple[float, float] | None, str] = (None, "")) -> None:
    """Merge one image's annotations into its row, checking each box against the image size."""
    info.update(ann.fields)  # a group named by the labels file replaces the hashed one, as given
    info["extra"] = dict(ann.extra)
    info["_labelled"] = "label" in ann.fields
    width, height = info["width"], info["height"]
    for kind, boxes in (("lesion", ann.lesion_boxes), ("normal_patch", ann.normal_patches)):
        entries = [(box, *ann.box_sources.get((kind, k), ("annotations", f"box {k + 1}")),
                    ann.box_meta.get((kind, k), BoxMeta()), False) for k, box in enumerate(boxes)]
        entries += [(to_pixels(nb, width, height), nb.file, nb.where, nb.meta, True)
                    for nb in ann.normalised_boxes if nb.kind == kind]  # YOLO: now the size is known
        kept: list[NewRegion] = []
        for box, file, where, meta, scaled in entries:
            clipped = box.clipped(width, height)
            if clipped.width <= 0 or clipped.height <= 0:
                annotations.problem(file, where, f"the box lies outside the {width}x{height} image")
                continue
            if clipped != box:
                annotations.problem(file, where, f"the box extends beyond the {width}x{height} image",
                                    action="clipped")
            region = NewRegion(clipped, meta.reader or author, meta.lesion_type, meta.created_at, meta.modified_at)
            if scaled and region in kept:  # the same box from another file given with it
                annotations.problem(file, where, f"duplicate {kind.replace('_', ' ')} box, given by another file too")
                continue
            kept.append(region)
        info["lesion_boxes" if kind == "lesion" else "normal_patches"] = kept
    labels = list(ann.reader_labels)
    if label_reader and "label" in ann.fields and all(r.reader != label_reader for r in labels):
        labels.append(ReaderLabel(0, label_reader, ann.fields["label"], ""))
    info["reader_labels"] = labels
    measurements = []
    for m, (file, where) in zip(ann.measurements, ann.measurement_sources, strict=True):
        if not all(0 <= x <= width for x in (m.x0, m.x1)) or not all(0 <= y <= height for y in (m.y0, m.y1)):
            annotations.problem(file, where, f"the measurement reaches outside the {width}x{height} image")
            continue
        if m.spacing_source == SPACING_FROM_IMAGE:  # an SR's ruler: measured with this image's spacing
            m = replace(m, spacing=spacing[0], spacing_source=spacing[1] if spacing[0] else "")
        measurements.append(m if m.author else replace(m, author=author))
    info["measurements"] = measurements
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
