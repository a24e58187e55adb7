"""Export a trained UNIT translator to one self-contained ONNX file (needs torch; run at training end).

The graph has inputs ``patches`` (N, 1, H, W) and ``noise`` (N, C, H/f, W/f) and two outputs,
``h2l`` = G_l(E_h(x) + noise) and ``l2h`` = G_h(E_l(x) + noise); onnxruntime computes only the
output that is asked for. Batch and spatial sizes are dynamic (H and W multiples of f =
2^n_downsample). The networks were written so that nothing branches on the batch size (instance
norm, group norm as layer norm), which is what usually breaks dynamic-batch exports; the export
is checked against torch at a batch size and patch size different from the ones traced.
Deterministic translation feeds zero noise; stochastic translation feeds seeded Gaussian noise
made with numpy, so both backends give the same result for the same seed.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lesion_studio.errors import LesionStudioError
from lesion_studio.extras import require

log = logging.getLogger(__name__)
OPSET = 18


def _graph(generators: Any) -> Any:
    torch = require("torch", "ONNX export")
    from lesion_studio.models.unit import UnitTranslatorNet

    class BothDirections(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.h2l = UnitTranslatorNet(generators, "h2l")
            self.l2h = UnitTranslatorNet(generators, "l2h")

        def forward(self, patches: Any, noise: Any) -> tuple[Any, Any]:
            return self.h2l(patches, noise), self.l2h(patches, noise)

    return BothDirections().eval()


def export_unit_onnx(generators: Any, path: str | Path, *, resolution: int, check: bool = True) -> str:
    """Write ``path`` (single file, weights inside) and return its sha256. Raises LesionStudioError."""
    torch = require("torch", "ONNX export")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arch = generators.arch
    f = arch.downsample_factor
    graph = _graph(generators).float().cpu()
    x = torch.zeros(2, 1, resolution, resolution)
    noise = torch.zeros(arch.latent_shape(2, resolution, resolution))
    batch = torch.export.Dim("batch", min=1, max=4096)
    hs, ws = torch.export.Dim("hs", min=2, max=1024), torch.export.Dim("ws", min=2, max=1024)
    dynamic = {"patches": {0: batch, 2: f * hs, 3: f * ws}, "noise": {0: batch, 2: hs, 3: ws}}
    tmp = path.with_name(f".{path.name}.tmp")
    for noisy in ("onnx_ir", "onnxscript", "torch.onnx", "torch.export"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, (x, noise), dynamo=True, dynamic_shapes=dynamic,
                                        input_names=["patches", "noise"], output_names=["h2l", "l2h"],
                                        opset_version=OPSET, external_data=False, verbose=False)
            program.save(str(tmp), external_data=False)
    except Exception as exc:  # torch.export raises many types; the message is what matters
        tmp.unlink(missing_ok=True)
        raise LesionStudioError(f"Could not export the translator to ONNX: {type(exc).__name__}: {exc}") from exc
    if check:
        _check(graph, tmp, arch, resolution)
    tmp.replace(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    log.info("exported %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return digest


def _check(graph: Any, onnx_path: Path, arch: Any, resolution: int, tol: float = 1e-4) -> None:
    """Compare with torch at another batch size and patch size than traced."""
    torch = require("torch", "ONNX export")
    from lesion_studio.synthesis.translator import make_session

    size = resolution + arch.downsample_factor * 2
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (3, 1, size, size)).astype(np.float32)
    noise = rng.standard_normal(arch.latent_shape(3, size, size)).astype(np.float32)
    session = make_session(onnx_path, prefer_cuda=False)
    got = session.run(["h2l", "l2h"], {"patches": x, "noise": noise})
    with torch.no_grad():
        want = [t.numpy() for t in graph(torch.from_numpy(x), torch.from_numpy(noise))]
    err = max(float(np.abs(g - w).max()) for g, w in zip(got, want, strict=True))
    if err > tol:
        raise LesionStudioError(f"The exported ONNX translator differs from torch by {err:.2e} (> {tol}).")
