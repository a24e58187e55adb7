"""ROC AUC with bootstrapped confidence intervals, paired bootstrap of ΔAUC, and the threshold filter.

Pure functions over numpy arrays (labels 1 = lesion, 0 = normal; scores = lesion probability).
ROC and AUC come from scikit-learn, never a hand-rolled trapezoid, so numbers match what reviewers
compute. The bootstrap resamples *cases* with replacement; a resample that happens to hold one
class only has no AUC and is redrawn from the same seeded stream, so ``n_resamples`` is always the
number of AUCs behind the interval. The paired ΔAUC bootstrap evaluates both models on the *same*
resampled cases, which is what makes their difference's interval meaningful (the two models' scores
are correlated through the shared test images).

Speed: scikit-learn's ``roc_auc_score`` costs ~5 ms per call in input validation alone, so 2,000
resamples x several models x body parts would take minutes. The resampled AUCs are therefore
computed in one vectorised pass of the Mann–Whitney rank statistic (exactly the ROC AUC, ties
counted half, via scipy's ``rankdata``), and ``tests/test_metrics.py`` checks it against
``roc_auc_score`` resample by resample. Point estimates and curves always come from scikit-learn.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lesion_studio.errors import LesionStudioError
from lesion_studio.extras import require

MIN_RESAMPLES = 1000


@dataclass(frozen=True)
class AucResult:
    """A point AUC with its percentile bootstrap interval."""

    auc: float
    ci_low: float
    ci_high: float
    n_positive: int
    n_negative: int
    n_resamples: int
    confidence: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        return f"{self.auc:.3f} ({self.ci_low:.3f}–{self.ci_high:.3f})"


@dataclass(frozen=True)
class DeltaAucResult:
    """AUC(b) − AUC(a) on the same cases, with a paired bootstrap interval and a one-sided p-value."""

    delta: float
    ci_low: float
    ci_high: float
    p_not_better: float  # fraction of resamples with delta <= 0
    n_resamples: int
    confidence: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(labels: np.ndarray, *score_arrays: np.ndarray, what: str) -> np.ndarray:
    y = np.asarray(labels).astype(int).ravel()
    if not set(np.unique(y)).issubset({0, 1}):
        raise LesionStudioError(f"{what}: labels must be 0 (normal) or 1 (lesion).")
    for s in score_arrays:
        if np.asarray(s).ravel().shape != y.shape:
            raise LesionStudioError(f"{what}: {len(y)} labels but {np.asarray(s).size} scores.")
        if not np.all(np.isfinite(np.asarray(s, dtype=float))):
            raise LesionStudioError(f"{what}: some scores are not finite numbers.")
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == len(y):
        missing = "lesion (positive)" if n_pos == 0 else "normal (negative)"
        raise LesionStudioError(
            f"{what}: the set has no {missing} images ({len(y)} images), so ROC AUC is undefined. "
            "Check the split assignment and labels, or use a larger test set."
        )
    return y


def roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, thresholds) from scikit-learn."""
    metrics = require("sklearn.metrics", "ROC analysis")
    y = _check(labels, scores, what="ROC")
    fpr, tpr, thr = metrics.roc_curve(y, np.asarray(scores, dtype=float).ravel())
    return fpr, tpr, thr


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    metrics = require("sklearn.metrics", "ROC analysis")
    y = _check(labels, scores, what="ROC AUC")
    return float(metrics.roc_auc_score(y, np.asarray(scores, dtype=float).ravel()))


def _resample_indices(y: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) case indices, each resample holding both classes."""
    rng = np.random.default_rng(seed)
    n = len(y)
    out = np.empty((n_resamples, n), dtype=np.int64)
    filled = 0
    while filled < n_resamples:
        draw = rng.integers(0, n, size=(max(64, n_resamples - filled), n))
        pos = y[draw].sum(axis=1)
        good = draw[(pos > 0) & (pos < n)]
        take = min(len(good), n_resamples - filled)
        out[filled:filled + take] = good[:take]
        filled += take
    return out


def resampled_aucs(y: np.ndarray, s: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """ROC AUC of each resample ``s[idx[k]]`` vs ``y[idx[k]]`` in one vectorised pass.

    AUC = (R+ − n+(n+ + 1)/2) / (n+ n−), R+ the sum of the positives' mid-ranks: the
    Mann–Whitney identity, equal to scikit-learn's trapezoidal ROC AUC including ties.
    """
    stats = require("scipy.stats", "ROC analysis")
    ys = y[idx]
    ranks = stats.rankdata(s[idx], axis=1)
    n_pos = ys.sum(axis=1).astype(float)
    n_neg = ys.shape[1] - n_pos
    r_pos = (ranks * ys).sum(axis=1)
    return (r_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _check_resamples(n_resamples: int, confidence: float) -> None:
    if n_resamples < MIN_RESAMPLES:
        raise LesionStudioError(f"Use at least {MIN_RESAMPLES} bootstrap resamples (got {n_resamples}).")
    if not 0.5 <= confidence < 1.0:
        raise LesionStudioError(f"The confidence level must be in [0.5, 1), not {confidence}.")


def bootstrap_auc(
    labels: np.ndarray, scores: np.ndarray, *, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> AucResult:
    """ROC AUC and its percentile bootstrap CI; the same seed gives the same interval."""
    metrics = require("sklearn.metrics", "ROC analysis")
    _check_resamples(n_resamples, confidence)
    y = _check(labels, scores, what="ROC AUC")
    s = np.asarray(scores, dtype=float).ravel()
    point = float(metrics.roc_auc_score(y, s))
    idx = _resample_indices(y, n_resamples, seed)
    aucs = resampled_aucs(y, s, idx)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(aucs, [alpha, 1.0 - alpha])
    return AucResult(auc=point, ci_low=float(lo), ci_high=float(hi), n_positive=int(y.sum()),
                     n_negative=int(len(y) - y.sum()), n_resamples=n_resamples, confidence=confidence, seed=seed)


def paired_bootstrap_delta_auc(
    labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, *, n_resamples: int = 2000,
    confidence: float = 0.95, seed: int = 0,
) -> DeltaAucResult:
    """AUC(b) − AUC(a) with both models evaluated on the same resampled cases."""
    metrics = require("sklearn.metrics", "ROC analysis")
    _check_resamples(n_resamples, confidence)
    y = _check(labels, scores_a, scores_b, what="ΔAUC")
    a = np.asarray(scores_a, dtype=float).ravel()
    b = np.asarray(scores_b, dtype=float).ravel()
    point = float(metrics.roc_auc_score(y, b) - metrics.roc_auc_score(y, a))
    idx = _resample_indices(y, n_resamples, seed)
    deltas = resampled_aucs(y, b, idx) - resampled_aucs(y, a, idx)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(deltas, [alpha, 1.0 - alpha])
    return DeltaAucResult(delta=point, ci_low=float(lo), ci_high=float(hi),
                          p_not_better=float(np.mean(deltas <= 0.0)), n_resamples=n_resamples,
                          confidence=confidence, seed=seed)


def above_threshold(scores: np.ndarray, threshold: float) -> np.ndarray:
    """The paper's filter: keep a synthetic candidate when its baseline score is strictly above t."""
    if not 0.0 <= threshold <= 1.0:
        raise LesionStudioError(f"A score threshold must lie in [0, 1], not {threshold}.")
    return np.asarray(scores, dtype=float).ravel() > threshold


# ------------------------------------------------------------------ pooled over training seeds
def _score_matrix(scores: list[np.ndarray] | np.ndarray, n: int, what: str) -> np.ndarray:
    m = np.atleast_2d(np.asarray(scores, dtype=float))
    if m.ndim != 2 or m.shape[1] != n or m.shape[0] < 1:
        raise LesionStudioError(f"{what}: expected one score array of length {n} per seed.")
    return m


def pooled_bootstrap_auc(
    labels: np.ndarray, seed_scores: list[np.ndarray], *, n_resamples: int = 2000, confidence: float = 0.95,
    seed: int = 0,
) -> AucResult:
    """The seeds' mean ROC AUC with a CI that holds both sources of noise we can see.

    Each resample draws test cases with replacement and averages the AUCs of the models trained
    with different seeds on those *same* cases. The point is the mean of the seeds' AUCs. With one
    seed this is exactly :func:`bootstrap_auc`.
    """
    metrics = require("sklearn.metrics", "ROC analysis")
    _check_resamples(n_resamples, confidence)
    y = np.asarray(labels).astype(int).ravel()
    m = _score_matrix(seed_scores, len(y), "pooled AUC")
    y = _check(y, *m, what="pooled AUC")
    point = float(np.mean([metrics.roc_auc_score(y, s) for s in m]))
    idx = _resample_indices(y, n_resamples, seed)
    aucs = np.mean([resampled_aucs(y, s, idx) for s in m], axis=0)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(aucs, [alpha, 1.0 - alpha])
    return AucResult(auc=point, ci_low=float(lo), ci_high=float(hi), n_positive=int(y.sum()),
                     n_negative=int(len(y) - y.sum()), n_resamples=n_resamples, confidence=confidence, seed=seed)


def pooled_paired_delta_auc(
    labels: np.ndarray, seed_scores_a: list[np.ndarray], seed_scores_b: list[np.ndarray], *,
    n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
) -> DeltaAucResult:
    """Mean over seeds of AUC(b_k) − AUC(a_k), paired on the same resampled cases.

    Seed k of model b is compared with seed k of model a (the augmented classifier trained with
    seed k against the baseline trained with seed k), and the resample's ΔAUC is the seeds' mean.
    """
    metrics = require("sklearn.metrics", "ROC analysis")
    _check_resamples(n_resamples, confidence)
    y = np.asarray(labels).astype(int).ravel()
    a = _score_matrix(seed_scores_a, len(y), "pooled ΔAUC")
    b = _score_matrix(seed_scores_b, len(y), "pooled ΔAUC")
    if a.shape[0] != b.shape[0]:
        raise LesionStudioError(f"pooled ΔAUC: {a.shape[0]} baseline seeds but {b.shape[0]} compared seeds.")
    y = _check(y, *a, *b, what="pooled ΔAUC")
    point = float(np.mean([metrics.roc_auc_score(y, sb) - metrics.roc_auc_score(y, sa)
                           for sa, sb in zip(a, b, strict=True)]))
    idx = _resample_indices(y, n_resamples, seed)
    deltas = np.mean([resampled_aucs(y, sb, idx) - resampled_aucs(y, sa, idx) for sa, sb in zip(a, b, strict=True)],
                     axis=0)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(deltas, [alpha, 1.0 - alpha])
    return DeltaAucResult(delta=point, ci_low=float(lo), ci_high=float(hi),
                          p_not_better=float(np.mean(deltas <= 0.0)), n_resamples=n_resamples,
                          confidence=confidence, seed=seed)


def seed_spread(values: list[float]) -> dict[str, float | int]:
    """Mean, sample standard deviation, min and max of per-seed figures (sd 0 for one seed)."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}


def quantile_threshold(lesion_scores: np.ndarray, q: float) -> float:
    """The score above which a candidate is kept: the q-quantile of real validation lesions' scores.

    A raw probability means different things for different baselines (an AUC-0.6 model squeezes
    everything near its prior); a quantile of the baseline's own scores on real lesions says "keep
    candidates the baseline finds at least as lesion-like as the lower (1 − q) of real lesions".
    """
    if not 0.0 <= q < 1.0:
        raise LesionStudioError(f"A lesion-score quantile must lie in [0, 1), not {q}.")
    s = np.asarray(lesion_scores, dtype=float).ravel()
    if s.size == 0:
        raise LesionStudioError("The baseline has no validation lesion images to set a quantile threshold on.")
    return float(np.quantile(s, q))


def pointing_game(hits: np.ndarray, *, n_resamples: int = 2000, confidence: float = 0.95,
                  seed: int = 0) -> dict[str, float | int | None]:
    """The share of lesion images whose localisation map peaks inside one of their boxes, with a
    percentile bootstrap CI over those images (the pointing game of Zhang et al. 2016).

    ``hits``: one bool per lesion image considered (e.g. the test fractures the detector finds).
    """
    _check_resamples(n_resamples, confidence)
    h = np.asarray(hits, dtype=float).ravel()
    if h.size == 0:
        return {"rate": None, "ci_low": None, "ci_high": None, "n": 0}
    rng = np.random.default_rng(seed)
    rates = h[rng.integers(0, h.size, (n_resamples, h.size))].mean(axis=1)
    tail = (1 - confidence) / 2
    return {"rate": float(h.mean()), "ci_low": float(np.quantile(rates, tail)),
            "ci_high": float(np.quantile(rates, 1 - tail)), "n": int(h.size)}
