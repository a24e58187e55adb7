"""The experiment's filter and selection rules, decided on given validation scores (no training).

docs/experiments.md, stages 5 and 7: the filter's validation AUC is that of the seeds' *mean*
scores; below ``filter.min_baseline_val_auc`` the runner refuses to filter; a quantile threshold t
becomes the t-quantile of the mean scores of the **real validation lesions** (not the normals, not
all images); ``probability`` cuts at t itself. Selection picks the t with the best pooled
validation ΔAUC and accepts it only when ΔAUC > ``min_val_delta`` **and** at most ``max_p`` of the
paired resamples have ΔAUC <= 0. Each rule is checked here on scores chosen so that breaking it
changes the answer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from lesion_studio.config import from_dict  # noqa: E402
from lesion_studio.experiment.config import ExperimentConfig  # noqa: E402
from lesion_studio.experiment.outputs import AugmentedRun, BaselineRun, FilterDecision, Selection  # noqa: E402
from lesion_studio.experiment.runner import ExperimentRunner  # noqa: E402
from lesion_studio.experiment.selection import filter_decision, select  # noqa: E402

#: Validation labels: 6 lesions then 6 normals.
LABELS = [1] * 6 + [0] * 6


def _config(tmp_path: Path, **changes) -> ExperimentConfig:  # noqa: ANN003
    data = {"name": "rules", "project": "demo", "output": str(tmp_path / "out"), "seeds": [0, 1],
            "classifier": {"preset": "tiny"}, "generator": {"kind": "stub"}, "thresholds": [0.0, 0.5],
            "studies": [{"body_parts": ["femur"]}], **changes}
    return from_dict(ExperimentConfig, data)


def _runner(tmp_path: Path, **changes) -> ExperimentRunner:  # noqa: ANN003
    return ExperimentRunner(_config(tmp_path, **changes))


def _decide(tmp_path: Path, filters: list[BaselineRun], **changes) -> FilterDecision:  # noqa: ANN003
    """The filter's decision under the config with ``changes``."""
    cfg = _config(tmp_path, **changes)
    return filter_decision(cfg.filter, cfg.thresholds, filters)


def _select(tmp_path: Path, baselines: list[BaselineRun], trials: dict, **changes) -> Selection:  # noqa: ANN003
    """The selection under the config with ``changes``."""
    cfg = _config(tmp_path, **changes)
    return select(cfg.selection, cfg.bootstrap, baselines, trials)


def _baseline(seed: int, scores: list[float], labels: list[int] | None = LABELS) -> BaselineRun:
    return BaselineRun(path=f"b{seed}", sha256=f"s{seed}", val_auc=None, seed=seed, epoch=1, model_id=seed,
                       model_name=f"base-{seed}", val_scores=scores, val_labels=labels)


def _augmented(t: float, seed: int, scores: list[float] | None, *, skipped: bool = False) -> AugmentedRun:
    if skipped:
        return AugmentedRun(t=t, cut=0.5, seed=seed, kept=0, kept_ids=[], val_auc=None, skipped=True)
    return AugmentedRun(t=t, cut=0.5, seed=seed, kept=3, kept_ids=[1, 2, 3], val_auc=None, skipped=False,
                        path=f"a{t}-{seed}", sha256="x", model_id=10 + seed, model_name=f"aug-{t}-{seed}",
                        val_scores=scores, val_labels=LABELS)


# Two seeds of a modest baseline (validation AUC 0.78 and 0.75, their mean 0.76): lesions tend to
# score higher than normals, the ranges overlap, and the seeds disagree.
SEED0 = [0.60, 0.70, 0.40, 0.90, 0.55, 0.35, 0.10, 0.65, 0.30, 0.50, 0.45, 0.20]
SEED1 = [0.50, 0.60, 0.45, 0.80, 0.35, 0.40, 0.30, 0.55, 0.20, 0.60, 0.35, 0.10]


def test_a_quantile_cut_is_read_off_the_real_validation_lesions_mean_scores(tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score

    decision = _decide(tmp_path, [_baseline(0, SEED0), _baseline(1, SEED1)], thresholds=[0.0, 0.5, 0.9])
    mean = (np.array(SEED0) + np.array(SEED1)) / 2
    lesions = mean[:6]
    assert not decision.refused and decision.reason == ""
    assert decision.val_auc == pytest.approx(roc_auc_score(LABELS, mean))  # of the seed mean, not of one seed
    assert decision.val_auc != pytest.approx(roc_auc_score(LABELS, SEED0))
    assert decision.cuts == {0.0: pytest.approx(lesions.min()), 0.5: pytest.approx(np.quantile(lesions, 0.5)),
                             0.9: pytest.approx(np.quantile(lesions, 0.9))}
    # The normals' quantiles (or all images') would be far lower: the cut must not come from them.
    assert decision.cuts[0.5] > np.quantile(mean, 0.5) > np.quantile(mean[6:], 0.5)


def test_a_probability_filter_cuts_at_t_itself(tmp_path: Path) -> None:
    decision = _decide(tmp_path, [_baseline(0, SEED0), _baseline(1, SEED1)], thresholds=[0.3, 0.8],
                       filter={"kind": "probability", "min_baseline_val_auc": 0.6})
    assert not decision.refused and decision.cuts == {0.3: 0.3, 0.8: 0.8}


def test_a_baseline_below_the_floor_may_not_filter_and_one_at_it_may(tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score

    filters = [_baseline(0, SEED0), _baseline(1, SEED1)]
    val_auc = roc_auc_score(LABELS, (np.array(SEED0) + np.array(SEED1)) / 2)
    above = _decide(tmp_path, filters, filter={"min_baseline_val_auc": val_auc - 1e-9})
    at = _decide(tmp_path, filters, filter={"min_baseline_val_auc": val_auc})
    below = _decide(tmp_path, filters, filter={"min_baseline_val_auc": val_auc + 1e-6})
    assert not above.refused and not at.refused  # the floor itself is allowed to filter
    assert below.refused and below.cuts == {} and "below the floor" in below.reason
    assert below.val_auc == pytest.approx(val_auc)


def test_without_a_validation_set_of_both_classes_the_filter_is_refused(tmp_path: Path) -> None:
    decision = _decide(tmp_path, [_baseline(0, None, None), _baseline(1, None, None)])
    assert decision.refused and decision.val_auc is None and "no validation set" in decision.reason
    decision = _decide(tmp_path, [_baseline(0, SEED0), _baseline(1, None)])  # one seed without scores
    assert decision.refused


# ------------------------------------------------------------------------- selection
BASE = [SEED0, SEED1]
#: Perfect separation on validation: far better than the baseline on every resample.
BETTER = [[0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.1, 0.11, 0.12, 0.13, 0.14, 0.15]] * 2
#: Lesions and normals swapped: far worse.
WORSE = [[0.1, 0.11, 0.12, 0.13, 0.14, 0.15, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95]] * 2


def _trials(**by_t: list[list[float]]) -> dict[float, list[AugmentedRun]]:
    out = {}
    for key, seeds in by_t.items():
        t = float(key.removeprefix("t"))
        out[t] = [_augmented(t, k, s) for k, s in enumerate(seeds)]
    return out


def _baselines() -> list[BaselineRun]:
    return [_baseline(k, s) for k, s in enumerate(BASE)]


def test_selection_picks_the_threshold_with_the_best_validation_delta(tmp_path: Path) -> None:
    trials = {0.0: [_augmented(0.0, k, s) for k, s in enumerate(WORSE)],
              0.5: [_augmented(0.5, k, s) for k, s in enumerate(BETTER)]}
    sel = _select(tmp_path, _baselines(), trials)
    assert sel.best_t == 0.5 and sel.accepted
    deltas = {c["t"]: c["val_delta"]["delta"] for c in sel.compared}
    assert deltas[0.5] > 0 > deltas[0.0]
    assert "t=0.5" in sel.reason
    # The same trials the other way round: the order of thresholds does not decide.
    swapped = {0.0: trials[0.5], 0.5: trials[0.0]}
    assert _select(tmp_path, _baselines(), swapped).best_t == 0.0


def test_an_augmented_model_worse_on_validation_is_rejected(tmp_path: Path) -> None:
    sel = _select(tmp_path, _baselines(), {0.5: [_augmented(0.5, k, s) for k, s in enumerate(WORSE)]})
    assert sel.best_t == 0.5 and not sel.accepted  # the best of what was tried, still not good enough


def test_acceptance_needs_both_the_margin_and_the_resample_share(tmp_path: Path) -> None:
    # A small, uncertain gain: seed-mean ΔAUC > 0 but a good share of resamples at ΔAUC <= 0.
    nudged = [list(np.array(s) + np.array([0.06] * 6 + [0.0] * 6)) for s in BASE]
    trials = {0.5: [_augmented(0.5, k, s) for k, s in enumerate(nudged)]}

    def accepted(min_val_delta: float, max_p: float) -> bool:
        return _select(tmp_path, _baselines(), trials,
                       selection={"min_val_delta": min_val_delta, "max_p": max_p}).accepted

    sel = _select(tmp_path, _baselines(), trials, selection={"min_val_delta": 0.0, "max_p": 1.0})
    d = sel.compared[0]["val_delta"]
    assert d["delta"] > 0 and 0.0 < d["p_not_better"] < 1.0
    assert sel.accepted  # margin met, any share allowed
    # The margin alone fails it:
    assert not accepted(d["delta"], 1.0)  # strictly above the margin
    assert accepted(d["delta"] - 1e-9, 1.0)
    # The share alone fails it:
    assert not accepted(-1.0, d["p_not_better"] - 1e-9)
    assert accepted(-1.0, d["p_not_better"])  # at most max_p


def test_a_threshold_that_kept_nothing_is_not_compared(tmp_path: Path) -> None:
    skipped = {0.9: [_augmented(0.9, k, None, skipped=True) for k in range(2)]}
    sel = _select(tmp_path, _baselines(), skipped)
    assert sel.best_t is None and not sel.accepted and "no candidate passed" in sel.reason
    mixed = {**skipped, 0.5: [_augmented(0.5, k, s) for k, s in enumerate(BETTER)]}
    sel = _select(tmp_path, _baselines(), mixed)
    assert sel.best_t == 0.5 and sel.accepted
    assert [c.get("note") for c in sel.compared] == ["no candidate passed the threshold", None]


# ------------------------------------------------------------------------- scoring and keeping
def test_the_filter_score_is_the_seeds_mean_and_a_cut_keeps_what_scores_strictly_above(demo_project,  # noqa: ANN001
                                                                                      tmp_path: Path) -> None:
    """Stage 4: every seed's baseline scores every candidate and the filter score is their mean.
    Stage 6: the augmented training set gets exactly the candidates scored above the cut (none:
    nothing is trained)."""
    from unittest import mock

    from lesion_studio.classifier.data import synthetic_examples
    from lesion_studio.classifier.scoring import OnnxScorer
    from lesion_studio.experiment.runner import RunContext
    from tests.stub_models import register_stub_classifier

    project, parts = demo_project, ["femur"]
    runner = _runner(tmp_path, project=str(project.folder), classifier={"preset": "tiny", "input_size": 32},
                     synthesis={"candidates_per_image": 1, "max_candidates": 6}, scoring_backend="onnx")
    ctx = RunContext(project)
    batch = runner.synthesize(ctx, parts, parts, runner.generator(ctx, parts))
    assert len(batch.sample_ids) == 6
    filters = []
    for seed, scale in ((0, 6.0), (1, 1.5)):  # two different "seeds": p = sigmoid(−scale · mean image)
        register_stub_classifier(project, name=f"stub-{seed}", scale=scale)
        weights = project.folder / "models" / f"stub-{seed}" / "model.safetensors"
        filters.append(BaselineRun(path=str(weights), sha256=f"s{seed}", val_auc=None, seed=seed, epoch=1,
                                   model_id=seed, model_name=f"stub-{seed}"))
    scored = runner.score(ctx, "femur<-femur", batch, filters)
    ids = batch.sample_ids
    per_seed = np.array(scored.seed_scores)
    cache = runner._cache(ctx)
    samples = [project.synthetic_sample(i) for i in ids]
    examples = synthetic_examples(project, samples, {s.source_image_id for s in samples})
    for k, f in enumerate(filters):  # each seed's scores are that model's
        direct = OnnxScorer(Path(f.path).with_suffix(".onnx")).score_files([(e.key, e.path) for e in examples],
                                                                         cache=cache)
        np.testing.assert_allclose(per_seed[k], direct, atol=1e-5)
    assert np.abs(per_seed[0] - per_seed[1]).min() > 1e-3  # the seeds disagree, so the mean is its own number
    np.testing.assert_allclose([scored.scores[i] for i in ids], per_seed.mean(axis=0), atol=1e-5)
    assert [project.synthetic_sample(i).score for i in ids] == pytest.approx([scored.scores[i] for i in ids])

    above_all = max(scored.scores.values())
    none = runner.augmented(ctx, parts, "femur<-femur", 0.99, above_all, scored, seed=0)
    assert none.skipped and none.kept == 0 and none.kept_ids == [] and none.path is None  # nothing trained
    # A cut equal to a candidate's score keeps it out: strictly above.
    cut = sorted(scored.scores.values())[2]
    want = sorted(i for i in ids if scored.scores[i] > cut)
    assert len(want) == 3
    pytest.importorskip("torch")  # the augmented stage's trainer (stopped here before it trains)
    with mock.patch("lesion_studio.training.classifier_trainer.train_classifier",
                    side_effect=RuntimeError("trained")) as train, pytest.raises(RuntimeError, match="trained"):
        runner.augmented(ctx, parts, "femur<-femur", 0.5, cut, scored, seed=0)
    kept = [s.id for s in train.call_args.kwargs["synthetic"]]
    assert kept == want  # exactly the candidates scored above the cut join the training set


def test_the_map_requirement_keeps_only_candidates_whose_map_peaks_on_their_lesion(tmp_path: Path) -> None:
    """``filter.require_map_on_lesion``: of the candidates scored above the cut, only those where
    the filter's stored map peak falls on the candidate's own lesion pass (not those whose peak is
    unknown); without it, all do."""
    pytest.importorskip("onnxruntime")
    from lesion_studio.classifier.scoring import registered_scorer, score_synthetic
    from lesion_studio.errors import ConfigError
    from lesion_studio.experiment.outputs import ScoredCandidates
    from tests.stub_models import register_stub_detector, spot_project, spot_samples

    project = spot_project(tmp_path / "spots")
    register_stub_detector(project)
    scorer, _ = registered_scorer(project, "stub-detector")
    on, off, low, unmapped = spot_samples(project, seeds=(0, 1, 2, 3))  # on the spot, off it, on, off
    score_synthetic(project, [project.synthetic_sample(i) for i in (on, off, low)], scorer)
    project.update_synthetic_sample(unmapped, score=0.95)  # scored without a map: where it looked is unknown
    assert project.synthetic_sample(unmapped).map_on_lesion() is None
    scored = ScoredCandidates(scores={on: 0.9, off: 0.8, low: 0.1, unmapped: 0.95}, seed_scores=[],
                              filter_model=None, filter_models=[], filter_sha256="f", backend="onnx")
    assert _runner(tmp_path)._passing(project, scored, 0.5) == [on, off, unmapped]
    strict = _runner(tmp_path, filter={"require_map_on_lesion": True})
    assert strict._passing(project, scored, 0.5) == [on]
    project.close()
    with pytest.raises(ConfigError, match="require_map_on_lesion"):
        _runner(tmp_path, filter={"require_map_on_lesion": True}, scoring_backend="torch")


def test_the_report_says_when_the_filter_also_asked_for_the_map() -> None:
    from lesion_studio.experiment.report import table_markdown

    results = {"name": "x", "test_set": "project-test-split", "evaluations": [], "studies": [],
               "config": {"bootstrap": {"confidence": 0.95, "resamples": 1000, "seed": 0}, "filter": {}}}
    assert "require_map_on_lesion" not in table_markdown(results)
    results["config"]["filter"] = {"kind": "lesion_quantile", "require_map_on_lesion": True}
    assert "only when the filter's map also peaks on its own lesion" in table_markdown(results)
