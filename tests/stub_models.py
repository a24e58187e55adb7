"""Stand-ins for trained models where a test needs the plumbing, not the learning.

``StubTranslator`` satisfies the translator protocol with a fixed, seeded function (darken the
centre, plus latent noise when stochastic). ``register_stub_classifier`` writes a real ONNX graph
(sigmoid of a scaled mean of the prepared image, with the scorer's sidecar) and registers it as a
DRN classifier, so the scoring path (OnnxScorer, prepared-image cache) runs for real, in
milliseconds and without torch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np


class StubTranslator:
    resolution = 32
    model_id = None
    model_name = "stub-unit"
    sha256 = "0" * 64
    backend = "stub"

    def __init__(self) -> None:
        self.calls = 0
        yy, xx = np.mgrid[-1:1:32j, -1:1:32j]
        self._disc = np.clip(1.2 - np.sqrt(xx ** 2 + yy ** 2) * 2, 0, 1).astype(np.float32)

    def translate(self, patches: np.ndarray, *, stochastic: bool = False, seed: int | None = None,
                  direction: str = "h2l") -> np.ndarray:
        self.calls += 1
        out = patches - 0.8 * self._disc * (patches + 1)
        if stochastic:
            out = out + 0.05 * np.random.default_rng(seed).standard_normal(patches.shape).astype(np.float32)
        return np.clip(out, -1, 1).astype(np.float32)


def register_stub_classifier(project, name: str = "stub-drn", size: int = 32, scale: float = 6.0,  # noqa: ANN001
                             cam: bool = False) -> int:
    """An ONNX 'classifier': p = sigmoid(-scale · mean(image)) — darker images score higher.

    ``cam`` adds the class-activation output the real export has: −scale · the 8×8 block means
    (so the map peaks on the darkest block, and its mean is the logit, as for the DRN)."""
    import onnx
    from onnx import TensorProto, helper

    folder = project.folder / "models" / name
    folder.mkdir(parents=True, exist_ok=True)
    nodes = [
        helper.make_node("ReduceMean", ["images", "axes"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "scale"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["probability"]),
    ]
    outputs = [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"])]
    if cam:
        nodes += [helper.make_node("AveragePool", ["images"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
                  helper.make_node("Mul", ["pooled", "scale"], ["scaled"]),
                  helper.make_node("Squeeze", ["scaled", "channel"], ["cam"])]
        outputs.append(helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["batch", size // 8, size // 8]))
    graph = helper.make_graph(
        nodes, "stub-drn",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 1, size, size])],
        outputs,
        initializer=[helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
                     helper.make_tensor("channel", TensorProto.INT64, [1], [1]),
                     helper.make_tensor("scale", TensorProto.FLOAT, [], [-scale])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx_path = folder / "model.onnx"
    onnx.save(model, onnx_path)
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    Path(f"{onnx_path}.json").write_text(json.dumps({
        "preprocessing": {"size": size, "low_percentile": 0.5, "high_percentile": 99.5}, "arch": "stub",
        "checkpoint_sha256": "", "onnx_sha256": sha, "outputs": ["probability", "cam"] if cam else ["probability"]}))
    return project.register_model(name, "drn", folder / "model.safetensors", sha256=sha,
                                  metadata={"stub": True, "onnx_sha256": sha})  # registered explicitly


def register_stub_detector(project, name: str = "stub-detector", size: int = 128,  # noqa: ANN001
                           crop_to_body: bool = False) -> int:
    """An ONNX 'map-head detector' whose lesion map is sigmoid(4 · the 8×8 block means of the
    prepared image): it peaks on the brightest block, so an image with a bright spot has its
    evidence exactly there. The probability is sigmoid(mean of the prepared image), a valid
    probability that is higher for images with more bright pixels. Registered with its hash."""
    import onnx
    from onnx import TensorProto, helper

    folder = project.folder / "models" / name
    folder.mkdir(parents=True, exist_ok=True)
    nodes = [
        helper.make_node("ReduceMean", ["images", "axes"], ["m"], keepdims=0),
        helper.make_node("Sigmoid", ["m"], ["probability"]),
        helper.make_node("AveragePool", ["images"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Mul", ["pooled", "gain"], ["scaled"]),
        helper.make_node("Sigmoid", ["scaled"], ["squashed"]),
        helper.make_node("Squeeze", ["squashed", "channel"], ["lesion_map"]),
    ]
    graph = helper.make_graph(
        nodes, "stub-detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 1, size, size])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"]),
         helper.make_tensor_value_info("lesion_map", TensorProto.FLOAT, ["batch", size // 8, size // 8])],
        initializer=[helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
                     helper.make_tensor("channel", TensorProto.INT64, [1], [1]),
                     helper.make_tensor("gain", TensorProto.FLOAT, [], [4.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx_path = folder / "model.onnx"
    onnx.save(model, onnx_path)
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    Path(f"{onnx_path}.json").write_text(json.dumps({
        "preprocessing": {"size": size, "low_percentile": 0.5, "high_percentile": 99.5, "crop_to_body": crop_to_body},
        "arch": "stub", "checkpoint_sha256": "", "onnx_sha256": sha, "outputs": ["probability", "lesion_map"],
        "map": "lesion_map"}))
    return project.register_model(name, "drn", folder / "model.safetensors", sha256=sha,
                                  metadata={"stub": True, "onnx_sha256": sha})


#: The bright spots of :func:`spot_project`'s images (x0, y0, x1, y1), None for the image without one.
SPOTS = ((100, 120, 140, 160), (50, 60, 80, 100), (130, 180, 170, 220), None)


def spot_project(folder: Path):  # noqa: ANN201 - Project
    """A project of four 240×200 PNG 'radiographs': air, a body (rows 30–240, columns 30–190) and,
    on three of them, a bright spot at :data:`SPOTS` (where :func:`register_stub_detector`'s map
    peaks). Images 1–2 are in train, 3 in val, 4 in test; all unreviewed."""
    from PIL import Image

    from lesion_studio.files import file_sha256
    from lesion_studio.store import Project

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, spot in enumerate(SPOTS):
        pixels = np.zeros((240, 200), np.uint8)
        pixels[30:240, 30:190] = 120
        if spot is not None:
            x0, y0, x1, y1 = spot
            pixels[y0:y1, x0:x1] = 255
        path = folder / "images" / f"spot{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(pixels, mode="L").save(path)
        rows.append({"path": path, "sha256": file_sha256(path), "width": 200, "height": 240,
                     "split": ("train", "train", "val", "test")[i]})
    project = Project.create(folder / "project")
    project.add_images(rows)
    return project


def spot_samples(project, seeds: tuple[int, ...] = (0, 1)) -> list[int]:  # noqa: ANN001
    """Synthetic samples of :func:`spot_project`'s first picture, one per seed, alternating a window
    centred on its bright spot (where the stub detector's map peaks: on the lesion) and a window
    in the corner (off it). Returns their ids."""
    from lesion_studio.store import Box

    image = project.images()[0]
    x0, y0, x1, y1 = SPOTS[0]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    windows = (Box(cx - 40, cy - 40, cx + 40, cy + 40), Box(40, 40, 80, 80))
    return [project.add_synthetic_sample(image.id, windows[k % 2], n=1.0, seed=seed, model_id=None,
                                         path=image.abs_path) for k, seed in enumerate(seeds)]
