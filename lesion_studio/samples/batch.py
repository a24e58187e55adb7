"""Batch synthesis of candidate samples for vetting: sources → translate → blend → save → score.

One job, two faces: ``lesion-studio synthesize`` and the GUI's vetting gallery both call
:func:`generate_candidates`. Every candidate is saved with its provenance as a synthetic sample
with status ``candidate`` in a named batch; the researcher (gallery) or the experiment's
threshold then turns candidates into ``accepted`` or ``rejected`` samples, and
``project.synthetic_samples(status="accepted")`` is what augmented training takes.

Why the choices:

* n is drawn per candidate, log-uniformly in ``n_range`` (seeded): the blend exponent acts on a
  log scale (n = 1 and n = 2 differ far more than n = 8 and n = 9), so a log-uniform draw spreads
  the candidates evenly over how the blend looks.
* Translation is stochastic by default (seed per candidate): when there are fewer sources than
  candidates, each source is reused with another latent sample rather than copied.
* Sources are grouped per image and each image is decoded once (a 12-bit DICOM takes longer to
  decode than a tiny translator takes to run).
* Scoring uses the classifier's ONNX export (numpy + onnxruntime, no torch), the same scorer the
  experiment and ``lesion-studio score`` use; a missing export is made once (that needs torch).
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lesion_studio.errors import JobCancelled, LesionStudioError
from lesion_studio.jobs import CancelToken, EtaClock, ProgressCallback, ProgressEvent, no_progress
from lesion_studio.samples.storage import save_synthetic_sample
from lesion_studio.store.project import Project
from lesion_studio.store.records import Box, ImageRecord
from lesion_studio.synthesis.blend import DEFAULT_N
from lesion_studio.synthesis.pipeline import (
    DEFAULT_TRANSLATION,
    SourceWindowRule,
    lesion_side_fractions,
    normal_patch_sources,
    sample_normal_windows,
    synthesize_many,
)
from lesion_studio.synthesis.translator import Translator, open_translator

log = logging.getLogger(__name__)

SOURCE_KINDS = ("patches", "sampled")
#: ``scorer(project, sample_ids, progress=, cancel=) -> scores`` (one lesion probability per id).
Scorer = Callable[..., Sequence[float]]


@dataclass
class BatchResult:
    """What a batch made: the sample ids (in generation order) and their scores when scored."""

    batch: str
    sample_ids: list[int] = field(default_factory=list)
    scores: dict[int, float] = field(default_factory=dict)
    model: str = ""
    classifier: str | None = None
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def count(self) -> int:
        return len(self.sample_ids)


# ---------------------------------------------------------------------------- small pieces
def draw_n(rng: np.random.Generator, n_range: tuple[float, float], count: int) -> np.ndarray:
    """``count`` blending exponents, log-uniform in ``n_range`` (inclusive)."""
    lo, hi = float(n_range[0]), float(n_range[1])
    if not (0 < lo <= hi):
        raise LesionStudioError(f"The n range must be two positive numbers, low ≤ high, not {lo:g},{hi:g}.")
    if lo == hi:
        return np.full(count, lo)
    return np.exp(rng.uniform(math.log(lo), math.log(hi), count))


def default_batch_name(model_name: str) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return safe_batch_name(f"{stamp}-{model_name}")


def safe_batch_name(name: str) -> str:
    """Batch names are also folder names under ``<project>/synthetic``."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name.strip()).strip("._")
    if not safe:
        raise LesionStudioError("A batch needs a name made of letters, digits, '.', '_', '+' or '-'.")
    return safe[:80]


class _DecodeOnce:
    """The project with ``open_radiograph`` remembering the last image (sources come grouped)."""

    def __init__(self, project: Project) -> None:
        self._project = project
        self._last: tuple[int, Any] | None = None

    def open_radiograph(self, image_id: int) -> Any:
        if self._last is None or self._last[0] != image_id:
            self._last = (image_id, self._project.open_radiograph(image_id))
        return self._last[1]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._project, name)


def _source_images(project: Project, body_parts: Sequence[str] | None, split: str | None) -> list[ImageRecord]:
    return project.images(label="normal", body_parts=list(body_parts) if body_parts else None, split=split,
                          include_excluded=False)


def plan_sources(project: Project, kind: str, count: int, rng: np.random.Generator, *,
                 body_parts: Sequence[str] | None = None, split: str | None = None,
                 decoder: _DecodeOnce | None = None,
                 rule: SourceWindowRule | None = None) -> Iterable[tuple[ImageRecord, list[Box]]]:
    """(image, windows) groups adding up to ``count`` windows (fewer only when nothing is left).

    ``patches``: the picked normal patches, in a seeded order, reused round-robin when there are
    fewer patches than candidates. ``sampled``: windows drawn on the normal images' tissue, sized
    like the project's lesion windows, spread evenly over the images (a seeded order); ``rule``
    (the generator's :class:`SourceWindowRule`) draws them as its training windows were drawn.
    Lazy for ``sampled`` so each image is decoded once, when its windows are drawn.
    """
    if kind not in SOURCE_KINDS:
        raise LesionStudioError(f"Unknown source kind {kind!r}; use {' or '.join(SOURCE_KINDS)}.")
    if count <= 0:
        return
    where = (f" for {', '.join(body_parts)}" if body_parts else "") + (f" in the {split} split" if split else "")
    if kind == "patches":
        sources = normal_patch_sources(project, body_parts, split)
        if not sources:
            raise LesionStudioError(f"There are no picked normal patches{where} (on non-excluded normal images). "
                                    "Pick some with the normal patch tool (N), or use sampled windows.")
        order = [int(i) for i in rng.permutation(len(sources))]
        picks = [sources[order[k % len(order)]] for k in range(count)]
        by_image: dict[int, tuple[ImageRecord, list[Box]]] = {}
        for rec, window in picks:
            by_image.setdefault(rec.id, (rec, []))[1].append(window)
        yield from by_image.values()
        return
    images = _source_images(project, body_parts, split)
    if not images:
        raise LesionStudioError(f"There are no non-excluded normal images{where} to synthesize into.")
    rule = rule or SourceWindowRule()
    if lesion_side_fractions(project, None).size == 0:
        raise LesionStudioError("The project has no lesion boxes yet, so there is no lesion size to match. "
                                "Draw a few lesion boxes, or use picked normal patches.")
    order = [images[int(i)] for i in rng.permutation(len(images))]
    per_image = max(1, math.ceil(count / len(order)))
    left = count
    for rec in order:
        if left <= 0:
            return
        try:
            rg = (decoder or project).open_radiograph(rec.id)
        except LesionStudioError as exc:
            log.warning("skipping %s: %s", rec.name, exc)
            continue
        fractions, airs = rule.targets(project, rec, rng)
        windows = sample_normal_windows(project, rec, min(per_image, left), rng, radiograph=rg,
                                        side_fractions=fractions, air_targets=airs)
        if windows:
            left -= len(windows)
            yield rec, windows


# ---------------------------------------------------------------------------- scoring
def score_samples(project: Project, sample_ids: Sequence[int], classifier: int | str, *,
                  progress: ProgressCallback = no_progress, cancel: CancelToken | None = None) -> list[float]:
    """Lesion probabilities of synthetic samples with a registered classifier (stored on them too)."""
    from lesion_studio.classifier.scoring import registered_scorer, score_synthetic

    scorer, _record = registered_scorer(project, classifier)
    samples = [project.synthetic_sample(i) for i in sample_ids]
    return score_synthetic(project, samples, scorer, progress=progress, cancel=cancel)


# ---------------------------------------------------------------------------- the job
def _new_batch(project: Project, batch_name: str | None, model_name: str) -> str:
    """The batch's name: the one asked for (refused if taken), else one that never collides, even
    for two batches started in the same second."""
    if batch_name:
        batch = safe_batch_name(batch_name)
        if project.synthetic_samples(batch=batch):
            raise LesionStudioError(f"The batch {batch!r} already exists; choose another name.")
        return batch
    stem = batch = default_batch_name(model_name)
    suffix = 1
    while project.synthetic_samples(batch=batch):
        suffix += 1
        batch = f"{stem}-{suffix}"
    return batch


def _score(project: Project, result: BatchResult, classifier: int | str | None, scorer: Scorer | None,
           progress: ProgressCallback, cancel: CancelToken | None) -> None:
    """Score a batch's candidates with a registered classifier or a scorer, and store the scores."""
    def scoring_progress(event: ProgressEvent) -> None:
        progress(ProgressEvent("score", event.done, event.total, "scoring candidates"))

    if scorer is not None:
        scores = list(scorer(project, list(result.sample_ids), progress=scoring_progress, cancel=cancel))
        for sid, s in zip(result.sample_ids, scores, strict=True):
            project.update_synthetic_sample(sid, score=float(s))
        result.classifier = getattr(scorer, "name", "custom scorer")
    else:
        assert classifier is not None
        scores = score_samples(project, result.sample_ids, classifier, progress=scoring_progress, cancel=cancel)
        result.classifier = project.model(classifier).name
    result.scores = {sid: float(s) for sid, s in zip(result.sample_ids, scores, strict=True)}


def generate_candidates(
    project: Project,
    model: int | str | Any,
    *,
    count: int,
    sources: str = "patches",
    body_parts: Sequence[str] | None = None,
    split: str | None = None,
    n_range: tuple[float, float] = (DEFAULT_N, DEFAULT_N),
    seed: int = 0,
    stochastic: bool = True,
    translation: str = DEFAULT_TRANSLATION,
    classifier: int | str | None = None,
    scorer: Scorer | None = None,
    batch_name: str | None = None,
    backend: str = "auto",
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> BatchResult:
    """Make ``count`` candidate samples with a UNIT model and save them (status ``candidate``).

    ``model`` is a registered UNIT model (name or id) or a ready translator. With ``classifier``
    (a registered DRN) or a ``scorer`` callable, the candidates are scored afterwards and the
    scores stored. Cancelling keeps the candidates made so far; they are scored too, so a cut-short
    batch is still a usable one, and then raises ``JobCancelled`` with the result (``cancelled``
    set) as ``partial``: the one cancel contract of long jobs.
    """
    t0 = time.perf_counter()
    if count < 1:
        raise LesionStudioError("Ask for at least one candidate.")
    translator = model if isinstance(model, Translator) else open_translator(project, model, backend=backend)
    batch = _new_batch(project, batch_name, translator.model_name)
    rng = np.random.default_rng(seed)
    ns = draw_n(np.random.default_rng([seed, 1]), n_range, count)
    result = BatchResult(batch=batch, model=translator.model_name)
    decoder = _DecodeOnce(project)
    clock = EtaClock(count)
    settings = {"batch": batch, "sources": sources, "n_range": [float(n_range[0]), float(n_range[1])],
                "batch_seed": seed, "body_parts": list(body_parts or []), "split": split}
    try:
        rule = SourceWindowRule(project.model(translator.model_id) if translator.model_id is not None else None)
        for rec, windows in plan_sources(project, sources, count, rng, body_parts=body_parts, split=split,
                                         decoder=decoder, rule=rule):
            k0 = len(result.sample_ids)
            made = synthesize_many(decoder, translator, [(rec, w) for w in windows], n=float(ns[k0]),
                                   seed=seed + k0, stochastic=stochastic, translation=translation, cancel=cancel)
            for j, (_rec, first) in enumerate(made):
                k = k0 + j
                res = first if j == 0 else first.reblend(float(ns[k]))
                prov = {**res.provenance, "batch_settings": settings}
                prov["source"] = {**prov.get("source", {}), "image_id": rec.id}
                sid = save_synthetic_sample(project, res.image, source_image_id=rec.id, window=res.window,
                                            n=res.n, seed=res.seed, model_id=translator.model_id,
                                            provenance=prov, status="candidate", batch=batch)
                result.sample_ids.append(sid)
                progress(ProgressEvent("synthesize", k + 1, count, rec.name, eta_s=clock.eta(k + 1)))
    except JobCancelled:
        result.cancelled = True
    if not result.sample_ids:
        if result.cancelled:
            raise JobCancelled("Batch synthesis")
        raise LesionStudioError("No candidate could be made (no tissue found for sampled windows?).")
    if classifier is not None or scorer is not None:
        # a cancelled batch is still scored in full: a cut-short batch stays a usable one
        _score(project, result, classifier, scorer, progress, None if result.cancelled else cancel)
    result.seconds = time.perf_counter() - t0
    log.info("batch %s: %d candidates in %.1f s%s", batch, result.count, result.seconds,
             " (cancelled)" if result.cancelled else "")
    if result.cancelled:
        raise JobCancelled("Batch synthesis", partial=result)
    return result

