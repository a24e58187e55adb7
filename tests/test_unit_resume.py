"""Resume continues identically; cancel checkpoints; config and input errors are clear."""

from __future__ import annotations

import pytest

from lesion_studio.errors import ConfigError, LesionStudioError

pytest.importorskip("torch")

FAST = {"device": "cpu", "cpu_threads": 1, "export_onnx": False, "sample_every": 1000, "checkpoint_every": 1000,
        "body_parts": ["femur"]}


def test_resume_reproduces_the_next_losses(demo_project) -> None:  # noqa: ANN001
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    full = train_unit(demo_project, preset_config("tiny", iterations=6, **FAST), name="straight")
    half = train_unit(demo_project, preset_config("tiny", iterations=3, **FAST), name="halves")
    assert half.iteration == 3
    rest = train_unit(demo_project, preset_config("tiny", iterations=6, **FAST), name="halves", resume=True)
    assert rest.iteration == 6 and len(rest.history) == 6
    assert rest.history[3:] == full.history[3:]  # bitwise: same batches, noise, weights and Adam state
    assert rest.history[:3] == full.history[:3]
    sha = demo_project.model("halves").sha256
    again = train_unit(demo_project, preset_config("tiny", iterations=6, **FAST), name="halves", resume=True)
    assert again.model_id == rest.model_id and demo_project.model("halves").sha256 == sha
    with pytest.raises(LesionStudioError, match="already exists"):
        train_unit(demo_project, preset_config("tiny", iterations=2, **FAST), name="straight")


def test_cancel_saves_a_resumable_checkpoint(demo_project) -> None:  # noqa: ANN001
    from lesion_studio.jobs import CancelToken
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    token = CancelToken()

    def progress(event) -> None:  # noqa: ANN001
        if event.stage == "train-gan" and event.done == 2:
            token.cancel()

    from lesion_studio.errors import JobCancelled

    with pytest.raises(JobCancelled) as stopped:  # the cancel contract of every long job
        train_unit(demo_project, preset_config("tiny", iterations=50, **FAST), name="c", progress=progress,
                   cancel=token)
    res = stopped.value.partial
    assert res.cancelled and res.iteration == 2
    record = demo_project.model("c")
    assert record.metadata["complete"] is False
    assert demo_project.runs("unit")[-1].status == "cancelled"
    more = train_unit(demo_project, preset_config("tiny", iterations=3, **FAST), name="c", resume=True)
    assert more.iteration == 3 and not more.cancelled


def test_bad_configs_and_inputs_are_clear(demo_project, tmp_path) -> None:  # noqa: ANN001
    from lesion_studio.cli.main import main
    from lesion_studio.training.unit_config import load_config, preset_config
    from lesion_studio.training.unit_trainer import train_unit

    with pytest.raises(ConfigError, match="multiple of 4"):
        preset_config("tiny", resolution=30)
    with pytest.raises(ConfigError, match="Unknown preset"):
        preset_config("huge")
    with pytest.raises(ConfigError, match="unknown setting"):
        preset_config("tiny", learning_rate=1)
    path = tmp_path / "unit.yaml"
    path.write_text("preset: tiny\niterations: 7\nlr: 0.001\n")
    cfg = load_config(path)
    assert cfg.iterations == 7 and cfg.base_channels == 16 and cfg.lr == 0.001
    with pytest.raises(LesionStudioError, match="no lesion boxes"):
        train_unit(demo_project, preset_config("tiny", iterations=1, **{**FAST, "body_parts": ["hand"]}))
    assert main(["train-gan", str(demo_project.folder), "--preset", "tiny", "--iterations", "1",
                 "--resume", "--name", "ghost"]) == 2
    assert main(["train-gan", str(demo_project.folder), "--preset", "tiny", "--iterations", "2",
                 "--body-part", "tibia", "--cpu-threads", "1", "--name", "cli", "--json", "--no-onnx"]) == 0
    assert demo_project.model("cli").body_parts == ("tibia",)


def test_spectral_norm_discriminators_train_and_resume_identically(demo_project) -> None:  # noqa: ANN001
    import torch

    from lesion_studio.models.specs import UNIT_ARCHS
    from lesion_studio.models.unit import unit_discriminators
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    torch.manual_seed(0)  # the power iteration's start vectors are random
    dis = unit_discriminators(UNIT_ARCHS["tiny"](), "spectral")
    weights = [m.weight for m in dis.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(weights) == 2 * 2 * 3  # 2 discriminators × 2 scales × (2 layers + the 1×1 output)
    for _ in range(200):  # the power iteration runs on every training forward (one step each)
        dis(*(torch.randn(1, 1, 32, 32) for _ in range(4)))
    sigmas = [torch.linalg.matrix_norm(w.detach().flatten(1), ord=2).item() for w in weights]
    assert max(abs(s - 1.0) for s in sigmas) < 0.1  # every conv's largest singular value is ~1 (plain: 0.1-0.4)
    with pytest.raises(LesionStudioError, match="discriminator norm"):
        unit_discriminators(UNIT_ARCHS["tiny"](), "batch")
    with pytest.raises(ConfigError, match="dis_norm"):
        preset_config("tiny", dis_norm="batch")

    cfg = {**FAST, "dis_norm": "spectral"}
    full = train_unit(demo_project, preset_config("tiny", iterations=4, **cfg), name="sn")
    plain = train_unit(demo_project, preset_config("tiny", iterations=4, **FAST), name="plain")
    assert full.history != plain.history  # the norm changes training
    train_unit(demo_project, preset_config("tiny", iterations=2, **cfg), name="sn-halves")
    rest = train_unit(demo_project, preset_config("tiny", iterations=4, **cfg), name="sn-halves", resume=True)
    assert rest.history == full.history  # the power iteration's vectors are in the checkpoint
