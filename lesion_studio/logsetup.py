"""Logging for the app: a rotating log file for details, the console for what a person needs."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path


def log_dir() -> Path:
    home = os.environ.get("LESION_STUDIO_HOME")
    if home:
        return Path(home) / "logs"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "lesion-studio"


def log_file() -> Path:
    return log_dir() / "lesion-studio.log"


def configure_logging(verbose: bool = False) -> None:
    root = logging.getLogger()
    if getattr(root, "_lesion_studio_configured", False):
        return
    root.setLevel(logging.DEBUG)
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(console)
    try:
        log_dir().mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(log_file(), maxBytes=2_000_000, backupCount=3)
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    except OSError:  # a read-only home must not stop the app
        pass
    root._lesion_studio_configured = True  # type: ignore[attr-defined]
