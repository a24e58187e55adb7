"""Model files are checked before they are trusted: architecture bounds and tensor shapes before
allocating, the classifier's ONNX against its registered hash, no unregistered translator ONNX,
and clear errors for malformed sidecars."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from lesion_studio.errors import LesionStudioError
from tests.stub_models import register_stub_classifier

TINY_ARCH = {"in_channels": 1, "base_channels": 4, "n_downsample": 1, "n_res": 1, "n_shared": 1,
             "dis_channels": 4, "dis_layers": 1, "dis_scales": 1}


def _unit_file(tmp_path: Path, arch: dict, state_arch: dict | None = None) -> Path:
    """A UNIT weights file whose metadata names ``arch`` and whose tensors come from ``state_arch``."""
    torch = pytest.importorskip("torch")
    from lesion_studio.models.checkpoint import save_checkpoint
    from lesion_studio.models.layout import UNIT_FORMAT as FORMAT
    from lesion_studio.models.specs import UnitArch
    from lesion_studio.models.unit import UnitGenerators

    torch.manual_seed(0)
    gen = UnitGenerators(UnitArch(**(state_arch or TINY_ARCH)))
    path = tmp_path / "m" / "model.safetensors"
    save_checkpoint(path, {"gen": gen.state_dict()}, {"format": FORMAT, "arch": arch, "resolution": 32})
    return path


def test_unit_architecture_is_bounded_and_matched_before_allocating(tmp_path: Path) -> None:
    from lesion_studio.models.unit import load_unit_model

    gen, meta = load_unit_model(_unit_file(tmp_path / "ok", TINY_ARCH))
    assert meta["arch"] == TINY_ARCH
    # A 1 kB edit asking for a ~78 GB network: refused from the numbers alone.
    with pytest.raises(LesionStudioError, match="base_channels = 100000 is outside 1..256"):
        load_unit_model(_unit_file(tmp_path / "huge", {**TINY_ARCH, "base_channels": 100000}))
    with pytest.raises(LesionStudioError, match="must be a whole number"):
        load_unit_model(_unit_file(tmp_path / "str", {**TINY_ARCH, "n_res": "4"}))
    # Within bounds but not what the tensors are: refused on the meta device, before building it.
    with pytest.raises(LesionStudioError, match="does not match the architecture"):
        load_unit_model(_unit_file(tmp_path / "other", {**TINY_ARCH, "base_channels": 200}))


def _register_unit(project, tmp_path: Path, sidecar: object, *, onnx: bool = False) -> str:  # noqa: ANN001
    folder = project.folder / "models" / "u"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps(sidecar))
    if onnx:
        (folder / "model.onnx").write_bytes(b"any graph at all")
    project.register_model("u", "unit", folder / "model.safetensors", sha256="0" * 64, metadata={})
    return "u"


@pytest.mark.parametrize("sidecar, message", [
    ([1, 2], "not a JSON object"),
    ({"arch": "big", "resolution": 32}, "must be an object"),
    ({"arch": {**TINY_ARCH, "n_downsample": 40}, "resolution": 32}, "outside 0..5"),
    ({"arch": TINY_ARCH, "resolution": 10**6}, "resolution = 1000000 is outside"),
    ({"arch": TINY_ARCH, "resolution": 33}, "not a multiple of 2"),
    ({"resolution": 32}, "carries no UNIT architecture"),
])
def test_malformed_translator_sidecars_are_clear_errors(demo_project, tmp_path, capsys, sidecar,  # noqa: ANN001
                                                        message) -> None:
    from lesion_studio.cli.main import main
    from lesion_studio.synthesis.translator import open_translator

    _register_unit(demo_project, tmp_path, sidecar)
    with pytest.raises(LesionStudioError, match=message):
        open_translator(demo_project, "u")
    code = main(["translate", str(demo_project.folder), "--model", "u", "--image", "x.dcm", "--box", "0,0,8,8",
                 "--out", str(tmp_path / "o.png")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1


def test_translator_onnx_without_registered_hash_is_refused(demo_project, tmp_path) -> None:  # noqa: ANN001
    from lesion_studio.synthesis.translator import open_translator

    _register_unit(demo_project, tmp_path, {"arch": TINY_ARCH, "resolution": 32}, onnx=True)
    with pytest.raises(LesionStudioError, match="no registered hash"):
        open_translator(demo_project, "u", backend="onnx")
    with pytest.raises(LesionStudioError, match="no registered hash"):
        open_translator(demo_project, "u")  # auto, and no weights to fall back to


def _write_constant_graph(path: Path, value: float) -> str:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes = [helper.make_node("ReduceMean", ["images", "axes"], ["m"], keepdims=0),
             helper.make_node("Mul", ["m", "zero"], ["z"]),
             helper.make_node("Add", ["z", "value"], ["probability"])]
    graph = helper.make_graph(
        nodes, "swapped", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 1, 32, 32])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"])],
        initializer=[helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
                     helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
                     helper.make_tensor("value", TensorProto.FLOAT, [], [value])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    side = Path(f"{path}.json")
    info = json.loads(side.read_text()) if side.exists() else {
        "preprocessing": {"size": 32, "low_percentile": 0.5, "high_percentile": 99.5}, "arch": "stub",
        "checkpoint_sha256": ""}
    side.write_text(json.dumps({**info, "onnx_sha256": sha}))  # the attacker updates the sidecar too
    return sha


def test_classifier_onnx_is_hash_checked_and_outputs_checked(demo_project, tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("onnx")
    from lesion_studio.classifier.scoring import OnnxScorer, registered_scorer

    register_stub_classifier(demo_project, "c")
    scorer, record = registered_scorer(demo_project, "c")
    assert record.metadata["onnx_sha256"] == scorer.sha256  # the hash it was registered with
    onnx_path = demo_project.folder / "models" / "c" / "model.onnx"
    _write_constant_graph(onnx_path, 2016.0)
    with pytest.raises(LesionStudioError, match="does not match the hash the project recorded"):
        registered_scorer(demo_project, "c")
    # Without a registry the sidecar hash still holds, and the output must be a probability.
    loose = OnnxScorer(onnx_path, prefer_cuda=False)
    with pytest.raises(LesionStudioError, match="not probabilities"):
        loose.score_arrays(np.zeros((2, 32, 32), np.float32))
    onnx_path.write_bytes(onnx_path.read_bytes() + b"\0")
    with pytest.raises(LesionStudioError, match="hash its sidecar recorded"):
        OnnxScorer(onnx_path, prefer_cuda=False)
    Path(f"{onnx_path}.json").write_text("{broken")
    with pytest.raises(LesionStudioError, match="sidecar model.onnx.json is damaged"):
        OnnxScorer(onnx_path, prefer_cuda=False)
