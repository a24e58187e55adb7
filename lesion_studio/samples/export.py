"""Export kept synthetic samples as PNG (with a JSON sidecar) or as DICOM.

A synthetic DICOM must never pass for an acquisition: it is marked DERIVED with a derivation
description, it gets new Study/Series/SOP UIDs, and patient-identifying attributes and private
tags are removed (a subset of the DICOM PS3.15 basic de-identification profile that covers what a
CR/DX header carries). The provenance travels in the sidecar and in the DICOM's ImageComments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lesion_studio.io.radiograph import is_probably_dicom
from lesion_studio.samples.storage import encode_png, load_sample_pixels
from lesion_studio.store.project import Project, atomic_write_bytes
from lesion_studio.store.records import SyntheticSample

#: Attributes removed from a synthetic DICOM (identify the patient, the staff or the site).
IDENTIFYING = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "PatientAddress", "PatientTelephoneNumbers",
    "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "PatientMotherBirthName", "MilitaryRank",
    "EthnicGroup", "PatientComments", "MedicalRecordLocator", "ReferringPhysicianName",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers", "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy", "OperatorsName", "PhysiciansOfRecord", "RequestingPhysician",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName", "DeviceSerialNumber",
    "AccessionNumber", "StudyID", "RequestAttributesSequence", "AdmissionID", "IssuerOfPatientID",
    "PatientInsurancePlanCodeSequence", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate",
    "StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime", "AcquisitionDateTime", "PatientWeight",
    "PatientSize", "Occupation", "AdditionalPatientHistory",
)


def _sidecar(project: Project, sample: SyntheticSample) -> dict[str, Any]:
    return {"sample_id": sample.id, "status": sample.status, "score": sample.score, "batch": sample.batch,
            "model_id": sample.model_id, "n": sample.n, "seed": sample.seed,
            "window": list(sample.box.as_tuple()), "provenance": sample.provenance, "synthetic": True}


def export_sample_png(project: Project, sample: SyntheticSample, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    pixels = load_sample_pixels(project, sample)
    meta = _sidecar(project, sample)
    path = out_dir / f"synthetic_{sample.id:06d}.png"
    atomic_write_bytes(path, encode_png(pixels, {"lesion_studio_provenance": json.dumps(meta)}))
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(meta, indent=1).encode())
    return path


def export_sample_dicom(project: Project, sample: SyntheticSample, out_dir: str | Path) -> Path:
    """Write a de-identified DERIVED DICOM of the sample (MONOCHROME2, bone bright, native depth)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    out_dir = Path(out_dir)
    pixels = load_sample_pixels(project, sample)
    source = project.image(sample.source_image_id)
    meta = _sidecar(project, sample)

    if source.abs_path.exists() and is_probably_dicom(source.abs_path):
        ds = pydicom.dcmread(source.abs_path, stop_before_pixels=True)
        sop_class = ds.get("SOPClassUID", SecondaryCaptureImageStorage)
    else:
        ds = Dataset()
        sop_class = SecondaryCaptureImageStorage
        ds.Modality = "OT"
        ds.ConversionType = "WSD"
    for keyword in IDENTIFYING:
        if keyword in ds:
            delattr(ds, keyword)
    ds.remove_private_tags()
    for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType", "VOILUTSequence", "ModalityLUTSequence",
                    "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod"):
        if keyword in ds:
            delattr(ds, keyword)

    ds.PatientName = "SYNTHETIC^LESION"
    ds.PatientID = f"SYN-{sample.id:06d}"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "Lesion Studio synthetic: identifiers removed"
    ds.BurnedInAnnotation = "NO"
    ds.ImageType = ["DERIVED", "SECONDARY", "SYNTHETIC"]
    ds.DerivationDescription = (
        f"Synthetic lesion (UNIT translation, cosine blend n={sample.n:g}, seed {sample.seed}) "
        f"in a normal radiograph; model {sample.model_id}"
    )[:1024]
    ds.ImageComments = json.dumps(meta)[:10240]
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.SOPClassUID = sop_class
    ds.SeriesDescription = "Lesion Studio synthetic sample"
    ds.SeriesNumber = 9900
    ds.InstanceNumber = 1

    bits = max(8, int(source.bits_stored or 8))
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8 if pixels.dtype == np.uint8 else 16
    ds.BitsStored = min(bits, ds.BitsAllocated)
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    hi = 2 ** ds.BitsStored - 1
    ds.WindowCenter = hi / 2
    ds.WindowWidth = hi + 1
    data = pixels.astype(np.uint8 if ds.BitsAllocated == 8 else np.uint16).tobytes()
    ds.add_new(0x7FE00010, "OB" if ds.BitsAllocated == 8 else "OW", data)  # explicit VR: no ambiguity

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = file_meta
    path = out_dir / f"synthetic_{sample.id:06d}.dcm"
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    ds.save_as(tmp, enforce_file_format=True)
    tmp.replace(path)
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(meta, indent=1).encode())
    return path
