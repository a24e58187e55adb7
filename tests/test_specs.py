"""Facts about models live in torch-free modules, and the networks built from them agree with them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lesion_studio.classifier import config as classifier_config
from lesion_studio.models.specs import DRN_ARCHS, UNIT_ARCHS
from lesion_studio.training import unit_config

TORCH_FREE = (
    "lesion_studio.files", "lesion_studio.models.specs", "lesion_studio.models.layout",
    "lesion_studio.training.unit_config", "lesion_studio.classifier.config",
    "lesion_studio.synthesis.translator", "lesion_studio.classifier.scoring", "lesion_studio.io",
    "lesion_studio.store.proposals", "lesion_studio.assist.regions", "lesion_studio.assist.detector",
    "lesion_studio.assist.queue", "lesion_studio.assist.retrain",
)


def test_torch_free_modules_import_no_torch() -> None:
    code = ("import json, sys\n" + "".join(f"import {m}\n" for m in TORCH_FREE)
            + "print(json.dumps(sorted(m for m in ('torch', 'torchvision') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize("name", sorted(unit_config.PRESETS))
def test_unit_latent_shape_is_the_encoders(name: str) -> None:
    """The translator draws ONNX noise from ``UnitArch.latent_shape``; it must be what E(x) returns."""
    torch = pytest.importorskip("torch")
    from lesion_studio.models.unit import UnitGenerators

    cfg = unit_config.preset_config(name)
    arch = cfg.arch()
    assert arch == UNIT_ARCHS[name]()  # the preset trains the architecture of the same name
    side = arch.downsample_factor * 3  # any multiple of the factor, not the training resolution
    gen = UnitGenerators(arch).eval()
    with torch.no_grad():
        z = gen.encode(torch.zeros(2, 1, side, side + arch.downsample_factor), "h")
    assert tuple(z.shape) == arch.latent_shape(2, side, side + arch.downsample_factor)


def test_every_drn_name_builds_and_every_preset_names_one() -> None:
    pytest.importorskip("torch")
    from lesion_studio.models.drn import ARCHITECTURES, build_drn

    assert tuple(ARCHITECTURES) == DRN_ARCHS
    assert {classifier_config.preset(p).arch for p in classifier_config.PRESETS} <= set(DRN_ARCHS)
    assert build_drn("drn_d_tiny").fc.out_channels == 1
