"""Plain records read from the project database. They are snapshots: edit through :class:`Project`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LABELS = ("lesion", "normal", "unreviewed")
SPLITS = ("train", "val", "test", "unassigned")
EXCLUSION_REASONS = ("pediatric", "hardware", "confounder", "other")
BODY_PART_UNKNOWN = ""


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
    author: str
    created_at: str
    modified_at: str


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


def loads(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


def dumps(value: dict[str, Any] | None) -> str:
    return json.dumps(value or {}, sort_keys=True)
