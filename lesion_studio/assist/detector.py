"""Run a registered classifier over project images: image scores and box proposals (ONNX, torch-free).

A background job in the one shape long work has here (``progress``, ``cancel``): images go in
batches through the prepared-image cache and the ONNX classifier (``OnnxScorer.maps``: the lesion
probability and the localisation map in one pass), the map becomes boxes
(:func:`lesion_studio.assist.regions.map_regions`), and each image's result is stored at once in
its own transaction (``store.proposals.store_detections``). A cancelled run therefore keeps every
image it finished and raises :class:`JobCancelled` with the run so far as ``partial``.

A proposal's score is **the image score × the region's relative peak**. The image score is the
model's validated output (its AUC is what training selects and evaluation reports), so it says how
likely the image holds a lesion at all; the relative peak (1 for the map's strongest region, less
for weaker ones) ranks the regions within the image. The product stays a probability-like number
in [0, 1], the strongest proposal of an image scores exactly the image's score, and so a viewer
threshold t never shows a box on an image the model scores below t. (A map's raw peak alone
would not do: a class-activation map is in logits, and even a lesion map peaks somewhere on every
normal image.)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lesion_studio.assist.regions import MapRegion, map_regions
from lesion_studio.classifier.preprocess import InputFrame, PreparedCache
from lesion_studio.errors import JobCancelled, LesionStudioError
from lesion_studio.jobs import CancelToken, ProgressCallback, ProgressEvent, no_progress
from lesion_studio.store import proposals as store_proposals
from lesion_studio.store.project import Project
from lesion_studio.store.records import Box, ImageRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProposalSettings:
    """How a map becomes proposals."""

    #: A region is where the map is at least this share of the way from its floor to its peak.
    threshold: float = 0.5
    #: At most this many proposals per image (the strongest regions).
    max_per_image: int = 3
    #: Proposals scoring below this are not stored (0: store every region; the viewer filters).
    min_score: float = 0.0
    #: Images per ONNX batch (and per progress step).
    batch_size: int = 16

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise LesionStudioError(f"The map threshold must lie in (0, 1], not {self.threshold}.")
        if self.max_per_image < 1:
            raise LesionStudioError(f"At least one proposal per image, not {self.max_per_image}.")
        if not 0.0 <= self.min_score <= 1.0:
            raise LesionStudioError(f"The minimum proposal score must lie in [0, 1], not {self.min_score}.")
        if self.batch_size < 1:
            raise LesionStudioError(f"The batch size must be at least 1, not {self.batch_size}.")


@dataclass(frozen=True)
class Detection:
    """What the detector says about one image."""

    image_score: float
    regions: tuple[MapRegion, ...]

    def proposals(self, min_score: float = 0.0) -> list[tuple[Box, float]]:
        """(box, score) per region: score = image score × the region's relative peak."""
        out = [(r.box, float(self.image_score) * r.peak) for r in self.regions]
        return [(b, s) for b, s in out if s >= min_score]


@dataclass
class DetectorRun:
    """What a run did (also the ``partial`` of a cancelled run)."""

    model_id: int
    model_name: str
    map_kind: str
    requested: int
    images: int = 0  # images scored and stored
    proposals: int = 0  # proposals stored
    with_proposals: int = 0  # images that got at least one proposal
    scores: dict[int, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "model": self.model_name, "map": self.map_kind,
                "requested": self.requested, "images": self.images, "proposals": self.proposals,
                "with_proposals": self.with_proposals}

    def summary(self) -> str:
        head = f"{self.model_name} ({self.map_kind}) scored {self.images} of {self.requested} image(s)"
        return f"{head} and proposed {self.proposals} box(es) on {self.with_proposals} of them."


class Detector:
    """A registered classifier ready to score and localise project images (ONNX Runtime)."""

    def __init__(self, project: Project, model: int | str, settings: ProposalSettings | None = None) -> None:
        from lesion_studio.classifier.scoring import registered_scorer

        self.project = project
        self.settings = settings or ProposalSettings()
        self.scorer, self.record = registered_scorer(project, model, need_map=True)
        self.cache = PreparedCache(self.scorer.prep, project.subfolder("cache") / "classifier")

    @property
    def map_kind(self) -> str:
        return self.scorer.map_kind

    def detect(self, arrays: np.ndarray, frames: Sequence[InputFrame]) -> list[Detection]:
        """Prepared (N, S, S) arrays and their frames → one :class:`Detection` per image."""
        probs, maps = self.scorer.maps(arrays)
        s = self.settings
        return [Detection(float(p), tuple(map_regions(m, f, threshold=s.threshold, max_regions=s.max_per_image)))
                for p, m, f in zip(probs, maps, frames, strict=True)]

    def run(self, images: Sequence[ImageRecord], *, propose: bool = True, progress: ProgressCallback = no_progress,
            cancel: CancelToken | None = None) -> DetectorRun:
        """Score (and with ``propose``, propose boxes on) ``images``, storing each image's result
        as it is done. ``propose=False`` stores image scores only, and leaves proposals alone."""
        run = DetectorRun(self.record.id, self.record.name, self.map_kind, len(images))
        stage = "proposing boxes" if propose else "scoring images"
        progress(ProgressEvent(stage, 0, len(images), self.record.name))
        for start in range(0, len(images), self.settings.batch_size):
            if cancel is not None and cancel.cancelled:
                raise JobCancelled(f"Running {self.record.name}", partial=run)
            batch = list(images[start:start + self.settings.batch_size])
            arrays, frames = self.cache.stack_with_frames([(r.sha256, r.abs_path) for r in batch])
            if propose:
                for rec, found in zip(batch, self.detect(arrays, frames), strict=True):
                    ids = store_proposals.store_detections(self.project, rec.id, self.record.id, found.image_score,
                                                           found.proposals(self.settings.min_score))
                    run.scores[rec.id] = found.image_score
                    run.proposals += len(ids)
                    run.with_proposals += bool(ids)
            else:
                scores = self.scorer.score_arrays(arrays)
                store_proposals.store_image_scores(self.project, self.record.id,
                                                   {r.id: float(p) for r, p in zip(batch, scores, strict=True)})
                run.scores.update({r.id: float(p) for r, p in zip(batch, scores, strict=True)})
            run.images += len(batch)
            progress(ProgressEvent(stage, run.images, len(images), f"{run.proposals} proposal(s)" if propose else ""))
        log.info("%s", run.summary())
        return run


def propose_boxes(project: Project, model: int | str, images: Sequence[ImageRecord], *,
                  settings: ProposalSettings | None = None, progress: ProgressCallback = no_progress,
                  cancel: CancelToken | None = None) -> DetectorRun:
    """Run ``model`` over ``images``: store each image's score and box proposals (replacing the
    model's pending proposals of those images). See :class:`Detector`."""
    return Detector(project, model, settings).run(images, progress=progress, cancel=cancel)


def score_images(project: Project, model: int | str, images: Sequence[ImageRecord], *,
                 progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
                 batch_size: int = 32) -> DetectorRun:
    """Run ``model`` over ``images`` and store their image scores only (no proposals)."""
    return Detector(project, model, ProposalSettings(batch_size=batch_size)).run(
        images, propose=False, progress=progress, cancel=cancel)


def choose_images(project: Project, *, split: str | None = None, unreviewed: bool = False,
                  image_ids: Sequence[int | str] | None = None, reader: str | None = None) -> list[ImageRecord]:
    """The images a run covers: ``image_ids`` (ids, or file names such as ``hand_001.png``; each
    must exist, a name in one image only), else every image of ``split`` (None or ``all``: every
    split); with ``unreviewed``, only the unreviewed ones
    (:func:`lesion_studio.assist.queue.unreviewed_ids`, for ``reader`` when given)."""
    from lesion_studio.assist.queue import unreviewed_ids
    from lesion_studio.store.records import SPLITS

    if image_ids:
        by_name: dict[str, list[ImageRecord]] = {}
        if any(isinstance(i, str) for i in image_ids):
            for r in project.images():
                by_name.setdefault(r.name, []).append(r)
        records = [_named_image(by_name, i) if isinstance(i, str) else project.image(int(i))
                   for i in dict.fromkeys(image_ids)]
    else:
        if split not in (None, "all") and split not in SPLITS:
            raise LesionStudioError(f"The split is one of all, {', '.join(SPLITS)}, not {split!r}.")
        records = project.images(split=None if split in (None, "all") else split)
    if unreviewed:
        keep = unreviewed_ids(project, reader=reader)
        records = [r for r in records if r.id in keep]
    return list({r.id: r for r in records}.values())  # an image given by id and by name runs once


def _named_image(by_name: dict[str, list[ImageRecord]], name: str) -> ImageRecord:
    found = by_name.get(name, [])
    if len(found) != 1:
        ids = ", ".join(str(r.id) for r in found)
        raise LesionStudioError(f"There is no image named {name!r} in this project." if not found else
                                f"{len(found)} images are named {name!r} (ids {ids}); give the id.")
    return found[0]
