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


# ---------------------------------------------------------------------------- every exported graph
# The app's own exports, each run through onnxruntime beside torch on batches of 1 and several
# (and patch sizes other than the traced one), with non-zero noise for the translator: zero noise
# cannot tell a graph that adds the noise from one that drops it, or rows from the wrong patches.
# Random (untrained) weights are enough for parity, and cost no training; the exports themselves
# take a minute on 2 busy cores, hence the ``slow`` marks.
TOL = 1e-4


@pytest.fixture(scope="module")
def unit_export(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A tiny UNIT's generators and the three graphs ``export_unit_onnx`` writes for them."""
    from lesion_studio.models.specs import UNIT_ARCHS
    from lesion_studio.models.unit import unit_generators
    from lesion_studio.models.unit_onnx import ONNX_FILES, export_unit_onnx

    torch.manual_seed(0)
    arch = UNIT_ARCHS["tiny"]()
    gen = unit_generators(arch).eval()
    folder = tmp_path_factory.mktemp("unit-onnx")
    digests = export_unit_onnx(gen, folder, resolution=32)
    assert set(digests) == set(ONNX_FILES) == {"h2l", "l2h", "h2l_residual"}
    return gen, arch, folder, digests


def _onnx_translator(unit_export):  # noqa: ANN001, ANN202
    from lesion_studio.models import layout
    from lesion_studio.synthesis.translator import OnnxTranslator, _Info

    _gen, arch, folder, digests = unit_export
    meta = {"onnx_sha256": digests["h2l"], "onnx_l2h_sha256": digests["l2h"],
            "onnx_h2l_residual_sha256": digests["h2l_residual"]}
    info = _Info(resolution=32, model_id=None, model_name="parity", sha256="", arch=arch, metadata=meta)
    return OnnxTranslator(folder / layout.ONNX, info, prefer_cuda=False)


def _patches(n: int, h: int = 32, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 1, h, w)).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["h2l", "l2h", "h2l_residual"])
@pytest.mark.parametrize(("n", "h", "w"), [(1, 32, 32), (5, 32, 32), (3, 40, 48)])
def test_every_translator_graph_matches_torch_with_noise(unit_export, direction: str, n: int, h: int,  # noqa: ANN001
                                                         w: int) -> None:
    from lesion_studio.models.unit_onnx import ONNX_FILES

    gen, arch, folder, _ = unit_export
    x = _patches(n, h, w, seed=n)
    noise = np.random.default_rng(100 + n).standard_normal(arch.latent_shape(n, h, w)).astype(np.float32)
    session = make_session(folder / ONNX_FILES[direction], prefer_cuda=False)
    assert [i.name for i in session.get_inputs()] == ["patches", "noise"]
    assert [o.name for o in session.get_outputs()] == [direction]
    got = session.run([direction], {"patches": x, "noise": noise})[0]
    with torch.no_grad():
        want = gen.translate(torch.from_numpy(x), direction, torch.from_numpy(noise)).numpy()
        mean = gen.translate(torch.from_numpy(x), direction).numpy()
    assert got.shape == want.shape == (n, 1, h, w)
    assert float(np.abs(got - want).max()) <= TOL
    assert float(np.abs(want - mean).max()) > 100 * TOL  # the noise really moves the output
    if direction == "h2l_residual":  # G_l(z) − G_h(z) for z = E_h(x) + noise
        with torch.no_grad():
            z = gen.encode(torch.from_numpy(x), "h") + torch.from_numpy(noise)
            residual = (gen.decode(z, "l") - gen.decode(z, "h")).numpy()
        assert float(np.abs(got - residual).max()) <= TOL


@pytest.mark.slow
def test_a_per_core_batch_uses_each_patchs_own_noise(unit_export, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """On the CPU a batch is split into one chunk per core; each chunk must get its own patches'
    noise rows (the issue-26 audit found a chunk that could take the first rows unnoticed)."""
    from lesion_studio.synthesis import translator as translator_module
    from lesion_studio.synthesis.translator import make_noise

    monkeypatch.setattr(translator_module, "physical_cores", lambda: 3)
    tr = _onnx_translator(unit_export)
    x = _patches(8, seed=7)
    for direction in ("h2l", "l2h", "h2l_residual"):
        chunked = tr.translate(x, stochastic=True, seed=11, direction=direction)
        assert len(tr._sessions[f"{direction}/per-core"]) == 3  # the batch went through per-core sessions
        noise = make_noise(unit_export[1].latent_shape(8, 32, 32), True, 11)
        whole = tr._session(direction).run([direction], {"patches": x, "noise": noise})[0]
        assert float(np.abs(chunked - whole).max()) <= 1e-5, direction
        mean = tr.translate(x, direction=direction)
        assert float(np.abs(chunked - mean).max()) > 1e-2  # the noise is not zero, so the rows matter
        # Row k of a batch is what patch k alone gives with noise row k.
        alone = tr._session(direction).run([direction], {"patches": x[5:6], "noise": noise[5:6]})[0]
        assert float(np.abs(chunked[5:6] - alone).max()) <= 1e-5


# ---------------------------------------------------------------------------- the classifier graph
def _torch_probability(model, x: torch.Tensor, tta: str) -> np.ndarray:  # noqa: ANN001
    from lesion_studio.training.classifier_trainer import predict

    return predict(model, x[:, 0].numpy(), device=torch.device("cpu"), tta=tta)


def _torch_map(model, x: torch.Tensor, tta: str) -> np.ndarray:  # noqa: ANN001
    """The localisation map: for a network with the lesion-map head, that head's probabilities; else
    the class-activation map, the last feature map weighted by the 1×1 classifier (either mirrored
    back and averaged with the mirror image's map under ``tta: hflip``)."""
    def one(images: torch.Tensor) -> torch.Tensor:
        features = model.features(images)
        if model.lesion_map is not None:
            return model.lesion_map(features)[:, 0]
        return model.fc(features)[:, 0]

    with torch.no_grad():
        grid = one(x)
        if tta == "hflip":
            grid = 0.5 * (grid + torch.flip(one(torch.flip(x, dims=(3,))), dims=(2,)))
        if model.lesion_map is not None:
            grid = torch.sigmoid(grid)
    return grid.numpy()


#: What each output of the classifier's ONNX graph must equal, computed in torch. A new output of
#: the graph (in ``classifier.scoring.OUTPUTS``) needs its reference here, or the test fails.
CLASSIFIER_REFERENCES = {"probability": _torch_probability, "lesion_map": _torch_map}


def _classifier_checkpoint(folder: Path, tta: str, head: str = "image") -> Path:
    """An untrained tiny DRN saved as the trainer saves one, its logits scaled to a readable range
    (a random network's raw logits saturate the sigmoid, where every probability is 0 or 1)."""
    from lesion_studio.classifier.preprocess import Preprocessing
    from lesion_studio.models.checkpoint import save_checkpoint
    from lesion_studio.models.drn import build_drn
    from lesion_studio.models.layout import DRN_FORMAT

    torch.manual_seed(1)
    model = build_drn("drn_d_tiny", lesion_map=head == "image+map").eval()
    x = torch.from_numpy(_images(8, seed=9))
    with torch.no_grad():
        for conv, out in ((model.fc, model(x, heads=True)[0]),) + (
                ((model.lesion_map, model(x, heads=True)[1]),) if model.lesion_map is not None else ()):
            conv.weight.normal_(std=0.1)
            conv.bias.zero_()
            out = conv(model.features(x))
            scale = 1.5 / float(out.std())
            conv.weight.mul_(scale)
            conv.bias.copy_(-out.mean() * scale)  # centred on 0, sd 1.5
    path = folder / f"classifier-{tta}-{head.replace('+', '-')}.safetensors"
    save_checkpoint(path, {"model": model.state_dict()},
                    {"format": DRN_FORMAT, "kind": "drn", "arch": "drn_d_tiny", "config": {"tta": tta, "head": head},
                     "preprocessing": Preprocessing(48).to_dict()})
    return path


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 1, 48, 48)).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("head", ["image", "image+map"])
@pytest.mark.parametrize("tta", ["none", "hflip"])
def test_every_classifier_output_matches_torch(tmp_path: Path, tta: str, head: str) -> None:
    from lesion_studio.classifier.scoring import OUTPUTS, OnnxScorer, export_classifier_onnx
    from lesion_studio.models.drn import load_classifier

    assert set(CLASSIFIER_REFERENCES) == set(OUTPUTS), "every output of the graph needs a torch reference"
    checkpoint = _classifier_checkpoint(tmp_path, tta, head)
    scorer = OnnxScorer(export_classifier_onnx(checkpoint), prefer_cuda=False)
    assert [o.name for o in scorer.session.get_outputs()] == list(OUTPUTS)
    model, _ = load_classifier(checkpoint)
    for n in (1, 5):
        x = _images(n, seed=n)
        got = dict(zip(OUTPUTS, scorer.session.run(list(OUTPUTS), {"images": x}), strict=True))
        for name, reference in CLASSIFIER_REFERENCES.items():
            want = reference(model, torch.from_numpy(x), tta)
            assert got[name].shape == want.shape and got[name].shape[0] == n, name
            assert float(np.abs(got[name] - want).max()) <= TOL, (name, n)
        probs = got["probability"]
        assert (probs.min() > 0.02 and probs.max() < 0.98) or n == 1  # not saturated: the comparison means something
        np.testing.assert_allclose(scorer.score_arrays(x[:, 0]), probs, atol=1e-6)  # the scorer's own path
        p, maps = scorer.maps(x[:, 0])
        np.testing.assert_allclose(maps, got["lesion_map"], atol=1e-6)
    if tta == "none" and head == "image":  # the CAM's mean is the logit: probability and map from one pass
        x = torch.from_numpy(_images(4, seed=3))
        np.testing.assert_allclose(torch.sigmoid(torch.from_numpy(_torch_map(model, x, tta)).mean(dim=(1, 2))),
                                   _torch_probability(model, x, tta), atol=1e-5)
