"""Per-user preferences through QSettings: window layout, recent projects, annotation options.

Project data never goes here (it lives in the project database); only how this user likes the
app. Tests point QSettings at a temporary folder, so they never touch a real profile.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "LesionStudio"
APPLICATION = "Lesion Studio"
MAX_RECENT = 8


def app_settings() -> QSettings:
    """This user's preferences; under ``$LESION_STUDIO_HOME/settings`` when that is set (a portable
    or test home keeps everything of the app in one folder, as the logs and the demo do)."""
    home = os.environ.get("LESION_STUDIO_HOME")
    if home and not _redirected:
        return QSettings(str(Path(home) / "settings" / f"{APPLICATION}.ini"), QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


_redirected = False  # use_settings_folder() was called: that folder wins


def use_settings_folder(folder: str | Path) -> None:
    """Keep this process's preferences in ``folder`` (tests, benchmarks and tools leave the user's
    real profile alone). Both formats, because QSettings picks one per platform."""
    global _redirected
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(folder))
    _redirected = True


def recent_projects() -> list[Path]:
    value = app_settings().value("recent_projects", [])
    if isinstance(value, str):
        value = [value]
    return [Path(v) for v in (value or []) if v]


def add_recent_project(folder: Path) -> list[Path]:
    folder = Path(folder).resolve()
    items = [folder] + [p for p in recent_projects() if p != folder]
    items = items[:MAX_RECENT]
    s = app_settings()
    s.setValue("recent_projects", [str(p) for p in items])
    s.sync()
    return items


def get_bool(key: str, default: bool) -> bool:
    value = app_settings().value(key, default)
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


def set_value(key: str, value: object) -> None:
    s = app_settings()
    s.setValue(key, value)
    s.sync()


READER_KEY = "reader/name"


def reader_name() -> str:
    """This user's reader name: set once (Tools → Reader name…), else the login name. Every box,
    label and measurement this user makes records it (store/readers.py)."""
    from lesion_studio.errors import ProjectError
    from lesion_studio.store.readers import check_reader, default_reader

    value = app_settings().value(READER_KEY, "")
    if isinstance(value, str) and value.strip():
        try:
            return check_reader(value)
        except ProjectError:
            pass
    return default_reader()


def set_reader_name(name: str) -> str:
    """Check and keep the reader name (raises ProjectError with the reason when it is unusable)."""
    from lesion_studio.store.readers import check_reader

    name = check_reader(name)
    set_value(READER_KEY, name)
    return name
