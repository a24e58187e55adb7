"""Nothing that identifies a patient leaves a project: the marker-string test of issue 12.

A source DICOM holds a marker in every text attribute of the DICOM dictionary (a superset of the
PS3.15 Annex E list), a marker UID in every UID attribute, a marker date in every date, plus
sequences (OriginalAttributesSequence and every other one), private tags, an overlay and a curve.
Its folder and file name carry a second marker. After import, synthesis bookkeeping and every
export (DICOM, PNG, JSON sidecars, COCO, CSV), neither marker appears in any file written.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.datadict import DicomDictionary
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from lesion_studio.dataset.exporter import export_project
from lesion_studio.dataset.importer import import_source
from lesion_studio.deid import public_provenance
from lesion_studio.samples import save_synthetic_sample
from lesion_studio.samples.folder_export import export_samples
from lesion_studio.store import Box, Project

MARKER = "ZQXMARKERQZ"  # fits SH, CS and AE (uppercase, <= 16 characters)
PATH_MARKER = "SMITHJOHN4711"
MARKER_UID = "1.2.999.4242424242"
MARKER_DATE = "18990317"
MARKER_AGE = "077Y"
#: Attributes that define the pixels or that the app reads as content (not in Annex E).
IMAGE_KEYWORDS = {"Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                  "SamplesPerPixel", "PhotometricInterpretation", "PixelData", "Modality", "BodyPartExamined",
                  "ViewPosition", "ModalityLUTSequence", "VOILUTSequence", "PixelPaddingValue",
                  "SOPClassUID", "SOPInstanceUID", "PlanarConfiguration", "NumberOfFrames", "SpecificCharacterSet"}
_TEXT_VRS = {"PN", "LO", "SH", "LT", "ST", "UT", "UC", "CS", "AE"}


def _identified_source(path: Path) -> Dataset:
    ds = Dataset()
    for tag, (vr, _vm, _name, _retired, keyword) in DicomDictionary.items():
        group = tag >> 16
        if group in (0x0000, 0x0002) or group >= 0xFFFA or not keyword or keyword in IMAGE_KEYWORDS:
            continue
        if vr in _TEXT_VRS:
            ds.add_new(tag, vr, MARKER)
        elif vr == "UR":
            ds.add_new(tag, vr, f"http://{MARKER}.example")
        elif vr == "UI":
            ds.add_new(tag, vr, MARKER_UID)
        elif vr == "DA":
            ds.add_new(tag, vr, MARKER_DATE)
        elif vr == "DT":
            ds.add_new(tag, vr, MARKER_DATE + "101010")
        elif vr == "AS":
            ds.add_new(tag, vr, MARKER_AGE)
        elif vr == "SQ":
            item = Dataset()
            item.PatientName = MARKER
            item.PatientID = MARKER
            item.ReferencedSOPInstanceUID = MARKER_UID
            ds.add_new(tag, vr, Sequence([item]))
    block = ds.private_block(0x0011, "ACME " + MARKER, create=True)
    block.add_new(0x01, "LO", MARKER)
    ds.add_new(0x60000010, "US", 64)  # overlay rows
    ds.add_new(0x60000011, "US", 64)
    ds.add_new(0x60000022, "LO", MARKER)  # overlay description
    ds.add_new(0x60003000, "OW", (MARKER.encode() + b"\0") * 32)
    ds.add_new(0x50002500, "LO", MARKER)  # curve label
    ds.add_new(0x50003000, "OW", (MARKER.encode() + b"\0") * 4)
    ds.BodyPartExamined = "FEMUR"
    ds.ViewPosition = "AP"
    ds.Modality = "CR"
    ds.BurnedInAnnotation = "NO"
    ds.PixelSpacing = [0.2, 0.2]
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.SOPInstanceUID = MARKER_UID + ".1"
    ds.Rows = ds.Columns = 64
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    yy, xx = np.mgrid[0:64, 0:64]
    ds.PixelData = ((yy * 40 + xx * 20) % 4096).astype(np.uint16).tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid()
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return ds


def _texts(path: Path) -> list[bytes]:
    """The file's bytes plus, for PNG, its decompressed text chunks (zTXt/iTXt may be compressed)."""
    data = path.read_bytes()
    out = [data]
    if path.suffix == ".png":
        from PIL import Image

        with Image.open(path) as im:
            out += [f"{k}={v}".encode() for k, v in im.text.items()]
        pos = 8
        while pos < len(data):
            length = int.from_bytes(data[pos:pos + 4], "big")
            kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
            if kind == b"zTXt":
                out.append(zlib.decompress(body.split(b"\0", 1)[1][1:]))
            pos += 12 + length
    return out


def _assert_clean(folder: Path, *, paths_too: bool = True) -> int:
    """No marker in any file under ``folder``. ``paths_too=False`` for the annotation exports,
    which name each image by its path under the image root by design (that is how they are
    imported again); everything taken from the DICOM header must still be absent."""
    markers = [MARKER, MARKER_UID, MARKER_DATE, MARKER_AGE] + ([PATH_MARKER] if paths_too else [])
    checked = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        assert PATH_MARKER.lower() not in path.name.lower(), f"{path} is named after the source"
        for blob in _texts(path):
            low = blob.lower()
            for marker in markers:
                assert marker.lower().encode() not in low, f"{marker} leaked into {path}"
        checked += 1
    return checked


@pytest.fixture
def identified_project(tmp_path: Path) -> Project:
    source = tmp_path / f"incoming_{PATH_MARKER}" / f"{PATH_MARKER}_hip.dcm"
    _identified_source(source)
    project = Project.create(tmp_path / "project")
    report = import_source(project, source.parent)
    assert report.added == 1, report.skipped
    yield project
    project.close()


def test_group_key_from_an_identifier_is_a_salted_hash(identified_project: Project, tmp_path: Path) -> None:
    rec = identified_project.images()[0]
    assert rec.group_key.startswith("g-") and MARKER_UID not in rec.group_key
    other = Project.create(tmp_path / "other")
    import_source(other, rec.abs_path)
    assert other.images()[0].group_key not in ("", rec.group_key)  # another project, another salt
    # Without a StudyInstanceUID the key came from the PatientID, and was exported as such.
    ds = pydicom.dcmread(rec.abs_path)
    del ds.StudyInstanceUID
    ds.PatientID = "MRN-0042"
    (tmp_path / "no-study").mkdir()
    ds.save_as(tmp_path / "no-study" / "a.dcm", enforce_file_format=True)
    ds.SOPInstanceUID = generate_uid()
    ds.save_as(tmp_path / "no-study" / "b.dcm", enforce_file_format=True)
    import_source(other, tmp_path / "no-study")
    keys = {r.name: r.group_key for r in other.images()}
    assert keys["a.dcm"] == keys["b.dcm"] and keys["a.dcm"].startswith("g-")  # one patient, one group
    export_project(other, tmp_path / "csv", "csv")
    assert "MRN-0042" not in (tmp_path / "csv" / "labels.csv").read_text()
    other.close()


def test_no_marker_in_any_export(identified_project: Project, tmp_path: Path) -> None:
    project = identified_project
    rec = project.images()[0]
    image = project.open_radiograph(rec.id).pixels.copy()
    image[10:30, 10:30] //= 2
    # An older caller's provenance carried the source path; it must not survive storage.
    legacy = {"model": {"id": None, "name": "m", "sha256": "ab" * 32},
              "source": {"path": str(rec.abs_path), "sha256": rec.sha256}, "source_image": rec.name}
    sid = save_synthetic_sample(project, image, source_image_id=rec.id, window=Box(10, 10, 30, 30), n=2.0,
                                seed=1, model_id=None, provenance=legacy, status="accepted", batch="kept")
    stored = project.synthetic_sample(sid)
    assert PATH_MARKER not in json.dumps(stored.provenance) and PATH_MARKER not in stored.path

    out = tmp_path / "out"
    export_samples(project, out / "png", "png")
    export_samples(project, out / "dicom", "dicom")
    export_project(project, tmp_path / "annotations" / "coco", "coco")
    export_project(project, tmp_path / "annotations" / "csv", "csv")
    assert _assert_clean(out) == 6  # two sidecars, two images, two index files
    # COCO, and CSV's labels, boxes, reader labels and measurements
    assert _assert_clean(tmp_path / "annotations", paths_too=False) == 5
    assert _assert_clean(project.folder / "synthetic") == 1

    ds = pydicom.dcmread(out / "dicom" / f"synthetic_{sid:06d}.dcm")
    assert not any(elem.tag.is_private for elem in ds.iterall())
    assert not any(elem.tag.group in range(0x5000, 0x6100) for elem in ds)  # no curves, no overlays
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
        assert ds[keyword].value and MARKER_UID not in ds[keyword].value
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert ds.Modality == "CR" and [float(v) for v in ds.PixelSpacing] == [0.2, 0.2]
    source_pixels = project.open_radiograph(rec.id).pixels
    assert np.array_equal(ds.pixel_array[:10], source_pixels[:10])  # the image itself is intact
    assert json.loads(ds.ImageComments)["provenance"]["source_image_id"] == rec.id


def test_public_provenance_is_an_allow_list(identified_project: Project) -> None:
    project = identified_project
    rec = project.images()[0]
    sid = save_synthetic_sample(project, project.open_radiograph(rec.id).pixels, source_image_id=rec.id,
                                window=Box(0, 0, 8, 8), n=1.0, seed=0, model_id=None,
                                provenance={"free_text": MARKER, "model": {"name": "m", "notes": MARKER}})
    public = public_provenance(project.synthetic_sample(sid))
    assert MARKER not in json.dumps(public)
    assert public["provenance"]["source_sha256"] == rec.sha256 and public["provenance"]["model"] == {"name": "m"}


def test_a_source_with_burned_in_annotation_is_not_exported(tmp_path: Path) -> None:
    source = tmp_path / "in" / "burned.dcm"
    ds = _identified_source(source)
    ds.BurnedInAnnotation = "YES"
    ds.save_as(source, enforce_file_format=True)
    with Project.create(tmp_path / "p") as project:
        import_source(project, source)
        rec = project.images()[0]
        save_synthetic_sample(project, project.open_radiograph(rec.id).pixels, source_image_id=rec.id,
                              window=Box(0, 0, 8, 8), n=1.0, seed=0, model_id=None, provenance={},
                              status="accepted")
        for fmt in ("png", "dicom"):
            report = export_samples(project, tmp_path / fmt, fmt)
            assert report.count == 0 and "burned-in annotation" in report.failed[0][1]


def test_a_deidentified_annotation_export_names_no_one_and_reimports_as_the_same_project(
        identified_project: Project, tmp_path: Path) -> None:
    """`export --deidentify`: images named by project id and hash, de-identified copies of them
    (DICOM through the synthetic exports' allow-list), no marker in any file or name, and an
    import of the result rebuilds the same annotations on the same pixels."""
    project = identified_project
    rec = project.images()[0]
    project.update_image(rec.id, label="lesion", split="train", exclusions=["hardware"], notes="cortex thin")
    project.add_box(rec.id, Box(5, 6, 20, 22.5))
    project.add_normal_patch(rec.id, Box(30, 30, 50, 50))
    rec = project.image(rec.id)
    name = f"image{rec.id:06d}-{rec.sha256[:16]}.dcm"
    for fmt, files in (("coco", 2), ("csv", 5)):  # the image copy and the annotation files
        out = tmp_path / f"deid-{fmt}"
        summary = export_project(project, out, fmt, deidentify=True)
        assert summary["image_root"] == str(out / "images") and summary["image_copies"] == 1
        assert _assert_clean(out) == files  # file names included: nothing of the source's name
        ds = pydicom.dcmread(out / "images" / name)
        assert ds.PatientIdentityRemoved == "YES" and not any(e.tag.is_private for e in ds.iterall())
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert MARKER_UID not in ds.StudyInstanceUID and "SYNTHETIC" not in ds.ImageType
        annotations = ({"coco_json": out / "annotations.coco.json"} if fmt == "coco"
                       else {"labels_csv": out / "labels.csv", "boxes_csv": out / "boxes.csv"})
        with Project.create(tmp_path / f"again-{fmt}") as again:
            report = import_source(again, out / "images", **annotations)
            assert report.added == 1 and not report.problems and not report.unmatched_annotations
            new = again.images()[0]
            for field in ("label", "split", "body_part", "view", "group_key", "exclusions", "notes", "width",
                          "height"):
                assert getattr(new, field) == getattr(rec, field), field
            assert [b.box for b in again.boxes()] == [b.box for b in project.boxes()]
            assert [p.box for p in again.normal_patches()] == [p.box for p in project.normal_patches()]
            assert np.array_equal(again.open_radiograph(new.id).pixels, project.open_radiograph(rec.id).pixels)
    with pytest.raises(Exception, match="already holds"):
        export_project(project, tmp_path / "deid-csv", "csv", deidentify=True)  # never overwritten
