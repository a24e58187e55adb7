"""PNG/JPEG/TIFF radiographs through Pillow.

EXIF orientation is deliberately *not* applied: curated data sets (FracAtlas among them) store
their images upright with boxes in the stored frame, so rotating again would misplace every box.
What is stored is what is shown and what boxes refer to.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from lesion_studio.errors import RadiographError
from lesion_studio.io.radiograph import Radiograph, check_pixel_count, max_pixels


def read_raster(path: Path) -> Radiograph:
    from PIL import Image, UnidentifiedImageError

    # Pillow's own bomb check (a warning above MAX_IMAGE_PIXELS, an error above twice that) follows
    # our limit; the size is checked again below, before anything is decoded.
    Image.MAX_IMAGE_PIXELS = max_pixels()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                check_pixel_count(path, *im.size)
                im.load()
                pixels = _to_gray_array(im)
    except Image.DecompressionBombError as exc:
        raise RadiographError(
            path, f"the image is far above the pixel limit ({exc})",
            "Downsample it, or raise the limit with the environment variable LESION_STUDIO_MAX_PIXELS",
        ) from exc
    except UnidentifiedImageError as exc:
        raise RadiographError(
            path, "the file is not a recognisable image", "Check that it is a PNG, JPEG or TIFF radiograph."
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise RadiographError(
            path, f"the image is damaged or truncated ({exc})", "Re-export or re-download the file."
        ) from exc

    if pixels.dtype == np.uint8:
        bits = 8
    else:
        peak = int(pixels.max()) if pixels.size else 0
        bits = max(8, min(16, int(peak).bit_length()))
        bits = 16 if bits > 12 else (12 if bits > 10 else (10 if bits > 8 else 8))
    hi = float(2**bits - 1)
    return Radiograph(
        path=path,
        pixels=pixels,
        bits_stored=bits,
        value_range=(0.0, hi),
        window=(hi / 2.0, hi + 1.0),
        modality="",
        photometric="MONOCHROME2",
        inverted=False,
        pixel_spacing_mm=None,
        tags={"Format": path.suffix.lstrip(".").upper(), "Bits stored": str(bits)},
        source_format="raster",
    )


def _to_gray_array(im) -> np.ndarray:  # noqa: ANN001 - PIL.Image.Image
    mode = im.mode
    if mode in ("L", "P", "1", "LA", "RGB", "RGBA", "CMYK", "YCbCr"):
        if mode != "L":
            im = im.convert("L")
        return np.asarray(im, dtype=np.uint8).copy()
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im).astype(np.uint16, copy=True)
    if mode in ("I", "F"):
        arr = np.asarray(im)
        if arr.min() >= 0 and arr.max() <= 65535:
            return arr.astype(np.uint16)
        arr = arr.astype(np.float64)
        arr = (arr - arr.min()) / max(1e-12, float(np.ptp(arr))) * 65535.0
        return arr.round().astype(np.uint16)
    return np.asarray(im.convert("L"), dtype=np.uint8).copy()
