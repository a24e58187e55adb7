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
from lesion_studio.files import atomic_path, atomic_write_json

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


@dataclass(frozen=True)
class InputFrame:
    """Where a radiograph's pixels landed in the prepared square model input.

    Preprocessing crops (``crop_to_body``), resizes and pads; this records that mapping so that
    lesion boxes can be drawn into the input frame (the lesion map's training target) and maps
    computed in the input frame can be laid back over the radiograph (the viewer, the gallery,
    the quality report's pointing test). Source pixel (x, y) lands at input
    ``((x - crop_x0) * scale_x + pad_x, (y - crop_y0) * scale_y + pad_y)``.
    """

    size: int
    source_height: int
    source_width: int
    crop_y0: int = 0
    crop_x0: int = 0
    crop_height: int = 0
    crop_width: int = 0
    pad_y: int = 0
    pad_x: int = 0
    resized_height: int = 0
    resized_width: int = 0

    @property
    def scale_x(self) -> float:
        return self.resized_width / self.crop_width

    @property
    def scale_y(self) -> float:
        return self.resized_height / self.crop_height

    def to_input(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.crop_x0) * self.scale_x + self.pad_x, (y - self.crop_y0) * self.scale_y + self.pad_y

    def to_source(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.pad_x) / self.scale_x + self.crop_x0, (y - self.pad_y) / self.scale_y + self.crop_y0

    def box_to_input(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        ax, ay = self.to_input(x0, y0)
        bx, by = self.to_input(x1, y1)
        return ax, ay, bx, by

    def image_region(self) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) of the image inside the padded input square."""
        return self.pad_y, self.pad_y + self.resized_height, self.pad_x, self.pad_x + self.resized_width

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> InputFrame:
        return cls(**{k: int(v) for k, v in data.items()})


def fit_square_frame(img01: np.ndarray, size: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Resize the longer side to ``size`` (aspect kept) and centre on a ``size``² black square;
    also returns (pad_y, pad_x, resized_height, resized_width)."""
    from PIL import Image

    h, w = img01.shape
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = np.asarray(Image.fromarray(img01.astype(np.float32), mode="F").resize(
        (nw, nh), Image.Resampling.BILINEAR), dtype=np.float32)
    out = np.zeros((size, size), dtype=np.float32)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = resized
    return out, (y0, x0, nh, nw)


def fit_square(img01: np.ndarray, size: int) -> np.ndarray:
    """Resize the longer side to ``size`` (aspect kept) and centre on a ``size``² black square."""
    return fit_square_frame(img01, size)[0]


def prepare_with_frame(pixels: np.ndarray, prep: Preprocessing) -> tuple[np.ndarray, InputFrame]:
    """Native-dtype bone-bright pixels → standardised float32 (size, size) model input, and the
    :class:`InputFrame` that says where the radiograph's pixels went."""
    if pixels.ndim != 2:
        raise LesionStudioError(f"Expected a single-channel image, got an array of shape {pixels.shape}.")
    img = normalise_intensity(pixels, prep)
    h, w = img.shape
    y0, y1, x0, x1 = body_region(img) if prep.crop_to_body else (0, h, 0, w)
    img = img[y0:y1, x0:x1]
    square, (py, px, nh, nw) = fit_square_frame(img, prep.size)
    frame = InputFrame(size=prep.size, source_height=h, source_width=w, crop_y0=y0, crop_x0=x0,
                       crop_height=y1 - y0, crop_width=x1 - x0, pad_y=py, pad_x=px, resized_height=nh,
                       resized_width=nw)
    return (square - MEAN) / STD, frame


def prepare(pixels: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """Native-dtype bone-bright pixels → standardised float32 (size, size) model input."""
    return prepare_with_frame(pixels, prep)[0]


def box_mask(frame: InputFrame, boxes: Sequence[tuple[float, float, float, float]]) -> np.ndarray:
    """The lesion-map target in the input frame: 1 inside any of the source-pixel ``boxes``
    (x0, y0, x1, y1), else 0, as a (size, size) uint8 array (a pixel is inside when its centre is).

    The box is the radiologist's own statement of where the lesion is; a hard box rather than a
    blob keeps the target exactly what was drawn (the map head's loss averages it to the map's
    output stride, so its edges become fractional there).
    """
    out = np.zeros((frame.size, frame.size), dtype=np.uint8)
    for b in boxes:
        ax, ay, bx, by = frame.box_to_input(*b)
        c0, c1 = max(0, int(np.ceil(ax - 0.5))), min(frame.size, int(np.floor(bx - 0.5)) + 1)
        r0, r1 = max(0, int(np.ceil(ay - 0.5))), min(frame.size, int(np.floor(by - 0.5)) + 1)
        if c1 <= c0 or r1 <= r0:  # thinner than a pixel at this size: mark the pixel it covers
            cx, cy = int(np.clip((ax + bx) / 2, 0, frame.size - 1)), int(np.clip((ay + by) / 2, 0, frame.size - 1))
            out[cy, cx] = 1
            continue
        out[r0:r1, c0:c1] = 1
    return out


def prepare_file(path: str | Path, prep: Preprocessing) -> np.ndarray:
    return prepare_file_with_frame(path, prep)[0]


def prepare_file_with_frame(path: str | Path, prep: Preprocessing) -> tuple[np.ndarray, InputFrame]:
    from lesion_studio.io import open_radiograph

    return prepare_with_frame(open_radiograph(path).pixels, prep)


class PreparedCache:
    """Prepared arrays by key (an image's sha256, or a synthetic sample's file hash), with the
    :class:`InputFrame` of each (where its pixels went, so lesion boxes can follow them).

    Stored as float16 (half the memory; the model's inputs do not need more precision) in
    ``<key>.npy``, the frame in ``<key>.frame.json``. The key is a content hash and the folder is
    named after the preprocessing settings, so an entry never goes stale: it survives seeds, arms,
    runs and sessions, and a changed image gets a new key. ``folder=None`` keeps the cache in
    memory only.
    """

    def __init__(self, prep: Preprocessing, folder: Path | None = None) -> None:
        self.prep = prep
        self.folder = Path(folder) / prep.tag if folder else None
        self._memory: dict[str, np.ndarray] = {}
        self._frames: dict[str, InputFrame] = {}
        if self.folder:
            self.folder.mkdir(parents=True, exist_ok=True)

    def _file(self, key: str) -> Path | None:
        return self.folder / f"{key}.npy" if self.folder else None

    def _frame_file(self, key: str) -> Path | None:
        return self.folder / f"{key}.frame.json" if self.folder else None

    def _load(self, key: str) -> np.ndarray | None:
        file = self._file(key)
        if file is None or not file.exists():
            return None
        try:
            arr = np.load(file, allow_pickle=False)
        except (OSError, ValueError):
            return None
        return arr if arr.shape == (self.prep.size, self.prep.size) else None

    def _load_frame(self, key: str) -> InputFrame | None:
        file = self._frame_file(key)
        if file is None or not file.exists():
            return None
        try:
            frame = InputFrame.from_dict(json.loads(file.read_text()))
        except (OSError, ValueError, TypeError, AttributeError):
            return None
        return frame if frame.size == self.prep.size else None

    def _compute(self, key: str, path: str | Path) -> np.ndarray:
        arr, frame = prepare_file_with_frame(path, self.prep)
        arr = arr.astype(np.float16)
        file, frame_file = self._file(key), self._frame_file(key)
        if file is not None and frame_file is not None:
            with atomic_path(file) as tmp:
                np.save(tmp, arr, allow_pickle=False)
            atomic_write_json(frame_file, frame.to_dict())
        self._memory[key], self._frames[key] = arr, frame
        return arr

    def get(self, key: str, path: str | Path) -> np.ndarray:
        if key in self._memory:
            return self._memory[key]
        arr = self._load(key)
        if arr is None:
            return self._compute(key, path)
        self._memory[key] = arr
        return arr

    def frame(self, key: str, path: str | Path) -> InputFrame:
        """The entry's input frame (an entry cached before frames were kept is prepared again once)."""
        if key in self._frames:
            return self._frames[key]
        frame = self._load_frame(key)
        if frame is None:
            self._compute(key, path)
            return self._frames[key]
        self._frames[key] = frame
        return frame

    def stack(
        self, items: Sequence[tuple[str, str | Path]], *, threads: int | None = None,
        on_item: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """(N, size, size) float16 for ``(key, path)`` items, decoding misses in parallel threads."""
        return self._stack(items, self.get, threads=threads, on_item=on_item)

    def stack_with_frames(
        self, items: Sequence[tuple[str, str | Path]], *, threads: int | None = None,
        on_item: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[InputFrame]]:
        """Like :meth:`stack`, plus each item's :class:`InputFrame`."""
        def both(key: str, path: str | Path) -> np.ndarray:
            self.frame(key, path)
            return self.get(key, path)

        arrays = self._stack(items, both, threads=threads, on_item=on_item)
        return arrays, [self._frames[k] for k, _ in items]

    def _stack(self, items: Sequence[tuple[str, str | Path]], fetch: Callable[[str, str | Path], np.ndarray], *,
               threads: int | None, on_item: Callable[[int], None] | None) -> np.ndarray:
        out = np.empty((len(items), self.prep.size, self.prep.size), dtype=np.float16)
        if not items:
            return out
        workers = threads or min(8, os.cpu_count() or 2)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for i, arr in enumerate(pool.map(lambda kp: fetch(*kp), items)):
                out[i] = arr
                if on_item:
                    on_item(i + 1)
        return out
