"""Classifier time estimates before any run (issue 24): workload from the database, a rate from a
few timed steps of the real trainer or from a finished run, kept per network, size and device."""

from __future__ import annotations

import pytest

from lesion_studio.classifier.config import preset
from lesion_studio.classifier.data import split_records
from lesion_studio.training import estimates


def test_workload_counts_the_runs_images_without_decoding(demo_project, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(demo_project, "open_radiograph", lambda *_: pytest.fail("decoded an image"))
    cfg = preset("tiny", epochs=5)
    work = estimates.classifier_workload(demo_project, cfg, ["femur"])
    assert work.train_images == len(split_records(demo_project, "train", ["femur"])) > 0
    assert work.val_images == len(split_records(demo_project, "val", ["femur"])) > 0
    assert work.epochs == 5 and work.tta_passes == 1
    assert estimates.classifier_workload(demo_project, preset("tiny", tta="hflip"), ["femur"]).tta_passes == 2
    seconds = estimates.classifier_seconds(work, 10.0)
    assert seconds == pytest.approx(5 * (work.train_images + work.val_images / 3) / 10.0)
    assert estimates.images_per_s_from_run(work, seconds / 5) == pytest.approx(10.0)  # the inverse


def test_a_warm_start_adds_its_training_images_times_its_epochs(demo_project) -> None:  # noqa: ANN001
    cfg = preset("tiny", epochs=5)
    plain = estimates.classifier_workload(demo_project, cfg, ["femur"])
    assert (plain.warm_start_images, plain.warm_start_epochs) == (0, 0)
    warm = estimates.classifier_workload(demo_project, preset("tiny", epochs=5, warm_start_parts=["all"],
                                                              warm_start_epochs=3), ["femur"])
    every = len(split_records(demo_project, "train"))
    assert (warm.train_images, warm.val_images) == (plain.train_images, plain.val_images)  # the run itself
    assert (warm.warm_start_images, warm.warm_start_epochs) == (every, 3) and every > plain.train_images
    assert estimates.classifier_seconds(warm, 10.0) - estimates.classifier_seconds(plain, 10.0) == \
        pytest.approx(every * 3 / 10.0)
    parts = estimates.classifier_workload(demo_project, preset("tiny", warm_start_parts=["tibia", "femur"]), ["femur"])
    assert parts.warm_start_images == len(split_records(demo_project, "train", ["tibia", "femur"])) < every
    # a run's rate is over its own epochs: the warm start's are not in its seconds per epoch
    assert estimates.images_per_s_from_run(warm, 2.0) == estimates.images_per_s_from_run(plain, 2.0)


def test_rates_are_kept_per_network_size_and_device_and_a_run_says_so() -> None:
    store: dict[str, object] = {}
    rates = estimates.ClassifierRates(store.get, store.__setitem__)
    cfg = preset("tiny", input_size=64)
    work = estimates.ClassifierWorkload(train_images=30, val_images=9, epochs=2)
    assert rates.rate(cfg, "cpu") is None and rates.estimate(work, cfg, "cpu") is None
    rates.store_probe(cfg, "cpu", 12.0)
    assert rates.rate(cfg, "cpu") == (12.0, "from 3 timed steps")
    assert rates.rate(cfg, "cuda") is None and rates.rate(preset("tiny", input_size=96), "cpu") is None
    assert rates.estimate(work, cfg, "cpu") == (pytest.approx(2 * 33 / 12.0), "from 3 timed steps")
    rates.store_run(work, cfg, "cpu", seconds_per_epoch=3.3)  # a finished run replaces the timed steps
    assert rates.rate(cfg, "cpu") == (pytest.approx(10.0), "measured here")


def test_a_few_timed_steps_of_the_real_trainer_give_a_rate() -> None:
    pytest.importorskip("torch")
    events = []
    cfg = preset("tiny", input_size=32, batch_size=4, device="cpu")
    rate = estimates.measure_classifier_rate(cfg, progress=events.append)
    assert rate > 0
    assert [e.done for e in events] == [1, 2, 3, 4] and events[-1].total == estimates.PROBE_STEPS + 1
