"""Score radiographs with a trained classifier through ONNX Runtime — no torch needed to score.

:func:`export_classifier_onnx` (torch, run once after training) writes ``model.onnx`` next to the
checkpoint: the DRN plus its sigmoid, a dynamic batch dimension and the fixed square input size,
with the preprocessing settings in a JSON sidecar (``model.onnx.json``). :class:`OnnxScorer` then
needs numpy, Pillow and onnxruntime only; it uses the CUDA provider only when a GPU is really
present (:mod:`lesion_studio.onnx_runtime`: onnxruntime-gpu advertises CUDA everywhere).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lesion_studio.classifier.preprocess import PreparedCache, Preprocessing
from lesion_studio.errors import LesionStudioError
from lesion_studio.extras import require
from lesion_studio.files import atomic_write_json, file_sha256
from lesion_studio.jobs import CancelToken, ProgressCallback, ProgressEvent, no_progress
from lesion_studio.models import layout
from lesion_studio.onnx_runtime import make_session

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

log = logging.getLogger(__name__)


#: What the exported graph returns: lesion probability (N,) and class-activation map (N, h, w).
OUTPUTS = ("probability", "cam")


def onnx_path_for(checkpoint: str | Path) -> Path:
    return layout.onnx_path(checkpoint)


def export_classifier_onnx(checkpoint: str | Path, out: str | Path | None = None, *, check: bool = True) -> Path:
    """Export a classifier checkpoint to ONNX (probability output); returns the .onnx path."""
    from lesion_studio.models.drn import load_classifier
    from lesion_studio.onnx_export import export_checked_onnx

    torch = require("torch", "ONNX export")

    model, meta = load_classifier(checkpoint, device="cpu")
    size = int(meta["preprocessing"]["size"])
    out = Path(out) if out else onnx_path_for(checkpoint)

    mirrored = (meta.get("config") or {}).get("tta") == "hflip"

    class Probability(torch.nn.Module):
        """Probability and class-activation map: the map's mean is the logit (pooling and the 1×1
        classifier are both linear), so one pass gives both. With ``tta: hflip`` the mirror image
        is scored too: the probabilities are averaged, and so are the maps (the mirror's map
        flipped back), as ``predict`` does in torch."""

        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, images: Any) -> Any:
            cam = self.net.fc(self.net.features(images))[:, 0]
            prob = torch.sigmoid(cam.mean(dim=(1, 2)))
            if mirrored:
                cam_m = torch.flip(self.net.fc(self.net.features(torch.flip(images, dims=(3,))))[:, 0], dims=(2,))
                prob = 0.5 * (prob + torch.sigmoid(cam_m.mean(dim=(1, 2))))
                cam = 0.5 * (cam + cam_m)
            return prob, cam

    graph = Probability().eval()
    rng = np.random.default_rng(0)
    probe = {"images": rng.standard_normal((3, 1, size, size)).astype(np.float32)} if check else None
    onnx_sha256 = export_checked_onnx(
        graph, (torch.zeros(2, 1, size, size),), out, input_names=["images"], output_names=list(OUTPUTS),
        dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1, max=4096)}}, what="classifier",
        probe=probe)
    sidecar = {"preprocessing": meta["preprocessing"], "arch": meta["arch"],
               "checkpoint_sha256": file_sha256(checkpoint), "onnx_sha256": onnx_sha256, "outputs": list(OUTPUTS)}
    atomic_write_json(layout.onnx_sidecar_path(out), sidecar, indent=1)
    return out


class OnnxScorer:
    """Lesion probabilities for images or prepared arrays, with onnxruntime.

    The ONNX file must match its sidecar's hash, and ``expected_sha256`` (the hash the project
    registered) when given: a swapped graph is refused before it runs, not after it prints a
    "probability" of 2016. Outputs outside [0, 1] are refused too.
    """

    def __init__(self, onnx_path: str | Path, *, prefer_cuda: bool = True, batch_size: int = 32,
                 expected_sha256: str | None = None) -> None:
        self.path = Path(onnx_path)
        side = layout.onnx_sidecar_path(self.path)
        if not self.path.exists() or not side.exists():
            raise LesionStudioError(f"The ONNX classifier {self.path} (or its .json sidecar) is missing. "
                                    "Export it with `lesion-studio score --export` or retrain.")
        try:
            self.info = json.loads(side.read_text())
            self.prep = Preprocessing(**self.info["preprocessing"])
        except (OSError, ValueError, RecursionError, KeyError, TypeError) as exc:
            raise LesionStudioError(f"The classifier sidecar {side.name} is damaged ({type(exc).__name__}: {exc}). "
                                    "Delete the .onnx and .json files to export them again.") from exc
        self.sha256 = file_sha256(self.path)
        for what, wanted in (("its sidecar", self.info.get("onnx_sha256")), ("the project", expected_sha256)):
            if wanted and wanted != self.sha256:
                raise LesionStudioError(f"{self.path} does not match the hash {what} recorded: it was changed "
                                        "or replaced. Delete it to export it again from the checkpoint.")
        self.session = make_session(self.path, prefer_cuda=prefer_cuda)
        self.providers = list(self.session.get_providers())
        self.batch_size = batch_size

    def score_arrays(self, arrays: np.ndarray, *, progress: ProgressCallback = no_progress,
                     cancel: CancelToken | None = None) -> np.ndarray:
        """Prepared (N, S, S) arrays → (N,) probabilities."""
        out = []
        n = len(arrays)
        for i in range(0, n, self.batch_size):
            if cancel is not None:
                cancel.raise_if_cancelled("Scoring")
            x = np.asarray(arrays[i:i + self.batch_size], dtype=np.float32)[:, None]
            try:
                p = np.asarray(self.session.run(["probability"], {"images": x})[0], dtype=np.float64)
            except Exception as exc:  # onnxruntime raises its own types for a graph that does not fit
                raise LesionStudioError(f"The classifier {self.path.name} cannot score these images "
                                        f"({type(exc).__name__}: {exc}).") from exc
            if p.shape != (len(x),) or not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
                raise LesionStudioError(f"The classifier {self.path.name} returned values that are not "
                                        "probabilities; it is not a Lesion Studio classifier export.")
            out.append(p)
            progress(ProgressEvent("scoring", min(n, i + self.batch_size), n))
        return np.concatenate(out) if out else np.zeros(0)

    def cams(self, arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prepared (N, S, S) arrays → (probabilities (N,), class-activation maps (N, h, w)).

        Maps are in the prepared square frame at output stride 8; see :mod:`lesion_studio.classifier.cam`.
        """
        if "cam" not in self.info.get("outputs", ()):
            raise LesionStudioError(f"{self.path.name} was exported without class-activation maps; "
                                    "delete it and its .json (it is exported again on next use) or retrain.")
        probs, maps = [], []
        for i in range(0, len(arrays), self.batch_size):
            x = np.asarray(arrays[i:i + self.batch_size], dtype=np.float32)[:, None]
            try:
                p, c = self.session.run(list(OUTPUTS), {"images": x})
            except Exception as exc:  # onnxruntime raises its own types for a graph that does not fit
                raise LesionStudioError(f"The classifier {self.path.name} cannot map these images "
                                        f"({type(exc).__name__}: {exc}).") from exc
            probs.append(np.asarray(p, dtype=np.float64))
            maps.append(np.asarray(c, dtype=np.float32))
        if not probs:
            return np.zeros(0), np.zeros((0, 1, 1), np.float32)
        return np.concatenate(probs), np.concatenate(maps)

    def score_files(self, items: Sequence[tuple[str, str | Path]], *, cache: PreparedCache | None = None,
                    progress: ProgressCallback = no_progress, cancel: CancelToken | None = None) -> np.ndarray:
        """``(cache key, path)`` items → probabilities (decoded through the prepared-image cache)."""
        cache = cache or PreparedCache(self.prep, None)
        if cache.prep != self.prep:
            raise LesionStudioError("The image cache was made for other preprocessing settings than this model.")
        return self.score_arrays(cache.stack(items), progress=progress, cancel=cancel)


def scorer_for_weights(weights: str | Path, *, prefer_cuda: bool = True) -> OnnxScorer:
    """The ONNX scorer of a classifier checkpoint, exporting the ONNX file once when it is missing
    (that export needs torch; scoring afterwards does not)."""
    onnx = onnx_path_for(weights)
    if not onnx.exists() or not layout.onnx_sidecar_path(onnx).exists():
        export_classifier_onnx(weights)
    return OnnxScorer(onnx, prefer_cuda=prefer_cuda)


def _has_cam(sidecar: Path) -> bool:
    """Exports from before class-activation maps lack the ``cam`` output."""
    try:
        return "cam" in json.loads(sidecar.read_text()).get("outputs", ())
    except (OSError, ValueError, AttributeError, RecursionError):
        return False


def registered_scorer(project: Project, ref: int | str, *, need_cam: bool = False) -> tuple[OnnxScorer, Any]:
    """(scorer, model record) for a classifier in the project's registry, by name or id.

    The ONNX file is checked against the hash the registry holds for it. The first export records
    that hash; an ONNX file found without one is accepted only when it is the registered file
    itself or its sidecar ties it to the registered weights, and its hash is then recorded.
    ``need_cam`` exports again (once) a file made before the graph returned class-activation maps,
    when the checkpoint is there.
    """
    record = project.model(ref)
    if record.kind != "drn":
        raise LesionStudioError(f"Model {record.name!r} is a {record.kind} model, not a classifier.")
    weights = project.resolve_path(record.path)
    onnx = onnx_path_for(weights)
    expected = record.metadata.get("onnx_sha256")
    side_path = layout.onnx_sidecar_path(onnx)
    stale = need_cam and onnx.exists() and side_path.exists() and not _has_cam(side_path) and weights.exists()
    if stale or not onnx.exists() or not side_path.exists():
        if weights.exists() and record.sha256 and file_sha256(weights) != record.sha256:
            raise LesionStudioError(f"{weights} does not match the model's registered hash; retrain it.")
        export_classifier_onnx(weights)
        expected = None
    if not expected:
        actual = file_sha256(onnx)
        try:
            side = json.loads(layout.onnx_sidecar_path(onnx).read_text())
        except (OSError, ValueError, RecursionError):
            side = {}
        tied = isinstance(side, dict) and side.get("onnx_sha256") == actual and (
            side.get("checkpoint_sha256") == record.sha256 or actual == record.sha256)
        if not tied:
            raise LesionStudioError(f"{onnx} of classifier {record.name!r} has no registered hash and its "
                                    "sidecar does not tie it to the registered weights. Delete the .onnx file "
                                    "and its .json to export it again.")
        record = project.update_model_metadata(record.id, onnx_sha256=actual)
        expected = actual
    return OnnxScorer(onnx, expected_sha256=expected), record


def score_synthetic(project: Project, samples: Sequence[Any], scorer: OnnxScorer, *,
                    progress: ProgressCallback = no_progress, cancel: CancelToken | None = None) -> list[float]:
    """Lesion probabilities of synthetic samples; each score is also stored on its sample."""
    from lesion_studio.classifier.data import synthetic_examples

    examples = synthetic_examples(project, samples, {s.source_image_id for s in samples})
    cache = PreparedCache(scorer.prep, project.subfolder("cache") / "classifier")
    scores = scorer.score_files([(e.key, e.path) for e in examples], cache=cache, progress=progress, cancel=cancel)
    for sample, score in zip(samples, scores, strict=True):
        project.update_synthetic_sample(sample.id, score=float(score))
    return [float(s) for s in scores]
