"""Where the app's own files are: the repository's top-level ``resources/`` folder."""

from __future__ import annotations

from pathlib import Path


def resources_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "resources"
