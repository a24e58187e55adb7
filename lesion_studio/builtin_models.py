"""Built-in models: small pretrained models shipped read-only inside the package.

Each lives in ``lesion_studio/resources/models/<name>/``: the usual model files (``model.safetensors``
+ ``model.json``, ``model.onnx``, ``config.yaml``), a ``MODEL_CARD.md`` (data and licence, the exact
command, iterations, wall time, metrics) and ``builtin.json`` (kind, body parts and the registry
metadata the trainer wrote).

A project uses a built-in model by *registering a copy* of it, under the name ``builtin-<name>``:
the copy keeps the project self-contained (it still opens on a machine with another version of
the app), gives synthetic samples a real model id for their provenance, and leaves the package
folder untouched. The copy is never retrained or rewritten; its metadata says ``builtin``.
Listings (``lesion-studio models``, the Synthesis panel) show the built-ins beside the project's
own models whether or not they have been copied yet. Torch-free.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lesion_studio.errors import DiskFullError, LesionStudioError, ProjectError, is_disk_full
from lesion_studio.models import layout
from lesion_studio.paths import builtin_models_dir

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

log = logging.getLogger(__name__)

PREFIX = "builtin-"
DESCRIPTOR = "builtin.json"
CARD = "MODEL_CARD.md"
#: The files a built-in model folder may hold (models/layout.py names them); only these are copied into a
#: project. The ONNX graphs of both directions and the residual one come along, so a project's copy
#: translates the residual way as the built-in does.
FILES = (layout.WEIGHTS, layout.sidecar_path(layout.WEIGHTS).name, layout.ONNX, layout.ONNX_L2H, layout.ONNX_RESIDUAL,
         layout.CONFIG, CARD, DESCRIPTOR)
MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class BuiltinModel:
    name: str  # the folder name, e.g. "phantom-unit"
    kind: str  # "unit" or "drn"
    folder: Path
    sha256: str
    body_parts: tuple[str, ...]
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    summary: str = ""

    @property
    def registered_name(self) -> str:
        """The name of its copy in a project's registry."""
        return PREFIX + self.name

    @property
    def card(self) -> Path:
        return self.folder / CARD

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())


def builtin_models(kind: str | None = None) -> list[BuiltinModel]:
    """Every built-in model (of ``kind``), sorted by name."""
    root = builtin_models_dir()
    found = []
    for folder in sorted(p for p in root.iterdir() if (p / DESCRIPTOR).is_file()) if root.is_dir() else []:
        try:
            d = json.loads((folder / DESCRIPTOR).read_text(encoding="utf-8"))
            model = BuiltinModel(name=folder.name, kind=d["kind"], folder=folder, sha256=d["sha256"],
                                 body_parts=tuple(d.get("body_parts", ())), config=d.get("config", {}),
                                 metadata=d.get("metadata", {}), summary=d.get("summary", ""))
        except (OSError, ValueError, KeyError) as exc:  # a broken install: skip it, say why once
            log.warning("skipping built-in model %s: %s", folder.name, exc)
            continue
        if kind is None or model.kind == kind:
            found.append(model)
    return found


def find_builtin(ref: int | str) -> BuiltinModel | None:
    """The built-in model named ``ref``: ``phantom-unit``, ``builtin-phantom-unit`` or ``builtin:phantom-unit``."""
    text = str(ref)
    for prefix in (PREFIX, "builtin:"):
        text = text.removeprefix(prefix)
    return next((m for m in builtin_models() if m.name == text), None)


def is_builtin_record(record: Any) -> bool:
    return bool(getattr(record, "metadata", {}).get("builtin"))


def register_builtin(project: Project, model: BuiltinModel) -> Any:
    """Copy ``model`` into ``<project>/models/builtin-<name>/`` and register it (once); the record."""
    try:
        return project.model(model.registered_name)
    except ProjectError:
        pass
    metadata = {**model.metadata, "builtin": model.name, "card": CARD}
    if project.read_only:
        # Nothing can be copied into a read-only project: use the package's own files, unregistered.
        from lesion_studio.store.records import ModelRecord

        return ModelRecord(id=0, name=model.registered_name, kind=model.kind,
                           path=str(model.folder / layout.WEIGHTS), sha256=model.sha256,
                           body_parts=tuple(model.body_parts), config=dict(model.config), metadata=metadata,
                           created_at="")
    target = layout.unit_dir(project.folder, model.registered_name) if model.kind == "unit" else \
        layout.classifier_dir(project.folder, model.registered_name)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy into a sibling temporary folder and rename: a crash never leaves half a model.
        tmp = Path(tempfile.mkdtemp(prefix=f".{model.registered_name}-", dir=target.parent))
        present = [name for name in FILES if (model.folder / name).is_file()]
        try:
            for name in present:
                shutil.copy2(model.folder / name, tmp / name)
            tmp.rename(target)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, OSError) and is_disk_full(exc):
                needed = sum((model.folder / name).stat().st_size for name in present)
                raise DiskFullError(f"a copy of the built-in model {model.name}", target.parent, needed) from exc
            raise
    project.register_model(model.registered_name, model.kind, target / layout.WEIGHTS, sha256=model.sha256,
                           body_parts=model.body_parts, config=model.config, metadata=metadata)
    log.info("registered built-in model %s in %s", model.name, project.folder)
    return project.model(model.registered_name)


def resolve_model(project: Project, ref: int | str) -> Any:
    """A project's model by id or name, else a built-in one by name (registered on first use)."""
    try:
        return project.model(ref)
    except ProjectError as exc:
        model = find_builtin(ref)
        if model is not None:
            return register_builtin(project, model)
        names = ", ".join(m.registered_name for m in builtin_models())
        if names:
            raise ProjectError(f"{exc} Built-in: {names}.") from exc
        raise


@dataclass(frozen=True)
class ModelChoice:
    """A model a project can use: one of its own (or a built-in already copied in), or a built-in it
    has not registered yet (registered on first use, by name)."""

    ref: int | str  # the registry id, or "builtin:<name>" for a built-in not registered yet
    name: str  # the registry name (a built-in's ``builtin-<name>``), what every command accepts
    kind: str
    body_parts: tuple[str, ...]
    resolution: int | None
    builtin: bool
    registered: bool
    complete: bool = True  # False: a paused GAN, registered short of its run
    summary: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)  # the registry's (quality...)

    @property
    def source(self) -> str:
        if not self.builtin:
            return "project"
        return "built-in (in project)" if self.registered else "built-in"

    def label(self) -> str:
        """``name  (64 px, incomplete, built-in)``, as the model menus show it."""
        notes = [f"{self.resolution} px"] if self.resolution else []
        notes += [] if self.complete else ["incomplete"]
        notes += ["built-in"] if self.builtin else []
        return f"{self.name}  ({', '.join(notes)})" if notes else self.name


def model_choices(project: Project | None, kind: str | None = None) -> list[ModelChoice]:
    """The models a project can use: its own (in registry order), then the built-ins it has not
    registered yet, those trained on the project's body parts first. Without a project: the built-ins."""
    choices, seen = [], set()
    for m in project.models(kind) if project is not None else []:
        seen.add(m.name)
        choices.append(ModelChoice(m.id, m.name, m.kind, tuple(m.body_parts),
                                   m.metadata.get("resolution") or m.config.get("resolution"),
                                   builtin=is_builtin_record(m), registered=True,
                                   complete=bool(m.metadata.get("complete", True)), metadata=m.metadata))
    parts = project.body_parts() if project is not None else set()
    extra = sorted((b for b in builtin_models(kind) if b.registered_name not in seen),
                   key=lambda b: (not set(b.body_parts) & parts, b.name))
    choices += [ModelChoice(f"builtin:{b.name}", b.registered_name, b.kind, b.body_parts, b.metadata.get("resolution"),
                            builtin=True, registered=False, summary=b.summary, metadata=b.metadata) for b in extra]
    return choices


def find_model_or_builtin(project: Project, name: str) -> Any | None:
    """The project's model ``name``, else the built-in one of that name (registered now), else None."""
    record = project.find_model(name)
    if record is None:
        model = find_builtin(name)
        if model is not None and str(name).startswith((PREFIX, "builtin:")):
            record = register_builtin(project, model)
    return record


def check_builtin(model: BuiltinModel) -> None:
    """Raise unless the model folder is complete, within the size limit and matches its hashes."""
    import hashlib

    problems = []
    for name in (layout.WEIGHTS, layout.sidecar_path(layout.WEIGHTS).name, CARD):
        if not (model.folder / name).is_file():
            problems.append(f"{name} is missing")
    if model.size_bytes() > MAX_BYTES:
        problems.append(f"{model.size_bytes() / 2**20:.1f} MB is over the 20 MB limit")
    for name, expected in ((layout.WEIGHTS, model.sha256), (layout.ONNX, model.metadata.get("onnx_sha256")),
                           (layout.ONNX_L2H, model.metadata.get("onnx_l2h_sha256")),
                           (layout.ONNX_RESIDUAL, model.metadata.get("onnx_h2l_residual_sha256"))):
        path = model.folder / name
        if expected and path.is_file():
            with open(path, "rb") as fh:
                if hashlib.file_digest(fh, "sha256").hexdigest() != expected:
                    problems.append(f"{name} does not match its recorded hash")
    if problems:
        raise LesionStudioError(f"Built-in model {model.name}: " + "; ".join(problems) + ".")
