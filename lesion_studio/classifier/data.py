"""Classifier data: which images form each split, their prepared arrays, augmentation and sampling.

Rules the paper's protocol depends on, enforced here in one place:

- Only reviewed images (label lesion or normal) take part; excluded images (pediatric, hardware,
  confounder...) are left out unless ``include_excluded`` is set.
- Synthetic images join the *training* set only. :func:`training_set` refuses a synthetic sample
  whose source image is not a training image, and :func:`evaluation_set` never takes synthetic
  samples at all, so a synthetic image (or a near-copy of a val/test image) cannot leak into
  threshold choice or test AUC.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from lesion_studio.classifier.preprocess import PreparedCache, box_mask
from lesion_studio.dataset.type_selection import select_by_lesion_type
from lesion_studio.errors import LesionStudioError
from lesion_studio.files import file_sha256
from lesion_studio.jobs import ProgressCallback, ProgressEvent, no_progress
from lesion_studio.store.project import Project
from lesion_studio.store.records import ImageRecord, SyntheticSample

log = logging.getLogger(__name__)


BoxTuple = tuple[float, float, float, float]


@dataclass(frozen=True)
class Example:
    """One classifier input: a project image or a synthetic sample (never both).

    ``boxes`` are where its lesions are, in the image's own pixels (x0, y0, x1, y1): a real lesion
    image's boxes, or the box a synthetic sample carries. ``mapped`` says whether the lesion map
    knows this example's answer: a normal image (an all-zero map) or a lesion with at least one
    box. A lesion image without boxes teaches the image head only.
    """

    key: str  # cache key: image sha256 or synthetic file hash
    path: Path
    label: int  # 1 lesion, 0 normal
    body_part: str
    image_id: int | None = None
    synthetic_id: int | None = None
    boxes: tuple[BoxTuple, ...] = ()
    #: A training image's second appearance (the oversampling control's repeats).
    repeat: bool = False

    @property
    def synthetic(self) -> bool:
        return self.synthetic_id is not None

    @property
    def added(self) -> bool:
        """Added to the real training images (a synthetic image or a repeat)."""
        return self.synthetic or self.repeat

    @property
    def mapped(self) -> bool:
        return self.label == 0 or bool(self.boxes)


@dataclass
class LabelledSet:
    """Examples with their prepared (N, S, S) float16 arrays and 0/1 labels; with ``masks``
    (N, S, S) uint8 lesion masks in the input frame when it was built for the lesion-map head."""

    examples: list[Example]
    arrays: np.ndarray
    masks: np.ndarray | None = None
    labels: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.labels = np.array([e.label for e in self.examples], dtype=np.int64)

    @property
    def real_count(self) -> int:
        """How many distinct real images the set holds (neither synthetic nor a repeat)."""
        return sum(not e.added for e in self.examples)

    @property
    def mapped(self) -> np.ndarray:
        """(N,) bool: which examples the lesion-map loss may learn from (``Example.mapped``)."""
        return np.array([e.mapped for e in self.examples], dtype=bool)

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def n_positive(self) -> int:
        return int(self.labels.sum())

    def summary(self) -> dict[str, int]:
        out = {"images": len(self), "lesion": self.n_positive, "normal": len(self) - self.n_positive,
               "synthetic": sum(e.synthetic for e in self.examples)}
        repeats = sum(e.repeat for e in self.examples)
        if repeats:  # only the oversampling control has any; other summaries keep their old form
            out["repeats"] = repeats
        return out


def _matches(rec: ImageRecord, body_parts: Sequence[str] | None) -> bool:
    """Exact body-part match (FracAtlas-style ``mixed:hand+leg`` images must be named explicitly)."""
    return not body_parts or rec.body_part in body_parts


def image_examples(records: Iterable[ImageRecord], project: Project | None = None) -> list[Example]:
    """Examples of project images; with ``project``, each lesion image carries its lesion boxes."""
    records = list(records)
    boxes: dict[int, list[BoxTuple]] = {}
    if project is not None:
        wanted = {r.id for r in records if r.label == "lesion"}
        for b in project.boxes():
            if b.image_id in wanted:
                boxes.setdefault(b.image_id, []).append(b.box.as_tuple())
    return [Example(key=r.sha256, path=r.abs_path, label=int(r.label == "lesion"), body_part=r.body_part,
                    image_id=r.id, boxes=tuple(boxes.get(r.id, ()))) for r in records]


def split_records(
    project: Project, split: str, body_parts: Sequence[str] | None = None, *, include_excluded: bool = False,
) -> list[ImageRecord]:
    """Reviewed images of one split (and body parts), excluded ones left out unless asked for."""
    records = [r for r in project.images(split=split, include_excluded=include_excluded)
               if r.label in ("lesion", "normal") and _matches(r, body_parts)]
    return select_by_lesion_type(project, records)  # an experiment's lesion_types (dataset/type_selection.py)


def synthetic_key(path: Path) -> str:
    return "syn-" + file_sha256(path)


def synthetic_examples(project: Project, samples: Iterable[SyntheticSample],
                       train_ids: set[int]) -> list[Example]:
    """Synthetic lesion examples; refuses any whose source image is not a training image."""
    out = []
    for s in samples:
        if s.source_image_id not in train_ids:
            split = project.image(s.source_image_id).split
            raise LesionStudioError(
                f"Synthetic sample {s.id} was made from image {s.source_image_id}, which is in the "
                f"'{split}' split, not in this training set. Synthetic images may only augment training "
                "data (otherwise validation/test images would leak into training)."
            )
        if not s.path:
            raise LesionStudioError(f"Synthetic sample {s.id} has no image file.")
        path = project.resolve_path(s.path)
        key = s.provenance.get("file_sha256") or synthetic_key(path)
        if not str(key).startswith("syn-"):
            key = f"syn-{key}"
        src = project.image(s.source_image_id)
        out.append(Example(key=str(key), path=path, label=1, body_part=src.body_part, synthetic_id=s.id,
                           boxes=(s.lesion_box(),)))
    return out


def accepted_training_samples(
    project: Project, body_parts: Sequence[str] | None = None, *, include_excluded: bool = False,
) -> tuple[list[SyntheticSample], int]:
    """Accepted synthetic samples (gallery A key, synthesis panel Keep, experiment filter) that may
    augment training: those made from training images of the chosen body parts.

    Returns (samples, how many accepted samples were passed over because their source image is
    not such a training image). Passing over, rather than refusing, lets a user who vetted samples
    from every split train on the ones that are allowed; the leak check in :func:`training_set`
    still guards anything passed to it directly.
    """
    train_ids = {r.id for r in split_records(project, "train", body_parts, include_excluded=include_excluded)}
    accepted = [s for s in project.synthetic_samples(status="accepted") if s.path]
    usable = [s for s in accepted if s.source_image_id in train_ids]
    return usable, len(accepted) - len(usable)


def materialise(examples: list[Example], cache: PreparedCache, *, what: str = "images",
                progress: ProgressCallback = no_progress, masks: bool = False) -> LabelledSet:
    """The examples' prepared arrays (decoded once, then from the cache); with ``masks``, their
    lesion masks too, drawn from their boxes in each image's input frame."""
    total = len(examples)

    def tick(done: int) -> None:
        if done == total or done % 25 == 0:
            progress(ProgressEvent(f"loading {what}", done, total))

    items = [(e.key, e.path) for e in examples]
    if not masks:
        return LabelledSet(examples, cache.stack(items, on_item=tick))
    arrays, frames = cache.stack_with_frames(items, on_item=tick)
    mask = np.zeros(arrays.shape, dtype=np.uint8)
    for i, (e, frame) in enumerate(zip(examples, frames, strict=True)):
        if e.boxes:
            mask[i] = box_mask(frame, e.boxes)
    return LabelledSet(examples, arrays, mask)


def stratified_share(records: Sequence[ImageRecord], fraction: float, seed: int) -> list[ImageRecord]:
    """A seeded ``fraction`` of ``records``, the same share of each label (at least one of each),
    in their original order. The draw depends on the seed and the image ids only, so a seed sees the
    same images in every run, and a larger share of one seed holds more images, not other ones
    (each label's images are ranked once by the seed; a share takes the first of that ranking)."""
    if fraction >= 1:
        return list(records)
    keep: set[int] = set()
    rng = np.random.default_rng(seed)
    for label in sorted({r.label for r in records}):
        ids = sorted(r.id for r in records if r.label == label)
        ranked = rng.permutation(ids)
        keep.update(int(i) for i in ranked[:max(1, round(fraction * len(ids)))])
    return [r for r in records if r.id in keep]


def training_set(
    project: Project, cache: PreparedCache, body_parts: Sequence[str] | None = None, *,
    include_excluded: bool = False, synthetic: Iterable[SyntheticSample] = (),
    progress: ProgressCallback = no_progress, masks: bool = False, repeats: Sequence[int] = (),
    fraction: float = 1.0, fraction_seed: int = 0,
) -> LabelledSet:
    """The training split (+ synthetic lesion images made from training images only; + ``repeats``,
    ids of training images that appear once more each, the oversampling control); with ``masks``,
    the lesion masks the map head learns from. ``fraction`` < 1 keeps a seeded share of the real
    training images (:func:`stratified_share`, for learning curves)."""
    records = split_records(project, "train", body_parts, include_excluded=include_excluded)
    if not records:
        raise LesionStudioError(
            f"The training split has no reviewed images{_for(body_parts)}. Assign splits "
            "(lesion-studio split) and label images first."
        )
    examples = image_examples(stratified_share(records, fraction, fraction_seed), project)
    by_id = {e.image_id: e for e in examples}
    unknown = [i for i in repeats if i not in by_id]
    if unknown:
        raise LesionStudioError(f"Image {unknown[0]} is not a training image{_for(body_parts)}"
                                f"{' in this share' if fraction < 1 else ''}: only training images may be repeated.")
    examples += [replace(by_id[i], repeat=True) for i in repeats]
    examples += synthetic_examples(project, synthetic, {r.id for r in records})
    data = materialise(examples, cache, what="training images", progress=progress, masks=masks)
    if data.n_positive == 0 or data.n_positive == len(data):
        raise LesionStudioError(f"The training split{_for(body_parts)} needs both lesion and normal images.")
    return data


def evaluation_set(
    project: Project, split: str, cache: PreparedCache, body_parts: Sequence[str] | None = None, *,
    include_excluded: bool = False, progress: ProgressCallback = no_progress, masks: bool = False,
) -> LabelledSet:
    """Validation or test images of the project: real images only, by construction (with their
    lesion boxes, and with ``masks`` their lesion masks)."""
    if split not in ("val", "test"):
        raise LesionStudioError(f"Evaluation uses the 'val' or 'test' split, not {split!r}.")
    records = split_records(project, split, body_parts, include_excluded=include_excluded)
    if not records:
        raise LesionStudioError(f"The {split} split has no reviewed images{_for(body_parts)}.")
    return materialise(image_examples(records, project), cache, what=f"{split} images", progress=progress,
                       masks=masks)


def _for(body_parts: Sequence[str] | None) -> str:
    return f" for {', '.join(body_parts)}" if body_parts else ""


# ------------------------------------------------------------------------------ torch parts
def epoch_order(labels: np.ndarray, balance: str, generator, draws: int | None = None) -> np.ndarray:  # noqa: ANN001
    """Indices (into ``labels``) for one epoch of ``draws`` examples (default: all of them): a
    class-balanced draw with replacement, or a permutation.

    ``balance="sampler"`` draws each class with equal total probability (the weighted sampler);
    other modes use a plain permutation (``"loss"`` reweights the loss instead), cut to ``draws``
    (or repeated when ``draws`` is longer).
    """
    import torch

    n = len(labels)
    draws = n if draws is None else draws
    if balance == "sampler":
        pos = labels.sum()
        w = np.where(labels == 1, 0.5 / max(pos, 1), 0.5 / max(n - pos, 1))
        return torch.multinomial(torch.as_tensor(w, dtype=torch.double), draws, replacement=True,
                                 generator=generator).numpy()
    return np.resize(torch.randperm(n, generator=generator).numpy(), draws)
