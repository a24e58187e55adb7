"""Boxes and ruler lines as DICOM Structured Reports (TID 1500), written and read with highdicom.

Export: one Comprehensive 3D SR per DICOM image and reader, a TID 1500 "Imaging Measurement
Report" whose observer (TID 1002, Person Observer Name) is the reader, holding one TID 1410
measurement group per lesion box: its lesion type (Finding), its bounding polygon (a closed
5-point POLYLINE in the image's pixel coordinates, top-left corner of the top-left pixel at 0,0:
the same frame as the project's boxes) and the image it lies on (SOP Instance reference). A ruler
line is a group with a 2-point POLYLINE and its "Line segment length" (mm, or pixels without
spacing). The source's Patient and Study modules are copied unchanged (highdicom copies every
attribute of the Patient and Study information entities): an SR is part of the patient's
clinical record, unlike the de-identified synthetic exports.

Lesion types are coded in a private scheme, ``99LESIONSTUDIO`` (code value = the type's name,
declared in the Coding Scheme Identification Sequence), because SNOMED has no codes for the
project's own types; a box without a type is SCT 52988006 "Lesion".

Import reads such SRs (and other TID 1500 SRs: Comprehensive 3D, Comprehensive or Enhanced)
back into boxes, matched to images by SOP Instance UID. SR coordinates are 32-bit floats (FL):
a coordinate comes back as the shortest decimal that 32-bit float stands for, so whole pixels and
coordinates with up to 7 significant digits (FracAtlas's 2 decimals) return exactly.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lesion_studio.dataset.annotations import Annotations, BoxMeta, RowError, checked_box, image_root
from lesion_studio.errors import LesionStudioError
from lesion_studio.extras import require

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

log = logging.getLogger(__name__)

TYPE_SCHEME = "99LESIONSTUDIO"
UNTYPED_CODE = ("52988006", "SCT", "Lesion")
SR_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive3DSR",
    "1.2.840.10008.5.1.4.1.1.88.33": "ComprehensiveSR",
    "1.2.840.10008.5.1.4.1.1.88.22": "EnhancedSR",
}
#: The key an SR's annotations are filed under in :class:`Annotations` (images match by SOP UID).
SOP_KEY = "sop:"
#: A measurement read from an SR takes its image's spacing at import (an SR states mm, not spacing).
SPACING_FROM_IMAGE = "from-image"
MANUFACTURER = "Lesion Studio"


def _hd():  # noqa: ANN202 - highdicom, imported on use
    return require("highdicom", "DICOM SR export and import")


def sop_key(sop_instance_uid: str) -> str:
    return f"{SOP_KEY}{sop_instance_uid}"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "reader"


def _person_name(reader: str) -> str:
    """A reader as a DICOM person name: one family-name component ("Dr Smith" -> "Dr Smith^"), so
    a name with a space is not read as the retired space-separated form."""
    return f"{reader}^"


def _reader_of(name: object) -> str:
    return str(name).rstrip("^").strip()


# ------------------------------------------------------------------------------------ export
@dataclass
class _Read:
    """What one reader put on one image."""

    boxes: list[Any] = field(default_factory=list)
    rulers: list[Any] = field(default_factory=list)


def _finding_type(lesion_type: str):  # noqa: ANN202 - highdicom CodedConcept
    hd = _hd()
    if not lesion_type:
        return hd.sr.CodedConcept(*UNTYPED_CODE)
    return hd.sr.CodedConcept(lesion_type, TYPE_SCHEME, lesion_type)


#: Type 2 attributes of the Patient and General Study modules: present in an SR even when empty.
_TYPE_2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
           "ReferringPhysicianName", "StudyID", "AccessionNumber")


def _evidence(source):  # noqa: ANN001, ANN202 - pydicom Dataset
    """The source header as the SR's evidence: unchanged, except that a type 2 attribute the source
    lacks (the demo's phantoms have no birth date) is added empty, as the SR must hold it."""
    import copy

    missing = [k for k in _TYPE_2 if k not in source]
    if not missing:
        return source
    evidence = copy.deepcopy(source)
    for keyword in missing:
        setattr(evidence, keyword, "")
    return evidence


def build_sr(source, reader: str, boxes: Iterable[Any], rulers: Iterable[Any] = (),  # noqa: ANN001
             *, series_number: int = 900, instance_number: int = 1):  # noqa: ANN202 - hd.sr.Comprehensive3DSR
    """The SR of one reader's boxes (and ruler lines) on the image whose header is ``source``."""
    import numpy as np
    from pydicom.dataset import Dataset
    from pydicom.sr.codedict import codes

    hd = _hd()
    source = _evidence(source)
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=_person_name(reader)))
    context = hd.sr.ObservationContext(observer_person_context=observer)
    image = hd.sr.SourceImageForRegion.from_source_image(source)
    groups = []
    for box in boxes:
        b = box.box
        polygon = np.array([[b.x0, b.y0], [b.x1, b.y0], [b.x1, b.y1], [b.x0, b.y1], [b.x0, b.y0]])
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(identifier=f"lesion box {box.id}", uid=hd.UID()),
            referenced_region=hd.sr.ImageRegion(graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
                                                graphic_data=polygon, source_image=image),
            finding_type=_finding_type(box.lesion_type),
            finding_category=codes.SCT.MorphologicallyAbnormalStructure,
        ))
    for m in rulers:
        mm = m.length_mm
        unit = codes.UCUM.Millimeter if mm is not None else hd.sr.CodedConcept("{pixels}", "UCUM", "pixels")
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(identifier=f"ruler {m.id}", uid=hd.UID()),
            referenced_region=hd.sr.ImageRegion(graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
                                                graphic_data=np.array([[m.x0, m.y0], [m.x1, m.y1]]),
                                                source_image=image),
            measurements=[hd.sr.Measurement(name=codes.DCM.LineSegmentLength,
                                            value=mm if mm is not None else m.length_px, unit=unit)],
        ))
    report = hd.sr.MeasurementReport(observation_context=context, procedure_reported=codes.SCT.PlainRadiography,
                                     imaging_measurements=groups, title=codes.DCM.ImagingMeasurementReport)
    sr = hd.sr.Comprehensive3DSR(
        evidence=[source], content=report[0], series_instance_uid=hd.UID(), series_number=series_number,
        sop_instance_uid=hd.UID(), instance_number=instance_number, manufacturer=MANUFACTURER,
        is_complete=True, series_description=f"Lesion Studio boxes ({reader})"[:64])
    scheme = Dataset()
    scheme.CodingSchemeDesignator = TYPE_SCHEME
    scheme.CodingSchemeName = "Lesion Studio lesion types"
    scheme.CodingSchemeResponsibleOrganization = MANUFACTURER
    sr.CodingSchemeIdentificationSequence = [scheme]
    return sr


def export_sr(project: Project, out: Path) -> dict[str, Any]:
    """One SR file per DICOM image and reader with boxes or rulers, under ``out`` as
    ``<image path without suffix>/<reader>.sr.dcm``. Non-DICOM images (an SR must reference a
    DICOM instance) and missing files are counted in the result's ``notes``."""
    import pydicom

    from lesion_studio.files import OutputFiles, atomic_write_from
    from lesion_studio.store.measurements import measurements

    _hd()
    out = Path(out)
    reads: dict[int, dict[str, _Read]] = {}
    for box in project.boxes():
        reads.setdefault(box.image_id, {}).setdefault(box.author, _Read()).boxes.append(box)
    for m in measurements(project):
        reads.setdefault(m.image_id, {}).setdefault(m.author, _Read()).rulers.append(m)
    images = {r.id: r for r in project.images()}
    root = image_root(list(images.values()))
    written: list[Path] = []
    not_dicom = missing = boxes = 0
    # A full disk part-way leaves no SR (at most one per image and reader is written).
    with OutputFiles("the SR export", out, expected=sum(map(len, reads.values()))) as output:
        for image_id, by_reader in sorted(reads.items()):
            rec = images[image_id]
            try:
                source = pydicom.dcmread(rec.abs_path, stop_before_pixels=True)
            except FileNotFoundError:
                missing += 1
                continue
            except pydicom.errors.InvalidDicomError:
                not_dicom += 1
                continue
            folder = out / rec.abs_path.relative_to(root).with_suffix("")
            used: set[str] = set()
            for n, (reader, read) in enumerate(sorted(by_reader.items()), start=1):
                sr = build_sr(source, reader, read.boxes, read.rulers, instance_number=n)
                slug = _slug(reader)
                while slug in used:
                    slug += "_"
                used.add(slug)
                path = output.add(folder / f"{slug}.sr.dcm")
                atomic_write_from(path, lambda fh, sr=sr: sr.save_as(fh, enforce_file_format=True))
                written.append(path)
                boxes += len(read.boxes)
    notes = []
    if not_dicom:
        notes.append(f"{not_dicom} image(s) with boxes are not DICOM files: an SR can only reference a DICOM "
                     "image, so they have none (use COCO or CSV for them).")
    if missing:
        notes.append(f"{missing} image(s) with boxes are missing on disk (re-link them first): no SR written.")
    return {"format": "sr", "images": len({p.parent for p in written}), "boxes": boxes, "files": [str(p) for p in written],
            "notes": notes}


# ------------------------------------------------------------------------------------ import
def _fl(value: float) -> float:
    """The decimal a 32-bit float coordinate was written from (shortest repr that round-trips)."""
    import numpy as np

    return float(str(np.float32(value)))


def _lesion_type_of(finding: Any, into: Annotations, file: str, where: str) -> str:
    from lesion_studio.errors import ProjectError
    from lesion_studio.store.lesion_types import check_type

    if finding is None or (finding.value, finding.scheme_designator) == UNTYPED_CODE[:2]:
        return ""
    name = finding.value if finding.scheme_designator == TYPE_SCHEME else finding.meaning
    try:
        return check_type(name)
    except ProjectError:
        into.problem(file, where, f"finding {finding.meaning!r} is not a usable lesion type; imported untyped",
                     action="untyped")
        return ""


def read_sr(path: Path, into: Annotations) -> None:
    """Add the boxes and rulers of one SR file to ``into`` under :func:`sop_key` of their image."""
    import pydicom

    from lesion_studio.store.measurements import NewMeasurement

    hd = _hd()
    name = path.name
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one problem line
        into.problem(name, "file", f"not a readable DICOM file ({type(exc).__name__})")
        return
    kind = SR_SOP_CLASSES.get(str(getattr(ds, "SOPClassUID", "")))
    if kind is None:
        into.problem(name, "file", "not a DICOM Structured Report (Comprehensive 3D, Comprehensive or Enhanced SR)")
        return
    try:
        sr = getattr(hd.sr, kind).from_dataset(ds)
        content = sr.content
        groups = content.get_planar_roi_measurement_groups()
        people = content.get_observer_contexts(observer_type=hd.sr.CodedConcept("121006", "DCM", "Person"))
    except Exception as exc:  # noqa: BLE001 - a report that is not TID 1500
        into.problem(name, "file", f"not a TID 1500 measurement report ({type(exc).__name__}: {exc})")
        return
    reader = _reader_of(people[0].observer_identifying_attributes.name) if people else ""
    for k, group in enumerate(groups):
        where = f"measurement group #{k + 1}"
        try:
            roi = group.roi
            if roi is None or not hasattr(roi, "ContentSequence"):
                raise RowError("no 2-D image region (segmentation or 3-D regions are not read)")
            ref = roi.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            points = [(_fl(x), _fl(y)) for x, y in roi.value]
            graphic = str(roi.graphic_type.value if hasattr(roi.graphic_type, "value") else roi.graphic_type)
            if graphic == "POLYLINE" and len(points) == 2:
                (x0, y0), (x1, y1) = points
                line = NewMeasurement(x0, y0, x1, y1, spacing=None, spacing_source=SPACING_FROM_IMAGE,
                                      author=reader)
                ann = into.get(sop_key(str(ref)))
                ann.measurements.append(line)
                ann.measurement_sources.append((name, where))
                continue
            if graphic == "POINT" or len(points) < 2:
                raise RowError(f"a {graphic} marks no area")
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            box = checked_box(min(xs), min(ys), max(xs), max(ys))
            if graphic != "POLYLINE" or set(points) != {(box.x0, box.y0), (box.x1, box.y0), (box.x1, box.y1),
                                                          (box.x0, box.y1)}:
                into.problem(name, where, f"the region is a {graphic} of {len(points)} points, not a box; "
                                          "imported as its bounding box", action="bounded")
            meta = BoxMeta(reader=reader, lesion_type=_lesion_type_of(group.finding_type, into, name, where))
        except RowError as exc:
            into.problem(name, where, str(exc))
            continue
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            into.problem(name, where, f"unreadable region ({type(exc).__name__})")
            continue
        into.add_box(sop_key(str(ref)), "lesion", box, name, where, meta)


def read_sr_paths(paths: Iterable[Path], into: Annotations) -> int:
    """Read every SR file given, or under a given folder; returns how many files were read."""
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            files.append(path)
        else:
            raise LesionStudioError(f"{path} does not exist. Give an SR file or a folder of them.")
    for f in files:
        read_sr(f, into)
    return len(files)

