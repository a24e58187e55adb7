"""The one ONNX export path: dynamic batch, checked against torch, never replacing a good file with a bad one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from lesion_studio.errors import LesionStudioError  # noqa: E402
from lesion_studio.onnx_export import export_checked_onnx  # noqa: E402
from lesion_studio.onnx_runtime import make_session  # noqa: E402


class _Net(torch.nn.Module):
    """The exporter names dynamic dimensions by forward's argument names, as the real models do."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)


def _net() -> torch.nn.Module:
    return _Net().eval()


def _export(net: torch.nn.Module, path: Path, **kw) -> str:  # noqa: ANN003
    probe = {"images": np.random.default_rng(1).standard_normal((3, 1, 16, 16)).astype(np.float32)}
    return export_checked_onnx(net, (torch.zeros(2, 1, 16, 16),), path, input_names=["images"],
                               output_names=["score"], what="test net",
                               dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1, max=64)}},
                               probe=probe, **kw)


def test_export_matches_torch_at_another_batch_size(tmp_path: Path) -> None:
    net, path = _net(), tmp_path / "net.onnx"
    digest = _export(net, path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    x = np.random.default_rng(2).standard_normal((5, 1, 16, 16)).astype(np.float32)
    got = make_session(path, prefer_cuda=False).run(["score"], {"images": x})[0]
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == ["net.onnx"]  # no temporary file left behind


def test_a_failed_check_keeps_the_previous_model(tmp_path: Path) -> None:
    path = tmp_path / "net.onnx"
    path.write_bytes(b"the working model")
    with pytest.raises(LesionStudioError, match="test net differs from torch"):
        _export(_net(), path, tol=-1.0)  # no export can be this exact: the check must refuse it
    assert path.read_bytes() == b"the working model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx"]


def test_an_unexportable_graph_is_a_clear_error(tmp_path: Path) -> None:
    class Branchy(torch.nn.Module):
        def forward(self, images: torch.Tensor) -> torch.Tensor:
            if images.sum() > 0:  # data-dependent control flow: torch.export refuses it
                return images
            return -images

    with pytest.raises(LesionStudioError, match="Could not export the test net to ONNX"):
        _export(Branchy(), tmp_path / "net.onnx")
    assert not list(tmp_path.iterdir())
