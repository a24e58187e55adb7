"""A live preview session: translate one window in the background, keep only what is still wanted,
and re-blend without translating again. Qt-free; the Synthesis panel is its view.

Why it is built this way:

* Each request carries a generation number. Moving the window twice quickly makes the first
  request stale: its result is dropped when it arrives (:meth:`PreviewSession.accept`), so the
  view never shows a window the user has left.
* Changing n or the blend mode only re-blends (:meth:`PreviewSession.reblend`): the translation
  is kept, so dragging the n slider stays within a frame.
* Translators are cached per (model id, sha256) (:class:`TranslatorCache`): switching back to a
  model is instant, and retraining it under the same name (a new hash) loads the new one. A
  translator is loaded from the model's record and the project folder only, so the worker thread
  needs no database connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lesion_studio.synthesis.blend import DEFAULT_BLEND, DEFAULT_N
from lesion_studio.synthesis.pipeline import DEFAULT_TRANSLATION, SynthesisResult, synthesize_lesion

if TYPE_CHECKING:
    from lesion_studio.io.radiograph import Radiograph
    from lesion_studio.store.records import Box, ModelRecord
    from lesion_studio.synthesis.translator import Translator

#: The blending exponents a preview offers (the panel's slider spans them on a log scale).
N_MIN, N_MAX = 0.25, 16.0


@dataclass(frozen=True)
class PreviewRequest:
    """What one translation is for; ``generation`` says whether it is still wanted on arrival."""

    generation: int
    image_id: int
    model_id: int
    window: Box
    seed: int
    stochastic: bool
    translation: str = DEFAULT_TRANSLATION  # synthesis.pipeline.TRANSLATIONS

    def same_work(self, other: PreviewRequest | None) -> bool:
        """Whether ``other`` asks for the same translation (whatever its generation)."""
        return other is not None and replace(other, generation=self.generation) == self


@dataclass
class Translation:
    request: PreviewRequest
    result: SynthesisResult
    seconds: float
    device: str


class TranslatorCache:
    """Loaded translators per (model id, sha256); loads happen on the worker thread."""

    def __init__(self, loader: Callable[..., Translator] | None = None) -> None:
        if loader is None:
            from lesion_studio.synthesis.translator import load_translator

            loader = load_translator
        self.loader = loader
        self._items: dict[tuple[int, str], Translator] = {}
        self._lock = threading.Lock()

    def get(self, model: ModelRecord, folder: Path) -> Translator:
        key = (model.id, model.sha256)
        with self._lock:
            if key not in self._items:
                self._items[key] = self.loader(model, folder, backend="auto")
            return self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def device_text(translator: Any) -> str:
    """Where a translator runs, in two words ("onnx CPU", "onnx GPU", "torch")."""
    providers = getattr(translator, "providers", None)
    if providers:
        return f"onnx {'GPU' if providers[0].startswith('CUDA') else 'CPU'}"
    return str(getattr(translator, "backend", "") or "translator")


def translate(folder: Path, cache: TranslatorCache, model: ModelRecord, rg: Radiograph, req: PreviewRequest,
              n: float, blend_mode: str = DEFAULT_BLEND) -> Translation:
    """Load (cached) and translate one window (numpy + onnxruntime, no torch): the worker's job."""
    translator = cache.get(model, folder)
    t0 = time.perf_counter()
    result = synthesize_lesion(rg, req.window, translator, n=n, seed=req.seed, stochastic=req.stochastic,
                               translation=req.translation, blend_mode=blend_mode)
    result.provenance["source"]["image_id"] = req.image_id
    return Translation(req, result, time.perf_counter() - t0, device_text(translator))


class PreviewSession:
    """The state of one live preview: the request still wanted, the translation shown, the blend."""

    def __init__(self, folder: Path, cache: TranslatorCache | None = None) -> None:
        self.folder = folder
        self.cache = cache or TranslatorCache()
        self.generation = 0
        self.wanted: PreviewRequest | None = None
        self.translation: Translation | None = None
        self.result: SynthesisResult | None = None  # the translation blended with the current n and mode
        self.n = DEFAULT_N
        self.blend_mode = DEFAULT_BLEND
        self.stale_dropped = 0  # results that arrived for a request no longer wanted
        self.last_reblend_s = 0.0

    def want(self, request: PreviewRequest) -> PreviewRequest:
        """``request`` under a new generation; anything asked before it is stale from now on."""
        self.generation += 1
        self.wanted = replace(request, generation=self.generation)
        return self.wanted

    def outdate(self) -> None:
        """Nothing in flight is wanted any more (the window, image or model went away)."""
        self.generation += 1
        self.wanted = None

    def clear(self) -> None:
        self.outdate()
        self.translation = self.result = None

    def shows(self, request: PreviewRequest) -> bool:
        """Whether the translation shown is already the one ``request`` asks for."""
        return self.translation is not None and request.same_work(self.translation.request)

    def work(self, request: PreviewRequest, model: ModelRecord, rg: Radiograph) -> Callable[[], Translation]:
        """The worker's job for ``request`` (it runs off the GUI thread; it touches no state here)."""
        folder, cache, n, mode = self.folder, self.cache, self.n, self.blend_mode
        return lambda: translate(folder, cache, model, rg, request, n, mode)

    def accept(self, value: Translation) -> bool:
        """Keep an arrived translation if it is still the one wanted; count it as stale otherwise."""
        if self.wanted is None or value.request != self.wanted:
            self.stale_dropped += 1
            return False
        self.translation = value
        result = value.result
        same = abs(result.n - self.n) < 1e-9 and result.blend_mode == self.blend_mode
        self.result = result if same else result.reblend(self.n, self.blend_mode)
        return True

    def reblend(self, n: float | None = None, blend_mode: str | None = None) -> SynthesisResult | None:
        """Blend the kept translation with a new n and/or mode (never translates again)."""
        self.n = float(min(max(self.n if n is None else n, N_MIN), N_MAX))
        self.blend_mode = blend_mode or self.blend_mode
        if self.result is None or self.translation is None:
            return None
        t0 = time.perf_counter()
        self.result = self.result.reblend(self.n, self.blend_mode)
        self.last_reblend_s = time.perf_counter() - t0
        return self.result
