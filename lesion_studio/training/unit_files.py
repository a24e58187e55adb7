"""Saving a trained UNIT model's generator weights (where its files go: :mod:`lesion_studio.models.layout`).

Loading is :func:`lesion_studio.models.unit.load_unit_model`, next to the networks, so the torch
translator backend loads weights without importing the trainers.
Loading never unpickles: safetensors + JSON only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lesion_studio.extras import require
from lesion_studio.models.layout import UNIT_FORMAT

torch = require("torch", "Saving a UNIT model")



def save_unit_model(path: Path, generators: Any, metadata: dict[str, Any]) -> str:
    """Write the generator weights + sidecar atomically; returns the weights' sha256."""
    from lesion_studio.models.checkpoint import save_checkpoint
    from lesion_studio.training.common import unwrap

    gen = unwrap(generators)
    state = {k: v.detach().float().cpu().contiguous() for k, v in gen.state_dict().items()}
    return save_checkpoint(path, {"gen": state}, {**metadata, "format": UNIT_FORMAT, "arch": gen.arch.to_dict()})
