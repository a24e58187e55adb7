"""Lazy access to the optional `train` extra, with a clear message when it is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from lesion_studio.errors import MissingExtraError


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` or raise a :class:`MissingExtraError` that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(feature, module) from exc
