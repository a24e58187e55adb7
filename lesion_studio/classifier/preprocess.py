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

    def __post_init__(self) -> None:
        if not 16 <= self.size <= 2048:
            raise LesionStudioError(f"The classifier input size must be 16–2048 pixels, not {self.size}.")
        if not 0 <= self.low_percentile < self.high_percentile <= 100:
            raise LesionStudioError("Preprocessing percentiles must satisfy 0 <= low < high <= 100.")

    @property
    def tag(self) -> str:
        """A short, stable name for these settings (part of every cache key)."""
        text = json.dumps(asdict(self), sort_keys=True)
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
    return (fit_square(normalise_intensity(pixels, prep), prep.size) - MEAN) / STD


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
                tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp.npy")
                np.save(tmp, arr, allow_pickle=False)
                os.replace(tmp, file)
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
