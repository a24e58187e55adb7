"""The translator runtime: patches in [-1, 1] → translated patches, via onnxruntime or torch.

``load_translator(record, folder)`` (or ``open_translator(project, ref)``, which finds the record,
built-in models included) picks the ONNX backend when ``model.onnx`` exists (numpy +
onnxruntime only: a reading workstation needs no torch) and the torch backend otherwise (or when
asked). Sessions come from :mod:`lesion_studio.onnx_runtime`, which offers CUDA only when a GPU
is really there. Each direction has its own ONNX file and session (see
:mod:`lesion_studio.models.unit_onnx`), opened on first use; models exported before the
split carry both directions in ``model.onnx``, which then serves both. A project's model whose
ONNX is missing or stale (a paused run is registered without it) is exported on first use, one
direction at a time, where torch is installed (:mod:`lesion_studio.synthesis.deferred_onnx`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from lesion_studio.errors import LesionStudioError
from lesion_studio.files import file_sha256, open_regular
from lesion_studio.models import layout
from lesion_studio.models.specs import UnitArch
from lesion_studio.onnx_runtime import make_session, physical_cores
from lesion_studio.synthesis import deferred_onnx

if TYPE_CHECKING:
    from lesion_studio.store.project import Project
    from lesion_studio.store.records import ModelRecord

log = logging.getLogger(__name__)
#: Brings one direction's file up to date before it is opened: (direction, metadata) → metadata.
Refresh = Callable[[str, dict[str, Any]], dict[str, Any]]
#: h2l / l2h translate; h2l_residual is G_l(E_h(x)) − G_h(E_h(x)), what residual synthesis adds.
DIRECTIONS = ("h2l", "l2h", "h2l_residual")


@runtime_checkable
class Translator(Protocol):
    """What the pipeline and the GUI need from a translator, whatever runs it."""

    resolution: int
    model_id: int | None
    model_name: str
    sha256: str

    def translate(self, patches: np.ndarray, *, stochastic: bool = False, seed: int | None = None,
                  direction: str = "h2l") -> np.ndarray:
        """float32 (N, 1, S, S) in [-1, 1] → same shape; seeded noise when ``stochastic``."""
        ...


def supports(translator: Any, direction: str) -> bool:
    """Whether ``translator`` can run ``direction`` (a translator that does not say can run them all)."""
    return direction in getattr(translator, "directions", DIRECTIONS)


# ---------------------------------------------------------------------------- shared checks
def _check_patches(patches: np.ndarray, factor: int) -> np.ndarray:
    x = np.asarray(patches, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] != 1:
        raise LesionStudioError(f"Patches must be shaped (N, 1, S, S), not {x.shape}.")
    if x.shape[2] % factor or x.shape[3] % factor:
        raise LesionStudioError(f"Patch sides must be multiples of {factor}, not {x.shape[2]}×{x.shape[3]}.")
    return np.ascontiguousarray(x)


def make_noise(latent_shape: tuple[int, ...], stochastic: bool, seed: int | None) -> np.ndarray:
    """Zero (deterministic: the latent mean) or seeded N(0, 1) noise, identical for both backends."""
    if not stochastic:
        return np.zeros(latent_shape, np.float32)
    return np.random.default_rng(seed).standard_normal(latent_shape, dtype=np.float32)


@dataclass
class _Info:
    resolution: int
    model_id: int | None
    model_name: str
    sha256: str
    arch: UnitArch
    metadata: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- backends
class _TranslatorBase:
    """What both runtimes share: the model's identity and the checked inputs of one call."""

    def _set_info(self, info: _Info) -> None:
        self._info = info
        self.resolution, self.model_id = info.resolution, info.model_id
        self.model_name, self.sha256 = info.model_name, info.sha256

    def _inputs(self, patches: np.ndarray, stochastic: bool, seed: int | None,
                direction: str) -> tuple[np.ndarray, np.ndarray]:
        if direction not in DIRECTIONS:
            raise LesionStudioError(f"Unknown direction {direction!r}; use {', '.join(DIRECTIONS)}.")
        x = _check_patches(patches, self._info.arch.downsample_factor)
        noise = make_noise(self._info.arch.latent_shape(*x.shape[:1], *x.shape[2:]), stochastic, seed)
        return x, noise


class OnnxTranslator(_TranslatorBase):
    """onnxruntime backend: numpy in, numpy out, no torch. One session per direction, opened on first use."""

    backend = "onnx"

    def __init__(self, onnx_path: str | Path, info: _Info, *, prefer_cuda: bool = True,
                 refresh: Refresh | None = None) -> None:
        self._set_info(info)
        self._paths = {"h2l": Path(onnx_path), "l2h": Path(onnx_path).with_name(layout.ONNX_L2H),
                       "h2l_residual": Path(onnx_path).with_name(layout.ONNX_RESIDUAL)}
        self._prefer_cuda = prefer_cuda
        self._refresh = refresh  # exports a missing or stale direction on first use (deferred_onnx)
        self._sessions: dict[str, Any] = {}
        self.session = self._session("h2l")  # open the default direction now: a broken file fails here
        self.providers = list(self.session.get_providers())

    def _session(self, direction: str) -> Any:
        if direction not in self._sessions:
            path = self._paths[direction]
            if self._refresh is not None:
                self._info.metadata = self._refresh(direction, self._info.metadata)
            if direction != "h2l" and not path.exists() and direction in self._output_names(self.session):
                self._sessions[direction] = self.session  # a two-direction model.onnx from before the split
            elif direction == "h2l_residual" and not path.exists():
                raise LesionStudioError(
                    f"Model {self.model_name!r} was exported before residual translation ({path.name} is "
                    "missing): use translation 'direct', the torch backend, or retrain it.")
            else:
                _check_sha(path, self._info.metadata.get(deferred_onnx.HASH_KEYS[direction]))
                self._sessions[direction] = make_session(path, prefer_cuda=self._prefer_cuda)
        return self._sessions[direction]

    @property
    def directions(self) -> tuple[str, ...]:
        """What this export can run: h2l always; l2h and the residual where their graphs exist (or
        can be exported on first use)."""
        if self._refresh is not None:
            return DIRECTIONS
        legacy = self._output_names(self.session)  # a two-direction model.onnx from before the split
        return tuple(d for d in DIRECTIONS if d == "h2l" or self._paths[d].exists() or d in legacy)

    @staticmethod
    def _output_names(session: Any) -> list[str]:
        return [o.name for o in session.get_outputs()]

    def translate(self, patches: np.ndarray, *, stochastic: bool = False, seed: int | None = None,
                  direction: str = "h2l") -> np.ndarray:
        x, noise = self._inputs(patches, stochastic, seed, direction)
        session = self._session(direction)
        cores = physical_cores()
        if (cores < 2 or len(x) < 2 * cores or session.get_providers()[0] != "CPUExecutionProvider"
                or not self._paths[direction].exists()):  # a two-direction file from before the split
            return session.run([direction], {"patches": x, "noise": noise})[0]
        return self._run_per_core(direction, x, noise, cores)

    def _run_per_core(self, direction: str, x: np.ndarray, noise: np.ndarray, cores: int) -> np.ndarray:
        """A batch on the CPU: one chunk per core, each on its own one-thread session, at once.

        The translator's convolutions are small, so splitting each op across threads (one session,
        intra-op threads = cores) spends much of the time handing work out; whole patches per core
        do not (measured: docs/performance.md). onnxruntime releases the GIL while it runs.
        """
        from concurrent.futures import ThreadPoolExecutor

        key = f"{direction}/per-core"
        if key not in self._sessions:  # the file was hash-checked when the direction's session opened
            self._sessions[key] = [make_session(self._paths[direction], prefer_cuda=False, threads=1)
                                   for _ in range(cores)]
        sessions = self._sessions[key]
        chunks = np.array_split(np.arange(len(x)), cores)
        with ThreadPoolExecutor(cores) as pool:
            outs = list(pool.map(lambda sc: sc[0].run([direction], {"patches": x[sc[1]], "noise": noise[sc[1]]})[0],
                                 zip(sessions, chunks, strict=True)))
        return np.concatenate(outs)


class TorchTranslator(_TranslatorBase):
    """torch backend (for machines where the ONNX file is missing, and for parity checks)."""

    backend = "torch"

    def __init__(self, weights: str | Path, info: _Info, *, device: str = "auto") -> None:
        from lesion_studio.models.checkpoint import select_device
        from lesion_studio.models.unit import load_unit_model

        self._set_info(info)
        self.device = select_device(device)
        self.generators, _meta = load_unit_model(weights, self.device)

    def translate(self, patches: np.ndarray, *, stochastic: bool = False, seed: int | None = None,
                  direction: str = "h2l") -> np.ndarray:
        import torch

        x, noise = self._inputs(patches, stochastic, seed, direction)
        with torch.no_grad():
            out = self.generators.translate(torch.from_numpy(x).to(self.device), direction,
                                            torch.from_numpy(noise).to(self.device))
        return out.float().cpu().numpy()


# ---------------------------------------------------------------------------- loading
def open_translator(project: Project, model: int | str, *, backend: str = "auto",
                    device: str = "auto") -> Translator:
    """The translator of a project's UNIT model by id or name, or of a built-in one (registered in
    the project on first use); see :func:`load_translator`."""
    from lesion_studio.builtin_models import resolve_model

    return load_translator(resolve_model(project, model), project.folder, backend=backend, device=device)


def load_translator(record: ModelRecord, folder: Path, *, backend: str = "auto", device: str = "auto") -> Translator:
    """The translator of the registered UNIT model ``record`` of the project in ``folder``.

    Needs only the record and the model's files, no database connection, so a worker thread can
    load it from a record read elsewhere. ``backend``: auto (ONNX when exported), onnx, torch.
    ``device`` applies to the torch backend (auto: CUDA when available; note CUDA convolutions use
    TF32 by default, so they differ from the CPU/ONNX result by ~1e-3).
    """
    if record.kind != "unit":
        raise LesionStudioError(f"Model {record.name!r} is a {record.kind} model, not a UNIT translator.")
    weights = record.weights(folder)
    onnx_path = layout.onnx_path(weights)
    meta = _unit_metadata(weights, record.metadata)
    try:
        arch = UnitArch(**meta["arch"])
    except (TypeError, ValueError) as exc:
        raise LesionStudioError(f"Model {record.name!r} names an architecture Lesion Studio cannot read "
                                f"({exc}); retrain it.") from exc
    if backend not in ("auto", "onnx", "torch"):
        raise LesionStudioError(f"Unknown translator backend {backend!r}; use auto, onnx or torch.")
    refresh = _refresher(folder, record, weights) \
        if backend != "torch" and deferred_onnx.exportable(record, meta, weights) else None
    if refresh is not None:
        try:
            meta = refresh("h2l", meta)  # a paused run's model.onnx is exported now, once
        except LesionStudioError as exc:
            if backend == "onnx":
                raise
            log.warning("ONNX export of %s failed, using the torch backend: %s", record.name, exc)
            refresh, backend = None, "torch"
    info = _Info(resolution=int(meta["resolution"]), model_id=record.id, model_name=record.name,
                 sha256=record.sha256, arch=arch, metadata=meta)
    if backend == "onnx" or (backend == "auto" and onnx_path.exists()):
        if not onnx_path.exists():
            raise LesionStudioError(f"Model {record.name!r} has no ONNX export ({onnx_path} is missing); "
                                    "use the torch backend or re-export it.")
        expected = meta.get("onnx_sha256")
        if not expected:
            # An ONNX file nobody registered could be any graph, and provenance would name the
            # wrong model: never run it. Auto falls back to the weights, which are hash-checked.
            message = (f"{onnx_path.name} of model {record.name!r} has no registered hash, so it cannot be "
                       "trusted; retrain with ONNX export, or use the torch backend")
            if backend == "onnx" or not weights.exists():
                raise LesionStudioError(message + ".")
            log.warning("%s; using the torch backend.", message)
        else:
            return OnnxTranslator(onnx_path, info, refresh=refresh)  # checks each direction's file against its hash
    if not weights.exists():
        raise LesionStudioError(f"The weights of model {record.name!r} are missing ({weights}).")
    if record.sha256 and file_sha256(weights) != record.sha256:
        raise LesionStudioError(f"{weights} does not match the model's registered hash: it was changed or is "
                                "incomplete. Retrain or restore the model folder.")
    try:
        return TorchTranslator(weights, info, device=device)
    except ImportError as exc:
        raise LesionStudioError(f"Model {record.name!r} has no usable ONNX export and torch is not installed.") from exc


def _refresher(folder: Path, record: ModelRecord, weights: Path) -> Refresh:
    """Export a direction of ``record`` when its file is missing or stale; else leave it."""
    def refresh(direction: str, meta: dict[str, Any]) -> dict[str, Any]:
        if not deferred_onnx.is_stale(meta, weights, record.sha256, direction):
            return meta
        return deferred_onnx.export_direction(folder, record, weights, meta, direction)
    return refresh


def _check_sha(path: Path, expected: str | None) -> None:
    """Refuse an ONNX file that is missing, unregistered, or not the one registered with the model."""
    if not path.exists():
        raise LesionStudioError(f"{path} is missing; re-export the model or use the torch backend.")
    if not expected:
        raise LesionStudioError(f"{path.name} has no registered hash, so it cannot be trusted; retrain with "
                                "ONNX export, or use the torch backend.")
    if file_sha256(path) != expected:
        raise LesionStudioError(f"{path} does not match the model's registered hash: it was changed "
                                "or is incomplete. Re-export it or retrain.")


def _unit_metadata(weights: Path, registered: dict[str, Any]) -> dict[str, Any]:
    """Architecture and resolution from the registry, else from the weights' JSON sidecar (no torch),
    checked against :mod:`lesion_studio.models.bounds` before anything is built from them."""
    import json

    from lesion_studio.models.bounds import check_resolution, check_unit_arch

    meta = dict(registered) if isinstance(registered, dict) else {}
    if "arch" not in meta or "resolution" not in meta:
        side = layout.sidecar_path(weights)
        try:
            loaded = json.loads(open_regular(side, "model sidecar").read())
        except (OSError, ValueError, RecursionError, LesionStudioError) as exc:
            raise LesionStudioError(f"The model metadata {side} is missing or unreadable ({exc}).") from exc
        if not isinstance(loaded, dict):
            raise LesionStudioError(f"The model metadata {side} is not a JSON object.")
        meta = {**loaded, **meta}
    if "arch" not in meta or "resolution" not in meta:
        raise LesionStudioError(f"{weights.name} carries no UNIT architecture; it was not saved by Lesion Studio.")
    meta["arch"] = check_unit_arch(meta["arch"], f"model {weights.parent.name}")
    meta["resolution"] = check_resolution(meta["resolution"], meta["arch"], f"model {weights.parent.name}")
    return meta
