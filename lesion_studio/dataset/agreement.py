"""How well readers agree, per reader pair, and what they disagree on (for adjudication).

For each pair of readers (A, B):

- **Cohen's κ on image labels**, over the images both labelled lesion or normal (a reader's own
  labels, store/readers.py). κ = (p_o − p_e) / (1 − p_e), unweighted, the same number
  scikit-learn's ``cohen_kappa_score`` gives (``tests/test_agreement.py`` checks it does).
  Computed here with numpy because the reading build, where readers work, ships without
  scikit-learn (packaging/lesion-studio.spec).
- **Box F1 at IoU ≥ 0.5** over the images both read (labelled, or drew a box on): boxes are
  matched greedily, highest IoU first, one-to-one, pairs below the threshold never match.
  F1 = 2·matched / (boxes of A + boxes of B), symmetric in A and B.
- **Mean IoU of the matched boxes**: how tightly the boxes they agree on overlap.

Each comes with a percentile bootstrap interval: images are resampled with replacement (the image
is the unit: a reader's boxes on one image are not independent), seeded, ``resamples`` times; a
resample where the statistic is undefined (κ with one label only, IoU with no match) is left out,
and the number used is reported.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lesion_studio.errors import LesionStudioError
from lesion_studio.store.records import Box

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

IOU_THRESHOLD = 0.5
DEFAULT_RESAMPLES = 2000
MIN_RESAMPLES = 200


# ----------------------------------------------------------------------------------- pure maths
def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not overlap): :meth:`Box.iou`."""
    return a.iou(b)


def match_boxes(a: Sequence[Box], b: Sequence[Box], threshold: float = IOU_THRESHOLD) -> list[tuple[int, int, float]]:
    """One-to-one matches (index in a, index in b, IoU): greedy by highest IoU, ties by index,
    only pairs with IoU >= ``threshold``."""
    pairs = sorted(((iou(x, y), i, j) for i, x in enumerate(a) for j, y in enumerate(b)),
                   key=lambda t: (-t[0], t[1], t[2]))
    used_a: set[int] = set()
    used_b: set[int] = set()
    out = []
    for value, i, j in pairs:
        if value < threshold or value <= 0:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        out.append((i, j, value))
    return out


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Unweighted Cohen's κ of two raters' labels of the same items (None when undefined: no
    items, or both used one and the same label throughout, so chance agreement is 1)."""
    values = _kappas(*_codes(a, b), np.arange(len(a))[None, :]) if len(a) else np.array([np.nan])
    return None if math.isnan(values[0]) else float(values[0])


def _codes(a: Sequence[str], b: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
    if len(a) != len(b):
        raise LesionStudioError(f"κ needs the same items from both readers ({len(a)} vs {len(b)}).")
    names = sorted(set(a) | set(b))
    code = {n: k for k, n in enumerate(names)}
    return np.array([code[x] for x in a]), np.array([code[x] for x in b]), len(names)


def _kappas(a: np.ndarray, b: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """κ for each row of item indices ``idx`` (resamples x items); NaN where undefined."""
    ra, rb = a[idx], b[idx]
    observed = (ra == rb).mean(axis=1)
    expected = sum((ra == c).mean(axis=1) * (rb == c).mean(axis=1) for c in range(k))
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (observed - expected) / (1.0 - expected)
    return np.where(np.isclose(expected, 1.0), np.nan, kappa)


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) item indices drawn with replacement from a seeded generator."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


@dataclass(frozen=True)
class Estimate:
    """A statistic with its percentile bootstrap interval (None where undefined)."""

    value: float | None
    low: float | None
    high: float | None
    resamples_used: int

    def format(self, digits: int = 2) -> str:
        if self.value is None:
            return "n/a"
        if self.low is None or self.high is None:
            return f"{self.value:.{digits}f}"
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _estimate(point: float | None, samples: np.ndarray, confidence: float) -> Estimate:
    good = samples[np.isfinite(samples)]
    if point is None or math.isnan(point) or not len(good):
        return Estimate(None if point is None or math.isnan(point) else float(point), None, None, int(len(good)))
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(good, [tail, 100.0 - tail])
    return Estimate(float(point), float(low), float(high), int(len(good)))


def box_stats(per_image: Sequence[tuple[int, int, int, float]], idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F1 and mean matched IoU for each row of image indices; per image (matched, boxes of A,
    boxes of B, sum of matched IoUs)."""
    table = np.array(per_image, dtype=np.float64).reshape(-1, 4)
    sums = table[idx].sum(axis=1)
    matched, n_a, n_b, iou_sum = sums[..., 0], sums[..., 1], sums[..., 2], sums[..., 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(n_a + n_b > 0, 2 * matched / (n_a + n_b), np.nan)
        mean_iou = np.where(matched > 0, iou_sum / matched, np.nan)
    return f1, mean_iou


# ----------------------------------------------------------------------------------- the report
@dataclass
class PairAgreement:
    reader_a: str
    reader_b: str
    labelled_images: int  # images both labelled lesion or normal: the κ sample
    kappa: Estimate
    read_images: int  # images both read: the box sample
    boxes_a: int
    boxes_b: int
    matched: int
    box_f1: Estimate
    mean_iou: Estimate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AgreementReport:
    readers: list[str]
    pairs: list[PairAgreement] = field(default_factory=list)
    iou_threshold: float = IOU_THRESHOLD
    resamples: int = DEFAULT_RESAMPLES
    confidence: float = 0.95
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rows(self) -> list[list[str]]:
        """The table a person reads (CLI and GUI show the same)."""
        out = [["readers", "κ labels [CI]", "images", "box F1 [CI]", "mean IoU [CI]", "boxes A/B, matched",
                "images"]]
        for p in self.pairs:
            out.append([f"{p.reader_a} – {p.reader_b}", p.kappa.format(), str(p.labelled_images),
                        p.box_f1.format(), p.mean_iou.format(), f"{p.boxes_a}/{p.boxes_b}, {p.matched}",
                        str(p.read_images)])
        return out


def pair_agreement(labels_a: dict[int, str], labels_b: dict[int, str], boxes_a: dict[int, list[Box]],
                   boxes_b: dict[int, list[Box]], read_a: set[int], read_b: set[int], *, reader_a: str = "A",
                   reader_b: str = "B", resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95, seed: int = 0,
                   iou_threshold: float = IOU_THRESHOLD) -> PairAgreement:
    """Agreement of two readers from their labels {image: label}, boxes {image: [Box]} and the
    images each read. Pure: the project-level :func:`agreement_report` gathers the inputs."""
    if resamples < MIN_RESAMPLES:
        raise LesionStudioError(f"Use at least {MIN_RESAMPLES} bootstrap resamples (got {resamples}).")
    if not 0.5 <= confidence < 1.0:
        raise LesionStudioError(f"The confidence level must be in [0.5, 1), not {confidence}.")
    both = sorted(i for i in set(labels_a) & set(labels_b)
                  if labels_a[i] in ("lesion", "normal") and labels_b[i] in ("lesion", "normal"))
    la, lb = [labels_a[i] for i in both], [labels_b[i] for i in both]
    if both:
        a, b, k = _codes(la, lb)
        kappa = _estimate(cohen_kappa(la, lb), _kappas(a, b, k, bootstrap_indices(len(both), resamples, seed)),
                          confidence)
    else:
        kappa = Estimate(None, None, None, 0)
    read = sorted(read_a & read_b)
    per_image = []
    for image_id in read:
        xa, xb = boxes_a.get(image_id, []), boxes_b.get(image_id, [])
        matches = match_boxes(xa, xb, iou_threshold)
        per_image.append((len(matches), len(xa), len(xb), sum(m[2] for m in matches)))
    if read:
        point_f1, point_iou = box_stats(per_image, np.arange(len(read))[None, :])
        f1s, ious = box_stats(per_image, bootstrap_indices(len(read), resamples, seed + 1))
        box_f1, mean_iou = _estimate(float(point_f1[0]), f1s, confidence), _estimate(float(point_iou[0]), ious,
                                                                                       confidence)
    else:
        box_f1 = mean_iou = Estimate(None, None, None, 0)
    totals = np.array(per_image, dtype=float).reshape(-1, 4).sum(axis=0)
    return PairAgreement(reader_a, reader_b, len(both), kappa, len(read), int(totals[1]), int(totals[2]),
                         int(totals[0]), box_f1, mean_iou)


def agreement_report(project: Project, readers: Iterable[str] | None = None, *,
                     resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95, seed: int = 0,
                     iou_threshold: float = IOU_THRESHOLD) -> AgreementReport:
    """Every pair of ``readers`` (default: every reader of the project) on ``project``."""
    from lesion_studio.store import readers as store_readers

    known = store_readers.readers(project)
    chosen = sorted(set(readers)) if readers is not None else known
    unknown = [r for r in chosen if r not in known]
    if unknown:
        raise LesionStudioError(f"{unknown[0]!r} has read nothing in this project (readers: "
                                f"{', '.join(known) or 'none yet'}).")
    if len(chosen) < 2:
        raise LesionStudioError(f"Agreement needs two readers; this project has {', '.join(chosen) or 'none'}. "
                                "Each reader sets their name once (GUI: Settings; CLI: --reader or "
                                f"${store_readers.READER_ENV}) and reads the same images.")
    labels: dict[str, dict[int, str]] = {r: {} for r in chosen}
    for rl in store_readers.reader_labels(project):
        if rl.reader in labels:
            labels[rl.reader][rl.image_id] = rl.label
    boxes: dict[str, dict[int, list[Box]]] = {r: {} for r in chosen}
    for box in project.boxes():
        if box.reader in boxes:
            boxes[box.reader].setdefault(box.image_id, []).append(box.box)
    read = {r: set(labels[r]) | set(boxes[r]) for r in chosen}
    report = AgreementReport(chosen, iou_threshold=iou_threshold, resamples=resamples, confidence=confidence,
                             seed=seed)
    for a, b in itertools.combinations(chosen, 2):
        report.pairs.append(pair_agreement(labels[a], labels[b], boxes[a], boxes[b], read[a], read[b], reader_a=a,
                                           reader_b=b, resamples=resamples, confidence=confidence, seed=seed,
                                           iou_threshold=iou_threshold))
    return report


# ----------------------------------------------------------------------------------- adjudication
@dataclass(frozen=True)
class Disagreement:
    """Two readers' boxes on one image: a matched pair that is not identical, or a box one reader
    drew and the other did not (``box_b`` / ``box_a`` None)."""

    box_a: Any  # LesionBox | None
    box_b: Any
    iou: float

    @property
    def kind(self) -> str:
        if self.box_a is None:
            return "only B"
        if self.box_b is None:
            return "only A"
        return "matched"


def disagreements(project: Project, image_id: int, reader_a: str, reader_b: str, *,
                  iou_threshold: float = IOU_THRESHOLD, include_identical: bool = False) -> list[Disagreement]:
    """What two readers disagree on in one image: matched pairs (IoU >= threshold) whose boxes or
    types differ, and unmatched boxes of either."""
    a = project.boxes(image_id, reader=reader_a)
    b = project.boxes(image_id, reader=reader_b)
    matches = match_boxes([x.box for x in a], [y.box for y in b], iou_threshold)
    out = []
    for i, j, value in matches:
        same = a[i].box == b[j].box and a[i].lesion_type == b[j].lesion_type
        if include_identical or not same:
            out.append(Disagreement(a[i], b[j], value))
    paired_a, paired_b = {m[0] for m in matches}, {m[1] for m in matches}
    out += [Disagreement(x, None, 0.0) for k, x in enumerate(a) if k not in paired_a]
    out += [Disagreement(None, y, 0.0) for k, y in enumerate(b) if k not in paired_b]
    return out


def merged_box(a: Box, b: Box) -> Box:
    """The consensus of two matched boxes: the mean of their edges."""
    return Box((a.x0 + b.x0) / 2, (a.y0 + b.y0) / 2, (a.x1 + b.x1) / 2, (a.y1 + b.y1) / 2)


def consensus_box(d: Disagreement, choice: str) -> tuple[Box, str]:
    """(box, lesion type) of the consensus for ``choice`` "a", "b" or "merge" (a matched pair only;
    the merged box takes A's type when the types differ and A has one, else B's)."""
    if choice == "a" and d.box_a is not None:
        return d.box_a.box, d.box_a.lesion_type
    if choice == "b" and d.box_b is not None:
        return d.box_b.box, d.box_b.lesion_type
    if choice == "merge" and d.box_a is not None and d.box_b is not None:
        return merged_box(d.box_a.box, d.box_b.box), d.box_a.lesion_type or d.box_b.lesion_type
    raise LesionStudioError(f"Cannot take {choice!r} for a disagreement of kind {d.kind!r}.")
