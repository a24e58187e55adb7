"""Export a trained UNIT translator to one self-contained ONNX file (needs torch; run at training end).

The graph has inputs ``patches`` (N, 1, H, W) and ``noise`` (N, C, H/f, W/f) and two outputs,
``h2l`` = G_l(E_h(x) + noise) and ``l2h`` = G_h(E_l(x) + noise); onnxruntime computes only the
output that is asked for. Batch and spatial sizes are dynamic (H and W multiples of f =
2^n_downsample). The networks were written so that nothing branches on the batch size (instance
norm, group norm as layer norm), which is what usually breaks dynamic-batch exports; the export
is checked against torch at a batch size and patch size different from the ones traced
(:func:`lesion_studio.onnx_export.export_checked_onnx`).
Deterministic translation feeds zero noise; stochastic translation feeds seeded Gaussian noise
made with numpy, so both backends give the same result for the same seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lesion_studio.extras import require
from lesion_studio.onnx_export import export_checked_onnx


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
    arch = generators.arch
    f = arch.downsample_factor
    graph = _graph(generators).float().cpu()
    x = torch.zeros(2, 1, resolution, resolution)
    noise = torch.zeros(arch.latent_shape(2, resolution, resolution))
    batch = torch.export.Dim("batch", min=1, max=4096)
    hs, ws = torch.export.Dim("hs", min=2, max=1024), torch.export.Dim("ws", min=2, max=1024)
    dynamic = {"patches": {0: batch, 2: f * hs, 3: f * ws}, "noise": {0: batch, 2: hs, 3: ws}}
    return export_checked_onnx(graph, (x, noise), path, input_names=["patches", "noise"],
                               output_names=["h2l", "l2h"], dynamic_shapes=dynamic, what="translator",
                               probe=_probe(arch, resolution) if check else None)


def _probe(arch: Any, resolution: int) -> dict[str, np.ndarray]:
    """Check inputs at another batch size (3) and patch size than traced."""
    size = resolution + arch.downsample_factor * 2
    rng = np.random.default_rng(0)
    return {"patches": rng.uniform(-1, 1, (3, 1, size, size)).astype(np.float32),
            "noise": rng.standard_normal(arch.latent_shape(3, size, size)).astype(np.float32)}
