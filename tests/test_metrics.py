"""Metrics: sklearn-backed AUC, seeded bootstrap, paired ΔAUC, threshold filter, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from lesion_studio.errors import LesionStudioError  # noqa: E402
from lesion_studio.evaluate.metrics import (  # noqa: E402
    _resample_indices,
    above_threshold,
    auc,
    bootstrap_auc,
    paired_bootstrap_delta_auc,
    resampled_aucs,
    roc,
)


def _data(n: int = 120, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(int)
    weak = np.clip(0.5 + 0.15 * (y - 0.5) + rng.normal(0, 0.25, n), 0, 1)
    strong = np.clip(0.5 + 0.5 * (y - 0.5) + rng.normal(0, 0.25, n), 0, 1)
    return y, weak, strong


def test_bootstrap_is_reproducible_with_a_seed_and_contains_the_estimate() -> None:
    y, s, _ = _data()
    a = bootstrap_auc(y, s, n_resamples=1000, seed=7)
    b = bootstrap_auc(y, s, n_resamples=1000, seed=7)
    c = bootstrap_auc(y, s, n_resamples=1000, seed=8)
    assert a == b
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    assert 0.0 <= a.ci_low <= a.auc <= a.ci_high <= 1.0
    assert a.auc == pytest.approx(auc(y, s))
    assert a.n_resamples == 1000 and a.n_positive + a.n_negative == len(y)


def test_paired_delta_uses_the_same_resamples() -> None:
    y, weak, strong = _data()
    d = paired_bootstrap_delta_auc(y, weak, strong, n_resamples=1000, seed=3)
    assert d.delta == pytest.approx(auc(y, strong) - auc(y, weak))
    assert d.ci_low <= d.delta <= d.ci_high
    assert d.ci_low > 0 and d.p_not_better < 0.05
    same = paired_bootstrap_delta_auc(y, weak, weak, n_resamples=1000, seed=3)
    assert same.delta == 0 and same.ci_low == 0 and same.ci_high == 0


def test_roc_endpoints() -> None:
    y, s, _ = _data()
    fpr, tpr, _thr = roc(y, s)
    assert fpr[0] == 0 and tpr[-1] == 1 and np.all(np.diff(fpr) >= 0)


def test_filter_keeps_exactly_the_scores_above_t() -> None:
    scores = np.array([0.1, 0.5, 0.50001, 0.7, 0.9, 0.95, 0.99])
    keep = above_threshold(scores, 0.5)
    assert keep.tolist() == [False, False, True, True, True, True, True]
    assert above_threshold(scores, 0.95).tolist() == [False] * 5 + [False, True]
    with pytest.raises(LesionStudioError):
        above_threshold(scores, 1.5)


def test_no_positives_is_a_clear_error() -> None:
    with pytest.raises(LesionStudioError, match="no lesion"):
        bootstrap_auc(np.zeros(10), np.linspace(0, 1, 10))
    with pytest.raises(LesionStudioError, match="at least 1000"):
        bootstrap_auc(np.array([0, 1]), np.array([0.1, 0.9]), n_resamples=10)


def test_vectorised_resample_auc_equals_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    y, s, _ = _data(60)
    s = np.round(s, 1)  # many ties
    idx = _resample_indices(y, 50, seed=0)
    fast = resampled_aucs(y, s, idx)
    slow = [roc_auc_score(y[i], s[i]) for i in idx]
    np.testing.assert_allclose(fast, slow, atol=1e-12)


def test_pooled_auc_with_one_seed_is_the_plain_bootstrap() -> None:
    from lesion_studio.evaluate.metrics import bootstrap_auc, pooled_bootstrap_auc

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 80)
    s = y * 0.4 + rng.random(80)
    assert pooled_bootstrap_auc(y, [s], seed=5) == bootstrap_auc(y, s, seed=5)


def test_pooled_auc_is_the_seed_mean_and_narrows_with_agreeing_seeds() -> None:
    from sklearn.metrics import roc_auc_score

    from lesion_studio.evaluate.metrics import bootstrap_auc, pooled_bootstrap_auc

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 120)
    seeds = [y * 0.5 + rng.random(120) for _ in range(3)]
    pooled = pooled_bootstrap_auc(y, seeds, seed=0)
    assert pooled.auc == pytest.approx(np.mean([roc_auc_score(y, s) for s in seeds]))
    # Averaging three noisy models' AUCs per resample is less variable than one model's.
    single = bootstrap_auc(y, seeds[0], seed=0)
    assert pooled.ci_high - pooled.ci_low < single.ci_high - single.ci_low


def test_pooled_delta_pairs_seed_k_with_seed_k() -> None:
    from sklearn.metrics import roc_auc_score

    from lesion_studio.evaluate.metrics import pooled_paired_delta_auc

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 100)
    base = [y * 0.2 + rng.random(100) for _ in range(3)]
    better = [b + y * 0.6 for b in base]
    d = pooled_paired_delta_auc(y, base, better, seed=0)
    assert d.delta == pytest.approx(np.mean([roc_auc_score(y, b2) - roc_auc_score(y, b1)
                                             for b1, b2 in zip(base, better, strict=True)]))
    assert d.ci_low > 0 and d.p_not_better == 0.0
    same = pooled_paired_delta_auc(y, base, base, seed=0)
    assert same.delta == 0.0 and same.ci_low == same.ci_high == 0.0
    with pytest.raises(LesionStudioError, match="seeds"):
        pooled_paired_delta_auc(y, base, better[:2])


def test_quantile_threshold_reads_the_real_lesion_scores() -> None:
    from lesion_studio.evaluate.metrics import quantile_threshold, seed_spread

    lesions = np.array([0.2, 0.4, 0.6, 0.8])
    assert quantile_threshold(lesions, 0.0) == 0.2
    assert quantile_threshold(lesions, 0.5) == pytest.approx(0.5)
    with pytest.raises(LesionStudioError):
        quantile_threshold(lesions, 1.0)
    with pytest.raises(LesionStudioError, match="no validation lesion"):
        quantile_threshold(np.array([]), 0.5)
    spread = seed_spread([0.6, 0.7, 0.8])
    assert spread["mean"] == pytest.approx(0.7) and spread["sd"] == pytest.approx(0.1) and spread["n"] == 3
