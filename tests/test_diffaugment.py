"""DiffAugment for the UNIT discriminators: differentiable, seeded, and wired into training."""

from __future__ import annotations

import math

import pytest

from lesion_studio.errors import ConfigError

torch = pytest.importorskip("torch")

from lesion_studio.training.diffaugment import diff_augment  # noqa: E402
from lesion_studio.training.unit_config import parse_policy  # noqa: E402


def _gen(seed: int = 0) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def test_policy_parsing() -> None:
    assert parse_policy("") == ()
    assert parse_policy("brightness, cutout") == ("brightness", "cutout")
    with pytest.raises(ConfigError, match="colour"):
        parse_policy("brightness,colour")


def test_each_transform_does_what_it_says_and_passes_gradients() -> None:
    x = torch.linspace(-1, 1, 2 * 32 * 32).reshape(2, 1, 32, 32).requires_grad_(True)
    bright = diff_augment(x, ("brightness",), _gen())
    shift = (bright - x).detach()
    for i in range(2):  # one offset per patch, within ±0.25
        assert torch.allclose(shift[i], shift[i].flatten()[0].expand_as(shift[i]))
        assert abs(float(shift[i].flatten()[0])) <= 0.25
    cut = diff_augment(x, ("cutout",), _gen()).detach()
    zeros = (cut == 0) & (x.detach() != 0)
    assert all(int(zeros[i].sum()) >= 16 * 16 - 32 for i in range(2))  # a 16×16 square per patch
    moved = diff_augment(x, ("translation",), _gen(3)).detach()
    assert moved.shape == x.shape
    contrast = diff_augment(x, ("contrast",), _gen()).detach()
    assert torch.allclose(contrast.mean(dim=(1, 2, 3)), x.detach().mean(dim=(1, 2, 3)), atol=1e-5)

    out = diff_augment(x, ("brightness", "contrast", "translation", "cutout"), _gen())
    out.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_the_same_seed_gives_the_same_augmentation() -> None:
    x = torch.randn(3, 1, 16, 16)
    policy = ("brightness", "translation", "cutout")
    assert torch.equal(diff_augment(x, policy, _gen(7)), diff_augment(x, policy, _gen(7)))
    assert not torch.equal(diff_augment(x, policy, _gen(7)), diff_augment(x, policy, _gen(8)))


def test_training_with_diffaugment_runs_and_resumes_identically(demo_project) -> None:
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    fast = {"device": "cpu", "cpu_threads": 1, "export_onnx": False, "sample_every": 1000,
            "checkpoint_every": 1000, "body_parts": ["femur"], "diff_augment": "brightness,translation,cutout"}
    full = train_unit(demo_project, preset_config("tiny", iterations=4, **fast), name="da")
    plain = train_unit(demo_project, preset_config("tiny", iterations=4, **{**fast, "diff_augment": ""}), name="plain")
    assert all(math.isfinite(v) for row in full.history for v in row.values())
    assert full.history[0]["dis"] != plain.history[0]["dis"]  # the discriminator saw other inputs
    half = train_unit(demo_project, preset_config("tiny", iterations=2, **fast), name="da-halves")
    rest = train_unit(demo_project, preset_config("tiny", iterations=4, **fast), name="da-halves", resume=True)
    assert half.iteration == 2 and rest.history == full.history
    with pytest.raises(ConfigError, match="mixup"):
        preset_config("tiny", diff_augment="mixup")
