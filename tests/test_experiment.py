"""The whole protocol on the demo project with the stub lesion painter: files, AUC sanity, caching."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from lesion_studio.config import from_dict  # noqa: E402
from lesion_studio.errors import ConfigError  # noqa: E402
from lesion_studio.experiment.config import ExperimentConfig, load_experiment_config  # noqa: E402
from lesion_studio.experiment.runner import run_experiment  # noqa: E402


def _config(project_folder, out, **changes) -> ExperimentConfig:
    data = {
        "name": "t", "project": str(project_folder), "output": str(out), "seed": 0,
        "classifier": {"preset": "tiny", "input_size": 64, "epochs": 8},
        "generator": {"kind": "stub"},
        "synthesis": {"candidates_per_image": 1, "max_candidates": 24},
        # t = 0 keeps every scored sample: the tiny classifier's scores move with thread counts and
        # float rounding, and the test needs at least one threshold that keeps samples.
        "thresholds": [0.0, 0.6], "bootstrap": {"resamples": 1000, "seed": 1},
        "scoring_backend": "torch",
        "studies": [{"body_parts": ["femur", "tibia", "humerus"]}],
        **changes,
    }
    return from_dict(ExperimentConfig, data)


def test_tiny_experiment_end_to_end_and_stage_cache(demo_project, tmp_path) -> None:
    out = tmp_path / "results"
    folder = demo_project.folder
    demo_project.close()
    result = run_experiment(_config(folder, out))

    for name in ("results.json", "table.md", "config.yaml", "models.json",
                 "roc-femur+tibia+humerus.png", "samples-femur+tibia+humerus_from_femur+tibia+humerus.png"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    evals = results["evaluations"]
    assert {e["type"] for e in evals} == {"Baseline", "Augmented"}
    for e in evals:
        if e["auc"] is None:
            continue
        a = e["auc"]
        assert 0.0 <= a["ci_low"] <= a["auc"] <= a["ci_high"] <= 1.0
    study = results["studies"][0]
    assert study["candidates"] == 24
    chosen = next(tr for tr in study["threshold_trials"] if tr["t"] == study["chosen_t"])
    assert chosen["kept"] == sum(s > study["chosen_t"] for s in study["scores"].values())
    table = (out / "table.md").read_text()
    assert "| Body part | Type | t | Augmented samples | ROC AUC (95% CI)" in table
    assert all(ev["status"] == "ran" for ev in result.stage_events)

    # A second run reads every stage from the cache.
    again = run_experiment(_config(folder, out))
    assert again.stage_events and all(ev["status"] == "cached" for ev in again.stage_events)
    assert again.results["evaluations"] == results["evaluations"]

    # A new threshold re-runs only what depends on it.
    third = run_experiment(_config(folder, out, thresholds=[0.0, 0.6, 0.8]))
    ran = {ev["stage"] for ev in third.stage_events if ev["status"] == "ran"}
    assert ran <= {"augmented/femur+tibia+humerus<-femur+tibia+humerus/t=0.8", "evaluate"}
    assert "augmented/femur+tibia+humerus<-femur+tibia+humerus/t=0.8" in ran


def test_bad_config_is_a_clear_error(tmp_path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("name: x\nproject: demo\nstudies: [{body_parts: [femur]}]\nclasifier: {}\n")
    with pytest.raises(ConfigError, match="clasifier"):
        load_experiment_config(cfg)
    cfg.write_text("name: x\nproject: demo\nstudies: [{body_parts: [femur]}]\nclassifier: {arch: vgg}\n")
    with pytest.raises(ConfigError, match="vgg"):
        load_experiment_config(cfg)


def test_shipped_configs_load() -> None:
    from lesion_studio.paths import resources_dir

    for path in sorted((resources_dir() / "experiments").glob("*.yaml")):
        cfg = load_experiment_config(path)
        assert cfg.studies, path.name
