"""A project's training runs as both faces see them: what to start, how to start it, what is paused.

The Training panel and the CLI (``lesion-studio runs`` / ``resume``) share this module, so neither
holds logic the other lacks. It is torch-free: a :class:`TrainingRequest` is plain data, and the
list of runs (:func:`training_runs`) is read from the checkpoints' JSON sidecars, never from the
tensors. Only :func:`run_training` imports a trainer (and so torch), on the thread that runs it.

A run is *paused* when its checkpoint is short of the run's own length (stopped at a checkpoint,
or interrupted by a crash). Resuming continues it *exactly as it was set up* (its own length,
preset, body parts and device, read from that checkpoint): the GAN where it stopped, with the same
batches and noise as an uninterrupted run; the classifier by redoing the interrupted epoch from
its seeded start.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lesion_studio.errors import LesionStudioError
from lesion_studio.jobs import CancelToken, ProgressCallback, no_progress
from lesion_studio.models import layout

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

log = logging.getLogger(__name__)

#: The kinds of training run: the GAN (UNIT translator) and the classifier (DRN).
KINDS = ("unit", "drn")
UNIT_SPLITS_DEFAULT = ("train", "unassigned")


@dataclass(frozen=True)
class TrainingRequest:
    """Everything one training job needs; plain data, so the job runs without any window."""

    kind: str  # "unit" or "drn"
    name: str
    preset: str
    length: int  # iterations (UNIT) or epochs (DRN)
    body_parts: tuple[str, ...] = ()
    splits: tuple[str, ...] = UNIT_SPLITS_DEFAULT
    device: str = "auto"
    input_size: int | None = None  # DRN only
    resume: bool = False
    with_accepted_synthetic: bool = False  # DRN only: augmented training with vetted samples
    #: DRN only: first pretrain on these body parts' training images (``("all",)``: every body
    #: part) for ``warm_start_epochs`` (None: the classifier's default), then train on
    #: ``body_parts`` (:mod:`~lesion_studio.training.warm_start`).
    warm_start_parts: tuple[str, ...] = ()
    warm_start_epochs: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # further config fields (tests, experts)
    saved_config: dict[str, Any] | None = None  # a resumed classifier: its checkpoint's own config

    def title(self) -> str:
        what = "GAN" if self.kind == "unit" else "classifier"
        verb = "Resume" if self.resume else "Train"
        return f"{verb} {what} {self.name}"

    def check(self) -> None:
        """Refuse a request that cannot name a model folder (one message, no traceback)."""
        if self.kind not in KINDS:
            raise LesionStudioError(f"Unknown training kind {self.kind!r}; use one of {', '.join(KINDS)}.")
        layout.check_name(self.name)  # the one rule for a name that becomes a folder

    def unit_config(self) -> Any:
        """The GAN's config for this request (a ``UnitTrainConfig``; torch-free)."""
        from lesion_studio.training.unit_config import preset_config

        return preset_config(self.preset, iterations=self.length, body_parts=list(self.body_parts),
                             splits=list(self.splits), device=self.device, **self.overrides)

    def classifier_config(self) -> Any:
        """The classifier's config for this request (a ``ClassifierConfig``): a resumed run's own."""
        from lesion_studio.classifier.config import ClassifierConfig, preset

        if self.resume and self.saved_config is not None:  # exactly the paused run's settings
            return ClassifierConfig.from_dict({**self.saved_config, **self.overrides})
        extra: dict[str, Any] = {"input_size": self.input_size} if self.input_size else {}
        if self.warm_start_parts:
            extra["warm_start_parts"] = list(self.warm_start_parts)
            if self.warm_start_epochs is not None:
                extra["warm_start_epochs"] = self.warm_start_epochs
        return preset(self.preset, epochs=self.length, device=self.device, **{**extra, **self.overrides})


def run_training(request: TrainingRequest, folder: Path, *, progress: ProgressCallback = no_progress,
                 cancel: CancelToken | None = None, spare_cores: int = 0) -> Any:
    """Run one request on this thread's own connection to the project and call the core trainer.

    ``spare_cores`` CPU cores are left to other work (the GUI keeps one to stay responsive: on a
    busy two-core machine torch's two spinning threads made a 30-iteration tiny GAN run take 120 s
    instead of 15 s). A cancelled run saves its checkpoint and raises ``JobCancelled``.
    """
    from lesion_studio.store.project import Project

    request.check()
    leave_cores(spare_cores)
    project = Project.open(folder)
    try:
        if request.kind == "unit":
            return _run_unit(project, request, progress, cancel)
        return _run_classifier(project, request, progress, cancel)
    finally:
        project.close()


def leave_cores(spare_cores: int) -> None:
    """Let torch use all CPU cores but ``spare_cores`` (0: leave its default)."""
    if spare_cores:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 2) - spare_cores))


def _run_unit(project: Project, request: TrainingRequest, progress: ProgressCallback,
              cancel: CancelToken | None) -> Any:
    from lesion_studio.training.unit_trainer import train_unit

    return train_unit(project, request.unit_config(), name=request.name, resume=request.resume, progress=progress,
                      cancel=cancel)


def _run_classifier(project: Project, request: TrainingRequest, progress: ProgressCallback,
                    cancel: CancelToken | None) -> Any:
    from lesion_studio.training.classifier_trainer import train_classifier

    cfg = request.classifier_config()
    parts = list(request.body_parts) or None
    synthetic: list = []
    if request.with_accepted_synthetic:
        from lesion_studio.classifier.data import accepted_training_samples

        synthetic, _ = accepted_training_samples(project, parts)
    return train_classifier(project, cfg, name=request.name, body_parts=parts, synthetic=synthetic,
                            resume=request.resume, progress=progress, cancel=cancel)


# ---------------------------------------------------------------------------- runs on disk
@dataclass(frozen=True)
class TrainingRun:
    """A model folder with a checkpoint, as its checkpoint describes it."""

    kind: str
    name: str
    preset: str
    done: int  # iterations (GAN) or epochs (classifier) reached
    total: int  # the run's own length
    body_parts: tuple[str, ...]
    splits: tuple[str, ...]
    device: str
    input_size: int | None = None
    config: dict[str, Any] = field(default_factory=dict, compare=False)
    running: bool = False  # the registry holds a live run of this name (another job or process)

    @property
    def paused(self) -> bool:
        return self.done < self.total and not self.running

    @property
    def state(self) -> str:
        return "running" if self.running else "paused" if self.done < self.total else "finished"

    @property
    def unit(self) -> str:
        return "iteration" if self.kind == "unit" else "epoch"

    def label(self) -> str:
        what = "GAN" if self.kind == "unit" else "classifier"
        parts = "+".join(self.body_parts) or "all"
        return (f"{what} {self.name} — {self.unit} {self.done:,} of {self.total:,} "
                f"({self.preset}, {parts}, {self.device})")

    def request(self, overrides: dict[str, Any] | None = None) -> TrainingRequest:
        """The request that continues this run with its own settings (never a form's). A GAN's saved
        config supplies everything but :data:`~lesion_studio.training.unit_config.RUN_FIELDS`, so
        those come from its checkpoint here; ``overrides`` (tests, experts) win over both."""
        own: dict[str, Any] = {}
        warm: dict[str, Any] = {}
        if self.kind == "drn" and self.config.get("warm_start_parts"):  # what its saved config trains with
            warm = {"warm_start_parts": tuple(self.config["warm_start_parts"]),
                    "warm_start_epochs": self.config.get("warm_start_epochs")}
        if self.kind == "unit":
            from lesion_studio.training.unit_config import RUN_FIELDS

            own = {f: self.config[f] for f in RUN_FIELDS if f in self.config and f not in ("iterations", "device")}
        return TrainingRequest(kind=self.kind, name=self.name, preset=self.preset, length=self.total,
                               body_parts=self.body_parts, splits=self.splits, device=self.device,
                               input_size=self.input_size, resume=True, overrides={**own, **(overrides or {})},
                               saved_config=self.config if self.kind == "drn" else None, **warm)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "state": self.state, "done": self.done, "total": self.total,
                "unit": self.unit, "preset": self.preset, "body_parts": list(self.body_parts),
                "splits": list(self.splits), "device": self.device, "input_size": self.input_size}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _run_from(meta_path: Path, kind: str) -> TrainingRun | None:
    """A run as its checkpoint's sidecar describes it (a GAN's ``checkpoint.json``, a classifier's
    ``last.json``); None when the sidecar is unreadable or names no length."""
    meta = _read_json(meta_path) or {}
    cfg = meta.get("config") or {}
    unit = kind == "unit"
    try:
        done, total = (int(meta["iteration"]), int(cfg["iterations"])) if unit else \
            (int(meta["epoch"]), int(cfg["epochs"]))
    except (KeyError, TypeError, ValueError):
        return None
    parts = cfg.get("body_parts") if unit else meta.get("body_parts")
    return TrainingRun(kind, str(meta.get("name") or meta_path.parent.name),
                       str(cfg.get("preset", "fast" if unit else "saved")), done, total, tuple(parts or ()),
                       tuple(cfg.get("splits") or UNIT_SPLITS_DEFAULT) if unit else ("train",),
                       str(cfg.get("device", "auto")), None if unit else cfg.get("input_size"), config=cfg)


def training_runs(folder: Path, running: Collection[tuple[str, str]] = ()) -> list[TrainingRun]:
    """Every checkpointed training run of a project: GAN checkpoints and classifier ``last``
    checkpoints, GANs first, each sorted by name. ``running`` names (kind, name) pairs the registry
    says are live. Reads JSON only (no torch)."""
    models = Path(folder) / layout.MODELS
    found = [_run_from(p, "unit") for p in sorted(models.glob(f"*/{layout.sidecar_path(layout.CHECKPOINT).name}"))]
    found += [_run_from(p, "drn") for p in
              sorted((models / layout.CLASSIFIERS).glob(f"*/{layout.sidecar_path(layout.LAST).name}"))]
    runs = [r for r in found if r is not None]
    return [replace(r, running=True) if (r.kind, r.name) in running else r for r in runs]


def project_runs(project: Project) -> list[TrainingRun]:
    """:func:`training_runs` of an open project, marking those its registry says are running."""
    live = {(r.kind, r.name) for r in project.runs() if r.status == "running" and r.kind in KINDS}
    return training_runs(project.folder, live)


def resumable_runs(folder: Path) -> list[TrainingRun]:
    """Paused (or interrupted) runs: a checkpoint short of the run's own length."""
    return [r for r in training_runs(folder) if r.paused]


def paused_run(project: Project, name: str) -> TrainingRun:
    """The paused run ``name``, or a one-line error naming the ones there are."""
    runs = project_runs(project)
    match = [r for r in runs if r.name == name]
    if not match:
        paused = ", ".join(r.name for r in runs if r.paused) or "none"
        raise LesionStudioError(f"There is no training run {name!r} in {project.folder} (paused runs: {paused}).")
    run = match[0]
    if not run.paused:
        raise LesionStudioError(f"{run.name} is {run.state} ({run.unit} {run.done:,} of {run.total:,}): "
                                "only a paused run can be resumed.")
    return run


def model_folder(folder: Path, kind: str, name: str) -> Path:
    """Where a run of ``kind`` keeps its files (models/layout.py)."""
    return layout.unit_dir(folder, name) if kind == "unit" else layout.classifier_dir(folder, name)


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def run_history(folder: Path, kind: str, name: str) -> list[tuple[int, dict[str, float | None]]]:
    """What a run already did: losses per iteration (GAN) or validation AUC per epoch (classifier)."""
    try:
        if kind == "unit":
            rows = json.loads((layout.unit_dir(folder, name) / layout.HISTORY).read_text())
            return [(i + 1, dict(row)) for i, row in enumerate(rows)]
        meta = json.loads(layout.sidecar_path(layout.classifier_dir(folder, name) / layout.LAST).read_text())
        return [(int(r["epoch"]), {"val AUC": r.get("val_auc")}) for r in meta.get("history", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def quality_history(folder: Path, name: str) -> list[dict[str, Any]]:
    """The generator quality reports a GAN run made at its checkpoints (oldest first)."""
    try:
        rows = json.loads((layout.unit_dir(folder, name) / layout.QUALITY_HISTORY).read_text())
    except (OSError, ValueError):
        return []
    return [r for r in rows if isinstance(r, dict) and "iteration" in r] if isinstance(rows, list) else []
