"""Warm start of a classifier: pretrain on the project's other radiographs, then fine-tune.

A study of one body part trains on a few hundred images (FracAtlas hand: 472, 127 with
fractures), while the same project holds several times as many training radiographs of other
bones, whose fractures share the signs a detector must learn (a cortical break, a lucent line).
Published detectors start from ImageNet weights, which cannot be downloaded here, so the
project's own radiographs are the pretraining set: ``classifier.warm_start_parts`` names the body
parts (``[all]``: every one), ``warm_start_epochs`` how long to train on them.

- Only the training split is used, so the study's validation and test images stay unseen.
- The warm-start model is trained with the classifier's own settings (architecture, head, input
  size, seed) and keeps its last epoch: choosing an epoch on validation would spend the study's
  validation images on a step that is not the study's model.
- It is cached in the project (``cache/warm-start/<key>``), keyed by those settings and by the
  training data (images, labels and boxes), so the baseline and every augmentation arm of a seed
  start from one set of weights, trained once, and resumable like any classifier run.

This module holds what a warm start is; ``training/classifier_trainer.py::warm_start`` trains it
(it needs the trainer, and the trainer needs this, so the training lives there).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lesion_studio.classifier.config import ClassifierConfig
from lesion_studio.errors import LesionStudioError

if TYPE_CHECKING:
    import torch

#: The project cache's folder of warm-start models.
WARM_START_FOLDER = "warm-start"


@dataclass(frozen=True)
class WarmStart:
    """Trained warm-start weights a classifier starts from."""

    path: Path
    sha256: str
    body_parts: list[str] | None  # None: every body part
    images: int
    epochs: int

    def state(self, build: Callable[[], Any]) -> dict[str, torch.Tensor]:
        """The network weights, checked against the network ``build`` makes (a warm start of
        another architecture or head is refused, not half-loaded)."""
        from lesion_studio.models.checkpoint import check_state_shapes, load_checkpoint

        states, _ = load_checkpoint(self.path)
        model = states.get("model")
        if not isinstance(model, dict):
            raise LesionStudioError(f"{self.path}: the warm-start checkpoint holds no network weights.")
        check_state_shapes(build, model, f"{self.path.name} (warm start)")
        return model

    def describe(self) -> dict[str, Any]:
        """What the fine-tuned model's metadata records of where it started."""
        return {"sha256": self.sha256, "body_parts": self.body_parts or ["all"], "images": self.images,
                "epochs": self.epochs}


def warm_start_config(config: ClassifierConfig) -> ClassifierConfig:
    """The settings the warm-start model trains with: the classifier's own, for
    ``warm_start_epochs`` epochs, keeping the last epoch, and with no warm start of its own."""
    return replace(config, warm_start_parts=[], epochs=config.warm_start_epochs, select="last")


def warm_start_key(config: ClassifierConfig, data_fingerprint: str) -> str:
    """The cache key of a warm-start model: its training settings and its training data."""
    return hashlib.sha256(f"{config.training_hash()}:{data_fingerprint}".encode()).hexdigest()[:16]
