"""Where the app's files are: its read-only resources inside the package, and the user's data folder.

The resources (experiment configs, icons, built-in models) live in ``lesion_studio/resources/`` and
are read through :mod:`importlib.resources`, so the same lookup serves a source checkout, an
editable install, a wheel and the PyInstaller bundle. They sit inside the package rather than at
the repository's top level because a folder outside the package would need a second lookup for
source-tree runs, and the two would drift.

Nothing is ever written there: an install folder may be read-only and is replaced on upgrade.
Everything the app writes goes to the user's data folder (or a folder the user names).
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from lesion_studio.errors import LesionStudioError

CONFIG_SUFFIXES = (".yaml", ".yml", ".toml")


def resources_dir() -> Path:
    """The package's resource folder. Installs are plain folders (no zipped eggs), so it is a Path."""
    return Path(str(files("lesion_studio") / "resources"))


def experiments_dir() -> Path:
    return resources_dir() / "experiments"


def builtin_models_dir() -> Path:
    return resources_dir() / "models"


def is_builtin_resource(path: str | Path) -> bool:
    """True for a file shipped inside the package (read-only, not the user's)."""
    try:
        Path(path).resolve().relative_to(resources_dir().resolve())
    except ValueError:
        return False
    return True


def user_data_dir() -> Path:
    """The per-user folder for everything the app writes by default (demo project, results).

    ``LESION_STUDIO_HOME`` overrides it (tests and CI point it at a temporary folder); otherwise
    ``$XDG_DATA_HOME/lesion-studio`` (``~/.local/share/lesion-studio``).
    """
    home = os.environ.get("LESION_STUDIO_HOME")
    if home:
        return Path(home).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "lesion-studio"


def user_cache_dir() -> Path:
    """The per-user folder for caches the app may rebuild (``LESION_STUDIO_HOME/cache`` when set,
    else ``$XDG_CACHE_HOME/lesion-studio``, i.e. ``~/.cache/lesion-studio``)."""
    home = os.environ.get("LESION_STUDIO_HOME")
    if home:
        return Path(home).expanduser() / "cache"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "lesion-studio"


def default_results_dir(name: str) -> Path:
    """Where an experiment writes when neither its config nor the command line says (the name is
    checked to be a plain folder name: it may not lead out of the results folder)."""
    from lesion_studio.models.layout import inside

    return inside(user_data_dir() / "results", name, "experiment name")


def experiment_configs() -> list[Path]:
    """The built-in experiment configs, sorted by name."""
    return sorted(p for p in experiments_dir().iterdir() if p.suffix in CONFIG_SUFFIXES)


def find_experiment_config(ref: str | Path) -> Path:
    """A config file path, or the name of a built-in config (``demo-tiny``)."""
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    for candidate in experiment_configs():
        if str(ref) in (candidate.stem, candidate.name):
            return candidate
    names = ", ".join(p.stem for p in experiment_configs())
    raise LesionStudioError(f"There is no config file {ref} and no built-in config of that name "
                            f"(built-in: {names}).")
