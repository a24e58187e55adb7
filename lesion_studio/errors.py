"""The one error family the app shows to people.

Every failure caused by the outside world (a bad file, a wrong config, a missing extra) is raised
as a :class:`LesionStudioError` whose message names the thing, says what is wrong and what to do.
The CLI and the GUI print that message instead of a traceback; anything else is a bug.
"""

from __future__ import annotations

from pathlib import Path


class LesionStudioError(Exception):
    """An error with a message meant for a person, not a developer."""


class RadiographError(LesionStudioError):
    """A file could not be opened as a radiograph."""

    def __init__(self, path: str | Path, problem: str, advice: str) -> None:
        self.path = Path(path)
        self.problem = " ".join(str(problem).split())  # one line, whatever a library's message held
        self.advice = advice
        super().__init__(f"{self.path.name}: {problem}. {advice}")


class ProjectError(LesionStudioError):
    """The project folder or its database is missing, damaged or used the wrong way."""


class ConfigError(LesionStudioError):
    """A configuration file or option is invalid."""


class MissingExtraError(LesionStudioError):
    """An optional dependency (the `train` extra) is needed but not installed."""

    def __init__(self, feature: str, module: str) -> None:
        super().__init__(
            f"{feature} needs the '{module}' package, which is not installed. "
            "Install the training extra with:  pip install 'lesion-studio[train]'  "
            "(or run `make test`/`make run`, which install everything)."
        )


class JobCancelled(LesionStudioError):
    """A long job stopped because its cancel token was set.

    The one cancel contract of long jobs (trainers included): save what can be resumed, then
    raise this. ``partial`` carries what the job had done when it stopped (a paused GAN's result:
    its iteration and checkpoint), for a caller that wants to say so.
    """

    def __init__(self, what: str = "The job", partial: object = None) -> None:
        super().__init__(f"{what} was cancelled.")
        self.partial = partial


class ReadOnlyProjectError(ProjectError):
    """An edit was asked of a project that is opened read-only (a read-only mount or folder)."""

    def __init__(self, folder: str | Path) -> None:
        super().__init__(f"This project is read-only ({folder}): it can be viewed, exported and scored, "
                         "but not changed. Copy it to a writable folder to edit it.")


class DamagedProjectError(ProjectError):
    """The project database is damaged; nothing was written to it."""


class DiskFullError(LesionStudioError):
    """A write failed because the disk is full; what was being written was left as it was."""

    def __init__(self, what: str, folder: str | Path, needed: int | None = None) -> None:
        import shutil

        self.folder = Path(folder)
        self.needed = needed
        try:
            self.free: int | None = shutil.disk_usage(_existing(self.folder)).free
        except OSError:
            self.free = None
        need = f"about {human_bytes(needed)} more" if needed else "more free space"
        free = f" ({human_bytes(self.free)} free)" if self.free is not None else ""
        super().__init__(f"The disk holding {self.folder} is full{free}: {what} needs {need}. Nothing was "
                         "written; what was there before is unchanged. Free some space and run it again.")


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def human_bytes(n: int | None) -> str:
    """1536 → '1.5 KB' (powers of 1024, one decimal)."""
    value = float(n or 0)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover


def is_disk_full(exc: BaseException) -> bool:
    """Whether an exception says the disk (or the quota) is full: an OSError with ENOSPC/EDQUOT, or
    SQLite's SQLITE_FULL ("database or disk is full")."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return getattr(exc, "sqlite_errorcode", None) == 13 or "database or disk is full" in str(exc)
