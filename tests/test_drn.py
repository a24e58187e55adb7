"""DRN architectures: published parameter counts, output stride 8, single-channel binary head."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from lesion_studio.errors import ConfigError  # noqa: E402
from lesion_studio.models.drn import (  # noqa: E402
    build_drn,
    count_parameters,
    drn_c_26,
    drn_d_22,
    drn_d_22_half,
    drn_d_22_slim,
    drn_d_tiny,
)


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


def _forward_conv_flops(model: torch.nn.Module, size: int) -> int:
    """Multiply-adds x 2 of every convolution in one forward pass of a 1 x 1 x size x size input."""
    total = [0]

    def hook(module: torch.nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        kh, kw = module.kernel_size
        total[0] += 2 * output.numel() * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 1, size, size))
    for handle in handles:
        handle.remove()
    return total[0]


def test_slim_keeps_the_topology_and_costs_a_quarter_less_than_half() -> None:
    half, slim = drn_d_22_half(lesion_map=True).eval(), drn_d_22_slim(lesion_map=True).eval()
    x = torch.zeros(1, 1, 128, 128)
    assert slim.features(x).shape[-2:] == half.features(x).shape[-2:] == (16, 16)
    assert slim.heads(x)[1].shape == half.heads(x)[1].shape == (1, 16, 16)  # the lesion map at output stride 8
    assert [type(m).__name__ for m in slim.modules()] == [type(m).__name__ for m in half.modules()]
    ratio = _forward_conv_flops(slim, 128) / _forward_conv_flops(half, 128)
    assert 0.70 < ratio < 0.78  # 1.95 against 2.66 GFLOP at 128 px
    assert count_parameters(slim) < count_parameters(half)


# One training step of a tiny DRN at the demo's 96 px, in the layout the trainer picks, run in a child
# process: a oneDNN crash there is a failed test rather than a dead pytest worker.
_ONE_STEP = """
import sys, torch
from lesion_studio.models.drn import build_drn
from lesion_studio.training.common import conv_memory_format
torch.manual_seed(0)
model = build_drn(sys.argv[1], lesion_map=True)
fmt = conv_memory_format(model)
model = model.to(memory_format=fmt)
x = torch.randn(16, 1, 96, 96).contiguous(memory_format=fmt)
for _ in range(2):
    model.zero_grad()
    out = model(x)
    (out[0] if isinstance(out, tuple) else out).square().mean().backward()
print("stepped")
"""


@pytest.mark.parametrize("arch", ["drn_d_tiny", "drn_c_tiny"])
def test_a_tiny_drn_trains_in_the_layout_the_trainer_picks(arch: str) -> None:
    """The oneDNN that torch 2.14 bundles segfaults in the channels-last weight gradient of a
    strided 1x1 convolution with fewer than 16 input channels (the tiny DRNs' downsample) on
    AVX-512 hosts; ``conv_memory_format`` keeps such networks in the plain layout. On the AMD EPYC
    host of 2026-12-07 this same step with the layout forced to channels-last died with SIGSEGV
    (checked by hand; whether it crashes depends on the CPU, so no test asserts the crash)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _ONE_STEP, arch], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "stepped" in done.stdout, done.stderr[-2000:]


def test_only_networks_with_a_narrow_strided_1x1_convolution_leave_channels_last() -> None:
    from lesion_studio.models.drn import DRN_ARCHS
    from lesion_studio.training.common import conv_memory_format

    plain = {a for a in DRN_ARCHS if conv_memory_format(build_drn(a)) == torch.contiguous_format}
    assert plain == {"drn_d_tiny", "drn_c_tiny"}
    narrow = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.Conv2d(8, 16, 1, stride=2))
    assert conv_memory_format(narrow) == torch.contiguous_format
    wide = torch.nn.Sequential(torch.nn.Conv2d(16, 32, 1, stride=2), torch.nn.Conv2d(8, 16, 1))
    assert conv_memory_format(wide) == torch.channels_last
