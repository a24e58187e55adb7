"""What the Training panel shows, decided without Qt: defaults, estimates, progress and outcomes.

The panel (:mod:`lesion_studio.gui.panels.training`) is layout and wiring; the decisions live here
as plain functions and data, so they are unit-tested without a window (tests/test_presenters.py).
The work itself is the core's (:mod:`lesion_studio.training.runs`).

Before Start the panel shows the run's estimated time and disk use: from the rate and size measured
on this machine for the same kind, preset and device (stored after every run), else from reference
measurements (:data:`REFERENCE`). A GAN's estimate includes preparing its patches (a second start
on unchanged data loads them cached: :mod:`lesion_studio.patches.set_cache`). A classifier's comes
from its images/s for that network, input size and device, measured by an earlier run or, before
the first, by a few timed steps in a background job (:mod:`lesion_studio.training.estimates`); a
warm start adds its training images times its epochs.
What these read from the database is read once per form setting (:class:`FormEstimates`). The
default run is chosen by device: on a CPU it finishes in minutes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lesion_studio.classifier.config import PRESETS as CLASSIFIER_PRESETS
from lesion_studio.jobs import ProgressEvent
from lesion_studio.training import estimates, unit_config
from lesion_studio.training.runs import TrainingRequest, quality_history, run_history

if TYPE_CHECKING:
    from lesion_studio.store.project import Project

log = logging.getLogger(__name__)

# The trainers' presets as the form shows them, read from the torch-free config modules:
# name → run length (GAN iterations), name → (epochs, input size) for the classifier.
UNIT_PRESETS: dict[str, int] = {name: unit_config.preset_config(name).iterations for name in unit_config.PRESETS}
DRN_PRESETS: dict[str, tuple[int, int]] = {k: (v["epochs"], v["input_size"]) for k, v in CLASSIFIER_PRESETS.items()}
#: The classifier preset a new form starts from: the box-supervised detector that measured best on a
#: 2-core CPU (docs/experiments.md). ``cpu``, the paper's image-level DRN-D-22 at 160 px, costs
#: several times as much a step and learns nothing from the boxes the user drew.
DEFAULT_DRN_PRESET = "cpu-map"
#: The GAN run a CPU gets by default: the ``fast`` network for minutes, not the GPU's hours.
CPU_DEFAULT_ITERATIONS = 300
#: Reference measurements (2 CPU cores; one H200), per (kind, preset, lane): seconds per iteration
#: or epoch, and bytes written. The GAN figures: docs/synthesis.md and docs/experiments.md; sizes:
#: the model folder (weights, checkpoint with optimiser state, ONNX). Rates measured on this
#: machine replace them (QSettings "training/rate/...").
REFERENCE: dict[tuple[str, str, str], tuple[float, int]] = {
    ("unit", "tiny", "cpu"): (0.3, 14_000_000),
    ("unit", "fast", "cpu"): (1.03, 76_000_000),
    ("unit", "paper", "cpu"): (40.0, 1_200_000_000),
    ("unit", "tiny", "cuda"): (0.05, 14_000_000),
    ("unit", "fast", "cuda"): (0.102, 76_000_000),
    ("unit", "paper", "cuda"): (0.133, 1_200_000_000),
}
UNIT_SPLITS = {"train + unassigned": ("train", "unassigned"), "train only": ("train",)}
DEVICES = (("Auto", "auto"), ("CPU", "cpu"), ("GPU (CUDA)", "cuda"))
HIDDEN_LOSSES = {"total"}  # the weighted sum dwarfs the terms it adds up; it is in the status line instead
KINDS = (("GAN (UNIT) — lesion ↔ normal translator", "unit"), ("Classifier (DRN) — lesion / normal", "drn"))

QUALITY_TIP = ("Measured on validation windows the GAN never trains on. realism AUC: a classifier telling real "
               "from synthetic lesion windows (0.5 = indistinguishable, lower is better); realism, untouched: the "
               "same test on the source windows left as they were, the floor a generator starts from. lesion "
               "rate: synthetic "
               "windows a patch classifier calls lesion, as a fraction of the real-lesion rate (higher is better). "
               "drift: brightness/contrast change around the lesion core (the dark-square failure; lower is better).")


# ---------------------------------------------------------------------------- words
def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min" if minutes >= 10 else f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s left"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s left"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min left"


def suggest_name(kind: str, body_parts: list[str], preset: str) -> str:
    return f"{'unit' if kind == 'unit' else 'drn'}-{'+'.join(body_parts) or 'all'}-{preset}"


# ---------------------------------------------------------------------------- form defaults
def default_length(preset: str, lane: str) -> int:
    """A GAN preset's run length; on a CPU the ``fast`` GAN gets minutes, not the GPU's hours."""
    if preset == "fast" and lane == "cpu":
        return CPU_DEFAULT_ITERATIONS
    return UNIT_PRESETS[preset]


def is_default_length(length: int) -> bool:
    """Whether a ``fast`` GAN length is still one of the defaults (then it follows the device)."""
    return length in {CPU_DEFAULT_ITERATIONS, UNIT_PRESETS["fast"]}


def estimate(kind: str, preset: str, lane: str, length: int, stored_rate: Any = None,
             stored_disk: Any = None) -> tuple[float, int, str] | None:
    """(seconds, bytes, source) for a run, or None when nothing is known yet. ``stored_*`` are the
    rate (seconds per step) and size measured here earlier, as settings hand them back (text)."""
    ref = REFERENCE.get((kind, preset, lane))
    try:
        rate = float(stored_rate) if stored_rate is not None else None
        disk = int(stored_disk) if stored_disk is not None else None
    except (TypeError, ValueError):
        rate = disk = None
    source = "measured here"
    if rate is None:
        if ref is None:
            return None
        rate, source = ref[0], "reference measurement"
    if disk is None:
        disk = ref[1] if ref is not None else 0
    return rate * length, disk, source


def estimate_text(kind: str, lane: str, est: tuple[float, int, str] | None, prep: Any = None,
                  probing: bool = False) -> str:
    """The form's estimate line; ``prep`` is a GAN's patch preparation, ``probing`` says a
    classifier's steps are being timed."""
    where = "GPU" if lane == "cuda" else "CPU"
    if est is None:
        if kind == "drn" and probing:
            return f"Timing a few training steps on the {where}…"
        return f"Measured after the first {'epoch' if kind == 'drn' else 'steps'} on the {where} (no stored rate yet)."
    seconds, disk, source = est
    text = f"About {format_duration(seconds)} on the {where}"
    if prep is not None:
        text += (f" (patches of {prep.images:,} images cached)" if prep.cached else
                 f" (with about {format_duration(prep.seconds)} preparing patches of {prep.images:,} images)")
    text += f", {format_bytes(disk)} on disk" if disk else ""
    return f"{text} ({source})."


class FormEstimates:
    """The estimates that read the project: a GAN's patch preparation and a classifier's workload,
    each read once per form setting until :meth:`forget` (the project's images or regions
    changed: reading them takes ~0.1 s on FracAtlas, too slow for every click of the length box),
    and the classifier rates kept in the app's settings (``get`` / ``put``)."""

    def __init__(self, project: Project, get: Callable[[str], Any], put: Callable[[str, Any], None]) -> None:
        self.project = project
        self.rates = estimates.ClassifierRates(get, put)
        self._get = get
        self._memos: dict[tuple, Any] = {}

    def forget(self, *_changed: Any) -> None:
        self._memos.clear()  # re-read at the next estimate, not on each edit

    def _memo(self, key: tuple, compute: Callable[[], Any]) -> Any:
        if key not in self._memos:
            try:
                self._memos[key] = compute()
            except Exception:  # noqa: BLE001 - an estimate never breaks the form
                log.debug("no estimate for %s", key, exc_info=True)
                self._memos[key] = None
        return self._memos[key]

    def preparation(self, request: TrainingRequest) -> Any:
        """A GAN run's patch preparation (:class:`~lesion_studio.patches.set_cache.PreparationEstimate`);
        None for a classifier or when it cannot be told."""
        from lesion_studio.patches.set_cache import preparation_estimate

        if request.kind != "unit":
            return None

        def compute() -> Any:
            cfg = request.unit_config()
            return preparation_estimate(self.project, body_parts=cfg.body_parts or None, splits=cfg.splits or None,
                                        params=cfg.patch_params())
        return self._memo(("unit", request.preset, request.body_parts, request.splits,
                           repr(sorted(request.overrides.items()))), compute)

    def estimate(self, request: TrainingRequest, lane: str) -> tuple[float, int, str] | None:
        """(seconds, bytes, source) for ``request`` on ``lane``, or None when nothing is known yet."""
        if request.kind == "drn":
            return self._classifier_estimate(request, lane)
        kind, preset = request.kind, request.preset
        est = estimate(kind, preset, lane, request.length, self._get(f"training/rate/{kind}/{preset}/{lane}"),
                       self._get(f"training/disk/{kind}/{preset}"))
        prep = self.preparation(request)
        return est if est is None or prep is None else (est[0] + prep.seconds, est[1], est[2])

    def _classifier_estimate(self, request: TrainingRequest, lane: str) -> tuple[float, int, str] | None:
        """From the images/s stored for this network, input size and device; None before any."""
        try:
            cfg = request.classifier_config()
        except Exception:  # noqa: BLE001 - a half-edited form
            return None
        parts, synthetic = list(request.body_parts) or None, request.with_accepted_synthetic
        workload = self._memo(("drn", request.body_parts, synthetic, cfg.tta, tuple(cfg.warm_start_parts)),
                              lambda: estimates.classifier_workload(self.project, cfg, parts,
                                                                    with_accepted_synthetic=synthetic))
        if workload:  # read once per setting; the epochs follow the form
            workload = replace(workload, epochs=cfg.epochs,
                               warm_start_epochs=cfg.warm_start_epochs if cfg.warm_start_parts else 0)
        est = self.rates.estimate(workload, cfg, lane) if workload else None
        if est is None:
            return None
        disk = self._get(f"training/disk/drn/{request.preset}")
        return est[0], int(disk) if str(disk or "").isdigit() else 0, est[1]

    def store_classifier_run(self, request: TrainingRequest, lane: str, seconds: float, epochs: int) -> None:
        """A finished classifier run's images/s, for the next estimate of the same network, size and device."""
        try:
            cfg = request.classifier_config()
            workload = estimates.classifier_workload(self.project, cfg, list(request.body_parts) or None,
                                                     with_accepted_synthetic=request.with_accepted_synthetic)
            self.rates.store_run(workload, cfg, lane, seconds / epochs)
        except Exception:  # noqa: BLE001 - a measurement never breaks the panel
            log.debug("classifier rate not stored", exc_info=True)


def probe_config(request: TrainingRequest, lane: str) -> Any | None:
    """The classifier config whose steps to time on ``lane``, or None (a GAN, or a half-edited form)."""
    if request.kind != "drn":
        return None
    try:
        return replace(request.classifier_config(), device=lane)
    except Exception:  # noqa: BLE001 - a half-edited form
        return None


class RateMeter:
    """Seconds per step of the shown run, counted from its first step (which includes start-up)."""

    def __init__(self) -> None:
        self._mark: tuple[float, int] | None = None
        self.rate: tuple[float, int] | None = None  # (seconds, steps) measured since the mark

    def step(self, done: int, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        if self._mark is None:
            self._mark = (now, done)
            return
        t0, d0 = self._mark
        if done > d0:
            self.rate = (now - t0, done - d0)

    def seconds_per_step(self, minimum_steps: int = 3) -> float | None:
        if self.rate is None or self.rate[1] < minimum_steps:
            return None
        return self.rate[0] / self.rate[1]


# ---------------------------------------------------------------------------- curves
def quality_point(report: dict[str, Any]) -> dict[str, float | None]:
    """The curves of one quality report (the three numbers on a 0–1 scale; KID has its own scale),
    with the realism of the untouched source windows: the floor the realism curve is read against
    (reports made before it was measured draw no floor)."""
    h = report.get("headline") or {}
    return {"realism AUC": h.get("realism_auc"),
            "realism, untouched": (report.get("realism") or {}).get("untouched_auc"),
            "lesion rate (of real)": h.get("lesion_rate_ratio"), "drift": h.get("intensity_drift")}


def shown_losses(losses: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in losses.items() if k not in HIDDEN_LOSSES}


def previous_history(folder: Path, request: TrainingRequest) -> list[tuple[int, dict[str, float | None]]]:
    """What a resumed run already did (losses per iteration / AUC per epoch), to continue the curves."""
    rows = run_history(folder, request.kind, request.name)
    return [(x, shown_losses(v)) for x, v in rows] if request.kind == "unit" else rows  # type: ignore[arg-type]


def previous_quality(folder: Path, request: TrainingRequest) -> list[tuple[int, dict[str, float | None]]]:
    """The quality reports a resumed GAN run already made, to continue the Quality curves."""
    return [(int(r["iteration"]), quality_point(r)) for r in quality_history(folder, request.name)]


# ---------------------------------------------------------------------------- progress
@dataclass
class ProgressUpdate:
    """What one progress event changes in the panel (None: leave it as it is)."""

    status: str
    bar: tuple[int, int] | None = None  # (done, total)
    eta: str | None = None
    losses: dict[str, float | None] | None = None  # x = event.done
    samples: Any = None
    sample_iteration: int | None = None
    quality: dict[str, float | None] | None = None
    auc: tuple[int, float | None] | None = None
    measures_rate: bool = False
    warm_start: bool | None = None  # a classifier's warm start began (True) or ended (False)


#: The curve of a warm start's running training loss (its steps count from 1 again after it).
WARM_START_LOSS = "warm-start loss"


def progress_update(event: ProgressEvent, warming: bool = False) -> ProgressUpdate:
    """Route a trainer's progress event to the bar, the curves, the samples and the status line.

    ``warming``: the classifier is in its warm start (between the ``warm start`` events), whose
    epochs and steps are its own: they are labelled as such, drawn as their own loss curve, plot
    no validation AUC (the warm start validates nothing) and are not timed as the run's epochs."""
    data = event.data
    bar = (event.done, event.total) if event.total else None
    if event.stage == "warm start":
        began = event.done < event.total
        return ProgressUpdate(f"Warm start: {event.message}" + ("…" if began else "; training on the chosen body "
                                                                                 "parts now"), warm_start=began)
    if warming and event.stage == "training classifier":
        eta = format_eta(event.eta_s)
        return ProgressUpdate(f"Warm start: {event.message}", bar, f"warm start: {eta}" if eta else "",
                              losses={WARM_START_LOSS: data.get("loss")})
    if warming and event.stage == "classifier epoch":
        return ProgressUpdate(f"Warm start epoch {event.done}/{event.total}: {event.message}")
    if event.stage == "train-gan":
        total = data.get("losses", {}).get("total")
        weighted = f" (weighted total {total:.3f})" if total is not None else ""
        return ProgressUpdate(f"Iteration {event.done}/{event.total}: {event.message}{weighted}", bar,
                              format_eta(event.eta_s), losses=shown_losses(data.get("losses", {})),
                              samples=data.get("samples"), sample_iteration=data.get("iteration"),
                              quality=quality_point(data["quality"]) if "quality" in data else None,
                              measures_rate=True)
    if event.stage == "training classifier":
        return ProgressUpdate(event.message, bar, format_eta(event.eta_s), losses={"train loss": data.get("loss")})
    if event.stage == "classifier epoch":
        return ProgressUpdate(f"Epoch {event.done}/{event.total}: {event.message}",
                              auc=(int(data.get("epoch", event.done)), data.get("val_auc")), measures_rate=True)
    # data preparation (patches, image cache)
    return ProgressUpdate(f"Preparing: {event.stage} {event.done}" + (f"/{event.total}" if event.total else ""), bar)


def finished_text(request: TrainingRequest, state: str, result: Any, started: bool,
                  error: str | None = None) -> tuple[str, str]:
    """(message, level) for a job that ended in ``state`` (a ``JobState`` value)."""
    if state == "done":
        if request.kind == "unit":
            return (f"GAN {request.name} finished at iteration {result.iteration} and is in the model registry.",
                    "info")
        res, _model_id = result
        auc = f"; best validation AUC {res.val_auc:.3f} (epoch {res.epoch})" if res.val_auc is not None else ""
        return f"Classifier {request.name} finished{auc}; it is in the model registry.", "info"
    title = request.title()
    if state in ("cancelled", "paused"):
        if not started:
            return f"{title} was removed from the queue.", "info"
        if request.kind == "unit" and result is not None:
            return (f"Paused {request.name} at iteration {result.iteration} of {result.iterations}; the "
                    "checkpoint is saved. Resume continues exactly from there."), "info"
        if request.kind == "drn":
            return (f"Paused {request.name}. Finished epochs are checkpointed; Resume redoes the interrupted "
                    "epoch from its start (the same result as an uninterrupted run)."), "info"
        return f"{title} was stopped before training began.", "info"
    return f"{title} failed: {error}", "error"
