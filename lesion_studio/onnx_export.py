"""Export a torch module to one self-contained, checked ONNX file (needs torch).

Both ONNX models of the app (the UNIT translator and the DRN classifier) are exported the same
way: the dynamo exporter with named inputs and dynamic dimensions, weights inside the file, the
result compared with torch on *other* shapes than the traced ones (dynamic batch and patch sizes
are what exports usually get wrong), and the file moved into place only when it matches, so a
failed or wrong export never replaces a working model.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lesion_studio.errors import LesionStudioError
from lesion_studio.extras import require
from lesion_studio.files import atomic_path, file_sha256

log = logging.getLogger(__name__)
OPSET = 18
_NOISY_LOGGERS = ("onnx_ir", "onnxscript", "torch.onnx", "torch.export")


def export_checked_onnx(
    graph: Any, example: tuple[Any, ...], path: str | Path, *, input_names: Sequence[str],
    output_names: Sequence[str], dynamic_shapes: Mapping[str, Any], what: str,
    probe: Mapping[str, np.ndarray] | None = None, tol: float = 1e-4,
) -> str:
    """Write ``path`` and return its sha256; raises LesionStudioError naming ``what`` on failure.

    ``probe`` (inputs by name) is run through onnxruntime and torch and the outputs must agree
    within ``tol``; leave it out to skip the check.
    """
    torch = require("torch", "ONNX export")
    path = Path(path)
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        # Moved into place only if export and check succeed. On a full disk the size named is the
        # weights' (the graph adds a little): an estimate.
        with atomic_path(path, needed=_weight_bytes(graph), estimated=True) as tmp:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                program = torch.onnx.export(graph, example, dynamo=True, dynamic_shapes=dict(dynamic_shapes),
                                            input_names=list(input_names), output_names=list(output_names),
                                            opset_version=OPSET, external_data=False, verbose=False)
                program.save(str(tmp), external_data=False)
            if probe is not None:
                _check(graph, tmp, input_names, output_names, probe, tol, what)
    except LesionStudioError:
        raise
    except Exception as exc:  # torch.export raises many types; the message is what matters
        raise LesionStudioError(f"Could not export the {what} to ONNX: {type(exc).__name__}: {exc}") from exc
    log.info("exported %s %s (%.1f MB)", what, path, path.stat().st_size / 1e6)
    return file_sha256(path)


def _weight_bytes(graph: Any) -> int | None:
    """The bytes of a module's parameters and buffers: about the size of its ONNX file."""
    try:
        tensors = [*graph.parameters(), *graph.buffers()]
    except (AttributeError, TypeError):
        return None
    return sum(t.numel() * t.element_size() for t in tensors) or None


def _check(graph: Any, onnx_path: Path, input_names: Sequence[str], output_names: Sequence[str],
           probe: Mapping[str, np.ndarray], tol: float, what: str) -> None:
    import torch

    from lesion_studio.onnx_runtime import make_session

    got = make_session(onnx_path, prefer_cuda=False).run(list(output_names), dict(probe))
    with torch.no_grad():
        want = graph(*(torch.from_numpy(probe[name]) for name in input_names))
    want = want if isinstance(want, tuple | list) else (want,)
    err = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want, strict=True))
    if err > tol:
        raise LesionStudioError(f"The exported ONNX {what} differs from torch by {err:.2e} (> {tol}); "
                                "not using it.")
