"""Plain records read from the project database. They are snapshots: edit through :class:`Project`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LABELS = ("lesion", "normal", "unreviewed")
SPLITS = ("train", "val", "test", "unassigned")
EXCLUSION_REASONS = ("pediatric", "hardware", "confounder", "other")
BODY_PART_UNKNOWN = ""
#: The lesion types a new project offers (a project keeps its own list: store/lesion_types.py).
DEFAULT_LESION_TYPES = ("fracture", "lytic", "sclerotic", "mixed", "other")


def resolve_stored_path(folder: Path, stored: str | Path) -> Path:
    """A path as the database stores it (relative to the project folder when inside it) made usable."""
    path = Path(stored)
    return path if path.is_absolute() else Path(folder) / path


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in image pixel coordinates, x0 < x1, y0 < y1 (pixel edges, not centres)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0

    def normalized(self) -> Box:
        return Box(min(self.x0, self.x1), min(self.y0, self.y1), max(self.x0, self.x1), max(self.y0, self.y1))

    def clipped(self, width: float, height: float) -> Box:
        b = self.normalized()
        return Box(
            min(max(b.x0, 0.0), width), min(max(b.y0, 0.0), height),
            min(max(b.x1, 0.0), width), min(max(b.y1, 0.0), height),
        )

    def intersects(self, other: Box) -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` (0 when they do not overlap)."""
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        if w <= 0 or h <= 0:
            return 0.0
        inter = w * h
        return inter / (self.width * self.height + other.width * other.height - inter)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return self.x0, self.y0, self.x1, self.y1

    def as_ints(self) -> tuple[int, int, int, int]:
        """Integer pixel bounds covering the box (for slicing arrays)."""
        import math

        return math.floor(self.x0), math.floor(self.y0), math.ceil(self.x1), math.ceil(self.y1)


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: str  # as stored: relative to the project folder when inside it
    abs_path: Path
    name: str
    sha256: str
    width: int
    height: int
    modality: str
    bits_stored: int
    body_part: str
    view: str
    label: str
    split: str
    group_key: str
    exclusions: tuple[str, ...]
    exclusion_note: str
    notes: str
    lesion_type: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def excluded(self) -> bool:
        return bool(self.exclusions)

    @property
    def status(self) -> str:
        """unreviewed / annotated / excluded, as the dataset browser shows it."""
        if self.exclusions:
            return "excluded"
        if self.label == "unreviewed":
            return "unreviewed"
        return "annotated"


@dataclass(frozen=True)
class LesionBox:
    id: int
    image_id: int
    box: Box
    author: str  # the reader who drew it (or "import", "phantom", ...)
    created_at: str
    modified_at: str
    lesion_type: str = ""  # one of the project's lesion types; "" for a box nobody typed
    #: Where the box came from when a reader did not draw it from scratch: ``{"source": "proposal",
    #: "proposal_id", "model_id", "model_name", "accepted_by", ...}`` for an accepted detector
    #: proposal (store/proposals.py); empty for a drawn or imported box.
    provenance: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def reader(self) -> str:
        return self.author

    @property
    def proposed(self) -> bool:
        """Whether a model proposed this box (and its reader accepted it)."""
        return self.provenance.get("source") == "proposal"


#: The states of a detector's box proposal: waiting for a reader, or decided by one.
PROPOSAL_STATES = ("pending", "accepted", "rejected")


@dataclass(frozen=True)
class Proposal:
    """A box a detector proposed on an image (store/proposals.py). Not an annotation: it becomes a
    lesion box only when a reader accepts it (``box_id`` is then that box)."""

    id: int
    image_id: int
    model_id: int | None  # None once the model is deleted (a decided proposal keeps its history)
    model_name: str
    box: Box
    score: float  # the proposal's score: image score x the component's relative map peak
    image_score: float  # the model's lesion probability for the whole image
    state: str  # pending / accepted / rejected
    created_at: str
    decided_by: str  # the reader who accepted or rejected it ("" while pending)
    decided_at: str | None
    box_id: int | None  # the lesion box an accept made


@dataclass(frozen=True)
class ImageScore:
    """A model's lesion probability for one image, with when it was scored."""

    image_id: int
    model_id: int
    model_name: str
    score: float
    scored_at: str


@dataclass(frozen=True)
class NewRegion:
    """A box or patch to insert with its image (import): its reader, type and times when known."""

    box: Box
    author: str = ""
    lesion_type: str = ""
    created_at: str | None = None
    modified_at: str | None = None


@dataclass(frozen=True)
class Measurement:
    """A ruler line from (x0, y0) to (x1, y1) in image pixel coordinates, with the pixel spacing
    (mm per pixel: row, column) it was measured with and where that spacing came from
    (``PixelSpacing``, ``ImagerPixelSpacing``, or "" when none is known: the length is in pixels)."""

    id: int
    image_id: int
    x0: float
    y0: float
    x1: float
    y1: float
    spacing: tuple[float, float] | None
    spacing_source: str
    author: str
    created_at: str
    modified_at: str

    @property
    def length_px(self) -> float:
        import math

        return math.hypot(self.x1 - self.x0, self.y1 - self.y0)

    @property
    def length_mm(self) -> float | None:
        """The length in millimetres, or None when no pixel spacing is known."""
        import math

        if self.spacing is None:
            return None
        row, col = self.spacing
        return math.hypot((self.x1 - self.x0) * col, (self.y1 - self.y0) * row)

    @property
    def reader(self) -> str:
        return self.author


@dataclass(frozen=True)
class ReaderLabel:
    """One reader's image label (every reader keeps their own; ``images.label`` is the project's)."""

    image_id: int
    reader: str
    label: str
    labelled_at: str


@dataclass(frozen=True)
class NormalPatch:
    id: int
    image_id: int
    box: Box
    author: str
    created_at: str
    modified_at: str


@dataclass(frozen=True)
class ModelRecord:
    id: int
    name: str
    kind: str  # "unit" or "drn"
    path: str
    sha256: str
    body_parts: tuple[str, ...]
    config: dict[str, Any]
    metadata: dict[str, Any]
    created_at: str

    def weights(self, folder: Path) -> Path:
        """The model's weights file, for the project in ``folder``."""
        return resolve_stored_path(folder, self.path)


@dataclass(frozen=True)
class RunRecord:
    id: int
    kind: str
    name: str
    status: str
    model_id: int | None
    config: dict[str, Any]
    metrics: dict[str, Any]
    output_dir: str
    started_at: str
    finished_at: str | None


def alpha_core_box(window: tuple[float, float, float, float], n: float) -> tuple[float, float, float, float]:
    """The bounding box (x0, y0, x1, y1) of a blend window's lesion core, where the paper's
    α = cos(|i|^n·π/2)·cos(|j|^n·π/2) is at least ½: the part of the window the blend hands mostly
    to the translation, so where a synthetic lesion is (``synthesis/blend.py`` blends with that α).

    Along each axis α ≥ ½ where cos(|t|^n·π/2) ≥ ½, i.e. |t| ≤ (2/3)^(1/n) of the half-side.
    """
    if not n > 0 or n == float("inf"):
        raise ValueError(f"The blending exponent n must be a positive number, not {n}.")
    x0, y0, x1, y1 = window
    reach = (2.0 / 3.0) ** (1.0 / n)
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 * reach, (y1 - y0) / 2 * reach
    return cx - hw, cy - hh, cx + hw, cy + hh


@dataclass(frozen=True)
class SyntheticSample:
    id: int
    source_image_id: int
    model_id: int | None
    box: Box
    n: float
    seed: int
    path: str
    score: float | None
    status: str  # candidate / accepted / rejected
    batch: str
    provenance: dict[str, Any]
    created_at: str
    map_peak: tuple[float, float] | None = None  # (x, y) image pixels: the scoring map's peak

    def map_on_lesion(self) -> bool | None:
        """Whether the scoring classifier's map peaks on the sample's lesion (:meth:`lesion_box`):
        the pointing game for a synthetic lesion. None when it was scored without a map."""
        if self.map_peak is None:
            return None
        x, y = self.map_peak
        x0, y0, x1, y1 = self.lesion_box()
        return x0 <= x <= x1 and y0 <= y <= y1

    def lesion_box(self) -> tuple[float, float, float, float]:
        """Where the sample's lesion is: the box recorded with it (``provenance["lesion_box"]``, e.g.
        a copy-paste sample's pasted real box), else its window's blend core (:func:`alpha_core_box`)."""
        recorded = self.provenance.get("lesion_box")
        if isinstance(recorded, list | tuple) and len(recorded) == 4:
            return tuple(float(v) for v in recorded)  # type: ignore[return-value]
        return alpha_core_box(self.box.as_tuple(), float(self.n or 1.0))


def loads(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


def dumps(value: dict[str, Any] | None) -> str:
    """Strict JSON for a TEXT column: NaN and infinity become null, because SQLite's JSON functions
    (and every other strict reader) reject the ``NaN`` that Python's json writes by default."""
    return json.dumps(_finite(value or {}), sort_keys=True, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def utc_now() -> str:
    """Now, as the ISO 8601 UTC text every record's time is stored in."""
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="milliseconds")
