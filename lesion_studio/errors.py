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
