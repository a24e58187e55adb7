"""Export a trained UNIT translator to ONNX, one self-contained file per direction (needs torch).

``model.onnx`` holds h2l = G_l(E_h(x) + noise) (normal → lesion, what synthesis runs) and
``model-l2h.onnx`` holds l2h = G_h(E_l(x) + noise); ``model-h2l-residual.onnx`` holds
G_l(z) − G_h(z) for z = E_h(x) + noise, the residual that ``translation: residual`` adds to the
source window. One file per direction because onnxruntime
runs *every* node of a graph whatever outputs are asked for: a single two-output graph made each
translation pay for both directions (measured: 2× the work, 1.7× slower than torch). An ``If``
node choosing the direction inside one file was measured too: onnxruntime then skips its NCHWc
layout optimisation inside the branch and the translation is ~1.4× slower than a plain graph.

Each graph has inputs ``patches`` (N, 1, H, W) and ``noise`` (N, C, H/f, W/f). Batch and spatial
sizes are dynamic (H and W multiples of f = 2^n_downsample): the preview runs one patch, batch
synthesis many, and fixing the shapes measured only ~3 % faster. The networks were written so
that nothing branches on the batch size (instance norm, group norm as layer norm), which is what
usually breaks dynamic-batch exports; each export is checked against torch at a batch size and
patch size different from the ones traced (:func:`lesion_studio.onnx_export.export_checked_onnx`).
Deterministic translation feeds zero noise (the noise ``Add`` is < 1 % of the run time, so no
separate noise-free graph); stochastic translation feeds seeded Gaussian noise made with numpy,
so both backends give the same result for the same seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lesion_studio.extras import require
from lesion_studio.models import layout
from lesion_studio.onnx_export import export_checked_onnx

# The file of each direction, in the model's folder (the runtime reads the same table).
ONNX_FILES = {"h2l": layout.ONNX, "l2h": layout.ONNX_L2H, "h2l_residual": layout.ONNX_RESIDUAL}


def export_unit_onnx(generators: Any, folder: str | Path, *, resolution: int, check: bool = True,
                     directions: tuple[str, ...] = tuple(ONNX_FILES)) -> dict[str, str]:
    """Write the direction files into ``folder``; returns {direction: sha256}. Raises LesionStudioError."""
    torch = require("torch", "ONNX export")
    from lesion_studio.models.unit import UnitTranslatorNet

    arch = generators.arch
    f = arch.downsample_factor
    x = torch.zeros(2, 1, resolution, resolution)
    noise = torch.zeros(arch.latent_shape(2, resolution, resolution))
    batch = torch.export.Dim("batch", min=1, max=4096)
    hs, ws = torch.export.Dim("hs", min=2, max=1024), torch.export.Dim("ws", min=2, max=1024)
    dynamic = {"patches": {0: batch, 2: f * hs, 3: f * ws}, "noise": {0: batch, 2: hs, 3: ws}}
    probe = _probe(arch, resolution) if check else None
    digests = {}
    for direction in directions:
        name = ONNX_FILES[direction]
        graph = UnitTranslatorNet(generators, direction).float().cpu().eval()
        digests[direction] = export_checked_onnx(
            graph, (x, noise), Path(folder) / name, input_names=["patches", "noise"], output_names=[direction],
            dynamic_shapes=dynamic, what=f"translator ({direction})", probe=probe)
    return digests


def _probe(arch: Any, resolution: int) -> dict[str, np.ndarray]:
    """Check inputs at another batch size (3) and patch size than traced."""
    size = resolution + arch.downsample_factor * 2
    rng = np.random.default_rng(0)
    return {"patches": rng.uniform(-1, 1, (3, 1, size, size)).astype(np.float32),
            "noise": rng.standard_normal(arch.latent_shape(3, size, size)).astype(np.float32)}
