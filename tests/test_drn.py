"""DRN architectures: published parameter counts, output stride 8, single-channel binary head."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from lesion_studio.errors import ConfigError  # noqa: E402
from lesion_studio.models.drn import build_drn, count_parameters, drn_c_26, drn_d_22, drn_d_tiny  # noqa: E402


@pytest.mark.parametrize(("builder", "published_millions"), [(drn_c_26, 21.1), (drn_d_22, 16.4)])
def test_parameter_counts_match_the_paper(builder, published_millions: float) -> None:
    n = count_parameters(builder(in_channels=3, num_classes=1000))
    assert abs(n / 1e6 - published_millions) < 0.05


def test_single_channel_binary_head_and_output_stride_8() -> None:
    model = drn_d_tiny().eval()
    x = torch.zeros(2, 1, 96, 80)
    assert model(x).shape == (2, 1)
    assert model.features(x).shape[-2:] == (12, 10)


def test_unknown_architecture_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="drn_c_26"):
        build_drn("resnet9000")
