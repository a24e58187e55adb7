"""Reading a YOLO label folder, the form ``export --format yolo`` writes, back into annotations.

The layout (what the export writes, and what Ultralytics and most YOLO tools use)::

    OUT/classes.txt            one class name a line (or data.yaml with ``names``)
    OUT/labels/<image>.txt     one box a line: ``class cx cy w h``, fractions of the image size

``<image>`` is the image's path relative to the imported folder without its suffix, so a label
file finds its image the way YOLO tools find it. Class names give a box its meaning: ``lesion``
(or ``abnormal``, ``positive``) an untyped lesion box, ``normal_patch`` a normal patch, any other
name a lesion box of that type; the names after the first two are added to the project's list of
types, in their order (our export lists the project's types there). A box is in fractions until
its image's size is known: the importer scales it (:func:`to_pixels`) and then checks it like a
box from any other file.

What YOLO does not carry: image labels (an empty or absent label file says nothing: our export
writes an empty file for every image without boxes, whatever its label, so it is not a "normal"
mark; a lesion box still makes an unreviewed image a lesion image, as with any box import),
splits and notes. Import the CSV or COCO export for those.

The readers' data rides beside the labels in a sidecar, ``OUT/lesion-studio.json`` (YOLO tools
ignore it; without it the import is plain YOLO)::

    {"format": "lesion-studio-yolo", "version": 1,
     "label_files": {"<image>.txt": {
         "boxes": [{"line": 1, "yolo": "2 0.5 0.5 0.1 0.1", "lesion_type": "lytic",
                    "reader": "alice", "created_at": "...", "modified_at": "..."}, ...],
         "reader_labels": [{"reader": "alice", "label": "lesion", "labelled_at": "..."}, ...],
         "measurements": [{"x0": ..., "y0": ..., "x1": ..., "y1": ..., "spacing": [0.15, 0.15],
                           "spacing_source": "PixelSpacing", "reader": "alice", ...}, ...]}}}

The label file's path is relative to ``labels/``; each box entry gives a reader and times to the
line it names, provided the line still reads as recorded (``yolo``): a label file edited since
the export keeps its boxes, and the lines that changed lose their reader (reported). Readers'
labels and rulers (in image pixels) are in the COCO export's form and read by the same code.

Every line is checked before anything is written: a line with the wrong number of fields, a
class that is not a whole number or not in the class list, a coordinate that is not a number in
0..1, a box with no area, a duplicate. Each is reported with its file and line and skipped
(``--strict`` fails the import instead), as for the CSV and COCO files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lesion_studio.dataset.annotations import (
    Annotations,
    BoxMeta,
    RowError,
    add_measurements,
    add_reader_labels,
    box_meta,
    check_file_size,
    finite_number,
    lesion_type_name,
    load_json,
)
from lesion_studio.errors import LesionStudioError
from lesion_studio.store.records import Box

#: Where a label file's boxes are filed in :class:`Annotations` (its image's path without suffix).
YOLO_KEY = "yolo:"
CLASS_FILES = ("classes.txt", "data.yaml", "dataset.yaml")
LABELS = "labels"
UNTYPED_CLASSES = {"lesion", "abnormal", "positive"}
#: The sidecar with the readers' data (see the module's docstring), beside classes.txt.
YOLO_SIDECAR = "lesion-studio.json"
SIDECAR_FORMAT, SIDECAR_VERSION = "lesion-studio-yolo", 1
#: What a box whose sidecar entry cannot be used keeps: its corners and type, not its reader.
KEPT_WITHOUT_READER = "kept without its reader and times"
PATCH_CLASS = "normal_patch"


#: How far (in fractions of a side) the export's rounding to 6 decimals may move a corner: centre
#: and size are each off by up to half a unit of the 6th decimal, and a corner is centre ± size / 2.
ROUNDING = 0.5e-6 + 0.25e-6


@dataclass(frozen=True)
class NormalisedBox:
    """A YOLO box before its image's size is known: corners in fractions of the width and height."""

    kind: str  # "lesion" or "normal_patch"
    box: Box
    meta: BoxMeta
    file: str
    where: str


def yolo_key(relative_stem: str) -> str:
    return f"{YOLO_KEY}{relative_stem}"


def keys_for(relative: str) -> tuple[str, str]:
    """The keys a label file of the image at ``relative`` (POSIX, with suffix) may be filed under:
    its path without the suffix, then its bare name without the suffix (a flat labels folder)."""
    path = PurePosixPath(relative)
    return yolo_key(path.with_suffix("").as_posix()), yolo_key(path.stem)


def class_names(folder: Path) -> tuple[list[str], Path]:
    """The class names of a YOLO folder and the file they came from: ``classes.txt`` (our export's,
    one name a line) or a ``data.yaml`` with ``names`` (a list, or a mapping of id to name)."""
    for name in CLASS_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if name == "classes.txt":
            check_file_size(path)
            try:
                text = path.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                raise LesionStudioError(f"{path.name}: cannot be read as text ({exc}).") from exc
            return [line.strip() for line in text.splitlines() if line.strip()], path
        from lesion_studio.config import read_config_file

        names = read_config_file(path).get("names")
        if isinstance(names, dict) and all(isinstance(k, int) for k in names):
            if sorted(names) != list(range(len(names))):
                raise LesionStudioError(f"{path.name}: 'names' must number its classes 0, 1, 2... without gaps.")
            names = [names[k] for k in range(len(names))]
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            raise LesionStudioError(f"{path.name}: 'names' must be a list of class names (or id: name).")
        return [n.strip() for n in names], path
    raise LesionStudioError(f"{folder} holds no classes.txt or data.yaml: YOLO class numbers mean nothing "
                            "without their names. Give the folder `export --format yolo` wrote.")


def _meanings(names: list[str], source: Path, into: Annotations) -> list[tuple[str, str] | str]:
    """Per class: (kind, lesion type), or the reason its boxes cannot be used. Types are listed
    in ``into.lesion_types`` in the file's order (the project adds those it lacks)."""
    out: list[tuple[str, str] | str] = []
    for k, name in enumerate(names):
        key = name.strip().lower()
        if key == PATCH_CLASS:
            out.append(("normal_patch", ""))
        elif key in UNTYPED_CLASSES:
            out.append(("lesion", ""))
        else:
            try:
                lesion_type = lesion_type_name(name)
            except RowError as exc:
                into.problem(source.name, f"class {k}", str(exc))
                out.append(f"class {k} ({name!r}) is not a usable lesion type")
                continue
            if lesion_type not in into.lesion_types:
                into.lesion_types.append(lesion_type)
            out.append(("lesion", lesion_type))
    return out


def _fraction(text: str, name: str) -> float:
    value = finite_number(text, name)
    if not 0.0 <= value <= 1.0:
        raise RowError(f"{name} is {text}, outside 0..1 (YOLO coordinates are fractions of the image size)")
    return value


def parse_line(line: str, classes: list[tuple[str, str] | str]) -> tuple[str, Box, str]:
    """One ``class cx cy w h`` line: (kind, box in fractions, lesion type)."""
    fields = line.split()
    if len(fields) != 5:
        raise RowError(f"{len(fields)} field(s); a YOLO box line has 5: class cx cy w h")
    cls_text, *numbers = fields
    if not cls_text.isdigit():
        raise RowError(f"class {cls_text!r} is not a whole number")
    cls = int(cls_text)
    if cls >= len(classes):
        raise RowError(f"class {cls} is not in the class list (0..{len(classes) - 1})")
    meaning = classes[cls]
    if isinstance(meaning, str):
        raise RowError(meaning)
    cx, cy, w, h = (_fraction(t, n) for t, n in zip(numbers, ("cx", "cy", "w", "h"), strict=True))
    if w == 0 or h == 0:
        raise RowError(f"the box has no area (w {numbers[2]}, h {numbers[3]})")
    kind, lesion_type = meaning
    return kind, Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), lesion_type


def read_yolo_folder(folder: Path, into: Annotations) -> int:
    """Read every label file under ``folder`` (an export folder holding ``labels/`` and the class
    file, or the labels folder itself with the class file beside it or one level up); returns how
    many label files were read."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise LesionStudioError(f"{folder} is not a folder. Give the folder `export --format yolo` wrote "
                                "(classes.txt and labels/).")
    labels = folder / LABELS if (folder / LABELS).is_dir() else folder
    holder = next((f for f in (folder, folder.parent) if any((f / n).is_file() for n in CLASS_FILES)), folder)
    names, names_file = class_names(holder)
    classes = _meanings(names, names_file, into)
    sidecar = read_sidecar(holder / YOLO_SIDECAR)
    files = sorted(p for p in labels.rglob("*.txt")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(labels).parts)
                   and p != names_file)
    for path in files:
        relative = path.relative_to(labels)
        shown = (PurePosixPath(labels.name) / relative.as_posix()).as_posix() if labels != folder else \
            relative.as_posix()
        key = yolo_key(relative.with_suffix("").as_posix())
        entry = sidecar.pop(relative.as_posix(), {})
        _read_label_file(path, shown, key, classes, into, entry)
        _read_sidecar_image(entry, key, shown, into)
    for missing in sorted(sidecar):
        into.problem(YOLO_SIDECAR, missing, f"names {LABELS}/{missing}, which is not in the folder")
    return len(files)


def read_sidecar(path: Path) -> dict[str, dict]:
    """The sidecar's entries by label file (relative to ``labels/``); none without the file."""
    if not path.is_file():
        return {}
    data = load_json(path, "a Lesion Studio YOLO sidecar")
    files = data.get("label_files") if isinstance(data, dict) else None
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(files, dict) or data.get("format") != SIDECAR_FORMAT or type(version) is not int:
        raise LesionStudioError(f"{path.name}: not a Lesion Studio YOLO sidecar (format {SIDECAR_FORMAT!r}, a "
                                "version and 'label_files'). Remove it to import the YOLO labels without it.")
    if version > SIDECAR_VERSION:
        raise LesionStudioError(f"{path.name}: version {version} is newer than this Lesion Studio reads "
                                f"({SIDECAR_VERSION}); update Lesion Studio, or remove the file.")
    return {str(k): (v if isinstance(v, dict) else {"_bad": v}) for k, v in files.items()}


def _sidecar_boxes(entry: dict, shown: str, into: Annotations) -> dict[int, dict]:
    """The entry's box records by the line they describe."""
    records: dict[int, dict] = {}
    boxes = entry.get("boxes", [])
    if "_bad" in entry or not isinstance(boxes, list):
        into.problem(YOLO_SIDECAR, shown, "its entry must be an object with a list of 'boxes'", KEPT_WITHOUT_READER)
        return records
    for k, record in enumerate(boxes):
        line = record.get("line") if isinstance(record, dict) else None
        if not isinstance(line, int) or isinstance(line, bool) or not isinstance(record.get("yolo"), str):
            into.problem(YOLO_SIDECAR, f"{shown} box #{k + 1}", "needs the 'line' number and its 'yolo' text")
            continue
        records[line] = record
    return records


def _sidecar_meta(record: dict | None, line: str, lesion_type: str, shown: str, where: str,
                  into: Annotations) -> BoxMeta:
    """A line's reader and times from its sidecar record (the class keeps the type)."""
    if record is None:
        return BoxMeta(lesion_type=lesion_type)
    if record["yolo"].split() != line.split():
        into.problem(YOLO_SIDECAR, f"{shown} {where}", "recorded another box for this line (the label file was "
                                                      "edited since the export)", KEPT_WITHOUT_READER)
        return BoxMeta(lesion_type=lesion_type)
    try:
        meta = box_meta({k: v for k, v in record.items() if k != "lesion_type"}, lesion_type=lesion_type)
    except RowError as exc:
        into.problem(YOLO_SIDECAR, f"{shown} {where}", str(exc), KEPT_WITHOUT_READER)
        return BoxMeta(lesion_type=lesion_type)
    return BoxMeta(meta.reader, lesion_type, meta.created_at, meta.modified_at)


def _read_sidecar_image(entry: dict, key: str, shown: str, into: Annotations) -> None:
    """The readers' own labels and the rulers of one image, as the COCO export writes them."""
    if "reader_labels" in entry:
        add_reader_labels(into, key, entry["reader_labels"], YOLO_SIDECAR, shown)
    add_measurements(into, entry.get("measurements", []), lambda _m: key, YOLO_SIDECAR, f"{shown} ")


def _read_label_file(path: Path, shown: str, key: str, classes: list[tuple[str, str] | str],
                     into: Annotations, entry: dict) -> None:
    check_file_size(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        into.problem(shown, "file", f"cannot be read as text ({getattr(exc, 'strerror', None) or exc})")
        return
    ann = into.get(key)  # an empty file too: the image is matched, it just has no boxes
    ann.row_sources[shown] = "file"
    records = _sidecar_boxes(entry, shown, into) if entry else {}
    # two readers may draw the same box: with the sidecar, a duplicate is the same box by the same reader
    seen: dict[tuple[str, Box, str, str], str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        record = records.pop(number, None)
        try:
            kind, box, lesion_type = parse_line(line, classes)
        except RowError as exc:
            into.problem(shown, where, str(exc))
            continue
        meta = _sidecar_meta(record, line, lesion_type, shown, where, into)
        if (kind, box, lesion_type, meta.reader) in seen:
            into.problem(shown, where, f"duplicate of {seen[(kind, box, lesion_type, meta.reader)]}")
            continue
        seen[(kind, box, lesion_type, meta.reader)] = where
        ann.normalised_boxes.append(NormalisedBox(kind, box, meta, shown, where))
    for number in sorted(records):
        into.problem(YOLO_SIDECAR, f"{shown} line {number}", "describes a line the label file does not have "
                                                             "(edited since the export)", "ignored")


def shared_label_files(into: Annotations, matches: dict[str, str]) -> set[str]:
    """The label files (keys) that several images would take: ``a.png`` and ``a.dcm`` both look
    for ``labels/a.txt``. YOLO cannot tell them apart, so neither gets its boxes; each such file is
    reported. ``matches`` maps an image's relative path to the key it matched."""
    images: dict[str, list[str]] = {}
    for relative, key in matches.items():
        images.setdefault(key, []).append(relative)
    shared = {key for key, found in images.items() if len(found) > 1}
    for key in sorted(shared):
        found = sorted(images[key])
        shown = next(iter(into.by_key[key].row_sources), key)
        into.problem(shown, "file", f"matches {len(found)} images ({', '.join(found[:3])}"
                                    f"{', ...' if len(found) > 3 else ''}); a YOLO label file is named after its "
                                    "image without the suffix, so it cannot tell them apart")
    return shared


def to_pixels(box: NormalisedBox, width: int, height: int) -> Box:
    """The box in pixels of a ``width`` × ``height`` image. A corner within the export's rounding
    (:data:`ROUNDING`) of a whole pixel is that whole pixel, so whole-pixel boxes come back exactly;
    others come back within that rounding (0.0015 pixel on a 2,000-pixel side)."""
    def scale(v: float, size: int) -> float:
        pixels = v * size
        whole = round(pixels)
        return float(whole) if math.isclose(pixels, whole, rel_tol=0.0, abs_tol=ROUNDING * size + 1e-9) else pixels

    b = box.box
    return Box(scale(b.x0, width), scale(b.y0, height), scale(b.x1, width), scale(b.y1, height))
