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


class OneLineFormatter(logging.Formatter):
    """The console's format: the message only, never a traceback (those go to the log file)."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname}: {record.getMessage()}"
        return text.splitlines()[0] if text else text


class OwnRecordsOnly(logging.Filter):
    """Keep third-party records (pydicom and its decoder plugins log a traceback at ERROR for every
    frame they fail on) off the terminal: the app reports each bad file in one line of its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "lesion_studio" or record.name.startswith("lesion_studio.")


def configure_logging(verbose: bool = False) -> None:
    """Console: the app's own records, one line each (``-v``: everything, still one line each).
    Log file: every record at INFO and above, with tracebacks."""
    root = logging.getLogger()
    if getattr(root, "_lesion_studio_configured", False):
        return
    root.setLevel(logging.DEBUG)
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(OneLineFormatter())
    if not verbose:
        console.addFilter(OwnRecordsOnly())
    root.addHandler(console)
    logging.captureWarnings(True)  # library warnings (pydicom's VR complaints...) go to the log too
    try:
        log_dir().mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(log_file(), maxBytes=2_000_000, backupCount=3)
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    except OSError:  # a read-only home must not stop the app
        pass
    root._lesion_studio_configured = True  # type: ignore[attr-defined]
