"""An experiment config's protocol run on an open project (the Experiments panel's job).

The config supplies the studies, classifier, generator and thresholds; its own data source
(``project:`` or ``import_spec:``) and output folder are replaced by the open project and
``<project>/experiments/<config name>/``, so an installed app never writes into its install
folder and rerunning a config continues its cached stages. Torch-free until the run starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lesion_studio.jobs import CancelToken, ProgressCallback

if TYPE_CHECKING:
    from lesion_studio.experiment.config import ExperimentConfig
    from lesion_studio.experiment.runner import ExperimentResult
    from lesion_studio.store.project import Project


def load_plan(path: Path) -> tuple[ExperimentConfig, list[str]]:
    """The validated config and the stage names its run will report: the runner's own plan."""
    from lesion_studio.experiment.config import load_experiment_config
    from lesion_studio.experiment.plan import ExperimentPlan

    cfg = load_experiment_config(path)
    return cfg, ExperimentPlan.from_config(cfg).names


def plan_stages(path: Path) -> list[str]:
    return load_plan(path)[1]


def config_for_project(config: Path, project: Path, output: Path) -> ExperimentConfig:
    """The config's protocol on ``project``, writing to ``output``: the config's own data source
    (``project:`` or ``import_spec:``) and output folder are replaced; relative paths in it (a
    test set) still resolve against the config's folder."""
    from lesion_studio.experiment.config import load_experiment_config

    return load_experiment_config(config, project=str(project), output=str(output))


def run_experiment_file(config: Path, project: Path, output: Path, progress: ProgressCallback,
                        cancel: CancelToken | None) -> ExperimentResult:
    """The job: load (and validate) the config for the open project, then run the protocol;
    finished stages are cached in ``output``."""
    from lesion_studio.experiment.runner import run_experiment

    return run_experiment(config_for_project(config, project, output), progress=progress, cancel=cancel)


def output_folder(project_folder: Path, name: str) -> Path:
    """``<project>/experiments/<config name>``: rerunning a config continues its cached stages."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip(".-") or "experiment"
    return project_folder / "experiments" / safe


def missing_body_parts(cfg: ExperimentConfig, project: Project) -> list[str]:
    """Body parts the config's studies name that the project has no image of."""
    have = project.body_parts()
    wanted: list[str] = []
    for study in cfg.studies:
        for part in [*study.body_parts, *(study.transfer_from or [])]:
            if part not in have and part not in wanted:
                wanted.append(part)
    return wanted
