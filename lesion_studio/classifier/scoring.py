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
from lesion_studio.files import atomic_write_json, file_sha256, open_regular
from lesion_studio.jobs import CancelToken, ProgressCallback, ProgressEvent, no_progress
from lesion_studio.models import layout
from lesion_studio.onnx_runtime import make_session

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

log = logging.getLogger(__name__)


#: What the exported graph returns: lesion probability (N,) and the localisation map (N, h, w): the
#: lesion map's probabilities for a network with the map head, else the class-activation map's logits.
OUTPUTS = ("probability", "lesion_map")
#: The map output's name in exports made before the lesion-map head (a class-activation map).
LEGACY_MAP_OUTPUT = "cam"


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

    with_map = model.lesion_map is not None

    class Probability(torch.nn.Module):
        """Probability and localisation map in one pass over the features
        (``DRN.score_and_localisation``): the lesion map (as probabilities) of a network with the
        map head, else the class-activation map. With ``tta: hflip`` the mirror image is scored
        too: the probabilities are averaged, and so are the maps (the mirror's map flipped back),
        as ``predict`` does in torch."""

        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, images: Any) -> Any:
            logit, loc = self.net.score_and_localisation(images)
            prob = torch.sigmoid(logit)
            if mirrored:
                logit_m, loc_m = self.net.score_and_localisation(torch.flip(images, dims=(3,)))
                prob = 0.5 * (prob + torch.sigmoid(logit_m))
                loc = 0.5 * (loc + torch.flip(loc_m, dims=(2,)))
            return prob, (torch.sigmoid(loc) if with_map else loc)

    graph = Probability().eval()
    rng = np.random.default_rng(0)
    probe = {"images": rng.standard_normal((3, 1, size, size)).astype(np.float32)} if check else None
    onnx_sha256 = export_checked_onnx(
        graph, (torch.zeros(2, 1, size, size),), out, input_names=["images"], output_names=list(OUTPUTS),
        dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1, max=4096)}}, what="classifier",
        probe=probe)
    sidecar = {"preprocessing": meta["preprocessing"], "arch": meta["arch"],
               "checkpoint_sha256": file_sha256(checkpoint), "onnx_sha256": onnx_sha256, "outputs": list(OUTPUTS),
               "map": "lesion_map" if with_map else "cam"}
    atomic_write_json(layout.onnx_sidecar_path(out), sidecar, indent=1)
    return out


def export_registered_onnx(project: Project, model_id: int, checkpoint: str | Path) -> Any:
    """Export a registered classifier to ONNX and record the file's hash with the model; returns
    the updated model record. The registry's hash is what scoring trusts
    (:func:`registered_scorer`), so every export the product makes itself goes through here."""
    onnx = export_classifier_onnx(checkpoint)
    return project.update_model_metadata(model_id, onnx_sha256=file_sha256(onnx))


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
            self.info = json.loads(_read_text(side))
            self.prep = Preprocessing(**self.info["preprocessing"])
        except (OSError, ValueError, RecursionError, KeyError, TypeError, LesionStudioError) as exc:
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
            out.append(self._checked(p, len(x)))
            progress(ProgressEvent("scoring", min(n, i + self.batch_size), n))
        return np.concatenate(out) if out else np.zeros(0)

    @property
    def map_kind(self) -> str:
        """``lesion_map`` (the box-supervised map head) or ``cam`` (a class-activation map)."""
        return str(self.info.get("map", "cam"))

    def _checked(self, p: np.ndarray, n: int) -> np.ndarray:
        """``p`` when it is ``n`` probabilities; a swapped or foreign graph is refused."""
        if p.shape != (n,) or not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
            raise LesionStudioError(f"The classifier {self.path.name} returned values that are not "
                                    "probabilities; it is not a Lesion Studio classifier export.")
        return p

    @property
    def map_output(self) -> str | None:
        """The graph's localisation-map output, or None for an export without one."""
        outputs = self.info.get("outputs", ())
        return "lesion_map" if "lesion_map" in outputs else LEGACY_MAP_OUTPUT if LEGACY_MAP_OUTPUT in outputs else None

    def maps(self, arrays: np.ndarray, *, progress: ProgressCallback = no_progress,
             cancel: CancelToken | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Prepared (N, S, S) arrays → (probabilities (N,), localisation maps (N, h, w)).

        Maps are in the prepared square frame at output stride 8 (:attr:`map_kind` says which
        map); see :mod:`lesion_studio.classifier.cam` for laying them over the radiograph.
        """
        name = self.map_output
        if name is None:
            raise LesionStudioError(f"{self.path.name} was exported without localisation maps; "
                                    "delete it and its .json (it is exported again on next use) or retrain.")
        probs, maps = [], []
        for i in range(0, len(arrays), self.batch_size):
            if cancel is not None:
                cancel.raise_if_cancelled("Scoring")
            x = np.asarray(arrays[i:i + self.batch_size], dtype=np.float32)[:, None]
            try:
                p, c = self.session.run(["probability", name], {"images": x})
            except Exception as exc:  # onnxruntime raises its own types for a graph that does not fit
                raise LesionStudioError(f"The classifier {self.path.name} cannot map these images "
                                        f"({type(exc).__name__}: {exc}).") from exc
            probs.append(self._checked(np.asarray(p, dtype=np.float64), len(x)))
            maps.append(np.asarray(c, dtype=np.float32))
            progress(ProgressEvent("scoring", min(len(arrays), i + self.batch_size), len(arrays)))
        if not probs:
            return np.zeros(0), np.zeros((0, 1, 1), np.float32)
        return np.concatenate(probs), np.concatenate(maps)

    def score_files(self, items: Sequence[tuple[str, str | Path]], *, cache: PreparedCache | None = None,
                    progress: ProgressCallback = no_progress, cancel: CancelToken | None = None) -> np.ndarray:
        """``(cache key, path)`` items → probabilities (decoded through the prepared-image cache)."""
        cache = self._checked_cache(cache or PreparedCache(self.prep, None))
        return self.score_arrays(cache.stack(items), progress=progress, cancel=cancel)

    def _checked_cache(self, cache: PreparedCache) -> PreparedCache:
        if cache.prep != self.prep:
            raise LesionStudioError("The image cache was made for other preprocessing settings than this model.")
        return cache

    def score_files_with_maps(self, items: Sequence[tuple[str, str | Path]], *, cache: PreparedCache,
                              progress: ProgressCallback = no_progress,
                              cancel: CancelToken | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`score_files` and, when the graph has one, each image's localisation map in
        the same pass (None without a map output). ``cache.frame(key, path)`` lays a map over
        its radiograph (:func:`lesion_studio.classifier.cam.map_peak`)."""
        arrays = self._checked_cache(cache).stack(items)
        if self.map_output is None:
            return self.score_arrays(arrays, progress=progress, cancel=cancel), None
        return self.maps(arrays, progress=progress, cancel=cancel)


def scorer_for_weights(weights: str | Path, *, prefer_cuda: bool = True, project: Project | None = None,
                       model_id: int | None = None) -> OnnxScorer:
    """The ONNX scorer of a classifier checkpoint, exporting the ONNX file once when it is missing
    (that export needs torch; scoring afterwards does not).

    With the checkpoint's registry entry (``project``, ``model_id``), an export made here is ours,
    so its hash is registered as the CLI's ``train-classifier --onnx`` does: scoring or evaluating
    the model by name later trusts the file instead of warning and exporting it again. A file found
    already there is left unregistered (:func:`registered_scorer` says why)."""
    onnx = onnx_path_for(weights)
    if not onnx.exists() or not layout.onnx_sidecar_path(onnx).exists():
        if project is not None and model_id is not None:
            export_registered_onnx(project, model_id, weights)
        else:
            export_classifier_onnx(weights)
    return OnnxScorer(onnx, prefer_cuda=prefer_cuda)


def _read_text(path: Path) -> str:
    """A sidecar's text, from a regular file only (a FIFO there would stop scoring forever)."""
    with open_regular(path, "classifier sidecar") as fh:
        return fh.read().decode("utf-8")


def _has_map(sidecar: Path) -> bool:
    """Exports from before localisation maps lack the map output (``lesion_map``, or ``cam`` earlier)."""
    try:
        outputs = json.loads(_read_text(sidecar)).get("outputs", ())
    except (OSError, ValueError, AttributeError, RecursionError, LesionStudioError):
        return False
    return "lesion_map" in outputs or LEGACY_MAP_OUTPUT in outputs


def registered_scorer(project: Project, ref: int | str, *, need_map: bool = False,
                      register_onnx: bool = False) -> tuple[OnnxScorer, Any]:
    """(scorer, model record) for a classifier in the project's registry, by name or id.

    The ONNX file is checked against the hash the registry holds for it; the export that makes
    the file records that hash. An ONNX file found without a registered hash is never trusted on
    first use (its sidecar could have been written along with it): it is exported again from the
    hash-checked weights, or, where that is impossible (no torch, no weights), refused, unless the
    user registers it explicitly (``register_onnx``, ``lesion-studio score --register-onnx``).
    ``need_map`` exports again (once) a file made before the graph returned localisation maps,
    when the checkpoint is there.
    """
    from lesion_studio.errors import MissingExtraError

    record = project.model(ref)
    if record.kind != "drn":
        raise LesionStudioError(f"Model {record.name!r} is a {record.kind} model, not a classifier.")
    weights = project.resolve_path(record.path)
    onnx = onnx_path_for(weights)
    expected = record.metadata.get("onnx_sha256")
    side_path = layout.onnx_sidecar_path(onnx)
    stale = need_map and onnx.exists() and side_path.exists() and not _has_map(side_path) and weights.exists()
    unregistered = onnx.exists() and not expected and not register_onnx
    if stale or unregistered or not onnx.exists() or not side_path.exists():
        if unregistered:
            log.warning("%s of classifier %s has no registered hash; exporting it again from the weights",
                        onnx.name, record.name)
        if not weights.exists() or (record.sha256 and file_sha256(weights) != record.sha256):
            raise LesionStudioError(
                f"{onnx} of classifier {record.name!r} " + ("has no registered hash and " if unregistered else
                                                             "is missing and ")
                + f"its weights {weights.name} are missing or do not match the registered hash, so it cannot "
                "be checked. Retrain it" + (", or, if you trust the file, register it with `lesion-studio score "
                                            "--register-onnx`." if unregistered else "."))
        try:
            record = export_registered_onnx(project, record.id, weights)
        except MissingExtraError as exc:
            if unregistered:
                raise LesionStudioError(
                    f"{onnx} of classifier {record.name!r} has no registered hash, and exporting it again from "
                    "its weights needs torch. If you trust the file, register it with `lesion-studio score "
                    "--register-onnx`; else export it on a machine with the training extra.") from exc
            raise
        expected = record.metadata["onnx_sha256"]
    elif not expected:  # register_onnx: the user vouches for the file found
        record = project.update_model_metadata(record.id, onnx_sha256=file_sha256(onnx))
        expected = record.metadata["onnx_sha256"]
        log.info("registered %s of classifier %s at the user's request", onnx.name, record.name)
    return OnnxScorer(onnx, expected_sha256=expected), record


def score_synthetic(project: Project, samples: Sequence[Any], scorer: OnnxScorer, *,
                    progress: ProgressCallback = no_progress, cancel: CancelToken | None = None) -> list[float]:
    """Lesion probabilities of synthetic samples; each score is stored on its sample, with the
    peak of the classifier's localisation map when the export has one (where it looked: on the
    painted lesion or elsewhere, :meth:`SyntheticSample.map_on_lesion`)."""
    from lesion_studio.classifier.cam import map_peak
    from lesion_studio.classifier.data import synthetic_examples

    examples = synthetic_examples(project, samples, {s.source_image_id for s in samples})
    cache = PreparedCache(scorer.prep, project.subfolder("cache") / "classifier")
    items = [(e.key, e.path) for e in examples]
    scores, maps = scorer.score_files_with_maps(items, cache=cache, progress=progress, cancel=cancel)
    for i, (sample, score) in enumerate(zip(samples, scores, strict=True)):
        peak = None if maps is None else map_peak(maps[i], cache.frame(*items[i]))
        project.update_synthetic_sample(sample.id, score=float(score), map_peak=peak)
    return [float(s) for s in scores]
