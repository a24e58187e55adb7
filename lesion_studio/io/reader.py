"""Opening radiograph files: recognise DICOM or raster and hand the file to its decoder.

The decoders (:mod:`~lesion_studio.io.dicom`, :mod:`~lesion_studio.io.raster`) build a
:class:`~lesion_studio.io.radiograph.Radiograph`; this module sits above them, so the package's
imports run one way: reader → dicom / raster → radiograph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lesion_studio.errors import RadiographError
from lesion_studio.io.dicom import read_dicom
from lesion_studio.io.radiograph import Radiograph
from lesion_studio.io.raster import read_raster

RASTER_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
DICOM_SUFFIXES = {".dcm", ".dicom", ".dic", ""}


def is_probably_dicom(path: Path) -> bool:
    """A DICOM Part 10 file has 'DICM' at byte 128; headerless ones are recognised by suffix."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if len(head) == 132 and head[128:132] == b"DICM":
        return True
    return path.suffix.lower() in {".dcm", ".dicom", ".dic"}


def open_radiograph(path: str | Path) -> Radiograph:
    """Decode a DICOM, PNG, JPEG or TIFF radiograph.

    Raises :class:`RadiographError` (never anything else) for files that cannot be used.
    """
    path = Path(path)
    if not path.exists():
        raise RadiographError(path, "the file does not exist", "Check the path, or re-link the image folder.")
    if path.is_dir():
        raise RadiographError(path, "this is a folder, not an image file", "Choose an image file.")
    if is_probably_dicom(path):
        return read_dicom(path)
    if path.suffix.lower() in RASTER_SUFFIXES:
        return read_raster(path)
    raise RadiographError(
        path,
        "this is neither a DICOM file nor a PNG/JPEG/TIFF image",
        "Lesion Studio opens DICOM (.dcm), PNG, JPEG and TIFF radiographs.",
    )


def read_size(path: str | Path) -> tuple[int, int]:
    """(width, height) without decoding the pixels, for fast listings."""
    path = Path(path)
    try:
        if is_probably_dicom(path):
            import pydicom

            ds = pydicom.dcmread(path, stop_before_pixels=True)
            return int(ds.Columns), int(ds.Rows)
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except Exception as exc:  # pydicom and Pillow raise many types for damaged or huge files
        raise RadiographError(path, f"the image size cannot be read ({type(exc).__name__}: {exc})",
                              "Check that the file is a complete DICOM, PNG, JPEG or TIFF image") from exc


def read_source_header(path: Path) -> Any | None:
    """The source's header (no pixels), or None when the source is not a readable DICOM."""
    import pydicom

    if not (path.exists() and is_probably_dicom(path)):
        return None
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:  # an unreadable header only means there is nothing to keep from it
        return None
