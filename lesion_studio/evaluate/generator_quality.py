"""The generator's quality report: does a UNIT translator paint lesions, or dark squares?

Every number is measured on patches the generator never trained on: the lesion windows around the
boxes of the *validation* split (the real lesions) and automatic normal windows on its normal
images (the sources that get translated). Translations are blended into their source with the
paper's α (or the 'matched' mode) at the model resolution (blending and the [-1, 1] mapping are linear, so this is
the product's blended window up to resizing).

- **Realism** (classifier two-sample test): a logistic regression on standardised features (the
  window downsampled to 32², plus gradient, Laplacian and intensity-quantile statistics at the
  model resolution, which see blur and texture that a thumbnail hides) learns to tell real lesion
  windows from blended synthetic ones, cross-validated by image
  (stratified group K-fold, out-of-fold scores). Its ROC AUC, with a bootstrap CI: 0.5 means the
  two cannot be told apart, 1.0 means every synthetic window gives itself away.
- **Lesion signal**: a patch classifier (one-hidden-layer MLP) learns lesion vs normal windows of
  the *training* split; the fraction of synthetic windows it calls lesion, beside the same rate
  for real validation lesions (and for the untouched normal sources, the false-alarm floor).
- **Intensity drift**: how far the blended window's mean and spread move from its source outside
  the central lesion core, as a fraction of the source window's intensity range. A generator
  that darkens the whole window (the "dark square") shows up here, whatever it paints inside.
- **KID** (kernel inception distance, with the patch classifier's hidden layer as the feature
  space): the unbiased cubic-polynomial-kernel MMD² between synthetic and real lesion windows,
  averaged over seeded subsets. 0 means the same feature distribution.
- **Localisation** (needs a trained whole-image classifier): for full synthetic images that the
  classifier keeps (score above the threshold), the fraction whose class-activation map peaks
  inside the inserted window, beside the chance level (the window's share of the image).

Everything is seeded. numpy + scikit-learn + the translator only (torch is never imported here;
the class-activation maps come from the classifier's ONNX graph).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from lesion_studio.classifier.cam import map_label
from lesion_studio.errors import LesionStudioError
from lesion_studio.extras import require
from lesion_studio.jobs import ProgressCallback, ProgressEvent, no_progress
from lesion_studio.synthesis.blend import DEFAULT_BLEND, DEFAULT_N, blend
from lesion_studio.synthesis.pipeline import DEFAULT_TRANSLATION

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

log = logging.getLogger(__name__)

#: Metric names and which direction is better, for tables, curves and comparisons.
HEADLINE = {
    "realism_auc": "lower",  # towards 0.5
    "lesion_rate_ratio": "higher",
    "intensity_drift": "lower",
    "kid": "lower",
    "localisation": "higher",
}


@dataclass(frozen=True)
class QualitySettings:
    """How the report is measured. The defaults are the full report; :meth:`cheap` is for training."""

    split: str = "val"
    variants: int = 8  # windows per validation lesion box / per normal image
    max_patches: int = 240  # per domain, seeded subsample above that
    max_train: int = 1000  # training windows per class for the patch classifier (keeps the fit to seconds)
    feature_size: int = 32  # patches are downsampled to this side for both classifiers
    n: float = DEFAULT_N  # blending exponent: the product's default
    blend_mode: str = DEFAULT_BLEND  # synthesis.blend.BLEND_MODES; measured as the product synthesizes
    translation: str = DEFAULT_TRANSLATION  # synthesis.pipeline.TRANSLATIONS
    folds: int = 5
    n_resamples: int = 1000
    kid_subsets: int = 50
    kid_subset_size: int = 100
    core: float = 0.5  # the lesion core: the central `core` fraction of each side
    localisation_images: int = 32
    threshold: float = 0.5
    seed: int = 0

    def cheap(self) -> QualitySettings:
        """The in-training version: fewer patches, no localisation (cheap enough per checkpoint)."""
        return replace(self, variants=min(self.variants, 4), max_patches=min(self.max_patches, 120),
                       kid_subsets=min(self.kid_subsets, 20), localisation_images=0)


# ---------------------------------------------------------------------------- pure metrics
def downsample(patches: np.ndarray, size: int) -> np.ndarray:
    """(N, S, S) patches → (N, size²) float32 features, by Pillow's antialiased resize."""
    from lesion_studio.patches.intensity import resize_patch

    p = np.asarray(patches, dtype=np.float32)
    if p.shape[-1] == size and p.shape[-2] == size:
        return p.reshape(len(p), -1).copy()
    return np.stack([resize_patch(x, size, size).ravel() for x in p]) if len(p) else np.zeros((0, size * size))


def texture_features(patches: np.ndarray, levels: int = 3) -> np.ndarray:
    """(N, S, S) → (N, 5·levels + 5) statistics that downsampled pixels cannot see.

    Per scale (full resolution, then 2× and 4× mean-pooled): log mean and log std of the absolute
    horizontal and vertical differences and log mean absolute Laplacian (sharpness, blur, noise,
    grid artefacts); plus five intensity quantiles of the window. A generator that blurs or adds
    texture is caught here even when its 32² thumbnail looks right.
    """
    x = np.asarray(patches, dtype=np.float64)
    n = len(x)
    feats: list[np.ndarray] = []
    for _ in range(levels):
        if x.shape[1] < 4:
            break
        gx, gy = np.abs(np.diff(x, axis=2)), np.abs(np.diff(x, axis=1))
        lap = 4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]
        feats += [np.log(v + 1e-6) for v in (gx.mean((1, 2)), gy.mean((1, 2)), gx.std((1, 2)), gy.std((1, 2)),
                                             np.abs(lap).mean((1, 2)))]
        side = x.shape[1] // 2 * 2
        x = x[:, :side, :side].reshape(n, side // 2, 2, side // 2, 2).mean(axis=(2, 4))
    quantiles = np.quantile(np.asarray(patches, np.float64).reshape(n, -1), [0.05, 0.25, 0.5, 0.75, 0.95], axis=1).T
    return np.concatenate([np.stack(feats, axis=1) if feats else np.zeros((n, 0)), quantiles], axis=1)


def realism_features(patches: np.ndarray, size: int) -> np.ndarray:
    """What the realism test looks at: the downsampled pixels (shape, brightness, position of the
    lesion) and :func:`texture_features` at the model resolution (sharpness and texture)."""
    return np.concatenate([downsample(patches, size), texture_features(patches)], axis=1)


def two_sample_auc(real: np.ndarray, fake: np.ndarray, groups_real: Sequence[int], groups_fake: Sequence[int], *,
                   folds: int = 5, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Classifier two-sample test: out-of-fold ROC AUC of real (1) vs fake (0) feature rows.

    Folds keep an image's windows together (StratifiedGroupKFold), otherwise near-duplicate
    windows of one image in train and test folds would inflate the AUC. Returns the
    :class:`~lesion_studio.evaluate.metrics.AucResult` as a dict plus the fold count.
    """
    from lesion_studio.evaluate.metrics import bootstrap_auc

    linear = require("sklearn.linear_model", "The generator quality report")
    model_selection = require("sklearn.model_selection", "The generator quality report")
    pipeline = require("sklearn.pipeline", "The generator quality report")
    preprocessing = require("sklearn.preprocessing", "The generator quality report")
    x = np.concatenate([real, fake]).astype(np.float64)
    y = np.r_[np.ones(len(real), int), np.zeros(len(fake), int)]
    # Group ids of the two sets must not collide: real and synthetic windows never share a fold group.
    groups = np.r_[np.asarray(groups_real, np.int64) * 2, np.asarray(groups_fake, np.int64) * 2 + 1]
    k = min(folds, len(set(groups_real)), len(set(groups_fake)))
    if k < 2:
        raise LesionStudioError("The realism test needs windows from at least two images of each kind "
                                f"(got {len(set(groups_real))} lesion and {len(set(groups_fake))} normal images).")
    cv = model_selection.StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    clf = pipeline.make_pipeline(preprocessing.StandardScaler(),
                                 linear.LogisticRegression(C=0.1, max_iter=2000))
    scores = np.zeros(len(y))
    for train, test in cv.split(x, y, groups):
        clf.fit(x[train], y[train])
        scores[test] = clf.predict_proba(x[test])[:, 1]
    result = bootstrap_auc(y, scores, n_resamples=n_resamples, seed=seed).to_dict()
    return {**result, "folds": k}


def intensity_drift(source: np.ndarray, blended: np.ndarray, *, core: float = 0.5,
                    floor: float = 0.02) -> dict[str, float]:
    """Mean and spread change of blended vs source windows outside the central core.

    Per window: ``|mean(b) − mean(s)|`` and ``|std(b) − std(s)|`` over the pixels outside the
    central ``core`` fraction of each side, divided by the source window's intensity range
    (1st–99th percentile; at least ``floor`` of the full [-1, 1] span, so a flat window cannot
    blow the ratio up). Returns medians over windows (robust to a few odd ones), the mean signed
    shift (negative: darker) and the headline ``drift`` = the larger of the two medians.
    """
    s = np.asarray(source, dtype=np.float64)
    b = np.asarray(blended, dtype=np.float64)
    if s.shape != b.shape or s.ndim != 3 or len(s) == 0:
        raise LesionStudioError(f"Drift needs matching (N, S, S) windows, not {s.shape} and {b.shape}.")
    size = s.shape[-1]
    t = np.abs(np.linspace(-1.0, 1.0, size))
    inner = t < core
    ring = ~np.outer(inner, inner)
    lo, hi = np.percentile(s.reshape(len(s), -1), [1.0, 99.0], axis=1)
    span = np.maximum(hi - lo, floor * 2.0)
    sr, br = s[:, ring], b[:, ring]
    signed = (br.mean(axis=1) - sr.mean(axis=1)) / span
    spread = (br.std(axis=1) - sr.std(axis=1)) / span
    mean_shift, spread_change = float(np.median(np.abs(signed))), float(np.median(np.abs(spread)))
    return {"drift": max(mean_shift, spread_change), "mean_shift": mean_shift, "spread_change": spread_change,
            "mean_shift_signed": float(np.mean(signed)), "spread_change_signed": float(np.mean(spread))}


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with the KID kernel k(a, b) = (a·b / d + 1)³ (Bińkowski et al. 2018)."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def kernel_inception_distance(fake: np.ndarray, real: np.ndarray, *, subsets: int = 50, subset_size: int = 100,
                              seed: int = 0) -> dict[str, float]:
    """KID: mean and std of the unbiased polynomial MMD² over ``subsets`` seeded subsets."""
    fake = np.asarray(fake, dtype=np.float64)
    real = np.asarray(real, dtype=np.float64)
    m = min(subset_size, len(fake), len(real))
    if m < 2:
        raise LesionStudioError("KID needs at least two synthetic and two real windows.")
    rng = np.random.default_rng(seed)
    values = np.array([polynomial_mmd2(fake[rng.choice(len(fake), m, replace=False)],
                                       real[rng.choice(len(real), m, replace=False)]) for _ in range(subsets)])
    return {"kid": float(values.mean()), "std": float(values.std()), "subsets": int(subsets), "subset_size": int(m)}


# ---------------------------------------------------------------------------- the patch classifier
@dataclass
class PatchClassifier:
    """Lesion vs normal windows: standardised downsampled pixels → one ReLU hidden layer → sigmoid.

    Small on purpose: it must fit in seconds on a CPU and be deterministic (fixed ``random_state``).
    Its hidden layer is the feature space of the KID.
    """

    feature_size: int
    model: Any  # sklearn Pipeline(StandardScaler, MLPClassifier)

    @classmethod
    def fit(cls, lesion: np.ndarray, normal: np.ndarray, *, feature_size: int = 32, seed: int = 0) -> PatchClassifier:
        """Fit on (N, S, S) lesion and normal windows, the smaller class repeated to balance them."""
        neural = require("sklearn.neural_network", "The generator quality report")
        pipeline = require("sklearn.pipeline", "The generator quality report")
        preprocessing = require("sklearn.preprocessing", "The generator quality report")
        if len(lesion) < 2 or len(normal) < 2:
            raise LesionStudioError("The patch classifier needs at least two lesion and two normal training windows.")
        rng = np.random.default_rng(seed)
        n = max(len(lesion), len(normal))
        li = np.r_[np.arange(len(lesion)), rng.integers(0, len(lesion), n - len(lesion))]
        ni = np.r_[np.arange(len(normal)), rng.integers(0, len(normal), n - len(normal))]
        x = np.concatenate([downsample(lesion[li], feature_size), downsample(normal[ni], feature_size)])
        y = np.r_[np.ones(n, int), np.zeros(n, int)]
        model = pipeline.make_pipeline(
            preprocessing.StandardScaler(),
            neural.MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-2, max_iter=300, random_state=seed,
                                 early_stopping=False))
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter is expected and harmless
            model.fit(x, y)
        return cls(feature_size, model)

    def probability(self, patches: np.ndarray) -> np.ndarray:
        """Lesion probability of (N, S, S) windows."""
        return self.model.predict_proba(downsample(patches, self.feature_size))[:, 1]

    def features(self, patches: np.ndarray) -> np.ndarray:
        """Hidden-layer activations (N, 64): the KID's feature space."""
        scaler, mlp = self.model[0], self.model[-1]
        x = scaler.transform(downsample(patches, self.feature_size))
        return np.maximum(x @ mlp.coefs_[0] + mlp.intercepts_[0], 0.0)


# ---------------------------------------------------------------------------- the report
@dataclass
class GeneratorQualityReport:
    """One measurement of a generator; ``to_dict`` is JSON-able (sidecar, CLI, experiment report)."""

    model: str
    iteration: int | None
    body_parts: list[str]
    split: str
    seed: int
    n_real: int
    n_synthetic: int
    realism: dict[str, Any]
    lesion_signal: dict[str, Any]
    intensity_drift: dict[str, float]
    kid: dict[str, float]
    localisation: dict[str, Any] | None = None
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    time: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))

    def headline(self) -> dict[str, float | None]:
        """The five numbers (see ``HEADLINE`` for which way is better)."""
        loc = self.localisation or {}
        return {"realism_auc": self.realism["auc"], "lesion_rate_ratio": self.lesion_signal["ratio"],
                "intensity_drift": self.intensity_drift["drift"], "kid": self.kid["kid"],
                "localisation": loc.get("fraction_inside")}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "headline": self.headline()}


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report in five readable lines (CLI, logs), from its dict form."""
    r, s, d, k = report["realism"], report["lesion_signal"], report["intensity_drift"], report["kid"]
    lines = [
        f"Realism (two-sample AUC, 0.5 = indistinguishable): {r['auc']:.3f} ({r['ci_low']:.3f}–{r['ci_high']:.3f})"
        + (f"; the untouched source windows score {r['untouched_auc']:.3f} ({r['excess_auc']:+.3f} over them)"
           if r.get("untouched_auc") is not None else ""),
        f"Lesion signal: {s['synthetic_rate']:.0%} of synthetic windows scored lesion vs "
        f"{s['real_rate']:.0%} of real lesions ({s['ratio']:.0%} of the real rate; normal sources "
        f"{s['source_rate']:.0%}; patch classifier AUC {s['classifier_auc']:.3f})",
        f"Intensity drift outside the core: mean {d['mean_shift']:.1%}, spread {d['spread_change']:.1%} of the "
        f"window's range (signed mean {d['mean_shift_signed']:+.1%})",
        f"KID: {k['kid']:.4f} ± {k['std']:.4f}",
    ]
    loc = report.get("localisation")
    if loc is None:
        lines.append("Localisation: not measured (no classifier given)")
    elif loc.get("fraction_inside") is None:
        lines.append(f"Localisation: the classifier kept none of {loc['total']} synthetic images")
    else:
        lines.append(f"Localisation: the {map_label(loc.get('map'))} peaks inside the window in "
                     f"{loc['fraction_inside']:.0%} of "
                     f"{loc['kept']} kept images (all {loc['total']}: {loc['fraction_inside_all']:.0%}; "
                     f"chance {loc['chance']:.0%})")
    return lines


#: What each figure of :func:`short_summary` means, for a reader who hovers over it (the gallery).
REPORT_LEGEND = ("The generator's quality report on validation windows (lesion-studio assess-generator): realism AUC "
                 "(0.5 = synthetic indistinguishable from real lesions), lesion rate (synthetic windows a patch "
                 "classifier calls lesion, as a share of the real-lesion rate), drift (brightness change around the "
                 "lesion core: the dark square), KID (feature distance to real lesions, lower is better), map in "
                 "window (how often the classifier's localisation map, its lesion map or else its CAM, peaks where "
                 "the lesion was painted).")


def short_summary(report: dict[str, Any]) -> str:
    """One line for a header or a table cell, from a report dict (as stored in a sidecar)."""
    h = report.get("headline") or {}

    def fmt(key: str, spec: str) -> str:
        v = h.get(key)
        return "–" if v is None else format(v, spec)

    it = report.get("iteration")
    untouched = (report.get("realism") or {}).get("untouched_auc")
    floor = f" (untouched windows {untouched:.2f})" if untouched is not None else ""
    loc = report.get("localisation")
    where = map_label(loc.get("map")) if loc else "map"  # no classifier given: nothing was mapped
    return (f"realism AUC {fmt('realism_auc', '.2f')}{floor} · lesion rate {fmt('lesion_rate_ratio', '.0%')} of real · "
            f"drift {fmt('intensity_drift', '.1%')} · KID {fmt('kid', '.3f')} · {where} in window "
            f"{fmt('localisation', '.0%')}" + (f" (iteration {it})" if it is not None else ""))


class QualityContext:
    """What does not depend on the generator, prepared once: the validation windows and the fitted
    patch classifier. :meth:`assess` then measures any translator (every checkpoint of a run)."""

    def __init__(self, project: Project, *, resolution: int, body_parts: Sequence[str] | None = None,
                 train_params: Any = None, train_splits: Sequence[str] = ("train", "unassigned"),
                 settings: QualitySettings = QualitySettings(),  # noqa: B008 - frozen dataclass
                 patch_cache: str = "disk", progress: ProgressCallback = no_progress) -> None:
        from lesion_studio.patches.dataset import PatchParams, build_patch_set

        self.project = project
        self.settings = settings
        self.body_parts = list(body_parts or [])
        params = train_params or PatchParams(resolution=resolution)
        if params.resolution != resolution:
            params = replace(params, resolution=resolution)
        eval_params = replace(params, variants=settings.variants, normal_source="auto", seed=settings.seed)
        where = f" for {', '.join(self.body_parts)}" if self.body_parts else ""
        try:
            val = build_patch_set(project, body_parts=self.body_parts or None, splits=[settings.split],
                                  params=eval_params, cache=patch_cache, progress=progress)
        except LesionStudioError as exc:
            raise LesionStudioError(f"The quality report needs lesion boxes and normal images in the "
                                    f"{settings.split!r} split{where} (run `lesion-studio split`): {exc}") from exc
        rng = np.random.default_rng(settings.seed)
        li = np.sort(rng.permutation(len(val.lesion))[:settings.max_patches])
        ni = np.sort(rng.permutation(len(val.normal))[:settings.max_patches])
        self.real = val.lesion[li].astype(np.float32)
        self.real_groups = [val.lesion_info[i].image_id for i in li]
        self.normal = val.normal[ni].astype(np.float32)
        self.normal_info = [val.normal_info[i] for i in ni]
        self.normal_groups = [p.image_id for p in self.normal_info]
        train = build_patch_set(project, body_parts=self.body_parts or None, splits=list(train_splits) or None,
                                params=params, cache=patch_cache, progress=progress)
        ti = np.sort(rng.permutation(len(train.lesion))[:settings.max_train])
        tn = np.sort(rng.permutation(len(train.normal))[:settings.max_train])
        self.classifier = PatchClassifier.fit(train.lesion[ti].astype(np.float32), train.normal[tn].astype(np.float32),
                                              feature_size=min(settings.feature_size, resolution),
                                              seed=settings.seed)
        self.real_prob = self.classifier.probability(self.real)
        self.source_prob = self.classifier.probability(self.normal)
        self.real_features = self.classifier.features(self.real)
        from lesion_studio.evaluate.metrics import auc

        self.classifier_auc = auc(np.r_[np.ones(len(self.real)), np.zeros(len(self.normal))],
                                  np.r_[self.real_prob, self.source_prob])
        self.real_realism = realism_features(self.real, self.classifier.feature_size)
        self._untouched_auc: float | None = None

    def untouched_realism_auc(self) -> float:
        """The realism AUC of the source windows themselves, left untranslated (computed once).

        Normal windows differ from fracture windows in more than the fracture (where in the
        anatomy they lie, how much bone they hold), so even untouched ones are told apart from the
        real lesions better than chance: on FracAtlas hand 0.75 over five report seeds. That is the
        floor a generator starts from; ``excess_auc`` in the report is the generator's AUC over it,
        measured on the same windows and folds, so it is free of most of the report-seed noise.
        """
        if self._untouched_auc is None:
            st = self.settings
            self._untouched_auc = float(two_sample_auc(
                self.real_realism, realism_features(self.normal, self.classifier.feature_size), self.real_groups,
                self.normal_groups, folds=st.folds, n_resamples=st.n_resamples, seed=st.seed)["auc"])
        return self._untouched_auc

    def translate(self, translator: Any, batch: int = 32, translation: str | None = None) -> np.ndarray:
        """The validation normal windows translated h→l (deterministic: the latent mean), directly or
        as source + residual (``translation``, else ``settings.translation``; as synthesis/pipeline.py does it)."""
        residual = (translation or self.settings.translation) == "residual"
        direction = "h2l_residual" if residual else "h2l"
        out = [np.asarray(translator.translate(self.normal[i:i + batch, None], stochastic=False,
                                               seed=self.settings.seed, direction=direction), np.float32)[:, 0]
               for i in range(0, len(self.normal), batch)]
        y = np.concatenate(out)
        return np.clip(self.normal + y, -1.0, 1.0) if residual else y

    def assess(self, translator: Any, *, model: str = "", iteration: int | None = None,
               localisation: dict[str, Any] | None = None, translation: str | None = None) -> GeneratorQualityReport:
        """Measure ``translator`` (anything with the :class:`Translator` ``translate`` method).

        ``translation`` overrides ``settings.translation`` for this call: the same windows and patch
        classifier measure both ways of translating (the lever benchmark compares them so)."""
        t0 = time.perf_counter()
        from lesion_studio.synthesis.translator import supports

        st = replace(self.settings, translation=translation) if translation else self.settings
        if st.translation == "residual" and not supports(translator, "h2l_residual"):
            st = replace(st, translation="direct")  # an export from before the residual graph: as synthesis does
        blended = np.clip(blend(self.normal, self.translate(translator, translation=st.translation), st.n,
                                st.blend_mode), -1.0, 1.0)
        realism = two_sample_auc(self.real_realism, realism_features(blended, self.classifier.feature_size),
                                 self.real_groups, self.normal_groups, folds=st.folds,
                                 n_resamples=st.n_resamples, seed=st.seed)
        untouched = self.untouched_realism_auc()
        realism = {**realism, "untouched_auc": untouched, "excess_auc": realism["auc"] - untouched}
        syn_rate = float(np.mean(self.classifier.probability(blended) >= 0.5))
        real_rate = float(np.mean(self.real_prob >= 0.5))
        signal = {"synthetic_rate": syn_rate, "real_rate": real_rate,
                  "source_rate": float(np.mean(self.source_prob >= 0.5)),
                  "ratio": syn_rate / real_rate if real_rate > 0 else 0.0,
                  "classifier_auc": float(self.classifier_auc)}
        kid = kernel_inception_distance(self.classifier.features(blended), self.real_features,
                                        subsets=st.kid_subsets, subset_size=st.kid_subset_size, seed=st.seed)
        return GeneratorQualityReport(
            model=model, iteration=iteration, body_parts=self.body_parts, split=st.split, seed=st.seed,
            n_real=len(self.real), n_synthetic=len(blended), realism=realism, lesion_signal=signal,
            intensity_drift=intensity_drift(self.normal, blended, core=st.core), kid=kid,
            localisation=localisation, seconds=time.perf_counter() - t0,
            settings={**asdict(st), "feature_size": self.classifier.feature_size})


# ---------------------------------------------------------------------------- localisation
def localisation(project: Project, translator: Any, classifier: int | str, windows: Sequence[Any], *,
                 n: float = DEFAULT_N, blend_mode: str = DEFAULT_BLEND, translation: str = "direct", threshold: float = 0.5,
                 limit: int = 32, seed: int = 0,
                 progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """Where the whole-image classifier looks in synthetic images: its localisation map's peak
    (the lesion map of a map-head classifier, else the class-activation map) inside the window?

    ``windows`` are :class:`~lesion_studio.patches.dataset.PatchInfo` (image id + window) of
    normal images; up to ``limit`` of them (seeded) get a lesion synthesized, are scored, and
    their map's peak is mapped back to image pixels (through the preprocessing's input frame, so
    a classifier that crops to the body is read right).
    """
    from lesion_studio.classifier.cam import map_peak
    from lesion_studio.classifier.preprocess import prepare_with_frame
    from lesion_studio.classifier.scoring import registered_scorer
    from lesion_studio.synthesis.pipeline import synthesize_lesion

    scorer, record = registered_scorer(project, classifier, need_map=True)
    rng = np.random.default_rng(seed)
    chosen = [windows[i] for i in sorted(rng.permutation(len(windows))[:limit])]
    inside, kept, chance = [], [], []
    images: dict[int, Any] = {}
    for k, info in enumerate(chosen):
        rg = images.get(info.image_id) or project.open_radiograph(info.image_id)
        images = {info.image_id: rg}  # one decoded image at a time
        res = synthesize_lesion(rg, info.window, translator, n=n, seed=seed + k, blend_mode=blend_mode,
                                translation=translation)
        prepared, frame = prepare_with_frame(res.image, scorer.prep)
        probs, maps = scorer.maps(prepared[None])
        x, y = map_peak(maps[0], frame)
        w = res.window
        inside.append(w.x0 <= x < w.x1 and w.y0 <= y < w.y1)
        kept.append(float(probs[0]) > threshold)
        chance.append(w.width * w.height / float(res.image.shape[0] * res.image.shape[1]))
        progress(ProgressEvent("quality", k + 1, len(chosen), "localisation"))
    inside_a, kept_a = np.array(inside, bool), np.array(kept, bool)
    return {"classifier": record.name, "map": scorer.map_kind, "threshold": threshold, "total": len(chosen), "kept": int(kept_a.sum()),
            "inside_kept": int((inside_a & kept_a).sum()),
            "fraction_inside": float(inside_a[kept_a].mean()) if kept_a.any() else None,
            "fraction_inside_all": float(inside_a.mean()) if len(inside_a) else None,
            "chance": float(np.mean(chance)) if chance else None}


# ---------------------------------------------------------------------------- one call
def _model_settings(record: Any) -> tuple[int, list[str], Any, list[str]]:
    """(resolution, body parts, training PatchParams, training splits) of a registered UNIT model."""
    from lesion_studio.patches.dataset import PatchParams

    meta, cfg = record.metadata or {}, (record.metadata or {}).get("config") or record.config or {}
    resolution = int(meta.get("resolution") or cfg.get("resolution") or 128)
    params = PatchParams(resolution=resolution, side_factors=tuple(cfg.get("side_factors", (1.5, 3.0))),
                         jitter=float(cfg.get("jitter", 0.5)), variants=int(cfg.get("variants", 4)),
                         normal_source=str(cfg.get("normal_source", "both")),
                         normal_match=str(cfg.get("normal_match", "tissue")),  # models before it: tissue
                         seed=int(cfg.get("seed", 0)))
    parts = list(cfg.get("body_parts") or record.body_parts or [])
    return resolution, parts, params, list(cfg.get("splits") or ["train", "unassigned"])


def assess_generator(project: Project, model: int | str, *, body_parts: Sequence[str] | None = None,
                     classifier: int | str | None = None, seed: int = 0, settings: QualitySettings | None = None,
                     backend: str = "auto", store: bool = True,
                     progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """The full quality report of a registered UNIT model, as a JSON-able dict.

    ``body_parts`` defaults to the model's own; ``classifier`` (a registered DRN) adds the
    localisation. ``store`` writes the report into the model's sidecar (``model.json``,
    key ``quality``) and its registry metadata, where the gallery and the experiment report read it.
    """
    from lesion_studio.synthesis.translator import load_translator

    t0 = time.perf_counter()
    settings = replace(settings or QualitySettings(), seed=seed)
    record = project.model(model)
    if record.kind != "unit":
        raise LesionStudioError(f"Model {record.name!r} is a {record.kind} model, not a UNIT generator.")
    resolution, parts, params, splits = _model_settings(record)
    parts = list(body_parts) if body_parts else parts
    translator = load_translator(record, project.folder, backend=backend)
    context = QualityContext(project, resolution=resolution, body_parts=parts, train_params=params,
                             train_splits=splits, settings=settings, progress=progress)
    loc = None
    if classifier is not None and settings.localisation_images > 0:
        loc = localisation(project, translator, classifier, context.normal_info, n=settings.n,
                           blend_mode=settings.blend_mode, translation=settings.translation,
                           threshold=settings.threshold, limit=settings.localisation_images, seed=seed,
                           progress=progress)
    report = context.assess(translator, model=record.name, iteration=(record.metadata or {}).get("iteration"),
                            localisation=loc)
    report.seconds = time.perf_counter() - t0
    out = report.to_dict()
    if store:
        store_report(project, record, out)
    return out


def store_report(project: Project, record: Any, report: dict[str, Any] | None, *,
                 history: list[dict[str, Any]] | None = None) -> None:
    """Put a report and/or the training-time history into the model's sidecar and registry metadata."""
    from lesion_studio.files import atomic_write_json
    from lesion_studio.models.layout import sidecar_path

    updates: dict[str, Any] = {}
    if report is not None:
        updates["quality"] = report
    if history is not None:
        updates["quality_history"] = history
    side = sidecar_path(project.resolve_path(record.path))
    if side.exists():
        try:
            data = json.loads(side.read_text())
            data.update(updates)
            atomic_write_json(side, data, indent=1, sort_keys=True)
        except (OSError, ValueError) as exc:
            log.warning("could not add the quality report to %s: %s", side, exc)
    project.update_model_metadata(record.id, **updates)
