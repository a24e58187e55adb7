"""The decoded radiograph every other module works on.

Orientation convention: ``Radiograph.pixels`` always shows bone bright. MONOCHROME1 DICOMs are
inverted across their value range (``lo + hi - v``), which is exact, keeps the native integer
dtype and bit depth, and is its own inverse. The display window is mapped the same way, so the
viewer, the patch sampler and the classifier never need to know about photometric interpretation.

Files are opened by :mod:`lesion_studio.io.reader`, which hands them to the DICOM or raster
decoder; both build this record, so this module imports neither (no import loop).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lesion_studio.errors import RadiographError

log = logging.getLogger(__name__)

#: Largest image decoded, in pixels (one frame): 64 MP is twice a 5,600 x 5,600 full-leg stitch.
#: A 0.5 MB PNG can claim 35,000 x 35,000 pixels and decode to 1.2 GB; the limit stops that
#: before any decoding. Raise it with the environment variable ``LESION_STUDIO_MAX_PIXELS``.
DEFAULT_MAX_PIXELS = 64_000_000
MAX_PIXELS_ENV = "LESION_STUDIO_MAX_PIXELS"


@dataclass
class Radiograph:
    """A decoded radiograph in bone-bright orientation at its native bit depth.

    ``value_range`` is the range the pixel values can take (from BitsStored and the modality
    LUT), not the range they happen to take; normalisation and inversion are defined on it so
    they are exact and reversible.
    """

    path: Path
    pixels: np.ndarray
    bits_stored: int
    value_range: tuple[float, float]
    window: tuple[float, float]  # (center, width) in pixel units, bone-bright orientation
    modality: str = ""
    photometric: str = "MONOCHROME2"
    inverted: bool = False
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column) spacing
    #: Where the spacing came from: "PixelSpacing", "ImagerPixelSpacing" (at the detector, see
    #: io/spacing.py) or "" (none known: lengths are in pixels).
    spacing_source: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    source_format: str = "dicom"

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    def window_levels(self) -> tuple[float, float]:
        """The display window as (low, high) levels, the form pyqtgraph's ``setLevels`` wants."""
        center, width = self.window
        return center - width / 2.0, center + width / 2.0


def max_pixels() -> int:
    """The pixel limit in force: ``LESION_STUDIO_MAX_PIXELS`` when set to a positive integer."""
    value = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(float(value))
    except ValueError:
        limit = 0
    if limit <= 0:
        log.warning("ignoring %s=%r (not a positive number of pixels)", MAX_PIXELS_ENV, value)
        return DEFAULT_MAX_PIXELS
    return limit


def check_pixel_count(path: Path, width: int, height: int) -> None:
    """Refuse, before decoding, an image larger than :func:`max_pixels`."""
    limit = max_pixels()
    if width <= 0 or height <= 0:
        raise RadiographError(path, f"the image claims a size of {width}x{height} pixels",
                              "The file is damaged; re-export it.")
    if width * height > limit:
        raise RadiographError(
            path, f"the image is {width}x{height} pixels ({width * height / 1e6:.0f} MP), above the limit of "
            f"{limit / 1e6:.0f} MP",
            f"Downsample it, or raise the limit with the environment variable {MAX_PIXELS_ENV} (pixels)",
        )

