"""Lazy access to the optional `train` extra, with a clear message when it is missing."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from lesion_studio.errors import MissingExtraError


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` or raise a :class:`MissingExtraError` that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(feature, module) from exc


#: What a reading build (no torch: the desktop bundle, or a wheel without the extra) shows instead of training.
TRAINING_HINT = ("Training needs the optional `train` extra (torch), which this reading build does not include. "
                 "Viewing, annotation, preview, batch synthesis and scoring with ONNX models work without it. "
                 "To train, install Lesion Studio with the extra on a training workstation:  "
                 "pip install 'lesion-studio[train]'")


def training_available() -> bool:
    """True when torch can be imported (checked without importing it: that takes seconds)."""
    return importlib.util.find_spec("torch") is not None
