"""The project store: one folder, one SQLite database, every edit one committed transaction."""

from lesion_studio.store.project import Project
from lesion_studio.store.records import (
    BODY_PART_UNKNOWN,
    EXCLUSION_REASONS,
    LABELS,
    SPLITS,
    Box,
    ImageRecord,
    LesionBox,
    ModelRecord,
    NormalPatch,
    RunRecord,
    SyntheticSample,
)

__all__ = [
    "Project",
    "ImageRecord",
    "Box",
    "LesionBox",
    "NormalPatch",
    "ModelRecord",
    "RunRecord",
    "SyntheticSample",
    "LABELS",
    "SPLITS",
    "EXCLUSION_REASONS",
    "BODY_PART_UNKNOWN",
]
