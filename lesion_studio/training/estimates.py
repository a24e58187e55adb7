"""How long a classifier run will take, before it has ever run here (no torch at import).

The training form used to say "measured after the first epoch" until one run had finished. Now
an estimate comes from a training *rate*, images per second through the product's own training
step for one architecture, input size and device:

- a rate measured by an earlier run (:func:`images_per_s_from_run` turns a run's seconds per epoch
  into one; :class:`ClassifierRates` keeps rates per network, size and device in a store the
  caller provides: the GUI's settings), or else
- a few timed steps (:func:`measure_classifier_rate`, torch, a background job of seconds): the
  real trainer on random images of the right size, warm-up step left out.

:func:`classifier_workload` counts what the run will process (training images, validation images,
epochs, and a warm start's training images and epochs) from the project's database, without
decoding anything; :func:`classifier_seconds` turns workload and rate into seconds. Image
preparation (decoding into the classifier's cache, once per input size) is not in the figure, and
a warm start is counted as trained even when the project already caches it.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lesion_studio.errors import JobCancelled, LesionStudioError
from lesion_studio.jobs import CancelToken, ProgressEvent

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

log = logging.getLogger(__name__)

#: A validation pass runs the network forward only: about a third of a training step's work per image.
FORWARD_SHARE = 1.0 / 3.0
PROBE_STEPS = 3  # timed training steps of :func:`measure_classifier_rate`, after one warm-up step


@dataclass(frozen=True)
class ClassifierWorkload:
    """What one classifier run processes."""

    train_images: int
    val_images: int
    epochs: int
    tta_passes: int = 1  # validation passes per image (2 with hflip test-time augmentation)
    #: A warm start first (``classifier.warm_start_parts``): its training images and epochs. It
    #: trains with the run's own network and size and validates nothing, so its images are plain
    #: training draws at the run's rate.
    warm_start_images: int = 0
    warm_start_epochs: int = 0

    def images_per_epoch(self) -> float:
        """Training-step equivalents per epoch: every training image once, validation forward only."""
        return self.train_images + self.val_images * self.tta_passes * FORWARD_SHARE

    def total_images(self) -> float:
        """Training-step equivalents of the whole run, the warm start included."""
        return self.epochs * self.images_per_epoch() + self.warm_start_images * self.warm_start_epochs


def rate_key(arch: str, input_size: int, lane: str) -> str:
    """The name a measured rate is kept under: it holds for one network, input size and device."""
    return f"{arch}/{int(input_size)}/{lane}"


def classifier_workload(project: Project, config: Any, body_parts: list[str] | None = None, *,
                        with_accepted_synthetic: bool = False) -> ClassifierWorkload:
    """The training and validation images a run of ``config`` would use, and its warm start's
    training images (database only, no decoding)."""
    from lesion_studio.classifier.data import accepted_training_samples, split_records

    parts = body_parts or None
    train = len(split_records(project, "train", parts))
    if with_accepted_synthetic:
        train += len(accepted_training_samples(project, parts)[0])
    val = len(split_records(project, "val", parts))
    warm_images = warm_epochs = 0
    if config.warm_start_parts:
        warm_images = len(split_records(project, "train", config.warm_start_body_parts))
        warm_epochs = int(config.warm_start_epochs)
    return ClassifierWorkload(train, val, int(config.epochs), 2 if config.tta == "hflip" else 1,
                              warm_images, warm_epochs)


def classifier_seconds(workload: ClassifierWorkload, images_per_s: float) -> float:
    """Seconds for the whole run, its warm start included, at a training rate of ``images_per_s``."""
    return workload.total_images() / images_per_s


def images_per_s_from_run(workload: ClassifierWorkload, seconds_per_epoch: float) -> float:
    """The training rate a finished run showed over its own epochs (the inverse of
    :func:`classifier_seconds` without a warm start, whose epochs are not timed)."""
    return workload.images_per_epoch() / seconds_per_epoch


def measure_classifier_rate(config: Any, *, steps: int = PROBE_STEPS, progress: Any = None,
                            cancel: CancelToken | None = None) -> float:
    """Images per second of ``config``'s training step on its device, from ``steps`` timed steps.

    Runs the real trainer (augmentation, precision, optimizer as a run has them) on random
    images of the configured size, one warm-up step first, then stops it; nothing is written
    but a temporary folder. A job: ``cancel`` stops it between steps.
    """
    import numpy as np

    from lesion_studio.classifier.data import Example, LabelledSet
    from lesion_studio.training.classifier_trainer import ClassifierTrainer

    batch = int(config.batch_size)
    n = batch * (steps + 2)  # one batch more than timed: the run stops before its epoch would end
    rng = np.random.default_rng(0)
    examples = [Example(key=f"probe-{i}", path=Path(f"probe-{i}"), label=i % 2, body_part="") for i in range(n)]
    arrays = rng.uniform(0, 1, (n, config.input_size, config.input_size)).astype(np.float16)
    data = LabelledSet(examples, arrays)
    probe_config = replace(config, epochs=1)
    stop = CancelToken()
    marks: list[float] = []

    def step(event: ProgressEvent) -> None:
        if event.stage != "training classifier":
            return
        marks.append(time.perf_counter())
        if progress is not None:
            progress(ProgressEvent("timing classifier steps", min(len(marks), steps + 1), steps + 1))
        if len(marks) > steps or (cancel is not None and cancel.cancelled):
            stop.cancel()

    with tempfile.TemporaryDirectory(prefix="lesion-studio-rate-") as tmp:
        trainer = ClassifierTrainer(probe_config, data, None, tmp, progress=step, cancel=stop)
        with contextlib.suppress(JobCancelled):
            trainer.fit(resume=False)
    if cancel is not None and cancel.cancelled:
        raise JobCancelled("Timing classifier steps")
    if len(marks) < 2:
        raise LesionStudioError("Timing classifier steps: the trainer ran fewer than two steps.")
    rate = batch * (len(marks) - 1) / (marks[-1] - marks[0])
    log.info("classifier %s at %d px: %.1f images/s over %d timed steps", config.arch, config.input_size, rate,
             len(marks) - 1)
    return rate


class ClassifierRates:
    """Measured classifier rates per network, input size and device, kept in a key-value store the
    caller owns (the GUI passes its settings), with where each came from: a run beats timed steps.

    ``get(name)`` returns a stored value or None; ``put(name, value)`` stores one.
    """

    PREFIX = "training/images_per_s"

    def __init__(self, get: Callable[[str], Any], put: Callable[[str, Any], None]) -> None:
        self._get, self._put = get, put

    def rate(self, config: Any, lane: str) -> tuple[float, str] | None:
        """(images/s, where it came from) for ``config`` on ``lane``, or None when nothing is stored."""
        key = rate_key(config.arch, config.input_size, lane)
        try:
            value = float(self._get(f"{self.PREFIX}/{key}"))
        except (TypeError, ValueError):
            return None
        return value, str(self._get(f"{self.PREFIX}_source/{key}") or "measured here")

    def store(self, config: Any, lane: str, images_per_s: float, source: str) -> None:
        key = rate_key(config.arch, config.input_size, lane)
        self._put(f"{self.PREFIX}/{key}", float(images_per_s))
        self._put(f"{self.PREFIX}_source/{key}", source)

    def store_probe(self, config: Any, lane: str, images_per_s: float) -> None:
        """The result of :func:`measure_classifier_rate`."""
        self.store(config, lane, images_per_s, f"from {PROBE_STEPS} timed steps")

    def store_run(self, workload: ClassifierWorkload, config: Any, lane: str, seconds_per_epoch: float) -> None:
        """The rate a finished run showed (its seconds per epoch over its workload)."""
        self.store(config, lane, images_per_s_from_run(workload, seconds_per_epoch), "measured here")

    def estimate(self, workload: ClassifierWorkload, config: Any, lane: str) -> tuple[float, str] | None:
        """(seconds, source) for a run of ``config`` on ``lane``, or None when no rate is stored yet."""
        known = self.rate(config, lane)
        return None if known is None else (classifier_seconds(workload, known[0]), known[1])
