"""Build the demo project: phantom radiographs written as real 12-bit CR DICOM files, imported
through the same importer users use, with ground-truth boxes, splits and a few normal patches."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from lesion_studio.demo.phantom import PhantomCase, generate_phantom
from lesion_studio.jobs import ProgressCallback, ProgressEvent, no_progress
from lesion_studio.store.database_file import DB_NAME
from lesion_studio.store.project import Project
from lesion_studio.store.records import Box

log = logging.getLogger(__name__)

DEMO_BODY_PARTS = ("femur", "tibia", "humerus")
DEMO_SEED = 20240531
MARKER = "demo_version"
DEMO_VERSION = "1"


def default_demo_folder() -> Path:
    """Per-user data folder, so `make run` from any checkout opens the same demo.

    ``LESION_STUDIO_HOME`` overrides it (tests and CI point it at a temporary folder).
    """
    from lesion_studio.paths import user_data_dir

    return user_data_dir() / "demo-project"


def write_demo_dicom(case: PhantomCase, path: Path, index: int, monochrome1: bool) -> None:
    """A CR image with the tags a PACS would send (synthetic patient, 0.15 mm spacing)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    pixels = case.pixels
    if monochrome1:
        pixels = (4095 - pixels.astype(np.int32)).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[f"demo-sop-{index}"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[f"demo-study-{index}"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[f"demo-series-{index}"])
    ds.PatientName = f"Phantom^{index:03d}"
    ds.PatientID = f"DEMO-{index:03d}"
    ds.PatientAge = "045Y"
    ds.PatientSex = "O"
    ds.Modality = "CR"
    ds.Manufacturer = "Lesion Studio phantom"
    ds.StudyDescription = f"Phantom {case.body_part}" + (" with lytic lesion" if case.lesion_box else "")
    ds.SeriesDescription = f"{case.body_part} {case.view.upper()}"
    ds.BodyPartExamined = case.body_part.upper()
    ds.ViewPosition = "AP" if case.view == "ap" else "LL"
    ds.StudyDate = "20240531"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelSpacing = [0.15, 0.15]
    ds.WindowCenter = 4095 - 1800 if monochrome1 else 1800
    ds.WindowWidth = 3000
    ds.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def normal_patch_for(case: PhantomCase, rng: np.random.Generator) -> Box:
    """A square on the bone shaft, away from the image edge, where a synthetic lesion could sit."""
    h, w = case.pixels.shape
    side = float(rng.integers(48, 72))
    cx = (case.bone_box.x0 + case.bone_box.x1) / 2.0
    cy = float(rng.uniform(0.25, 0.75)) * h
    x0 = min(max(cx - side / 2, 0.0), w - side)
    y0 = min(max(cy - side / 2, 0.0), h - side)
    return Box(x0, y0, x0 + side, y0 + side)


def build_demo_project(
    folder: str | Path,
    *,
    n_images: int = 96,
    lesion_fraction: float = 0.4,
    seed: int = DEMO_SEED,
    size: tuple[int, int] = (384, 320),
    progress: ProgressCallback = no_progress,
) -> Project:
    """Create the demo project in ``folder`` (or open it if it is already built) and return it."""
    from lesion_studio.dataset.importer import import_source
    from lesion_studio.dataset.splits import assign_splits

    folder = Path(folder).expanduser().resolve()
    if (folder / DB_NAME).exists():
        project = Project.open(folder)
        if project.get_setting(MARKER) == DEMO_VERSION:
            return project
        project.close()
        raise FileExistsError(f"{folder} holds a project that is not a finished demo project.")

    rng = np.random.default_rng(seed)
    image_dir = folder / "images"
    rows, box_rows = [], []
    for i in range(n_images):
        body_part = DEMO_BODY_PARTS[i % len(DEMO_BODY_PARTS)]
        lesion = bool(rng.random() < lesion_fraction)
        case = generate_phantom(int(rng.integers(0, 2**31)), body_part=body_part, lesion=lesion, size=size)
        name = f"{body_part}_{i:03d}.dcm"
        write_demo_dicom(case, image_dir / name, i, monochrome1=(i % 5 == 4))
        exclusions = "pediatric" if i % 23 == 22 else ""
        rows.append({"image": name, "label": "lesion" if lesion else "normal", "body_part": body_part,
                     "view": case.view, "group": f"DEMO-{i:03d}", "exclusions": exclusions,
                     "lesion_type": "lytic" if lesion else ""})
        if case.lesion_box is not None:
            box_rows.append({"image": name, "kind": "lesion", **_corners(case.lesion_box)})
        elif i % 2 == 0:
            box_rows.append({"image": name, "kind": "normal_patch", **_corners(normal_patch_for(case, rng))})
        progress(ProgressEvent("demo", i + 1, n_images, name))

    _write_csv(folder / "labels.csv", rows)
    _write_csv(folder / "boxes.csv", box_rows)
    project = Project.create(folder)
    import_source(project, image_dir, labels_csv=folder / "labels.csv", boxes_csv=folder / "boxes.csv",
                  author="phantom")
    assign_splits(project, seed=seed)
    project.set_setting(MARKER, DEMO_VERSION)
    log.info("built demo project with %d images in %s", n_images, folder)
    return project


def _corners(box: Box) -> dict[str, float]:
    return {"x0": box.x0, "y0": box.y0, "x1": box.x1, "y1": box.y1}


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields or ["image"])
        writer.writeheader()
        writer.writerows(rows)


def add_builtin_generators(project: Project) -> list[str]:
    """Register the built-in generators trained on the phantoms, so the Synthesis panel translates
    at once without training. Returns their registered names."""
    from lesion_studio.builtin_models import builtin_models, register_builtin

    names = []
    for model in builtin_models(kind="unit"):
        if model.body_parts and set(model.body_parts) <= set(DEMO_BODY_PARTS):
            names.append(register_builtin(project, model).name)
    return names

