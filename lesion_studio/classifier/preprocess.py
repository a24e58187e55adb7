"""Whole-image preprocessing for the classifier, in numpy + Pillow only (no torch).

The paper classifies full, uncropped radiographs. Every image (DICOM, JPEG, or a synthetic PNG) is
brought to one form: intensities mapped by the image's own 0.5–99.5 percentiles to [0, 1] (robust
to bit depth, exposure and DICOM-vs-JPEG origin, and a pasted lesion barely moves them), the
longer side resized to ``size`` keeping the aspect ratio (Pillow's antialiased bilinear), padded to a
``size``×``size`` square with background, and standardised. Training, scoring and the ONNX runtime
all call :func:`prepare`, so the model sees identical inputs everywhere.

Decoding a 1024-px JPEG or a 12-bit DICOM dominates an epoch on CPU, so prepared arrays are cached:
in memory per process and as ``.npy`` files on disk keyed by the image's content hash and the
preprocessing settings (a later stage or run never decodes the same image twice).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lesion_studio.errors import LesionStudioError
from lesion_studio.files import atomic_path

log = logging.getLogger(__name__)

MEAN = 0.5
STD = 0.25
#: The value padding and affine fill take after standardisation (black background).
BACKGROUND = (0.0 - MEAN) / STD


@dataclass(frozen=True)
class Preprocessing:
    size: int = 160
    low_percentile: float = 0.5
    high_percentile: float = 99.5
    #: Crop to the exposed body region (see :func:`body_region`) before resizing.
    crop_to_body: bool = False

    def __post_init__(self) -> None:
        if not 16 <= self.size <= 2048:
            raise LesionStudioError(f"The classifier input size must be 16–2048 pixels, not {self.size}.")
        if not 0 <= self.low_percentile < self.high_percentile <= 100:
            raise LesionStudioError("Preprocessing percentiles must satisfy 0 <= low < high <= 100.")

    @property
    def tag(self) -> str:
        """A short, stable name for these settings (part of every cache key)."""
        d = asdict(self)
        if not d["crop_to_body"]:
            d.pop("crop_to_body")  # the tag of settings made before the option existed stays the same
        text = json.dumps(d, sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=5).hexdigest()

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def normalise_intensity(pixels: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """Map the image's low/high percentiles to 0/1 (clipped), float32."""
    img = np.asarray(pixels, dtype=np.float32)
    sample = img[:: max(1, img.shape[0] // 256), :: max(1, img.shape[1] // 256)]
    lo, hi = np.percentile(sample, [prep.low_percentile, prep.high_percentile])
    if hi <= lo:
        return np.zeros_like(img)
    return np.clip((img - lo) / (hi - lo), 0.0, 1.0)


def body_region(img01: np.ndarray, *, level: float = 0.12, min_fraction: float = 0.02,
                margin: float = 0.03) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the exposed anatomy in a [0, 1] image; the whole image when unsure.

    Radiographs carry wide empty borders (air, collimation, the scanner's padding). A row or column
    belongs to the body when more than ``min_fraction`` of its pixels are brighter than ``level``;
    the box spans the first to the last such row and column, plus a small margin. A pasted
    synthetic lesion sits inside the anatomy, so it never moves this box.
    """
    h, w = img01.shape
    bright = img01 > level
    rows = np.flatnonzero(bright.mean(axis=1) > min_fraction)
    cols = np.flatnonzero(bright.mean(axis=0) > min_fraction)
    if rows.size == 0 or cols.size == 0:
        return 0, h, 0, w
    my, mx = round(margin * h), round(margin * w)
    y0, y1 = max(0, rows[0] - my), min(h, rows[-1] + 1 + my)
    x0, x1 = max(0, cols[0] - mx), min(w, cols[-1] + 1 + mx)
    if (y1 - y0) * (x1 - x0) < 0.1 * h * w:  # implausibly small: a label or marker, not the body
        return 0, h, 0, w
    return int(y0), int(y1), int(x0), int(x1)


def fit_square(img01: np.ndarray, size: int) -> np.ndarray:
    """Resize the longer side to ``size`` (aspect kept) and centre on a ``size``² black square."""
    from PIL import Image

    h, w = img01.shape
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = np.asarray(Image.fromarray(img01.astype(np.float32), mode="F").resize(
        (nw, nh), Image.Resampling.BILINEAR), dtype=np.float32)
    out = np.zeros((size, size), dtype=np.float32)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = resized
    return out


def prepare(pixels: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """Native-dtype bone-bright pixels → standardised float32 (size, size) model input."""
    if pixels.ndim != 2:
        raise LesionStudioError(f"Expected a single-channel image, got an array of shape {pixels.shape}.")
    img = normalise_intensity(pixels, prep)
    if prep.crop_to_body:
        y0, y1, x0, x1 = body_region(img)
        img = img[y0:y1, x0:x1]
    return (fit_square(img, prep.size) - MEAN) / STD


def prepare_file(path: str | Path, prep: Preprocessing) -> np.ndarray:
    from lesion_studio.io import open_radiograph

    return prepare(open_radiograph(path).pixels, prep)


class PreparedCache:
    """Prepared arrays by key (an image's sha256, or a synthetic sample's file hash).

    Stored as float16 (half the memory; the model's inputs do not need more precision).
    ``folder=None`` keeps the cache in memory only.
    """

    def __init__(self, prep: Preprocessing, folder: Path | None = None) -> None:
        self.prep = prep
        self.folder = Path(folder) / prep.tag if folder else None
        self._memory: dict[str, np.ndarray] = {}
        if self.folder:
            self.folder.mkdir(parents=True, exist_ok=True)

    def _file(self, key: str) -> Path | None:
        return self.folder / f"{key}.npy" if self.folder else None

    def get(self, key: str, path: str | Path) -> np.ndarray:
        if key in self._memory:
            return self._memory[key]
        file = self._file(key)
        arr: np.ndarray | None = None
        if file is not None and file.exists():
            try:
                arr = np.load(file, allow_pickle=False)
                if arr.shape != (self.prep.size, self.prep.size):
                    arr = None
            except (OSError, ValueError):
                arr = None
        if arr is None:
            arr = prepare_file(path, self.prep).astype(np.float16)
            if file is not None:
                with atomic_path(file) as tmp:
                    np.save(tmp, arr, allow_pickle=False)
        self._memory[key] = arr
        return arr

    def stack(
        self, items: Sequence[tuple[str, str | Path]], *, threads: int | None = None,
        on_item: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """(N, size, size) float16 for ``(key, path)`` items, decoding misses in parallel threads."""
        out = np.empty((len(items), self.prep.size, self.prep.size), dtype=np.float16)
        if not items:
            return out
        workers = threads or min(8, os.cpu_count() or 2)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for i, arr in enumerate(pool.map(lambda kp: self.get(*kp), items)):
                out[i] = arr
                if on_item:
                    on_item(i + 1)
        return out
