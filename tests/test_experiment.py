"""The whole protocol on the demo project with the stub lesion painter: files, AUCs, seeds, selection, caching."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from lesion_studio.classifier.config import preset  # noqa: E402
from lesion_studio.config import from_dict  # noqa: E402
from lesion_studio.errors import ConfigError, LesionStudioError  # noqa: E402
from lesion_studio.experiment.config import ExperimentConfig, load_experiment_config  # noqa: E402
from lesion_studio.experiment.plan import ExperimentPlan  # noqa: E402
from lesion_studio.experiment.runner import run_experiment  # noqa: E402
from lesion_studio.paths import find_experiment_config  # noqa: E402
from lesion_studio.store import Project  # noqa: E402

STUDY = "femur+tibia+humerus<-femur+tibia+humerus"


def _config(project_folder, out, **changes) -> ExperimentConfig:
    data = {
        "name": "t", "project": str(project_folder), "output": str(out), "seed": 0, "seeds": [0, 1],
        "classifier": {"preset": "tiny", "input_size": 64, "epochs": 4},
        "generator": {"kind": "stub"},
        "synthesis": {"candidates_per_image": 1, "max_candidates": 24},
        # Quantile thresholds: 0 keeps every candidate scored above the least lesion-like real
        # validation lesion, which the stub's dark discs reach; the floor is off so the tiny
        # baseline may filter whatever its validation AUC.
        "thresholds": [0.0, 0.5], "filter": {"kind": "lesion_quantile", "min_baseline_val_auc": 0.0},
        "bootstrap": {"resamples": 1000, "seed": 1},
        "scoring_backend": "torch",
        "studies": [{"body_parts": ["femur", "tibia", "humerus"]}],
        **changes,
    }
    return from_dict(ExperimentConfig, data)


def _ran(result) -> set[str]:
    return {ev["stage"] for ev in result.stage_events if ev["status"] == "ran"}


@pytest.fixture(scope="module")
def stub_run(demo_project_master, tmp_path_factory):
    """One two-seed stub run on a private demo copy; later tests re-decide on its cached stages."""
    import shutil

    root = tmp_path_factory.mktemp("stub-results")
    shutil.copytree(demo_project_master, root / "demo")
    events = []
    cfg = _config(root / "demo", root / "results")
    result = run_experiment(cfg, progress=lambda e: events.append(e) if e.stage == "experiment" else None)
    return root / "demo", root / "results", cfg, result, events


@pytest.fixture
def stub_results(stub_run):
    return stub_run[0], stub_run[1]


@pytest.mark.slow
def test_tiny_experiment_seeds_selection_and_stage_cache(stub_run) -> None:
    folder, out, cfg, result, events = stub_run

    # Progress walks the shared plan exactly: same names, never past its total.
    plan = ExperimentPlan.from_config(cfg)
    assert [e.message for e in events] == plan.names
    assert all(e.total == len(plan) and e.done <= e.total for e in events)
    assert plan.names[:2] == ["baseline femur+tibia+humerus seed 0", "baseline femur+tibia+humerus seed 1"]

    for name in ("results.json", "table.md", "config.yaml", "models.json",
                 "roc-femur+tibia+humerus.png", "samples-femur+tibia+humerus_from_femur+tibia+humerus.png"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [0, 1]
    headline = [e for e in results["evaluations"] if e["line"] == "headline"]
    base = next(e for e in headline if e["type"] == "Baseline")
    aug = next(e for e in headline if e["type"] == "Augmented")
    for e in (base, aug):  # every row is evaluated, pooled over both seeds
        a = e["auc"]
        assert 0.0 <= a["ci_low"] <= a["auc"] <= a["ci_high"] <= 1.0
        assert len(e["auc_per_seed"]) == 2 and e["auc_spread"]["n"] == 2
        assert a["auc"] == pytest.approx(np.mean(e["auc_per_seed"]))
    d = aug["delta_vs_baseline"]
    assert d["ci_low"] <= d["delta"] <= d["ci_high"]
    assert d["delta"] == pytest.approx(np.mean(aug["delta_per_seed"]))
    assert d["delta"] == pytest.approx(aug["auc"]["auc"] - base["auc"]["auc"])

    study = results["studies"][0]
    assert study["candidates"] == 24 and study["filter"]["refused"] is False
    trials = study["threshold_trials"]
    assert [tr["t"] for tr in trials] == [0.0, 0.5]
    for tr in trials:  # the cut is a score, and "kept" counts the candidates above it
        assert 0.0 <= tr["cut"] <= 1.0
        assert tr["kept"] == sum(s > tr["cut"] for s in study["scores"].values())
    assert trials[0]["cut"] <= trials[1]["cut"]  # a higher quantile never keeps more
    compared = [tr for tr in trials if "val_delta" in tr]
    assert compared, "at least one threshold kept candidates and was compared on validation"
    # The best t is the one with the best pooled validation ΔAUC; accepted only if it beats the baseline.
    best = max(compared, key=lambda tr: tr["val_delta"]["delta"])
    assert study["best_t"] == best["t"]
    accepted = best["val_delta"]["delta"] > 0 and best["val_delta"]["p_not_better"] <= 0.2
    assert study["status"] == ("accepted" if accepted else "rejected on validation")
    assert study["chosen_t"] == (best["t"] if accepted else None)
    assert aug["status"] == study["status"] and aug["t"] == best["t"]

    # Samples are marked by what entered the study's final training set.
    project = Project.open(folder)
    try:
        samples = project.synthetic_samples(batch=study["batch"])
        marks = {s.id: s.status for s in samples}
        # Candidates come only from normal training images.
        sources = [project.image(s.source_image_id) for s in samples]
        assert sources and {(r.split, r.label) for r in sources} == {("train", "normal")}
    finally:
        project.close()
    kept = {int(k) for k, s in study["scores"].items() if s > best["cut"]} if accepted else set()
    assert marks == {int(k): ("accepted" if int(k) in kept else "rejected") for k in study["scores"]}

    table = (out / "table.md").read_text()
    assert "| Body part | Type | Status | t | Augmented samples | ROC AUC, pooled (95% CI)" in table
    assert "ΔAUC mean ± sd" in table and "(n=2)" in table
    assert all(ev["status"] == "ran" for ev in result.stage_events)

    # A second run reads every stage from the cache.
    again = run_experiment(_config(folder, out))
    assert again.stage_events and all(ev["status"] == "cached" for ev in again.stage_events)
    assert again.results["evaluations"] == results["evaluations"]

    # A new threshold re-runs only what depends on it (one model per seed), and the evaluation.
    third = run_experiment(_config(folder, out, thresholds=[0.0, 0.5, 0.9]))
    assert _ran(third) - {"evaluate"} == {f"augmented/{STUDY}/t=0.9/seed=0", f"augmented/{STUDY}/t=0.9/seed=1"}


@pytest.mark.slow
def test_augmentation_that_does_not_beat_the_baseline_on_validation_is_rejected(stub_results) -> None:
    """An impossible margin forces the case: the baseline stands and every report says so."""
    folder, out = stub_results
    result = run_experiment(_config(folder, out, selection={"min_val_delta": 1.0}))
    assert _ran(result) <= {"evaluate"}  # no model is retrained to change the decision
    study = result.results["studies"][0]
    assert study["status"] == "rejected on validation" and study["chosen_t"] is None
    assert "validation ΔAUC" in study["selection_reason"]
    aug = next(e for e in result.results["evaluations"] if e["type"] == "Augmented" and e["line"] == "headline")
    assert aug["status"] == "rejected on validation"
    table = (out / "table.md").read_text()
    assert "rejected on validation (test shown for reference; the study's result is the baseline)" in table
    project = Project.open(folder)
    try:
        assert {s.status for s in project.synthetic_samples(batch=study["batch"])} == {"rejected"}
        run = max(project.runs(), key=lambda r: r.id)
        assert {e["status"] for e in run.metrics["evaluations"]} == {"baseline", "rejected on validation"}
    finally:
        project.close()


@pytest.mark.slow
def test_a_baseline_below_the_floor_is_not_allowed_to_filter(stub_results) -> None:
    folder, out = stub_results
    result = run_experiment(_config(folder, out, filter={"min_baseline_val_auc": 0.9999}))
    assert not any(s.startswith("augmented/") for s in _ran(result))
    study = result.results["studies"][0]
    assert study["status"] == "filter refused" and study["threshold_trials"] == []
    assert "below the floor" in study["selection_reason"]
    aug = next(e for e in result.results["evaluations"] if e["type"] == "Augmented")
    assert aug["auc"] is None and aug["status"] == "filter refused"


class Crash(Exception):
    """Stands in for a crash: raised from the progress callback in the middle of a stage."""


def _crash_when(predicate, seen: list):  # noqa: ANN001, ANN202
    """A progress callback that records every event and raises :class:`Crash` at the first one
    the predicate accepts (it sees the event and the ones before it)."""

    def progress(event) -> None:  # noqa: ANN001
        seen.append(event)
        if predicate(event, seen):
            raise Crash(event.message)

    return progress


def _after_tick(seen: list, prefix: str) -> bool:
    return any(e.stage == "experiment" and e.message.startswith(prefix) for e in seen)


@pytest.mark.slow
def test_crashes_in_the_middle_of_a_stage_resume_where_they_stopped(demo_project, tmp_path) -> None:
    """Not only a full cache: a run killed half-way through synthesis, then half-way through an
    augmented classifier, goes on from there: no candidate made twice, no epoch trained twice."""
    folder = demo_project.folder
    demo_project.close()
    out = tmp_path / "results"

    def config() -> ExperimentConfig:
        return _config(folder, out, seeds=[0], thresholds=[0.0])

    seen: list = []
    with pytest.raises(Crash):  # after 10 of the 24 candidates
        run_experiment(config(), progress=_crash_when(
            lambda e, _: e.stage.startswith("synthesizing") and e.done == 10, seen))
    seen = []
    with pytest.raises(Crash):  # after epoch 2 of 4 of the augmented classifier
        run_experiment(config(), progress=_crash_when(
            lambda e, s: e.stage == "classifier epoch" and e.done == 2 and _after_tick(s, "score"), seen))
    assert not (out / "results.json").exists()

    seen = []
    result = run_experiment(config(), progress=seen.append)
    ran = _ran(result)
    assert any(s.startswith("augmented/") for s in ran)
    assert all(s.startswith("augmented/") or s == "evaluate" for s in ran), ran
    # The interrupted classifier went on from its epoch-2 checkpoint instead of starting again.
    assert [e.done for e in seen if e.stage == "classifier epoch"] == [3, 4]
    study = result.results["studies"][0]
    assert study["candidates"] == 24
    with Project.open(folder) as project:  # the resumed synthesis reused the first 10: no duplicates
        assert sorted(s.id for s in project.synthetic_samples(batch=study["batch"])) == \
            sorted(int(i) for i in study["scores"])


def test_bad_config_is_a_clear_error(tmp_path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("name: x\nproject: demo\nstudies: [{body_parts: [femur]}]\nclasifier: {}\n")
    with pytest.raises(ConfigError, match="clasifier"):
        load_experiment_config(cfg)
    cfg.write_text("name: x\nproject: demo\nstudies: [{body_parts: [femur]}]\nclassifier: {arch: vgg}\n")
    with pytest.raises(ConfigError, match="vgg"):
        load_experiment_config(cfg)
    cfg.write_text("name: x\nproject: demo\nstudies: [{body_parts: [femur]}]\nseeds: [1, 1]\n")
    with pytest.raises(ConfigError, match="seeds"):
        load_experiment_config(cfg)
    cfg.write_text("name: x\nproject: demo\nstudies: [{body_parts: [femur]}]\nclassifier: {train_fraction: 0.5}\n")
    with pytest.raises(ConfigError, match="train_fraction is for single classifiers"):
        load_experiment_config(cfg)
    cfg.write_text("name: x\nproject: demo\nstudies: [{body_parts: [femur]}]\npointing_tolerance_px: -3\n")
    with pytest.raises(ConfigError, match="pointing_tolerance_px"):
        load_experiment_config(cfg)
    # YAML keeps the last of two equal keys without a word; a config may not say a thing twice
    cfg.write_text("name: x\nproject: demo\nseeds: [0]\nstudies: [{body_parts: [femur]}]\n"
                   "classifier:\n  epochs: 3\n  epochs: 4\n")
    with pytest.raises(ConfigError, match=r"bad.yaml, line 7: the setting 'epochs' is given twice"):
        load_experiment_config(cfg)


def test_a_learning_rate_in_exponent_form_is_a_number(tmp_path) -> None:
    """PyYAML reads 3e-4 as text (YAML 1.1 wants 3.0e-4); the configs read it as YAML 1.2 and
    every other format does, without turning other text or whole numbers into floats."""
    import yaml

    from lesion_studio.config import read_config_file

    cfg = tmp_path / "lr.yaml"
    cfg.write_text("lr: 3e-4\nweight_decay: 1E-5\nbig: +2e3\nseed: 3\nname: e5\nversion: '1e3'\nwhen: 2026-12-07\n")
    data = read_config_file(cfg)
    assert data["lr"] == 3e-4 and data["weight_decay"] == 1e-5 and data["big"] == 2000.0
    assert isinstance(data["lr"], float) and data["seed"] == 3 and isinstance(data["seed"], int)
    assert data["name"] == "e5" and data["version"] == "1e3"  # text stays text, quoted numbers too
    assert str(data["when"]) == "2026-12-07"
    assert yaml.safe_load("lr: 3e-4")["lr"] == "3e-4"  # PyYAML's own loader is left as it is
    assert preset("cpu-map", **{"lr": data["lr"]}).lr == 3e-4


def test_shipped_configs_load() -> None:
    from lesion_studio.paths import resources_dir

    for path in sorted((resources_dir() / "experiments").glob("*.yaml")):
        cfg = load_experiment_config(path)
        assert cfg.studies, path.name
    # the GPU runs are the paper's scale with the detector that learns from the boxes: the arms
    # study's classifier is the gpu preset's, written out (its CPU base's settings would win)
    gpu = preset("gpu", device="cuda", seed=0)
    assert gpu.head == "image+map" and gpu.arch == "drn_c_26" and gpu.input_size == 512
    for name in ("fracatlas-gpu", "fracatlas-arms-gpu"):
        assert load_experiment_config(find_experiment_config(name)).classifier_config(seed=0) == gpu, name


def test_a_config_extends_another_and_states_only_what_it_changes(tmp_path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text("name: base\nproject: demo\nstudies: [{body_parts: [femur]}]\n"
                    "classifier: {arch: drn_d_22_half, epochs: 12, head: image+map}\n"
                    "augmentation: {arms: [oversample, copy_paste], ratios: [0.5]}\n")
    variant = tmp_path / "variant.yaml"
    variant.write_text("extends: base.yaml\nname: longer\nclassifier: {epochs: 25}\naugmentation: {arms: [oversample]}\n")
    cfg = load_experiment_config(variant)
    assert cfg.name == "longer" and cfg.studies[0].body_parts == ["femur"]
    # mappings merge key by key, lists replace
    assert cfg.classifier["epochs"] == 25 and cfg.classifier["arch"] == "drn_d_22_half"
    assert cfg.classifier["head"] == "image+map"
    assert cfg.augmentation.arms == ["oversample"] and cfg.augmentation.ratios == [0.5]
    # a built-in config by name: the shipped variants resolve to their base's study
    builtin = load_experiment_config(find_experiment_config("fracatlas-arms-e25"))
    arms = load_experiment_config(find_experiment_config("fracatlas-arms"))
    assert builtin.classifier == {**arms.classifier, "epochs": 25} and builtin.synthesis == arms.synthesis
    # a cycle and an unknown base are one-line errors
    base.write_text(base.read_text() + "extends: variant.yaml\n")
    with pytest.raises(ConfigError, match="comes back"):
        load_experiment_config(variant)
    variant.write_text("extends: no-such-config\nname: x\n")
    with pytest.raises(LesionStudioError, match="no-such-config"):
        load_experiment_config(variant)
