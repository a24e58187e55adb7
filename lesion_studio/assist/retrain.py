"""Retrain: train the detector on the current labels, register it, refresh the queue's scores.

One background job (``progress``, ``cancel``), made of steps the project already has: the
classifier trainer (``training.classifier_trainer.train_classifier``: the training split's
reviewed images, the validation split to pick the epoch, registration in the model registry),
its torch-free ONNX export (made and hash-registered on first use by ``registered_scorer``), and
the detector run (:mod:`lesion_studio.assist.detector`) that stores image scores. Each retrain
registers a new model (``assist-1``, ``assist-2``, ...), so earlier models, their scores and the
history of the proposals they made stay as they were.

After training, the new model scores the labelled validation images (their scores give its
operating point: the threshold maximising Youden's J, stored in the model's metadata as
``operating_point``, which the uncertainty order reads) and the unreviewed images (the queue's
scores). With ``propose`` it also proposes boxes on the unreviewed images.

Training needs torch (the ``train`` extra); scoring afterwards does not. A cancelled retrain
keeps its epoch checkpoint: the next retrain, on the same labels, resumes it under the same name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lesion_studio.assist.detector import ProposalSettings, propose_boxes, score_images
from lesion_studio.assist.queue import OperatingPoint, unreviewed_ids, youden_threshold
from lesion_studio.classifier.config import ClassifierConfig, preset
from lesion_studio.errors import LesionStudioError
from lesion_studio.jobs import CancelToken, ProgressCallback, no_progress
from lesion_studio.store.project import Project

log = logging.getLogger(__name__)

#: The retrain detector: the ``cpu-map`` preset (the map-head ``drn_d_22_half``, 128 px, cropped to
#: the body), so its lesion map gives the proposals, trained for 8 epochs instead of 25: minutes on a
#: CPU for a few hundred labelled images, while the reader waits. Override any field through
#: ``retrain_config``.
RETRAIN_PRESET = "cpu-map"
RETRAIN_SETTINGS: dict[str, Any] = {"epochs": 8}
DEFAULT_BASE_NAME = "assist"


def retrain_config(**overrides: Any) -> ClassifierConfig:
    """The retrain detector's settings (:data:`RETRAIN_SETTINGS`) with ``overrides``."""
    return preset(RETRAIN_PRESET, **{**RETRAIN_SETTINGS, **overrides})


def next_model_name(project: Project, base: str = DEFAULT_BASE_NAME) -> str:
    """``base-N`` with N one more than the highest such model in the registry."""
    numbers = [0]
    for model in project.models():
        head, _, tail = model.name.rpartition("-")
        if head == base and tail.isdigit():
            numbers.append(int(tail))
    return f"{base}-{max(numbers) + 1}"


@dataclass
class RetrainResult:
    model_id: int
    model_name: str
    val_auc: float | None
    operating_point: OperatingPoint
    scored: int  # unreviewed images scored
    proposals: int = 0
    train: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        auc = "n/a" if self.val_auc is None else f"{self.val_auc:.3f}"
        return (f"Trained {self.model_name} on {self.train.get('images', 0)} labelled image(s) "
                f"(validation AUC {auc}, operating point {self.operating_point.describe()}); "
                f"scored {self.scored} unreviewed image(s)"
                + (f", {self.proposals} proposal(s)." if self.proposals else "."))


def retrain_detector(project: Project, *, config: ClassifierConfig | None = None, base_name: str = DEFAULT_BASE_NAME,
                     reader: str | None = None, propose: bool = False, progress: ProgressCallback = no_progress,
                     cancel: CancelToken | None = None) -> RetrainResult:
    """Train a new detector on the project's current labels, register it, and store its scores of
    the validation and the unreviewed images (of ``reader`` when given); see the module docstring."""
    from lesion_studio.training.classifier_trainer import train_classifier

    cfg = config or retrain_config()
    name = next_model_name(project, base_name)
    result, model_id = train_classifier(project, cfg, name=name, progress=progress, cancel=cancel)
    if model_id is None:
        raise LesionStudioError(f"Training {name} finished but the model was not registered.")
    val = [r for r in project.images(split="val", include_excluded=False) if r.label in ("lesion", "normal")]
    point = OperatingPoint(0.5, "default")
    if val:
        scores = score_images(project, model_id, val, progress=progress, cancel=cancel).scores
        labels = [int(r.label == "lesion") for r in val]
        if 0 < sum(labels) < len(labels):
            point = OperatingPoint(youden_threshold(labels, [scores[r.id] for r in val]), "youden_val")
    project.update_model_metadata(model_id, operating_point={"value": point.value, "source": point.source})
    keep = unreviewed_ids(project, reader)
    todo = [r for r in project.images() if r.id in keep]
    proposals = 0
    if propose:
        proposals = propose_boxes(project, model_id, todo, settings=ProposalSettings(), progress=progress,
                                  cancel=cancel).proposals
    else:
        score_images(project, model_id, todo, progress=progress, cancel=cancel)
    out = RetrainResult(model_id, name, result.val_auc, point, len(todo), proposals,
                        dict(project.model(model_id).metadata.get("train") or {}))
    log.info("%s", out.summary())
    return out
