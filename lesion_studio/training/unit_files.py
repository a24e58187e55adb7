"""The files of a trained UNIT model, in ``<project>/models/<name>/``.

- ``model.safetensors`` + ``model.json``: generator weights (E_l, E_h, G_l, G_h, shared blocks)
  and the metadata needed to rebuild them (architecture, config, resolution, data summary).
- ``checkpoint.safetensors`` + ``checkpoint.json``: everything to resume (both networks,
  optimizers, schedulers, grad scaler, iteration).
- ``config.yaml``: the training config, readable and re-usable with ``--config``.
- ``model.onnx`` (h2l) and ``model-l2h.onnx`` (l2h): the exported translator graphs, one per
  direction (see :mod:`lesion_studio.synthesis.onnx_export`).

Loading never unpickles: safetensors + JSON only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lesion_studio.errors import LesionStudioError
from lesion_studio.extras import require
from lesion_studio.models.bounds import check_unit_arch
from lesion_studio.synthesis.onnx_export import ONNX_FILES

torch = require("torch", "The torch translator backend")

WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.safetensors"
CONFIG = "config.yaml"
ONNX = ONNX_FILES["h2l"]
ONNX_L2H = ONNX_FILES["l2h"]
FORMAT = "lesion-studio-unit-1"


def save_unit_model(path: Path, generators: Any, metadata: dict[str, Any]) -> str:
    """Write the generator weights + sidecar atomically; returns the weights' sha256."""
    from lesion_studio.training.common import save_checkpoint, unwrap

    gen = unwrap(generators)
    state = {k: v.detach().float().cpu().contiguous() for k, v in gen.state_dict().items()}
    return save_checkpoint(path, {"gen": state}, {**metadata, "format": FORMAT, "arch": gen.arch.to_dict()})


def load_unit_model(path: str | Path, device: str | Any = "cpu") -> tuple[Any, dict[str, Any]]:
    """(UnitGenerators in eval mode on ``device``, metadata) from a ``model.safetensors``."""
    from lesion_studio.models.unit import UnitArch, UnitGenerators
    from lesion_studio.training.common import check_state_shapes, load_checkpoint

    states, meta = load_checkpoint(path)
    if meta.get("format") != FORMAT or "gen" not in states or not isinstance(states["gen"], dict):
        raise LesionStudioError(f"{Path(path).name} is not a UNIT model saved by Lesion Studio.")
    arch = UnitArch(**check_unit_arch(meta.get("arch"), Path(path).name))
    check_state_shapes(lambda: UnitGenerators(arch), states["gen"], f"{Path(path).name} (UNIT)")
    try:
        gen = UnitGenerators(arch)
        gen.load_state_dict(states["gen"])
    except (TypeError, KeyError, RuntimeError) as exc:
        raise LesionStudioError(f"{Path(path).name} does not match the UNIT architecture it names ({exc}).") from exc
    return gen.to(device).eval(), meta

