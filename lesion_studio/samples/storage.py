"""Where a synthetic image lives: a lossless PNG at the source's bit depth in ``<project>/synthetic``.

The PNG holds bone-bright native values (8-bit sources as 8-bit PNG, anything deeper as 16-bit),
so reading it back gives exactly the array that was synthesized; the provenance goes into the
database row and, redundantly, into a PNG text chunk so a file that leaves the project still
says where it came from.
"""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from lesion_studio.deid import stored_provenance
from lesion_studio.errors import LesionStudioError
from lesion_studio.files import atomic_write
from lesion_studio.io.images import encode_png
from lesion_studio.store.project import Project
from lesion_studio.store.records import Box, SyntheticSample, utc_now

if TYPE_CHECKING:
    from lesion_studio.synthesis.pipeline import SynthesisResult


#: The batch of samples kept one at a time (the Synthesis panel's Keep), and its folder.
KEPT_BATCH = "kept"


def save_synthetic_sample(
    project: Project,
    image: np.ndarray,
    *,
    source_image_id: int,
    window: Box,
    n: float,
    seed: int,
    model_id: int | None,
    provenance: dict[str, Any],
    status: str = "candidate",
    batch: str = "",
    score: float | None = None,
) -> int:
    """Write the synthetic image and its database row; returns the sample id.

    The file is written (atomically) before the row, so a row never points at a missing file.
    """
    source = project.image(source_image_id)
    if image.shape != (source.height, source.width):
        raise LesionStudioError(
            f"The synthetic image is {image.shape[1]}x{image.shape[0]} but its source {source.name} is "
            f"{source.width}x{source.height}."
        )
    # Provenance names the source by project image id and content hash: a file name or path often
    # carries a patient name or record number, and this dictionary leaves the project in exports.
    provenance = {"created": utc_now(), **stored_provenance(provenance), "source_image_id": source.id,
                  "source_sha256": source.sha256, "window": list(window.as_tuple()), "n": n, "seed": seed}
    folder = project.subfolder("synthetic") / batch_folder_name(batch)
    stem = f"image{source.id:06d}_{os.urandom(4).hex()}"
    path = folder / f"{stem}.png"
    atomic_write(path, encode_png(image, {"lesion_studio_provenance": json.dumps(provenance)}))
    return project.add_synthetic_sample(
        source_image_id, window, n=n, seed=seed, model_id=model_id, path=path, score=score, status=status,
        batch=batch, provenance=provenance,
    )


def batch_folder_name(batch: str) -> str:
    """The folder a batch's images go to under ``synthetic/``: its name with anything but letters,
    digits, '.', '_', '+' and '-' replaced, never empty and never a way out of ``synthetic/``."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", batch.strip()).strip("._")[:80]
    return safe or KEPT_BATCH


def load_sample_pixels(project: Project, sample: SyntheticSample) -> np.ndarray:
    from PIL import Image

    path = project.resolve_path(sample.path)
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except (OSError, ValueError) as exc:
        raise LesionStudioError(
            f"The synthetic image {path.name} of sample {sample.id} cannot be read ({exc}). "
            "Regenerate the sample."
        ) from exc
    return arr.astype(np.uint16) if arr.dtype != np.uint8 else arr


def keep_result(project: Project, result: SynthesisResult, image_id: int, model_id: int | None,
                kept_from: str = "synthesis panel") -> int:
    """Save a synthesized image as an ``accepted`` sample of batch :data:`KEPT_BATCH`, with its full
    provenance (source image and hash, window, model, n, seed, stochastic, where it was kept)."""
    provenance = {**result.provenance, "kept_from": kept_from, "image_id": image_id,
                  "source": {**result.provenance.get("source", {}), "image_id": image_id}}
    return save_synthetic_sample(project, result.image, source_image_id=image_id, window=result.window, n=result.n,
                                 seed=result.seed, model_id=model_id, provenance=provenance, status="accepted",
                                 batch=KEPT_BATCH)
