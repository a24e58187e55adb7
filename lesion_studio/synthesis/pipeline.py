"""Lesion synthesis on one radiograph window: crop → normalise → translate → blend → paste back.

Split in two so the GUI's blending slider stays instant: :func:`translate_window` runs the
translator once and keeps the float patches (:class:`TranslatedWindow`, cacheable);
:meth:`SynthesisResult.reblend` only re-blends with a new n (α is cached per size and n), and the
full image is pasted lazily, on first access of ``.image``. Numpy + the translator only: no torch.

Blending happens in native units (float32), so a translated patch equal to its source gives back
the source exactly, and the result is rounded and clipped to the radiograph's value range and
dtype (8/10/12/16-bit stays 8/10/12/16-bit).
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from lesion_studio.errors import LesionStudioError
from lesion_studio.files import file_sha256
from lesion_studio.io.radiograph import Radiograph
from lesion_studio.jobs import CancelToken, EtaClock, ProgressCallback, ProgressEvent, no_progress
from lesion_studio.patches.intensity import from_unit_range_float, resize_patch, to_native, to_unit_range
from lesion_studio.patches.sampling import DEFAULT_SIDE_FACTORS, normal_windows, patch_window
from lesion_studio.store.records import Box, ImageRecord
from lesion_studio.synthesis.blend import DEFAULT_BLEND, DEFAULT_N, blend, paste_back
from lesion_studio.synthesis.translator import Translator, supports

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

log = logging.getLogger(__name__)

#: How a window becomes its translation (``translation`` of translate_window and everything above it):
#: ``direct`` (the paper): the window ← G_l(E_h(x)), made at the model's resolution and resized back
#: to the window, so the whole window carries the generator's blur and any brightness shift;
#: ``residual``: the window ← source + [G_l(E_h(x)) − G_h(E_h(x))], the residual resized to the window.
#: The normal decoder's reconstruction of the same code shares the translation's blur and bias, so
#: they cancel, and the source keeps its native-resolution texture. docs/synthesis.md measures both.
TRANSLATIONS = ("direct", "residual")
DEFAULT_TRANSLATION = "direct"


def check_translation(translation: str) -> str:
    if translation not in TRANSLATIONS:
        raise LesionStudioError(f"Unknown translation {translation!r}; use {' or '.join(TRANSLATIONS)}.")
    return translation


@lru_cache(maxsize=256)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    return file_sha256(path)


def file_sha256_cached(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return ""
    return _file_sha256(str(path), st.st_mtime_ns, st.st_size)


def _window_bounds(radiograph: Radiograph, window: Box) -> Box:
    """The window clipped to the image, as whole pixels; errors when nothing is left."""
    w = window.normalized()
    x0, y0, x1, y1 = w.as_ints()
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x1, radiograph.width), min(y1, radiograph.height)
    if cx1 - cx0 < 2 or cy1 - cy0 < 2:
        raise LesionStudioError(f"The window {tuple(round(v, 1) for v in window.as_tuple())} lies outside the "
                                f"{radiograph.width}×{radiograph.height} image {radiograph.path.name}.")
    return Box(float(cx0), float(cy0), float(cx1), float(cy1))


@dataclass
class TranslatedWindow:
    """The expensive part of a synthesis: the source window and its translation, as floats."""

    window: Box
    source_patch: np.ndarray  # native dtype, window-sized
    source_float: np.ndarray  # float32, native units
    translated_float: np.ndarray  # float32, native units, window-sized, clipped to the value range
    value_range: tuple[float, float]
    seed: int
    stochastic: bool
    direction: str
    model: dict[str, Any]
    source: dict[str, Any]
    translation: str = DEFAULT_TRANSLATION

    @cached_property
    def translated_patch(self) -> np.ndarray:
        return to_native(self.translated_float, self.value_range, self.source_patch.dtype)


@dataclass
class SynthesisResult:
    """One synthetic lesion: the patches, the blended full image and where it all came from.

    ``image`` is built on first access (it copies the whole radiograph); ``reblend(n)`` returns
    a new result for another n without running the translator again.
    """

    window: Box
    source_patch: np.ndarray
    translated_patch: np.ndarray
    blended_patch: np.ndarray
    n: float
    seed: int
    provenance: dict[str, Any]
    translated: TranslatedWindow = field(repr=False)
    base_image: np.ndarray = field(repr=False)
    blend_mode: str = DEFAULT_BLEND

    @cached_property
    def image(self) -> np.ndarray:
        """The full radiograph (native dtype) with the blended patch pasted in."""
        return paste_back(self.base_image, self.blended_patch, self.window)

    def reblend(self, n: float, mode: str | None = None) -> SynthesisResult:
        """The same translation blended with another n or mode (cheap: no translator call)."""
        return _blend_result(self.translated, self.base_image, n, self.blend_mode if mode is None else mode)


def _blend_result(tw: TranslatedWindow, base_image: np.ndarray, n: float,
                  mode: str = DEFAULT_BLEND) -> SynthesisResult:
    blended = to_native(blend(tw.source_float, tw.translated_float, n, mode), tw.value_range, tw.source_patch.dtype)
    provenance = {
        "source": tw.source, "window": list(tw.window.as_tuple()), "model": tw.model, "n": float(n),
        "blend": mode,
        "seed": tw.seed, "stochastic": tw.stochastic, "direction": tw.direction, "translation": tw.translation,
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    return SynthesisResult(window=tw.window, source_patch=tw.source_patch, translated_patch=tw.translated_patch,
                           blended_patch=blended, n=float(n), seed=tw.seed, provenance=provenance,
                           translated=tw, base_image=base_image, blend_mode=mode)


def translate_window(radiograph: Radiograph, window: Box, translator: Translator, *, seed: int = 0,
                     stochastic: bool = False, direction: str = "h2l",
                     translation: str = DEFAULT_TRANSLATION) -> TranslatedWindow:
    """Translate one window of ``radiograph`` (clipped to the image) at the model's resolution.

    Square windows are best: the window is resized to the model's square input and back.
    ``translation`` (``TRANSLATIONS``) applies to h2l: ``residual`` adds the translator's residual
    to the native-resolution source instead of replacing the window with the resized translation.
    """
    check_translation(translation)
    residual = translation == "residual" and direction == "h2l"
    if residual and not supports(translator, "h2l_residual"):
        log.info("%s was exported before residual translation: translating directly",
                 getattr(translator, "model_name", "the model"))
        residual = False
    win = _window_bounds(radiograph, window)
    x0, y0, x1, y1 = win.as_ints()
    native = radiograph.pixels[y0:y1, x0:x1]
    vr = (float(radiograph.value_range[0]), float(radiograph.value_range[1]))
    unit = to_unit_range(native, vr)
    size = int(translator.resolution)
    x = resize_patch(unit, size, size)[None, None]
    y = np.asarray(translator.translate(x, stochastic=stochastic, seed=seed,
                                        direction="h2l_residual" if residual else direction), np.float32)
    if y.shape != x.shape:
        raise LesionStudioError(f"The translator returned {y.shape} for input {x.shape}.")
    back = resize_patch(y[0, 0], y1 - y0, x1 - x0)
    source_float = native.astype(np.float32)
    if residual:  # the residual is in [-1, 1] units: half the value range per unit
        lo, hi = vr
        translated = np.clip(source_float + back * np.float32((hi - lo) / 2.0), lo, hi).astype(np.float32)
    else:
        translated = from_unit_range_float(back, vr)
    path = Path(radiograph.path)
    return TranslatedWindow(
        window=win, source_patch=native.copy(), source_float=source_float,
        translated_float=translated, value_range=vr, seed=int(seed),
        stochastic=bool(stochastic), direction=direction, translation="residual" if residual else "direct",
        model={"id": translator.model_id, "name": translator.model_name, "sha256": translator.sha256,
               "resolution": size, "backend": getattr(translator, "backend", "")},
        source={"sha256": file_sha256_cached(path), "bits_stored": radiograph.bits_stored,
                "value_range": list(vr), "display_window": [float(v) for v in radiograph.window]},
    )


def synthesize_lesion(radiograph: Radiograph, window: Box, translator: Translator, *, n: float = DEFAULT_N,
                      seed: int = 0, stochastic: bool = False, blend_mode: str = DEFAULT_BLEND,
                      translation: str = DEFAULT_TRANSLATION) -> SynthesisResult:
    """Paint a lesion into ``window`` of ``radiograph``: translate, blend with exponent n, paste back."""
    tw = translate_window(radiograph, window, translator, seed=seed, stochastic=stochastic, translation=translation)
    return _blend_result(tw, radiograph.pixels, n, blend_mode)


# ---------------------------------------------------------------------------- source windows
def lesion_side_fractions(project: Project, body_parts: Sequence[str] | None,
                          side_factors: tuple[float, float] = DEFAULT_SIDE_FACTORS) -> np.ndarray:
    """Relative window sides (÷ image's shorter side) the lesion windows of these body parts have.

    Computed from box sizes and the side-factor range without decoding any image.
    """
    fractions = []
    factors = np.linspace(side_factors[0], side_factors[1], 3)
    for rec in project.images(label="lesion", body_parts=list(body_parts) if body_parts else None,
                              include_excluded=False):
        short = max(1, min(rec.width, rec.height))
        for b in project.boxes(rec.id):
            fractions.extend(max(b.box.width, b.box.height) * f / short for f in factors)
    return np.clip(np.array(fractions, dtype=np.float64), 0.01, 1.0)


def sample_normal_windows(project: Project, image: ImageRecord, count: int, rng: np.random.Generator, *,
                          radiograph: Radiograph | None = None, side_fractions: Sequence[float] | None = None,
                          min_tissue: float = 0.7, air_targets: Sequence[float] | None = None) -> list[Box]:
    """``count`` windows on tissue in ``image`` (may be fewer), sized like the project's lesion windows.

    Sizes follow the lesion boxes of the image's body part (all body parts when it has none);
    windows avoid the image's own lesion boxes and skip air and burned-in text. ``air_targets``
    (one per side fraction) matches each window's air share instead (``patches.sampling.normal_windows``).
    """
    if side_fractions is None:
        fractions = lesion_side_fractions(project, [image.body_part]) if image.body_part else np.array([])
        if fractions.size == 0:
            fractions = lesion_side_fractions(project, None)
        if fractions.size == 0:
            raise LesionStudioError("The project has no lesion boxes yet, so there is no lesion size to match. "
                                    "Draw a few lesion boxes, or pick the windows yourself.")
    else:
        fractions = np.asarray(side_fractions, dtype=np.float64)
    rg = radiograph if radiograph is not None else project.open_radiograph(image.id)
    avoid = [b.box for b in project.boxes(image.id)]
    return normal_windows(rg.pixels, count, rng, fractions, avoid=avoid, min_tissue=min_tissue,
                          air_targets=air_targets)


class SourceWindowRule:
    """How a generator's source windows are drawn, read from its registry record.

    Windows are sized like the windows the generator trained on (its side factors around the
    project's lesion boxes). A generator trained on air-matched normal windows (``normal_match:
    air``) saved its lesion windows' sizes and air shares (``data.lesion_windows``): on the body
    parts it trained on, sizes and air shares are drawn together from them, as its normal training
    windows were; on another part (transfer) that part's lesion sizes are used with air shares
    drawn from the generator's windows. Older models: sizes only. One rule serves the experiment
    runner and batch generation alike.
    """

    def __init__(self, record: Any = None) -> None:
        config = (getattr(record, "config", None) or {}) if record is not None else {}
        data = ((getattr(record, "metadata", None) or {}) if record is not None else {}).get("data") or {}
        self.side_factors = tuple(float(f) for f in config.get("side_factors") or DEFAULT_SIDE_FACTORS)
        stats = data.get("lesion_windows") if config.get("normal_match") == "air" else None
        self.stats = stats if stats and stats.get("air_fractions") else None
        self.parts = set((data.get("lesion") or {}).get("body_parts") or {})
        self._sizes: dict[str, np.ndarray] = {}  # per body part: one registry query each

    def targets(self, project: Project, image: ImageRecord,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """(side fractions, air shares or None) to draw ``image``'s source windows from."""
        if self.stats is not None and image.body_part in self.parts:
            return (np.asarray(self.stats["side_fractions"], float), np.asarray(self.stats["air_fractions"], float))
        part = image.body_part or ""
        if part not in self._sizes:
            own = lesion_side_fractions(project, [part], self.side_factors) if part else np.array([])
            self._sizes[part] = own if own.size else lesion_side_fractions(project, None, self.side_factors)
        fractions = self._sizes[part]
        if self.stats is None or fractions.size == 0:
            return fractions, None
        return fractions, rng.choice(np.asarray(self.stats["air_fractions"], float), size=fractions.size)


def normal_patch_sources(project: Project, body_parts: Sequence[str] | None = None,
                         split: str | None = None) -> list[tuple[ImageRecord, Box]]:
    """(image, square window) for every picked normal patch on a non-excluded normal image."""
    out = []
    for rec in project.images(label="normal", body_parts=list(body_parts) if body_parts else None,
                              split=split, include_excluded=False):
        for patch in project.normal_patches(rec.id):
            out.append((rec, patch_window(patch.box, rec.width, rec.height)))
    return out


class RadiographSource(Protocol):
    """Where :func:`synthesize_many` reads source images: a project, or a cache in front of one."""

    def open_radiograph(self, image_id: int) -> Radiograph: ...


def synthesize_many(project: RadiographSource, translator: Translator, sources: Sequence[tuple[ImageRecord, Box]], *,
                    n: float = DEFAULT_N, seed: int = 0, stochastic: bool = False, blend_mode: str = DEFAULT_BLEND,
                    translation: str = DEFAULT_TRANSLATION, progress: ProgressCallback = no_progress,
                    cancel: CancelToken | None = None) -> Iterator[tuple[ImageRecord, SynthesisResult]]:
    """Synthesize a lesion in each (image, window); yields as it goes (batch synthesis, CLI, GUI).

    The seed of source k is ``seed + k`` so every sample is reproducible on its own.
    """
    clock = EtaClock(len(sources))
    for k, (rec, window) in enumerate(sources):
        if cancel is not None:
            cancel.raise_if_cancelled("Batch synthesis")
        rg = project.open_radiograph(rec.id)
        result = synthesize_lesion(rg, window, translator, n=n, seed=seed + k, stochastic=stochastic,
                                   blend_mode=blend_mode, translation=translation)
        result.provenance["source"]["image_id"] = rec.id
        yield rec, result
        progress(ProgressEvent("synthesize", k + 1, len(sources), rec.name, eta_s=clock.eta(k + 1)))
