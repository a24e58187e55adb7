"""The review queue: which images are unreviewed, in which order to read them, and how many are left.

**Unreviewed**, as the store records review:

- for the project (``reader=None``): an image whose working label (``images.label``) is still
  ``unreviewed``, the dataset browser's own definition (``ImageRecord.status``);
- for one reader: an image that reader has neither labelled lesion or normal (their own row in
  ``reader_labels``, written whenever they label an image in the viewer) nor drawn a box on
  (accepting a box proposal makes a box by the reader, and labels the image as theirs too).

Excluded images are never in the queue (they are out of the dataset). No new "reviewed" flag is
needed: labelling is the act of review, and the readers' labels already record it per reader.

**Orders** (:data:`ORDERS`):

- ``uncertainty``: the images whose score is closest to the model's operating point first, the
  images labelling teaches the model most about (uncertainty sampling, the active-learning order);
- ``likely``: the highest lesion score first (read the probable lesions first);
- ``file``: import order (image id).

Images the model has not scored come after the scored ones, in import order. The scores are the
model's stored image scores (``store.proposals.image_scores``; the detector and retraining store
them); with no model named, the model that scored images most recently.

**Operating point** (:func:`find_operating_point`), first that applies: the value given; the one stored
with the model (its metadata's ``operating_point``, which :func:`lesion_studio.assist.retrain.retrain_detector`
writes); the threshold that maximises Youden's J (sensitivity + specificity − 1) over the model's
stored scores of the labelled validation images (both classes needed); else 0.5.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lesion_studio.errors import LesionStudioError
from lesion_studio.store import proposals as store_proposals
from lesion_studio.store.project import Project

ORDERS = ("uncertainty", "likely", "file")
DEFAULT_OPERATING_POINT = 0.5


# ------------------------------------------------------------------------------ what is unreviewed
def unreviewed_ids(project: Project, reader: str | None = None) -> set[int]:
    """Ids of the images not yet reviewed (by the project, or by ``reader``), excluded ones left out."""
    if reader is None:
        rows = project._query("SELECT id FROM images WHERE label = 'unreviewed' AND exclusions = ''")
    else:
        rows = project._query(
            "SELECT id FROM images WHERE exclusions = '' AND id NOT IN ("
            "SELECT image_id FROM reader_labels WHERE reader = ? AND label IN ('lesion', 'normal') "
            "UNION SELECT image_id FROM lesion_boxes WHERE author = ?)", (reader, reader))
    return {int(r[0]) for r in rows}


# ------------------------------------------------------------------------------ operating point
@dataclass(frozen=True)
class OperatingPoint:
    value: float
    source: str  # "given", "model", "youden_val" or "default"

    def describe(self) -> str:
        words = {"given": "given", "model": "stored with the model", "youden_val": "Youden's J on validation",
                 "default": "default"}
        return f"{self.value:.3f} ({words.get(self.source, self.source)})"


def youden_threshold(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """The score threshold (predict lesion when score >= it) that maximises Youden's J =
    sensitivity + specificity − 1; ties go to the threshold nearest 0.5. Numpy only (the reading
    build has no scikit-learn). Needs both classes."""
    y = np.asarray(labels, dtype=int).ravel()
    s = np.asarray(scores, dtype=float).ravel()
    if y.shape != s.shape or not np.all(np.isfinite(s)):
        raise LesionStudioError("Youden's J needs one finite score per label.")
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        raise LesionStudioError("Youden's J needs lesion and normal images.")
    candidates = np.unique(s)
    tpr = np.array([(s[y == 1] >= t).sum() / n_pos for t in candidates])
    fpr = np.array([(s[y == 0] >= t).sum() / n_neg for t in candidates])
    j = tpr - fpr
    best = np.flatnonzero(np.isclose(j, j.max()))
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def find_operating_point(project: Project, model_id: int | None, given: float | None = None) -> OperatingPoint:
    """The model's operating point (see the module's docstring for the order of sources)."""
    if given is not None:
        return OperatingPoint(_check_point(given), "given")
    if model_id is None:
        return OperatingPoint(DEFAULT_OPERATING_POINT, "default")
    stored = project.model(model_id).metadata.get("operating_point")
    if isinstance(stored, dict):
        stored = stored.get("value")
    if isinstance(stored, int | float) and 0.0 <= float(stored) <= 1.0:
        return OperatingPoint(float(stored), "model")
    scores = store_proposals.image_scores(project, model_id)
    val = [r for r in project.images(split="val", include_excluded=False)
           if r.label in ("lesion", "normal") and r.id in scores]
    labels = [int(r.label == "lesion") for r in val]
    if 0 < sum(labels) < len(labels):
        return OperatingPoint(youden_threshold(labels, [scores[r.id].score for r in val]), "youden_val")
    return OperatingPoint(DEFAULT_OPERATING_POINT, "default")


def _check_point(value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise LesionStudioError(f"An operating point is a probability in [0, 1], not {value}.")
    return value


# ------------------------------------------------------------------------------ orders
def order_ids(ids: Iterable[int], scores: Mapping[int, float], order: str, threshold: float) -> list[int]:
    """``ids`` (in import order) sorted by ``order``; ids without a score come last, in import order."""
    if order not in ORDERS:
        raise LesionStudioError(f"The review order is one of {', '.join(ORDERS)}, not {order!r}.")
    ids = sorted(ids)
    if order == "file":
        return ids
    scored = [i for i in ids if i in scores]
    rest = [i for i in ids if i not in scores]
    if order == "likely":
        scored.sort(key=lambda i: (-float(scores[i]), i))
    else:
        scored.sort(key=lambda i: (abs(float(scores[i]) - threshold), i))
    return scored + rest


def resolve_model(project: Project, model: int | str | None) -> int | None:
    """A model reference (id or name) as an id; None: the model that scored images last."""
    if model is None:
        return store_proposals.latest_scoring_model(project)
    return project.model(model).id


#: The project setting naming the detector that proposes boxes and orders the queue (a model's name or id).
DETECTOR_SETTING = "assist.model"


def chosen_detector(project: Project) -> int | None:
    """The project's chosen detector (what the app proposes, scores and orders with): the model the
    project's setting names, else the model that scored images last (retraining registers and
    scores one), else the newest registered classifier; None when there is none."""
    named = project.get_setting(DETECTOR_SETTING)
    if named:
        try:
            return project.model(named).id
        except LesionStudioError:
            pass  # the named model was deleted: fall back
    latest = store_proposals.latest_scoring_model(project)
    if latest is not None:
        return latest
    models = project.models(kind="drn")
    return max(m.id for m in models) if models else None


def review_order(project: Project, order: str = "uncertainty", *, model: int | str | None = None,
                 operating_point: float | None = None, reader: str | None = None) -> list[int]:
    """The unreviewed images' ids in reading order (see the module's docstring)."""
    if order not in ORDERS:
        raise LesionStudioError(f"The review order is one of {', '.join(ORDERS)}, not {order!r}.")
    ids = unreviewed_ids(project, reader)
    if order == "file":
        return sorted(ids)
    model_id = resolve_model(project, model)
    scores = ({i: s.score for i, s in store_proposals.image_scores(project, model_id).items()}
              if model_id is not None else {})
    point = find_operating_point(project, model_id, operating_point).value if order == "uncertainty" else 0.5
    return order_ids(ids, scores, order, point)


def next_unreviewed(project: Project, current_id: int | None, order: str = "uncertainty", *,
                    model: int | str | None = None, operating_point: float | None = None,
                    reader: str | None = None) -> int | None:
    """The image to read after ``current_id``: the next one in the queue when the current image is
    still unreviewed (it was skipped); when it was just reviewed (it left the queue), the head of
    the queue, or in file order the next unreviewed image after it. Wraps around; None when no
    other image is unreviewed."""
    queue = review_order(project, order, model=model, operating_point=operating_point, reader=reader)
    if current_id in queue:
        rest = queue[queue.index(current_id) + 1:] + queue[:queue.index(current_id)]
        return rest[0] if rest else None
    if not queue:
        return None
    if order == "file" and current_id is not None:
        return next((i for i in queue if i > current_id), queue[0])
    return queue[0]


@dataclass(frozen=True)
class ReviewCounter:
    """Where the reader is: ``position`` (1-based) of the current image in the queue when it is
    unreviewed, the number unreviewed, and the number of images (excluded ones left out)."""

    position: int | None
    unreviewed: int
    images: int

    def text(self) -> str:
        if self.position is not None:
            return f"{self.position} of {self.unreviewed} unreviewed"
        return f"{self.unreviewed} of {self.images} images unreviewed"


def review_counter(project: Project, current_id: int | None = None, order: str = "uncertainty", *,
                   model: int | str | None = None, operating_point: float | None = None,
                   reader: str | None = None) -> ReviewCounter:
    """The counter a reader sees ("37 of 412 unreviewed")."""
    queue = review_order(project, order, model=model, operating_point=operating_point, reader=reader)
    images = int(project._query("SELECT COUNT(*) FROM images WHERE exclusions = ''")[0][0])
    position = queue.index(current_id) + 1 if current_id in queue else None
    return ReviewCounter(position, len(queue), images)
