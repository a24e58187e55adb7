"""Warm start: a classifier pretrains on the project's other body parts, then fine-tunes on its own."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lesion_studio.classifier.config import ClassifierConfig, preset
from lesion_studio.errors import ConfigError


def test_warm_start_settings_are_checked_and_change_the_identity() -> None:
    off = ClassifierConfig()
    on = ClassifierConfig(warm_start_parts=["all"])
    assert off.warm_start_body_parts == [] and on.warm_start_body_parts is None
    assert ClassifierConfig(warm_start_parts=["hand", "leg"]).warm_start_body_parts == ["hand", "leg"]
    assert on.training_hash() != off.training_hash()
    assert replace(on, warm_start_epochs=3).training_hash() != on.training_hash()
    # Without a warm start, its epochs change nothing, and stage keys written before the fields
    # existed still match.
    assert replace(off, warm_start_epochs=3).training_hash() == off.training_hash()
    assert "warm_start_parts" not in off.key_dict() and on.key_dict()["warm_start_parts"] == ["all"]
    with pytest.raises(ConfigError, match="warm_start_parts"):
        ClassifierConfig.from_dict({"warm_start_parts": [""]})
    with pytest.raises(ConfigError, match="warm_start_epochs"):
        ClassifierConfig.from_dict({"warm_start_parts": ["all"], "warm_start_epochs": 0})


def _weights(path) -> dict[str, np.ndarray]:
    from lesion_studio.models.checkpoint import load_checkpoint

    states, _ = load_checkpoint(path)
    return {k: v.float().numpy() for k, v in states["model"].items() if k.endswith(".weight")}


@pytest.mark.slow
def test_fine_tuning_starts_from_the_cached_warm_start(demo_project, tmp_path) -> None:
    """The warm start trains on the named body parts' training images only, is trained once and
    then read from the cache, and a fine-tuned classifier starts from its weights (with a
    vanishing learning rate it ends where the warm start ended; from its seeded start it does not)."""
    pytest.importorskip("torch")
    from lesion_studio.classifier.data import split_records, training_set
    from lesion_studio.classifier.preprocess import PreparedCache
    from lesion_studio.models.drn import load_classifier
    from lesion_studio.training.classifier_trainer import ClassifierTrainer, train_classifier, warm_start

    cfg = preset("tiny", input_size=64, epochs=1, head="image+map", warm_start_parts=["humerus", "tibia"],
                 warm_start_epochs=1)
    ws = warm_start(demo_project, cfg)
    assert ws.body_parts == ["humerus", "tibia"] and ws.epochs == 1
    assert ws.images == len(split_records(demo_project, "train", ["humerus", "tibia"]))
    stamp = ws.path.stat().st_mtime_ns
    assert warm_start(demo_project, cfg) == ws and ws.path.stat().st_mtime_ns == stamp  # cached

    result, _ = train_classifier(demo_project, cfg, name="tuned", body_parts=["femur"])
    _, meta = load_classifier(result.path)
    assert meta["warm_start"]["sha256"] == ws.sha256 and meta["warm_start"]["body_parts"] == ["humerus", "tibia"]
    assert ws.path.stat().st_mtime_ns == stamp  # the fine-tuning reused it

    still = replace(cfg, lr=1e-9, weight_decay=0.0, warm_start_parts=[])
    femur = training_set(demo_project, PreparedCache(still.preprocessing, None), ["femur"], masks=True)
    warm = ClassifierTrainer(still, femur, None, tmp_path / "warm", init_from=ws).fit()
    cold = ClassifierTrainer(still, femur, None, tmp_path / "cold").fit()
    start, warm_w, cold_w = _weights(ws.path), _weights(warm.path), _weights(cold.path)
    assert start.keys() == warm_w.keys()
    for k in start:
        np.testing.assert_allclose(warm_w[k], start[k], atol=1e-5, err_msg=k)
    assert max(float(np.abs(cold_w[k] - start[k]).max()) for k in start) > 1e-3


def test_a_warm_start_of_another_network_is_refused(demo_project) -> None:
    pytest.importorskip("torch")
    from lesion_studio.errors import LesionStudioError
    from lesion_studio.models.drn import build_drn
    from lesion_studio.training.classifier_trainer import warm_start

    cfg = preset("tiny", input_size=64, head="image+map", warm_start_parts=["humerus"], warm_start_epochs=1)
    ws = warm_start(demo_project, cfg)
    assert set(ws.state(lambda: build_drn(cfg.arch, lesion_map=True)))
    with pytest.raises(LesionStudioError, match="warm start"):
        ws.state(lambda: build_drn("drn_d_22_half", lesion_map=True))


def test_the_experiment_keys_classifier_stages_by_the_warm_start_data(demo_project_master, demo_project,
                                                                      tmp_path) -> None:
    """A label changed in a warm-start body part changes the stage key of every classifier stage
    (the warm start is another model then); a change in another body part does not."""
    from lesion_studio.classifier.data import split_records
    from lesion_studio.experiment.runner import ExperimentRunner
    from tests.test_experiment import _config

    cfg = _config(demo_project.folder, tmp_path / "r",
                  classifier={"preset": "tiny", "input_size": 64, "epochs": 1, "warm_start_parts": ["humerus"]})
    runner = ExperimentRunner(cfg)
    ccfg = runner.cls_cfgs[0]
    before = runner._classifier_inputs(demo_project, ccfg)
    assert before["config"]["warm_start_parts"] == ["humerus"] and "warm_start_data" in before
    femur = split_records(demo_project, "train", ["femur"])[0]
    demo_project.update_image(femur.id, label="normal" if femur.label == "lesion" else "lesion")
    assert runner._classifier_inputs(demo_project, ccfg) == before
    humerus = split_records(demo_project, "train", ["humerus"])[0]
    demo_project.update_image(humerus.id, label="normal" if humerus.label == "lesion" else "lesion")
    assert runner._classifier_inputs(demo_project, ccfg)["warm_start_data"] != before["warm_start_data"]
    plain = ExperimentRunner(_config(demo_project_master, tmp_path / "p"))
    assert set(plain._classifier_inputs(demo_project, plain.cls_cfgs[0])) == {"config"}


@pytest.mark.slow
def test_train_classifier_cli_warm_starts(demo_project_master, tmp_path, capsys) -> None:
    pytest.importorskip("torch")
    import shutil

    from lesion_studio.cli.main import main
    from lesion_studio.models.drn import load_classifier
    from lesion_studio.store import Project

    folder = tmp_path / "demo"
    shutil.copytree(demo_project_master, folder)
    cfg = tmp_path / "cls.yaml"
    cfg.write_text("input_size: 64\n")
    assert main(["train-classifier", str(folder), "--name", "warm", "--preset", "tiny", "--config", str(cfg),
                 "--epochs", "1", "--body-parts", "femur", "--warm-start", "humerus,tibia",
                 "--warm-start-epochs", "1"]) == 0
    assert "Model warm" in capsys.readouterr().out
    with Project.open(folder) as project:
        path = project.resolve_path(project.model("warm").path)
    _, meta = load_classifier(path)
    assert meta["warm_start"]["body_parts"] == ["humerus", "tibia"] and meta["warm_start"]["epochs"] == 1
    assert meta["config"]["warm_start_parts"] == ["humerus", "tibia"]
    assert main(["train-classifier", str(folder), "--name", "bad", "--preset", "tiny", "--config", str(cfg),
                 "--warm-start", "all", "--warm-start-epochs", "0"]) == 2
    assert "warm_start_epochs" in capsys.readouterr().err
