"""The decisions behind the Training and Synthesis panels, tested without a window: the training
presenter (defaults, estimates, what a progress event or an outcome shows), the paused runs the
CLI and the panel share, and the synthesis preview session (stale results, re-blend only)."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from lesion_studio.jobs import ProgressEvent
from lesion_studio.store.records import Box
from lesion_studio.training.runs import TrainingRequest, resumable_runs, training_runs


def test_presenters_and_the_preview_session_import_no_qt() -> None:
    """Their modules import no Qt and no torch (``run_training`` loads a trainer when it runs)."""
    import lesion_studio.gui.panels.training_presenter as presenter
    import lesion_studio.synthesis.preview as preview
    import lesion_studio.training.runs as runs

    for module in (presenter, preview, runs):
        body = ast.parse(Path(module.__file__).read_text(encoding="utf-8")).body
        imported = {n.module or "" for n in body if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in body if isinstance(n, ast.Import) for a in n.names}
        assert not {m for m in imported if m.startswith(("PySide6", "pyqtgraph", "torch"))}, module.__name__


def test_form_defaults_and_estimates() -> None:
    from lesion_studio.gui.panels import training_presenter as tp

    assert tp.default_length("fast", "cpu") == tp.CPU_DEFAULT_ITERATIONS  # minutes on a CPU
    assert tp.default_length("fast", "cuda") == tp.UNIT_PRESETS["fast"]
    assert tp.is_default_length(tp.CPU_DEFAULT_ITERATIONS) and not tp.is_default_length(1234)
    assert tp.suggest_name("unit", ["femur", "tibia"], "tiny") == "unit-femur+tibia-tiny"
    assert tp.suggest_name("drn", [], "cpu") == "drn-all-cpu"
    rate, disk = tp.REFERENCE[("unit", "fast", "cpu")]
    assert tp.estimate("unit", "fast", "cpu", 300) == (pytest.approx(rate * 300), disk, "reference measurement")
    assert tp.estimate("unit", "fast", "cpu", 10, "0.5", "1000") == (5.0, 1000, "measured here")
    assert tp.estimate("drn", "cpu", "cpu", 3) is None  # nothing known yet
    assert tp.estimate("unit", "fast", "cpu", 10, "not a number") == (pytest.approx(rate * 10), disk,
                                                                      "reference measurement")
    assert tp.estimate_text("drn", "cpu", None).startswith("Measured after the first epoch on the CPU")
    assert tp.estimate_text("unit", "cuda", (4000.0, 76_000_000, "measured here")) == \
        "About 1 h 06 min on the GPU, 76.0 MB on disk (measured here)."
    meter = tp.RateMeter()
    for done, now in ((1, 100.0), (2, 101.0), (5, 104.0)):
        meter.step(done, now)
    assert meter.seconds_per_step() == pytest.approx(1.0)  # counted from the first step, not start-up


def test_progress_events_route_to_bar_curves_and_status() -> None:
    from lesion_studio.gui.panels import training_presenter as tp

    samples = {"normal": np.zeros((4, 8, 8))}
    report = {"headline": {"realism_auc": 0.7, "lesion_rate_ratio": 0.4, "intensity_drift": 0.02},
              "realism": {"untouched_auc": 0.6}}
    gan = tp.progress_update(ProgressEvent("train-gan", 5, 10, "recon 1.0", eta_s=65.0, data={
        "losses": {"recon": 1.0, "total": 9.0}, "samples": samples, "iteration": 5, "quality": report}))
    assert gan.bar == (5, 10) and gan.eta == "1 min 05 s left" and gan.measures_rate
    assert gan.losses == {"recon": 1.0} and gan.samples is samples and gan.sample_iteration == 5
    assert gan.quality == {"realism AUC": 0.7, "realism, untouched": 0.6, "lesion rate (of real)": 0.4,
                           "drift": 0.02}
    assert "weighted total 9.000" in gan.status
    epoch = tp.progress_update(ProgressEvent("classifier epoch", 2, 3, "AUC 0.8", data={"epoch": 2, "val_auc": 0.8}))
    assert epoch.auc == (2, 0.8) and epoch.bar is None and epoch.status == "Epoch 2/3: AUC 0.8"
    prep = tp.progress_update(ProgressEvent("patches", 3, None))
    assert prep.bar is None and prep.status == "Preparing: patches 3" and prep.losses is None


def test_a_warm_start_is_shown_as_such_and_not_timed_as_the_runs_epochs() -> None:
    """Between the ``warm start`` events a classifier's steps and epochs are the warm start's: own
    loss curve, no validation AUC, no rate; after it the run's events route as before."""
    from lesion_studio.gui.panels import training_presenter as tp

    began = tp.progress_update(ProgressEvent("warm start", 0, 1, "pretraining on 60 images of every body part"))
    assert began.warm_start is True and began.status.startswith("Warm start: pretraining on 60 images")
    step = tp.progress_update(ProgressEvent("training classifier", 2, 8, "epoch 1/2 loss 0.700", eta_s=30.0,
                                            data={"loss": 0.7}), warming=True)
    assert step.losses == {tp.WARM_START_LOSS: 0.7} and step.bar == (2, 8) and not step.measures_rate
    assert step.status == "Warm start: epoch 1/2 loss 0.700" and step.eta == "warm start: 30 s left"
    epoch = tp.progress_update(ProgressEvent("classifier epoch", 1, 2, "loss 0.700", data={"epoch": 1, "loss": 0.7}),
                               warming=True)
    assert epoch.auc is None and not epoch.measures_rate and epoch.status == "Warm start epoch 1/2: loss 0.700"
    assert epoch.warm_start is None  # still warming
    ended = tp.progress_update(ProgressEvent("warm start", 1, 1, "pretrained on 60 images of every body part"),
                               warming=True)
    assert ended.warm_start is False and "training on the chosen body parts" in ended.status
    run = tp.progress_update(ProgressEvent("classifier epoch", 1, 3, "loss 0.6", data={"epoch": 1, "val_auc": 0.7}))
    assert run.auc == (1, 0.7) and run.measures_rate
    assert tp.progress_update(ProgressEvent("training classifier", 1, 4, "", data={"loss": 0.6})).losses == \
        {"train loss": 0.6}


def test_outcomes_say_what_happened() -> None:
    from lesion_studio.gui.panels import training_presenter as tp

    @dataclass
    class Unit:
        iteration: int
        iterations: int

    gan = TrainingRequest("unit", "g", "tiny", 10)
    assert tp.finished_text(gan, "done", Unit(10, 10), True)[0].startswith("GAN g finished at iteration 10")
    assert "Paused g at iteration 4 of 10" in tp.finished_text(gan, "paused", Unit(4, 10), True)[0]
    assert tp.finished_text(gan, "cancelled", None, False) == ("Train GAN g was removed from the queue.", "info")
    assert tp.finished_text(gan, "failed", None, True, "boom") == ("Train GAN g failed: boom", "error")


def _checkpoint(folder: Path, name: str, done: int, total: int) -> None:
    model = folder / "models" / name
    model.mkdir(parents=True)
    config = {"iterations": total, "preset": "tiny", "body_parts": ["femur"], "device": "cpu", "sample_every": 7,
              "cpu_threads": 1, "assess": False}
    (model / "checkpoint.json").write_text(json.dumps({"iteration": done, "name": name, "config": config}))
    (model / "history.json").write_text(json.dumps([{"recon": 1.0, "total": 3.0}] * done))


def test_paused_runs_are_read_from_checkpoints_and_resume_as_set_up(tmp_path: Path) -> None:
    from lesion_studio.gui.panels.training_presenter import previous_history

    _checkpoint(tmp_path, "half", 3, 10)
    _checkpoint(tmp_path, "done", 10, 10)
    (tmp_path / "models" / "broken").mkdir()
    (tmp_path / "models" / "broken" / "checkpoint.json").write_text("{not json")
    runs = {r.name: r for r in training_runs(tmp_path, running={("unit", "done")})}
    assert set(runs) == {"half", "done"}
    assert runs["half"].state == "paused" and runs["done"].state == "running"
    assert [r.name for r in resumable_runs(tmp_path)] == ["half"]
    request = runs["half"].request({"checkpoint_every": 2})
    assert (request.resume, request.length, request.preset, request.body_parts) == (True, 10, "tiny", ("femur",))
    # the run's own reporting settings come along (a resumed GAN's saved config leaves them to the request)
    assert request.overrides == {"sample_every": 7, "cpu_threads": 1, "assess": False, "checkpoint_every": 2}
    history = previous_history(tmp_path, request)
    assert [x for x, _ in history] == [1, 2, 3] and history[0][1] == {"recon": 1.0}  # the total is not drawn


def test_the_request_without_a_warm_start_keeps_the_classifier_default() -> None:
    """A request's warm start reaches the config; overrides (experts, tests) still win."""
    from dataclasses import replace

    from lesion_studio.classifier.config import WARM_START_EPOCHS, preset

    plain = TrainingRequest("drn", "c", "tiny", 2).classifier_config()
    assert plain.warm_start_parts == [] and plain.training_hash() == preset("tiny", epochs=2).training_hash()
    warm = TrainingRequest("drn", "c", "tiny", 2, warm_start_parts=("all",))
    assert (warm.classifier_config().warm_start_parts, warm.classifier_config().warm_start_epochs) == \
        (["all"], WARM_START_EPOCHS)
    assert replace(warm, warm_start_epochs=3).classifier_config().warm_start_epochs == 3
    assert replace(warm, warm_start_epochs=3).classifier_config().training_hash() != plain.training_hash()
    assert replace(warm, overrides={"warm_start_epochs": 9}).classifier_config().warm_start_epochs == 9


def test_a_paused_classifier_resumes_with_the_warm_start_of_its_checkpoint(tmp_path: Path) -> None:
    from lesion_studio.classifier.config import preset
    from lesion_studio.config import to_dict
    from lesion_studio.models import layout

    folder = layout.classifier_dir(tmp_path, "warm")
    folder.mkdir(parents=True)
    saved = to_dict(preset("tiny", epochs=4, warm_start_parts=["all"], warm_start_epochs=2))
    layout.sidecar_path(folder / layout.LAST).write_text(json.dumps({"epoch": 1, "body_parts": ["femur"],
                                                                     "config": saved}))
    (run,) = resumable_runs(tmp_path)
    request = run.request()
    assert (request.resume, request.warm_start_parts, request.warm_start_epochs) == (True, ("all",), 2)
    cfg = request.classifier_config()
    assert (cfg.warm_start_parts, cfg.warm_start_epochs, cfg.epochs) == (["all"], 2, 4)


def test_training_requests_refuse_names_that_are_no_folder() -> None:
    from lesion_studio.errors import LesionStudioError

    for name, message in (("", "is empty"), ("a/b", "cannot be used"), ("..", "cannot be used")):
        with pytest.raises(LesionStudioError, match=message):
            TrainingRequest("unit", name, "tiny", 10).check()


def test_form_estimates_add_patch_preparation_and_use_stored_classifier_rates(demo_project) -> None:  # noqa: ANN001
    """A GAN's time includes preparing its patches; a classifier's comes from a stored images/s
    (none yet: no estimate, and the form says it is timing steps). What they read from the
    database is read once per setting until the project's data changes."""
    from lesion_studio.gui.panels import training_presenter as tp

    settings: dict[str, object] = {}
    estimates = tp.FormEstimates(demo_project, settings.get, settings.__setitem__)
    gan = TrainingRequest("unit", "g", "fast", 10, body_parts=("femur",))
    prep = estimates.preparation(gan)
    assert prep is not None and prep.images > 0 and not prep.cached and prep.seconds > 0
    rate, disk = tp.REFERENCE[("unit", "fast", "cpu")]
    assert estimates.estimate(gan, "cpu") == (pytest.approx(rate * 10 + prep.seconds), disk, "reference measurement")
    assert "preparing patches of" in tp.estimate_text("unit", "cpu", estimates.estimate(gan, "cpu"), prep)
    assert estimates.preparation(gan) is prep  # read once per setting...
    estimates.forget()  # ... until the images or regions change
    assert estimates.preparation(gan) is not prep and estimates.preparation(TrainingRequest("drn", "c", "cpu", 3)) is None

    drn = TrainingRequest("drn", "c", "cpu", 3, input_size=64)
    assert estimates.estimate(drn, "cpu") is None
    assert tp.estimate_text("drn", "cpu", None, probing=True) == "Timing a few training steps on the CPU…"
    config = tp.probe_config(drn, "cpu")
    assert config is not None and config.input_size == 64 and tp.probe_config(gan, "cpu") is None
    estimates.rates.store_probe(config, "cpu", 50.0)
    seconds, _disk, source = estimates.estimate(drn, "cpu")
    assert seconds > 0 and source == "from 3 timed steps"
    longer = estimates.estimate(TrainingRequest("drn", "c", "cpu", 6, input_size=64), "cpu")
    assert longer[0] == pytest.approx(2 * seconds)  # the epochs scale the time


# ---------------------------------------------------------------------------- the preview session
@dataclass
class _Result:
    n: float
    blend_mode: str
    reblends: list = field(default_factory=list)

    def reblend(self, n: float, mode: str | None = None) -> _Result:
        self.reblends.append((n, mode))
        return _Result(n, mode or self.blend_mode, self.reblends)


def _arrival(request, n: float = 2.0, mode: str = "matched"):  # noqa: ANN001, ANN202
    from lesion_studio.synthesis.preview import Translation

    return Translation(request, _Result(n, mode), 0.01, "onnx CPU")


def test_preview_keeps_only_the_request_still_wanted(tmp_path: Path) -> None:
    from lesion_studio.synthesis.preview import PreviewRequest, PreviewSession

    session = PreviewSession(tmp_path)
    template = PreviewRequest(0, image_id=1, model_id=2, window=Box(0, 0, 64, 64), seed=0, stochastic=False)
    first = session.want(template)
    second = session.want(PreviewRequest(0, 1, 2, Box(8, 8, 72, 72), 0, False))
    assert (first.generation, second.generation) == (1, 2)
    assert not session.accept(_arrival(first)) and session.stale_dropped == 1  # the window moved on
    assert session.accept(_arrival(second)) and session.translation.request == second
    assert session.shows(PreviewRequest(0, 1, 2, Box(8, 8, 72, 72), 0, False))  # no need to translate again
    assert not session.shows(PreviewRequest(0, 1, 2, Box(8, 8, 72, 72), 1, False))
    session.outdate()  # the image changed: what is in flight is no longer wanted
    assert not session.accept(_arrival(second)) and session.stale_dropped == 2


def test_preview_reblends_without_translating_again(tmp_path: Path) -> None:
    from lesion_studio.synthesis.preview import N_MAX, PreviewRequest, PreviewSession

    session = PreviewSession(tmp_path)
    assert session.reblend(4.0) is None and session.n == 4.0  # nothing yet: remembered for the next one
    request = session.want(PreviewRequest(0, 1, 2, Box(0, 0, 64, 64), 0, False))
    assert session.accept(_arrival(request, n=2.0))  # translated with another n: blended to the current one
    assert session.result.n == 4.0
    session.reblend(100.0, "paper")
    assert session.n == N_MAX and session.result.blend_mode == "paper" and session.last_reblend_s >= 0.0
    assert session.translation.result.reblends == [(4.0, "matched"), (N_MAX, "paper")]
    session.clear()
    assert session.result is None and session.translation is None


def test_translator_cache_loads_each_model_version_once(tmp_path: Path) -> None:
    from lesion_studio.store.records import ModelRecord
    from lesion_studio.synthesis.preview import TranslatorCache

    loads = []
    cache = TranslatorCache(lambda record, folder, backend: loads.append((record.sha256, folder)) or object())

    def record(sha: str) -> ModelRecord:
        return ModelRecord(1, "g", "unit", "models/g/model.safetensors", sha, (), {}, {}, "")

    a = cache.get(record("a"), tmp_path)
    assert cache.get(record("a"), tmp_path) is a and loads == [("a", tmp_path)]
    cache.get(record("b"), tmp_path)  # retrained under the same name: a new hash, loaded anew
    assert loads == [("a", tmp_path), ("b", tmp_path)]
