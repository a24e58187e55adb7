"""De-identification of everything that leaves a project with a synthetic sample.

Why an allow-list and not a de-identifier that edits the source header: a synthetic image needs
about twenty attributes (pixel module, spacing, modality, display window). Building a *new*
dataset from those, instead of deleting what a profile lists from a copy of the source, means an
attribute nobody thought of (a vendor's free-text field, a nested sequence such as
OriginalAttributesSequence, an overlay or curve group, a private tag, an attribute added to the
standard next year) cannot reach the output at all. That is the effect PS3.15 Annex E's Basic
Application Level Confidentiality Profile asks for (every attribute it lists is absent or
replaced by a dummy; UIDs are new), and stricter than it: the profile's "keep" actions for
descriptors do not apply because no descriptor is copied. Maintained de-identifiers such as
dicognito were considered: they pseudonymise *in place* (replacing names, IDs, dates and UIDs
consistently across a study) and leave every attribute they do not know untouched, which is the
right tool for sharing real studies but weaker than an allow-list for a synthetic image that needs
nothing of its source's identity.

The same rule holds for the JSON sidecars and PNG text chunks: provenance is rebuilt from named
fields and refers to the source by project image id and content hash, never by file name or path.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

#: Modality codes copied from a source; anything else becomes OT (other).
MODALITIES = frozenset({"CR", "DX", "RG", "MG", "IO", "PX", "XA", "RF", "CT", "MR", "US", "NM", "PT", "OT"})
_LATERALITY = frozenset({"L", "R", "U", "B"})
_ORIENTATION = re.compile(r"^[APLRHF]{1,3}$")

#: What was done, as PS3.16 CID 7050 codes (DeidentificationMethodCodeSequence).
DEID_CODES = (("113100", "DCM", "Basic Application Confidentiality Profile"),)
#: DeidentificationMethod (LO, one value per step, each at most 64 characters).
DEID_METHOD = (
    "PS3.15 Annex E Basic Application Confidentiality Profile",
    "Lesion Studio allow-list: new dataset, pixel/geometry only",
    "New Study, Series, SOP and Frame of Reference UIDs",
    "No dates, descriptions, sequences, overlays, curves, private",
)


def _safe_spacing(value: object) -> list[float] | None:
    try:
        row, col = float(value[0]), float(value[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return None
    return [round(row, 6), round(col, 6)] if 0 < row < 100 and 0 < col < 100 else None


def allowed_source_attributes(source: Any | None) -> dict[str, Any]:
    """The few attributes of a source DICOM a synthetic image keeps, each re-typed or checked
    against its enumerated values so that no free text can ride along."""
    out: dict[str, Any] = {"Modality": "OT"}
    if source is None:
        return out
    modality = str(getattr(source, "Modality", "") or "").strip().upper()
    if modality in MODALITIES:
        out["Modality"] = modality
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        spacing = _safe_spacing(getattr(source, keyword, None))
        if spacing is not None:
            out[keyword] = spacing
    for keyword in ("ImageLaterality", "Laterality"):
        value = str(getattr(source, keyword, "") or "").strip().upper()
        if value in _LATERALITY:
            out[keyword] = value
    orientation = getattr(source, "PatientOrientation", None)
    if orientation is not None:
        values = [orientation] if isinstance(orientation, str | bytes) else list(orientation)
        parts = [str(p).strip().upper() for p in values]
        if len(parts) == 2 and all(_ORIENTATION.match(p) for p in parts):
            out["PatientOrientation"] = parts
    return out


def public_provenance(sample: Any) -> dict[str, Any]:
    """The provenance a sidecar, a PNG text chunk or ImageComments may carry (allow-listed).

    The source is named by project image id and content hash; the model by id, name and hash.
    Anything else a stored provenance holds (paths of older versions, free text) is dropped.
    """
    prov = dict(getattr(sample, "provenance", None) or {})
    model = prov.get("model") if isinstance(prov.get("model"), dict) else {}
    source = prov.get("source") if isinstance(prov.get("source"), dict) else {}
    return {
        "sample_id": sample.id, "status": sample.status, "score": sample.score, "batch": sample.batch,
        "model_id": sample.model_id, "n": sample.n, "seed": sample.seed, "window": list(sample.box.as_tuple()),
        "synthetic": True,
        "provenance": {
            "source_image_id": sample.source_image_id,
            "source_sha256": str(prov.get("source_sha256") or source.get("sha256") or ""),
            "model": {k: model.get(k) for k in ("id", "name", "sha256", "resolution", "backend") if k in model},
            "n": prov.get("n", sample.n), "seed": prov.get("seed", sample.seed),
            "window": list(sample.box.as_tuple()), "direction": str(prov.get("direction", "")),
            "blend": str(prov.get("blend", "paper")), "translation": str(prov.get("translation", "direct")),
            "stochastic": bool(prov.get("stochastic", False)),
            "created": str(prov.get("created") or getattr(sample, "created_at", "")),
            "batch_settings": _plain(prov.get("batch_settings"), _BATCH_KEYS),
        },
    }


_BATCH_KEYS = ("sources", "n_range", "batch_seed", "body_parts", "split")


def _plain(value: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """The named keys of a settings dictionary, with numbers, and short codes or lists of them only."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, Any] = {}
    for key in keys:
        item = value.get(key)
        if isinstance(item, bool | int | float) or (isinstance(item, str) and len(item) <= 32):
            out[key] = item
        elif isinstance(item, list) and all(isinstance(v, int | float | str) and len(str(v)) <= 32 for v in item):
            out[key] = list(item)
    return out


def stored_provenance(provenance: dict[str, Any]) -> dict[str, Any]:
    """A stored provenance with any file path or file name removed (kept in the database and the
    project's PNG text chunk). Recursive, so nested ``source`` dictionaries are cleaned too."""
    out: dict[str, Any] = {}
    for key, value in provenance.items():
        if key in ("path", "source_image", "file_name", "filename", "source_path"):
            continue
        out[key] = stored_provenance(value) if isinstance(value, dict) else value
    return out


def hashed_group_key(identifier: str, salt: str) -> str:
    """A salted one-way hash of a patient or study identifier, used as the split group key.

    Images of one patient/study still share a key (so they land in one split), but the key cannot
    be turned back into the identifier, and with a per-project salt it cannot be matched against
    a list of known identifiers either.
    """
    if not identifier:
        return ""
    digest = hashlib.sha256(f"{salt}\x00{identifier}".encode()).hexdigest()
    return f"g-{digest[:24]}"


def deidentified_dicom(pixels: Any, source: Any | None, *, bits_stored: int, patient_id: str, synthetic: bool,
                       comments: str, derivation: str, window: tuple[float, float] | None = None,
                       rescale_intercept: float = 0.0) -> Any:
    """A new DICOM dataset for ``pixels`` (uint8/uint16, bone bright) that keeps of ``source`` only
    :func:`allowed_source_attributes`: the one allow-list behind every DICOM that leaves a project
    (synthetic samples and the de-identified copies of ``export --deidentify``).

    It is a Secondary Capture with new Study, Series, SOP and Frame of Reference UIDs, dummy or
    empty patient and study attributes (PS3.15 action Z), ``PatientIdentityRemoved`` YES and the
    de-identification method and code. ``synthetic``: ConversionType SYN and ImageType
    DERIVED/SECONDARY/SYNTHETIC; else a workstation copy (WSD, DERIVED/SECONDARY). ``window``:
    the display window (center, width) in stored units after ``rescale_intercept``; default the
    full range.
    """
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    ds = Dataset()
    for keyword, value in allowed_source_attributes(source).items():
        setattr(ds, keyword, value)
    ds.PatientName = "SYNTHETIC^LESION" if synthetic else "ANONYMOUS"
    ds.PatientID = patient_id
    for keyword in ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "ReferringPhysicianName",
                    "StudyID", "AccessionNumber", "Manufacturer", "PositionReferenceIndicator"):
        setattr(ds, keyword, "")
    if "PatientOrientation" not in ds:
        ds.PatientOrientation = ""
    ds.PatientIdentityRemoved = "YES"
    ds.LongitudinalTemporalInformationModified = "REMOVED"
    ds.DeidentificationMethod = list(DEID_METHOD)
    codes = []
    for value, scheme, meaning in DEID_CODES:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
        codes.append(item)
    ds.DeidentificationMethodCodeSequence = codes
    ds.BurnedInAnnotation = "NO"
    ds.ConversionType = "SYN" if synthetic else "WSD"
    ds.SecondaryCaptureDeviceManufacturer = "Lesion Studio"
    ds.ImageType = ["DERIVED", "SECONDARY", "SYNTHETIC"] if synthetic else ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = derivation[:1024]
    ds.ImageComments = comments[:10240]
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SeriesDescription = "Lesion Studio synthetic sample" if synthetic else "Lesion Studio de-identified copy"
    ds.SeriesNumber = 9900 if synthetic else 9901
    ds.InstanceNumber = 1

    pixels = np.asarray(pixels)
    bits = max(8, int(bits_stored or 8))
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8 if pixels.dtype == np.uint8 else 16
    ds.BitsStored = min(bits, ds.BitsAllocated)
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if rescale_intercept:
        ds.RescaleIntercept, ds.RescaleSlope = rescale_intercept, 1
    if window is None:
        hi = 2 ** ds.BitsStored - 1
        window = (hi / 2 + rescale_intercept, hi + 1)
    ds.WindowCenter, ds.WindowWidth = float(window[0]), float(window[1])
    data = pixels.astype(np.uint8 if ds.BitsAllocated == 8 else np.uint16).tobytes()
    ds.add_new(0x7FE00010, "OB" if ds.BitsAllocated == 8 else "OW", data)  # explicit VR: no ambiguity

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = file_meta
    return ds
