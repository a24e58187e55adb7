"""Where synthetic lesion images come from, behind one small interface.

``UnitSynthesizer`` is the paper's generator: a trained UNIT translator applied to normal windows,
alpha-blended with exponent n and pasted back (``lesion_studio.synthesis``). ``StubPainter`` is a
deterministic stand-in (a soft dark disc, like a lytic lesion on a bone-bright image) that lets the
protocol be tested in seconds and without a GAN; results made with it say so in their provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from lesion_studio.store.records import Box, ImageRecord
from lesion_studio.synthesis.blend import DEFAULT_BLEND

if TYPE_CHECKING:
    from lesion_studio.store.project import Project


@dataclass
class Candidate:
    image: np.ndarray  # full image, native dtype, lesion pasted in
    window: Box
    n: float
    seed: int
    provenance: dict[str, Any]


class Synthesizer(Protocol):
    identity: dict[str, Any]  # what makes its output (model id, hash, settings): part of cache keys
    model_id: int | None

    def windows(self, project: Project, record: ImageRecord, count: int, rng: np.random.Generator) -> list[Box]: ...

    def synthesize(self, radiograph: Any, window: Box, *, n: float, seed: int, stochastic: bool,
                   blend_mode: str = DEFAULT_BLEND, translation: str = "direct") -> Candidate: ...


def _fallback_windows(project: Project, record: ImageRecord, count: int, rng: np.random.Generator) -> list[Box]:
    """Normal patches picked in the project first, then squares near the image centre line."""
    picked = [p.box for p in project.normal_patches(record.id)]
    out = [picked[i % len(picked)] for i in range(min(count, len(picked)))]
    w, h = record.width, record.height
    side = max(16.0, min(w, h) / 6.0)
    while len(out) < count:
        cx = w / 2 + rng.uniform(-0.1, 0.1) * w
        cy = rng.uniform(0.25, 0.75) * h
        out.append(Box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2).clipped(w, h))
    return out


class StubPainter:
    """Darkens a soft disc in the window's centre (radius ~20% of the window side)."""

    VERSION = 1

    def __init__(self, strength: float = 0.45) -> None:
        self.strength = strength
        self.model_id = None
        self.identity = {"kind": "stub", "version": self.VERSION, "strength": strength}

    def windows(self, project: Project, record: ImageRecord, count: int, rng: np.random.Generator) -> list[Box]:
        return _fallback_windows(project, record, count, rng)

    def synthesize(self, radiograph: Any, window: Box, *, n: float, seed: int, stochastic: bool,
                   blend_mode: str = DEFAULT_BLEND, translation: str = "direct") -> Candidate:
        px = radiograph.pixels
        rng = np.random.default_rng(seed)
        x0, y0, x1, y1 = window.clipped(px.shape[1], px.shape[0]).as_ints()
        cx, cy = (x0 + x1) / 2 + rng.uniform(-0.1, 0.1) * (x1 - x0), (y0 + y1) / 2
        r = 0.2 * min(x1 - x0, y1 - y0) * rng.uniform(0.8, 1.2)
        yy, xx = np.mgrid[0:px.shape[0], 0:px.shape[1]]
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / max(r, 1.0)
        mask = np.clip(1.5 - d, 0.0, 1.0)  # 1 inside, soft edge over half a radius
        lo = float(np.percentile(px, 5))
        img = px.astype(np.float32)
        img = img - self.strength * mask * (img - lo)
        info = np.iinfo(px.dtype) if np.issubdtype(px.dtype, np.integer) else None
        out = np.clip(np.rint(img), info.min, info.max).astype(px.dtype) if info else img.astype(px.dtype)
        return Candidate(out, window, n, seed, {"generator": "stub-painter", **self.identity})


class UnitSynthesizer:
    """A registered UNIT model through the synthesis engine (translate, blend, paste back)."""

    def __init__(self, project: Project, model: int | str, *, backend: str = "auto") -> None:
        from lesion_studio.synthesis.pipeline import SourceWindowRule
        from lesion_studio.synthesis.translator import open_translator

        self.translator = open_translator(project, model, backend=backend)
        self.model_id = self.translator.model_id
        # Source windows are drawn as the generator's training windows were (SourceWindowRule).
        self.rule = SourceWindowRule(project.model(self.model_id) if self.model_id is not None else None)
        self.side_factors = self.rule.side_factors
        self.identity = {"kind": "unit", "model_id": self.model_id, "model_name": self.translator.model_name,
                         "sha256": self.translator.sha256, "side_factors": list(self.side_factors)}

    def windows(self, project: Project, record: ImageRecord, count: int, rng: np.random.Generator) -> list[Box]:
        """Normal patches picked on the image first (as the paper's users pick them), then sampled
        windows on tissue, sized like the generator's lesion training windows."""
        from lesion_studio.patches.sampling import patch_window
        from lesion_studio.synthesis.pipeline import sample_normal_windows

        picked = [patch_window(p.box, record.width, record.height) for p in project.normal_patches(record.id)]
        out = picked[:count]
        if len(out) < count:
            fractions, airs = self.rule.targets(project, record, rng)
            out += sample_normal_windows(project, record, count - len(out), rng,
                                         side_fractions=fractions if fractions.size else None, air_targets=airs)
        return out

    def synthesize(self, radiograph: Any, window: Box, *, n: float, seed: int, stochastic: bool,
                   blend_mode: str = DEFAULT_BLEND, translation: str = "direct") -> Candidate:
        from lesion_studio.synthesis.pipeline import synthesize_lesion

        res = synthesize_lesion(radiograph, window, self.translator, n=n, seed=seed, stochastic=stochastic,
                                blend_mode=blend_mode, translation=translation)
        prov = dict(res.provenance) if res.provenance else {}
        prov.setdefault("model_id", self.model_id)
        prov.setdefault("model_sha256", self.translator.sha256)
        return Candidate(res.image, res.window, res.n, res.seed, prov)

