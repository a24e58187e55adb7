"""Lengths in millimetres from pixel spacing, and what each kind of spacing means.

DICOM gives a radiograph's pixel size in one of two attributes:

- ``PixelSpacing`` (0028,0030): calibrated to the patient (the modality or a person corrected for
  the projection's magnification). Lengths with it are lengths in the patient.
- ``ImagerPixelSpacing`` (0018,1164): the detector's pixel pitch. A projection radiograph magnifies
  the anatomy by source-to-detector / source-to-object distance, so a length measured with it is
  the length at the detector, larger than the anatomy by that factor (often 5-20 %), and it must
  be read as such. The app says so wherever it shows such a length.

Without either (PNG/JPEG, or a DICOM without spacing, like the WG-04 RG3 study) lengths are in
pixels, and the app says that too: never a number in millimetres it cannot back.
"""

from __future__ import annotations

import math

PIXEL_SPACING = "PixelSpacing"
IMAGER_PIXEL_SPACING = "ImagerPixelSpacing"

CAVEATS = {
    PIXEL_SPACING: "",
    IMAGER_PIXEL_SPACING: "at the detector (ImagerPixelSpacing): not corrected for the projection's "
                          "magnification, so longer than in the patient",
    "": "no pixel spacing in this image: lengths in pixels",
}


def length_mm(dx_px: float, dy_px: float, spacing: tuple[float, float] | None) -> float | None:
    """The length of a (dx, dy) pixel vector in mm; spacing is (row, column) mm per pixel."""
    if spacing is None:
        return None
    row, col = spacing
    return math.hypot(dx_px * col, dy_px * row)


def size_text(width_px: float, height_px: float, spacing: tuple[float, float] | None, source: str) -> str:
    """A box's size as a reader should see it: mm (marked when at the detector) or pixels."""
    if spacing is None:
        return f"{width_px:.0f} × {height_px:.0f} px (no spacing)"
    row, col = spacing
    mark = "*" if source == IMAGER_PIXEL_SPACING else ""
    return f"{width_px * col:.1f} × {height_px * row:.1f} mm{mark}"


def length_text(length_px: float, length_in_mm: float | None, source: str) -> str:
    """A ruler's length: "12.3 mm", "12.3 mm*" at the detector, or "45.0 px" without spacing."""
    if length_in_mm is None:
        return f"{length_px:.1f} px"
    return f"{length_in_mm:.1f} mm" + ("*" if source == IMAGER_PIXEL_SPACING else "")


def caveat(source: str) -> str:
    """The sentence to show beside lengths measured with spacing from ``source`` ("" for none)."""
    return CAVEATS.get(source, CAVEATS[""])
