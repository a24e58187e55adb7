"""A translator's ONNX files, exported on first use when the model folder lacks current ones.

Pausing a GAN run used to export its three ONNX graphs before the job could end (40–59 s on two
busy cores). A paused run is now registered without ONNX, and the first load of its translator
exports what it needs from the hash-checked weights: ``model.onnx`` (h2l) when the translator
opens, l2h and the residual graph when first asked for. Each exported file's hash is registered
in the project, as a finished run registers them, so from then on it is checked like any other.

A direction's file is *stale*, and is exported again, when it is missing, its hash is not
registered, it is older than the weights, or it was exported from weights other than the
registered ones (``onnx_weights_sha256``). Nothing is exported for built-in models (read-only and
complete), for models trained with ``export_onnx: false`` (they run on the torch backend), or
where torch is missing (a reading build): loading then behaves as before, using registered
files only. torch is imported only inside :func:`export_direction`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from lesion_studio.errors import LesionStudioError
from lesion_studio.files import file_sha256
from lesion_studio.models import layout

log = logging.getLogger(__name__)

FILES = {"h2l": layout.ONNX, "l2h": layout.ONNX_L2H, "h2l_residual": layout.ONNX_RESIDUAL}
#: The registry metadata key that holds each direction's file hash (and the weights it came from).
HASH_KEYS = {"h2l": "onnx_sha256", "l2h": "onnx_l2h_sha256", "h2l_residual": "onnx_h2l_residual_sha256"}
SOURCE_KEY = "onnx_weights_sha256"
_LOCK = threading.Lock()  # one export at a time in this process: two loaders never race on a file


def exportable(record: Any, meta: dict[str, Any], weights: Path) -> bool:
    """Whether this model's ONNX may be (re-)exported here: a project's own model whose config
    wants ONNX, with its weights present and torch installed."""
    from lesion_studio.builtin_models import is_builtin_record
    from lesion_studio.extras import training_available

    if is_builtin_record(record) or (meta.get("config") or {}).get("export_onnx") is False:
        return False
    if not weights.is_file():
        return False
    try:
        return training_available()
    except ImportError:  # an interpreter that refuses torch outright
        return False


def is_stale(meta: dict[str, Any], weights: Path, record_sha: str, direction: str) -> bool:
    """Whether ``direction``'s file must be exported before it can be trusted (see the module docstring)."""
    path = weights.with_name(FILES[direction])
    if not path.is_file() or not meta.get(HASH_KEYS[direction]):
        return True
    if meta.get(SOURCE_KEY) and record_sha and meta[SOURCE_KEY] != record_sha:
        return True
    try:
        return path.stat().st_mtime < weights.stat().st_mtime
    except OSError:
        return True


def export_direction(folder: Path, record: Any, weights: Path, meta: dict[str, Any],
                     direction: str) -> dict[str, Any]:
    """Export ``direction`` from the weights, register its hash in the project in ``folder``, and
    return the updated metadata.

    The weights are checked against the registered hash first (the export inherits their trust).
    The hash is registered through a connection of this thread's own (a translator is loaded from
    a record on whichever thread needs it), so the store announces the change like any other.
    Raises :class:`LesionStudioError` when they do not match or the export fails.
    """
    with _LOCK:
        if not is_stale(meta, weights, record.sha256, direction):  # another loader did it meanwhile
            return meta
        if record.sha256 and file_sha256(weights) != record.sha256:
            raise LesionStudioError(f"{weights} does not match the model's registered hash: it was changed or is "
                                    "incomplete. Retrain or restore the model folder.")
        from lesion_studio.models.unit import load_unit_model
        from lesion_studio.models.unit_onnx import export_unit_onnx

        log.info("exporting %s of %s to ONNX on first use", direction, record.name)
        generators, _ = load_unit_model(weights, "cpu")
        digest = export_unit_onnx(generators, weights.parent, resolution=int(meta["resolution"]),
                                  directions=(direction,))[direction]
        files = {**(meta.get("files") or {}), "onnx" if direction == "h2l" else f"onnx_{direction}": FILES[direction]}
        values = {HASH_KEYS[direction]: digest, SOURCE_KEY: record.sha256, "files": files}
        if record.id:
            from lesion_studio.store.project import Project

            with Project.open(folder) as project:
                project.update_model_metadata(record.id, **values)
        else:  # still trusted in this process: exported here from checked weights
            log.warning("could not register the ONNX export of %s; it will be exported again next time", record.name)
        return {**meta, **values}
