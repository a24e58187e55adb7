"""Every reported statistic against an independent computation of what the docs say it is.

evaluate/metrics.py (docs/experiments.md): percentile bootstrap CIs at (1 − confidence)/2 of
resampled AUCs, every resample holding both classes; the paired ΔAUC's share of resamples with
ΔAUC <= 0 (ties count as "not better"); pooled AUCs averaged over seeds per resample; the seeds'
spread as mean, sample sd, min and max.

evaluate/generator_quality.py (docs/synthesis.md, "Generator quality report"): drift outside the
central half of each side as a fraction of the source's 1st–99th percentile range, medians over
windows, the larger of mean and spread change; KID as the unbiased cubic-kernel MMD²; realism
cross-validated with an image's windows in one fold; and the report's lesion rates, ratio and
excess over the untouched windows, checked with a translator that changes nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from lesion_studio.evaluate import metrics  # noqa: E402
from lesion_studio.evaluate.generator_quality import (  # noqa: E402
    intensity_drift,
    kernel_inception_distance,
    polynomial_mmd2,
    two_sample_auc,
)


def _scores(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    a = y * 0.3 + rng.random(n)
    b = y * 0.5 + rng.random(n)
    return y, a, b


def _resampled(y: np.ndarray, s: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The AUC of each resample (vectorised; test_metrics.py checks it against scikit-learn's)."""
    return metrics.resampled_aucs(y, s, idx)


@pytest.mark.parametrize("confidence", [0.95, 0.8])
def test_the_bootstrap_ci_is_the_percentile_interval_of_the_resampled_aucs(confidence: float) -> None:
    y, a, _ = _scores()
    res = metrics.bootstrap_auc(y, a, n_resamples=1000, confidence=confidence, seed=3)
    idx = metrics._resample_indices(y, 1000, 3)
    assert idx.shape == (1000, len(y))
    pos = y[idx].sum(axis=1)
    assert np.all((pos > 0) & (pos < len(y)))  # every resample has both classes
    aucs = _resampled(y, a, idx)
    tail = (1 - confidence) / 2
    assert (res.ci_low, res.ci_high) == pytest.approx(tuple(np.quantile(aucs, [tail, 1 - tail])), abs=1e-12)
    assert res.format() == f"{res.auc:.3f} ({res.ci_low:.3f}–{res.ci_high:.3f})"
    assert (res.n_positive, res.n_negative) == (int(y.sum()), int(len(y) - y.sum()))


def test_every_resample_holds_both_classes_even_with_one_lesion_in_five() -> None:
    """A resample of five cases with one lesion has no lesion a third of the time; such a draw has
    no AUC and is drawn again, so every one of the n_resamples AUCs behind the interval exists."""
    y, s = np.array([1, 0, 0, 0, 0]), np.array([0.9, 0.2, 0.4, 0.6, 0.95])
    idx = metrics._resample_indices(y, 1000, 0)
    lesions = y[idx].sum(axis=1)
    assert idx.shape == (1000, 5) and np.all((lesions >= 1) & (lesions <= 4))
    res = metrics.bootstrap_auc(y, s, n_resamples=1000, seed=0)
    assert np.isfinite([res.ci_low, res.ci_high]).all() and 0.0 <= res.ci_low <= res.ci_high <= 1.0


def test_the_paired_delta_counts_ties_as_not_better() -> None:
    y, a, _ = _scores(24, seed=2)
    b = a.copy()
    k = int(np.flatnonzero(y == 1)[0])
    b[k] += 5.0  # b ranks one lesion higher; resamples without that case tie exactly
    d = metrics.paired_bootstrap_delta_auc(y, a, b, n_resamples=1000, seed=4)
    idx = metrics._resample_indices(y, 1000, 4)
    deltas = _resampled(y, b, idx) - _resampled(y, a, idx)
    assert np.mean(deltas == 0) > 0.2  # the check needs ties
    assert d.p_not_better == pytest.approx(np.mean(deltas <= 0), abs=1e-12)
    assert (d.ci_low, d.ci_high) == pytest.approx(tuple(np.quantile(deltas, [0.025, 0.975])), abs=1e-12)


def test_pooled_intervals_average_the_seeds_on_each_resample() -> None:
    y, a, b = _scores(50, seed=5)
    a2, b2 = a[::-1].copy() * 0.5 + a * 0.5, b + 0.1 * np.sin(np.arange(50))
    idx = metrics._resample_indices(y, 1000, 6)
    pooled = metrics.pooled_bootstrap_auc(y, [a, b], n_resamples=1000, seed=6)
    per = (_resampled(y, a, idx) + _resampled(y, b, idx)) / 2
    assert (pooled.ci_low, pooled.ci_high) == pytest.approx(tuple(np.quantile(per, [0.025, 0.975])), abs=1e-12)
    delta = metrics.pooled_paired_delta_auc(y, [a, a2], [b, b2], n_resamples=1000, seed=6)
    paired = ((_resampled(y, b, idx) - _resampled(y, a, idx)) + (_resampled(y, b2, idx) - _resampled(y, a2, idx))) / 2
    assert (delta.ci_low, delta.ci_high) == pytest.approx(tuple(np.quantile(paired, [0.025, 0.975])), abs=1e-12)
    assert delta.p_not_better == pytest.approx(np.mean(paired <= 0), abs=1e-12)


def test_the_seed_spread_is_mean_sample_sd_min_and_max() -> None:
    values = [0.745, 0.742, 0.801]
    s = metrics.seed_spread(values)
    assert s == {"mean": pytest.approx(np.mean(values)), "sd": pytest.approx(np.std(values, ddof=1)),
                 "min": 0.742, "max": 0.801, "n": 3}
    assert metrics.seed_spread([0.7]) == {"mean": 0.7, "sd": 0.0, "min": 0.7, "max": 0.7, "n": 1}


# ---------------------------------------------------------------------------- the generator's report
def _windows(n: int = 6, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (n, size, size))


def _core(size: int) -> np.ndarray:
    """The lesion core: the central half of each side (|coordinate| < 0.5 on [−1, 1])."""
    inner = np.abs(np.linspace(-1, 1, size)) < 0.5
    return np.outer(inner, inner)


def test_drift_ignores_the_lesion_core_and_measures_the_surroundings() -> None:
    src = _windows()
    core = _core(16)
    painted = src.copy()
    painted[:, core] -= 0.8  # a dark lesion inside the core only: no drift
    d = intensity_drift(src, painted)
    assert d["drift"] == d["mean_shift"] == d["spread_change"] == 0.0
    darker = src - 0.1  # the whole window darker: the dark square
    span = np.percentile(src.reshape(6, -1), 99, axis=1) - np.percentile(src.reshape(6, -1), 1, axis=1)
    d = intensity_drift(src, darker)
    assert d["mean_shift"] == pytest.approx(np.median(0.1 / span))
    assert d["mean_shift_signed"] == pytest.approx(-np.mean(0.1 / span)) and d["spread_change"] == pytest.approx(0, abs=1e-12)
    flatter = src.copy()
    flatter[:, ~core] *= 0.5  # texture halved around the core: a spread change, no mean shift (mean ~0)
    d = intensity_drift(src, flatter)
    ring_sd = src[:, ~core].std(axis=1)
    assert d["spread_change"] == pytest.approx(np.median(0.5 * ring_sd / span))
    assert d["drift"] == max(d["mean_shift"], d["spread_change"]) == d["spread_change"]
    assert d["spread_change_signed"] < 0


def test_drift_is_the_median_over_windows_not_the_mean() -> None:
    src = _windows(5)
    shifted = src.copy()
    shifted[0] -= 0.9  # one window far off, four untouched
    assert intensity_drift(src, shifted)["mean_shift"] == 0.0


def test_kid_is_the_unbiased_cubic_kernel_mmd() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((7, 5)), rng.standard_normal((6, 5)) + 0.5
    k = lambda a, b: (a @ b / 5 + 1.0) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(6) for j in range(6) if i != j) / (6 * 5)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(6)) / (7 * 6)
    assert polynomial_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    kid = kernel_inception_distance(x, y, subsets=5, subset_size=100, seed=0)
    assert kid["subset_size"] == 6 and kid["subsets"] == 5
    sub = np.random.default_rng(0)
    values = [polynomial_mmd2(x[sub.choice(7, 6, replace=False)], y[sub.choice(6, 6, replace=False)])
              for _ in range(5)]
    assert kid["kid"] == pytest.approx(np.mean(values)) and kid["std"] == pytest.approx(np.std(values))


def test_realism_keeps_an_images_windows_in_one_fold() -> None:
    """Near-copies of one image's windows in both training and test folds would let the test
    memorise images instead of telling real from synthetic: two identical distributions of images,
    six near-identical windows each, must score near 0.5, not near 1."""
    rng = np.random.default_rng(0)
    images, per, d = 20, 6, 100
    real = np.repeat(rng.standard_normal((images, d)), per, axis=0) + 0.01 * rng.standard_normal((images * per, d))
    fake = np.repeat(rng.standard_normal((images, d)), per, axis=0) + 0.01 * rng.standard_normal((images * per, d))
    groups = np.repeat(np.arange(images), per)
    res = two_sample_auc(real, fake, groups, groups, n_resamples=1000)
    assert res["folds"] == 5 and abs(res["auc"] - 0.5) < 0.2
    assert two_sample_auc(real, fake + 1.0, groups, groups, n_resamples=1000)["auc"] > 0.95  # a real difference shows


class _Unchanged:
    """A translator that gives every window back as it was."""

    resolution, model_id, model_name, sha256, backend = 32, None, "unchanged", "", "test"

    def translate(self, patches, *, stochastic=False, seed=None, direction="h2l"):  # noqa: ANN001, ANN201
        return np.asarray(patches, np.float32).copy()


def test_a_translator_that_changes_nothing_scores_as_the_untouched_windows(demo_project) -> None:  # noqa: ANN001
    """The report's lesion signal and realism read against their floors: an unchanged window is
    the untouched source, so its lesion rate is the sources' rate, its realism the untouched
    realism (excess 0), and it does not drift."""
    from lesion_studio.evaluate.generator_quality import QualityContext, QualitySettings
    from lesion_studio.patches.dataset import PatchParams

    settings = QualitySettings(seed=0, n=1.0, blend_mode="paper").cheap()
    ctx = QualityContext(demo_project, resolution=32, train_params=PatchParams(resolution=32, variants=2),
                         settings=settings, patch_cache="memory")
    report = ctx.assess(_Unchanged()).to_dict()
    sig, real = report["lesion_signal"], report["realism"]
    assert sig["real_rate"] == pytest.approx(np.mean(ctx.classifier.probability(ctx.real) >= 0.5))
    assert sig["source_rate"] == pytest.approx(np.mean(ctx.classifier.probability(ctx.normal) >= 0.5))
    assert sig["synthetic_rate"] == pytest.approx(sig["source_rate"])
    assert sig["source_rate"] < sig["real_rate"]  # the check needs a working classifier
    assert sig["ratio"] == pytest.approx(sig["synthetic_rate"] / sig["real_rate"])
    assert real["auc"] == pytest.approx(real["untouched_auc"], abs=1e-9) and real["excess_auc"] == pytest.approx(0, abs=1e-9)
    assert report["intensity_drift"]["drift"] == pytest.approx(0, abs=1e-6)
    assert report["headline"] == {"realism_auc": real["auc"], "lesion_rate_ratio": sig["ratio"],
                                  "intensity_drift": report["intensity_drift"]["drift"],
                                  "kid": report["kid"]["kid"], "localisation": None}
    assert report["n_real"] == len(ctx.real) and report["n_synthetic"] == len(ctx.normal)
    # Darkening every window is seen: less realistic than untouched, drift with a negative sign.
    class Darker(_Unchanged):
        def translate(self, patches, **kw):  # noqa: ANN001, ANN003, ANN201
            return np.clip(np.asarray(patches, np.float32) - 0.4, -1, 1)

    dark = ctx.assess(Darker()).to_dict()
    assert dark["realism"]["excess_auc"] > 0.05
    assert dark["intensity_drift"]["mean_shift_signed"] < -0.05


def test_pointing_game_rate_and_interval() -> None:
    from lesion_studio.evaluate.metrics import pointing_game

    hits = np.array([True] * 6 + [False] * 4)
    r = pointing_game(hits, n_resamples=4000, seed=0)
    assert r["rate"] == pytest.approx(0.6) and r["n"] == 10
    assert 0.2 < r["ci_low"] < 0.6 < r["ci_high"] <= 0.95  # binomial spread over 10 lesions
    assert pointing_game(np.array([], bool))["rate"] is None
    assert pointing_game(np.ones(5, bool))["ci_low"] == 1.0
