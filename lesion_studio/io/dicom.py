"""DICOM decoding with pydicom 3 (plus pylibjpeg for the compressed transfer syntaxes).

Every DICOM byte goes through pydicom. pydicom's VOI LUT output is neither 0..1 nor inverted for
MONOCHROME1, so we do not use it for display: we apply the Modality LUT to get native values, keep
the DICOM window as numbers, and invert MONOCHROME1 ourselves (see :mod:`radiograph`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from lesion_studio.errors import RadiographError
from lesion_studio.io.radiograph import Radiograph, check_pixel_count

if TYPE_CHECKING:
    from pydicom import Dataset

log = logging.getLogger(__name__)

#: Tags a radiologist looks at, shown in the inspector (keyword -> label).
KEY_TAGS = {
    "PatientID": "Patient ID",
    "PatientAge": "Patient age",
    "PatientSex": "Patient sex",
    "StudyDescription": "Study",
    "SeriesDescription": "Series",
    "BodyPartExamined": "Body part",
    "ViewPosition": "View",
    "Modality": "Modality",
    "PhotometricInterpretation": "Photometric",
    "BitsStored": "Bits stored",
    "Manufacturer": "Manufacturer",
    "StudyDate": "Study date",
    "StudyInstanceUID": "Study UID",
    "SeriesInstanceUID": "Series UID",
    "SOPInstanceUID": "SOP UID",
    "TransferSyntaxUID": "Transfer syntax",
}


def _first(value: object) -> float | None:
    """WindowCenter/Width may be multi-valued; the first value is the default window."""
    if value is None or value == "":
        return None
    try:
        if hasattr(value, "__len__") and not isinstance(value, str | bytes):
            value = value[0]  # type: ignore[index]
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, IndexError):
        return None


def _spacing(ds: object) -> tuple[tuple[float, float] | None, str]:
    """(row, column) spacing in mm and the attribute it came from; PixelSpacing (calibrated to the
    patient) first, ImagerPixelSpacing (at the detector: see io/spacing.py) second."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = getattr(ds, keyword, None)
        if value is None:
            continue
        try:
            row, col = float(value[0]), float(value[1])
        except (TypeError, ValueError, IndexError):
            continue
        if row > 0 and col > 0 and math.isfinite(row) and math.isfinite(col):
            return (row, col), keyword
    return None, ""


def _truncated_element(ds: object, file_size: int) -> str:
    """Where a truncated file ends ('' when it does not look truncated). pydicom reads a cut-off file
    without complaint: the last element's value is shorter than its declared length, or a few bytes
    of the next element's header are left over and silently dropped."""
    from pydicom.dataelem import RawDataElement

    last_end, last_tag = 0, None
    for elem in getattr(ds, "_dict", {}).values():
        if not isinstance(elem, RawDataElement) or elem.length in (0xFFFFFFFF, None):
            continue
        if elem.value is not None and len(elem.value) < elem.length:
            return f"element {elem.tag}"
        if elem.value_tell is not None and elem.value_tell + elem.length > last_end:
            last_end, last_tag = elem.value_tell + elem.length, elem.tag
    if last_tag is not None and 0 < file_size - last_end < 8:
        return f"the element after {last_tag}"
    return ""


def read_dicom(path: Path) -> Radiograph:
    """Decode a DICOM radiograph; every failure is a :class:`RadiographError` naming the file."""
    try:
        return _read_dicom(path)
    except RadiographError:
        raise
    except Exception as exc:
        # Damaged bytes (a RescaleSlope of "1.x", an unknown VR, a negative BitsStored...) surface
        # deep inside pydicom and numpy with whatever exception type they happen to raise; the
        # seeded fuzz test (tests/test_fuzz_dicom.py) found several. The file is the problem.
        log.debug("reading %s failed", path, exc_info=True)
        raise RadiographError(path, f"the DICOM attributes are invalid ({type(exc).__name__}: {exc})",
                              "Re-export the image from the PACS.") from exc


def _repaired_lossy_jpeg(ds: object, path: Path, tsuid: str) -> np.ndarray | None:
    """A lossy JPEG whose only fault is the known malformed scan header (the WG-04 12-bit
    samples), decoded after the repair in :mod:`jpeg_lossy`; None for any other failure."""
    from lesion_studio.io.jpeg_lossy import LOSSY_JPEG_SYNTAXES, NotRepairable, decode_repaired

    if tsuid not in LOSSY_JPEG_SYNTAXES:
        return None
    try:
        raw = decode_repaired(ds)
    except NotRepairable as exc:
        log.info("%s: lossy JPEG not repaired: %s", path, exc)
        return None
    except Exception:  # noqa: BLE001 - the repaired stream is damaged elsewhere: the usual message
        log.debug("decoding the repaired %s failed", path, exc_info=True)
        return None
    log.info("%s: lossy JPEG with a malformed scan header (Ss/Se) decoded after repairing it", path.name)
    return raw


def _raise_undecodable(path: Path, tsuid: str, exc: BaseException) -> NoReturn:
    import pydicom

    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    reason = "; ".join(lines[1:] if len(lines) > 1 else lines) or type(exc).__name__
    # decoder messages (libjpeg error codes, plugin names) go to the log, not to the reader
    log.info("%s: pixel data not decoded (%s): %s", path, tsuid, " ".join(str(exc).split()))
    log.debug("decoding %s failed", path, exc_info=True)
    if "less than expected" in reason:
        raise RadiographError(path, f"the file is truncated: its pixel data ends early ({reason})",
                              "Copy or download the file again.") from exc
    try:
        syntax = pydicom.uid.UID(tsuid).name
    except Exception:  # noqa: BLE001 - an unknown UID has no name
        syntax = "unknown compression"
    raise RadiographError(
        path,
        f"the image could not be decoded: its compressed pixel data ({syntax}, {tsuid}) is damaged or in a "
        "form this app cannot read",
        "Re-export it from the PACS uncompressed or as JPEG 2000 lossless.",
    ) from exc


def _read_dicom(path: Path) -> Radiograph:
    from pydicom.pixels import apply_modality_lut

    ds = _open_dataset(path)
    _check_pixel_data(ds, path)
    raw, tsuid = _first_frame(ds, path)
    pixels = apply_modality_lut(raw, ds)
    if pixels.dtype.kind == "f" and np.array_equal(pixels, np.round(pixels)):
        lo_v, hi_v = float(pixels.min()), float(pixels.max())
        pixels = pixels.astype(np.uint16 if lo_v >= 0 and hi_v < 65536 else np.int32)

    bits, value_range = _value_range(ds, raw)
    center = _first(getattr(ds, "WindowCenter", None))
    width = _first(getattr(ds, "WindowWidth", None))
    if center is None or width is None or width <= 0:
        center, width = (value_range[0] + value_range[1]) / 2.0, value_range[1] - value_range[0]

    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).strip()
    inverted = photometric == "MONOCHROME1"
    if inverted:
        pixels = _inverted(pixels, value_range)
        center = value_range[0] + value_range[1] - center

    spacing, spacing_source = _spacing(ds)
    tags = {}
    for keyword, label in KEY_TAGS.items():
        value = tsuid if keyword == "TransferSyntaxUID" else getattr(ds, keyword, None)
        if value not in (None, ""):
            tags[label] = str(value)
    return Radiograph(
        path=path,
        pixels=pixels,
        bits_stored=bits,
        value_range=value_range,
        window=(float(center), float(width)),
        modality=str(getattr(ds, "Modality", "") or ""),
        photometric=photometric,
        inverted=inverted,
        pixel_spacing_mm=spacing,
        spacing_source=spacing_source,
        tags=tags,
        source_format="dicom",
    )


def _open_dataset(path: Path) -> Dataset:
    """The file's dataset (pixels not decoded yet); a file that is not DICOM, or whose header is
    damaged, is a :class:`RadiographError`."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path)
    except InvalidDicomError as exc:  # pydicom's text advises "force=True": not for a reader
        log.info("%s: pydicom: %s", path, exc)
        raise RadiographError(
            path, "not a DICOM file (it has no DICOM header)",
            "Export the image from the PACS as a DICOM file (Part 10), or import PNG/JPEG instead.",
        ) from exc
    except Exception as exc:  # truncated headers raise a zoo of exceptions inside pydicom
        raise RadiographError(
            path, f"the DICOM header is damaged ({type(exc).__name__}: {exc})", "Re-export the image from the PACS."
        ) from exc


def _check_pixel_data(ds: Dataset, path: Path) -> None:
    """Refuse a file cut short, or a DICOM object with no pixel data (a report, an SR), saying which."""
    truncated = _truncated_element(ds, path.stat().st_size)
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        if truncated or len(ds) == 0:
            raise RadiographError(
                path, f"the file is truncated (it ends inside {truncated or 'its header'}, before the pixel data)",
                "Copy or download the file again.",
            )
        if "Rows" in ds:  # an image header without its pixels: cut off exactly at an element boundary?
            raise RadiographError(path, "the DICOM image has no pixel data (the file may have been cut short)",
                                  "Copy or download the file again.")
        raise RadiographError(
            path, "the DICOM file has no pixel data (it may be a report or a structured document)",
            "Choose an image object (CR, DX, ...).",
        )
    if truncated:
        raise RadiographError(path, f"the file is truncated (it ends inside {truncated})",
                              "Copy or download the file again.")


def _first_frame(ds: Dataset, path: Path) -> tuple[np.ndarray, str]:
    """The stored values of the first frame as a 2-D array (colour averaged to grey), and the
    transfer syntax UID; its size is checked before anything is decoded."""
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError) as exc:
        raise RadiographError(path, f"the image size is missing or invalid ({exc})",
                              "Re-export the image from the PACS.") from exc
    check_pixel_count(path, columns, rows)
    tsuid = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown"))
    try:
        if frames > 1:
            # Radiographs are single-frame: decode the first frame only, never all of them
            # (a 400-frame file would otherwise take gigabytes).
            from pydicom.pixels import pixel_array

            log.info("%s has %d frames; using the first", path.name, frames)
            raw = pixel_array(ds, index=0)
        else:
            raw = ds.pixel_array
    except Exception as exc:
        repaired = _repaired_lossy_jpeg(ds, path, tsuid)
        if repaired is None:
            _raise_undecodable(path, tsuid, exc)
        raw = repaired

    if raw.ndim == 3 and int(getattr(ds, "SamplesPerPixel", 1)) > 1:
        raw = raw[..., :3].mean(axis=-1)
    elif raw.ndim == 3:  # frames not declared in NumberOfFrames: still take the first
        raw = raw[0]
    if raw.ndim != 2:
        raise RadiographError(path, f"unexpected pixel array shape {raw.shape}", "Choose a 2-D radiograph.")
    return raw, tsuid


def _value_range(ds: Dataset, raw: np.ndarray) -> tuple[int, tuple[float, float]]:
    """Bits stored, and the range of values they can hold after the Modality LUT (rescale)."""
    bits = int(getattr(ds, "BitsStored", 8 * raw.dtype.itemsize))
    signed = int(getattr(ds, "PixelRepresentation", 0)) == 1
    stored_lo, stored_hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    ends = sorted((stored_lo * slope + intercept, stored_hi * slope + intercept))
    return bits, (float(ends[0]), float(ends[1]))


def _inverted(pixels: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """MONOCHROME1 turned to MONOCHROME2 within ``value_range``: in the pixels' own dtype when
    the sum of the range's ends fits it."""
    lo, hi = value_range
    total = lo + hi
    info = np.iinfo(pixels.dtype) if pixels.dtype.kind in "iu" else None
    if info is not None and info.min <= total <= info.max and lo >= info.min:
        # In place and in the native dtype: no int64 temporaries for a 2,000² image.
        if not pixels.flags.writeable:
            pixels = pixels.copy()
        np.subtract(pixels.dtype.type(total), pixels, out=pixels)
        return pixels
    if info is not None:
        return (np.int64(total) - pixels).astype(pixels.dtype, copy=False)
    return (lo + hi) - pixels
