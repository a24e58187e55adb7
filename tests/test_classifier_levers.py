"""The CPU baseline's levers: cropping to the body before resizing, and the cosine schedule."""

from __future__ import annotations

import numpy as np
import pytest

from lesion_studio.classifier.config import ClassifierConfig, preset
from lesion_studio.classifier.preprocess import Preprocessing, body_region, prepare
from lesion_studio.config import to_dict
from lesion_studio.errors import ConfigError


def _radiograph_with_borders() -> np.ndarray:
    """A 400×300 image: black borders, a 'hand' (soft tissue + a bright bone) in a 160×100 region."""
    img = np.zeros((400, 300), dtype=np.uint16)
    img[120:280, 90:190] = 1200  # soft tissue
    img[150:250, 130:150] = 3000  # bone
    return img


def test_body_region_finds_the_anatomy_and_keeps_a_margin() -> None:
    img = _radiograph_with_borders().astype(np.float32) / 3000
    y0, y1, x0, x1 = body_region(img)
    assert 100 <= y0 <= 120 and 280 <= y1 <= 300
    assert 75 <= x0 <= 90 and 190 <= x1 <= 205


def test_body_region_leaves_a_full_or_empty_image_whole() -> None:
    assert body_region(np.zeros((50, 40))) == (0, 50, 0, 40)
    assert body_region(np.ones((50, 40))) == (0, 50, 0, 40)
    speck = np.zeros((200, 200))
    speck[5:9, 5:9] = 1.0  # a marker letter, not a body: too small to crop to
    assert body_region(speck) == (0, 200, 0, 200)


def test_cropping_spends_the_input_on_the_body() -> None:
    img = _radiograph_with_borders()
    plain = prepare(img, Preprocessing(64))
    cropped = prepare(img, Preprocessing(64, crop_to_body=True))
    background = plain.min()
    # The bone's share of the input grows several-fold once the borders are gone.
    assert (cropped > 1.5).mean() > 3 * (plain > 1.5).mean()
    assert (cropped > background + 0.1).mean() > 2 * (plain > background + 0.1).mean()


def test_cache_tag_of_uncropped_settings_is_unchanged() -> None:
    assert Preprocessing(96).tag == Preprocessing(96, crop_to_body=False).tag
    assert Preprocessing(96).tag != Preprocessing(96, crop_to_body=True).tag


def test_cosine_schedule_warms_up_then_decays() -> None:
    pytest.importorskip("torch")
    from lesion_studio.training.classifier_trainer import scheduled_lr

    cfg = ClassifierConfig(lr=1e-3, epochs=4, schedule="cosine")
    steps = 10
    lrs = [scheduled_lr(cfg, s, steps) for s in range(steps * cfg.epochs)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[steps - 1] == pytest.approx(1e-3)  # linear warm-up
    assert all(a >= b for a, b in zip(lrs[steps - 1:], lrs[steps:], strict=False))  # then never rises
    assert lrs[-1] == pytest.approx(1e-5)
    flat = ClassifierConfig(lr=1e-3, epochs=4)
    assert {scheduled_lr(flat, s, steps) for s in range(40)} == {1e-3}


def test_presets_and_old_hashes() -> None:
    assert preset("gpu").crop_to_body and preset("gpu").input_size >= 512
    # Adding the new options kept the identity of existing settings (their checkpoints still resume).
    assert ClassifierConfig().training_hash() == ClassifierConfig(crop_to_body=False).training_hash()
    assert ClassifierConfig().training_hash() != ClassifierConfig(schedule="cosine").training_hash()
    # ... and their stage-cache keys (an experiment's finished stages stay finished).
    plain = ClassifierConfig().key_dict()
    assert not {"weight_average", "ema_half_life", "intensity_jitter", "train_fraction"} & set(plain)
    for changed in ({"weight_average": "ema"}, {"intensity_jitter": 0.2}, {"train_fraction": 0.5}):
        other = ClassifierConfig(**changed)
        assert other.key_dict() != plain and other.training_hash() != ClassifierConfig().training_hash()
    with pytest.raises(ConfigError, match="weight_average"):
        ClassifierConfig(weight_average="swa")
    with pytest.raises(ConfigError, match="intensity_jitter"):
        ClassifierConfig(intensity_jitter=2)
    for share in (0, 1.5):
        with pytest.raises(ConfigError, match="train_fraction"):
            ClassifierConfig(train_fraction=share)
    with pytest.raises(ConfigError, match="warm start"):  # it would see the images the share leaves out
        ClassifierConfig(train_fraction=0.5, warm_start_parts=["all"])


def test_exposure_augmentation_keeps_black_and_the_order_of_intensities() -> None:
    """``random_intensity`` changes each image's exposure (gamma, contrast) without moving the
    background or reordering intensities (a lytic lesion stays darker than the bone around it),
    draws from the step's generator (resume-exact), and is off at 0."""
    import torch

    from lesion_studio.classifier.augment import random_intensity
    from lesion_studio.classifier.preprocess import BACKGROUND, MEAN, STD

    x01 = torch.linspace(0, 1, 64).repeat(4, 1, 64, 1)
    x = (x01 - MEAN) / STD
    out = random_intensity(x, 0.3, torch.Generator().manual_seed(1), mean=MEAN, std=STD)
    again = random_intensity(x, 0.3, torch.Generator().manual_seed(1), mean=MEAN, std=STD)
    assert torch.equal(out, again)
    assert torch.allclose(out[..., 0], torch.full_like(out[..., 0], BACKGROUND))  # black stays black
    assert bool((out.diff(dim=-1) >= -1e-6).all())  # monotone: the order of intensities is kept
    changed = (out - x).abs().flatten(1).amax(dim=1)
    assert bool((changed > 0.05).all())  # every image's exposure changed
    assert not torch.allclose(out[0], out[1])  # each by its own draw
    assert random_intensity(x, 0.0, torch.Generator(), mean=MEAN, std=STD) is x


def test_the_cpu_detector_presets_are_the_measured_recipes() -> None:
    """``cpu-map`` is the box-supervised detector as measured best on 2 cores (docs/experiments.md);
    ``cpu-quick`` differs from it only in the three levers docs/performance.md measured for speed."""
    best, quick = preset("cpu-map"), preset("cpu-quick")
    assert (best.arch, best.head, best.input_size, best.epochs, best.schedule, best.crop_to_body, best.train_crop) \
        == ("drn_d_22_half", "image+map", 128, 25, "cosine", True, 0)
    changed = {k for k, v in to_dict(quick).items() if to_dict(best)[k] != v}
    assert changed == {"arch", "epochs", "train_crop"}
    assert (quick.arch, quick.epochs, quick.train_crop) == ("drn_d_22_slim", 12, 112)
    assert preset("cpu").head == "image"  # the paper's image-level DRN stays available
    # the crop is a share of the input: another input size keeps a crop that fits it
    assert [preset("cpu-quick", input_size=n).train_crop for n in (96, 160, 256)] == [80, 144, 224]
    assert preset("cpu-quick", input_size=96, train_crop=64).train_crop == 64  # a stated crop wins
    with pytest.raises(ConfigError, match="train_crop"):
        preset("cpu-quick", train_crop=200)  # a crop larger than the input is refused in words


def test_mirror_tta_scores_alike_in_torch_and_onnx(demo_project) -> None:  # noqa: ANN001
    """``tta: hflip`` averages the image's and its mirror's probability, in torch and in the ONNX
    export alike; mirroring the input then leaves the score unchanged."""
    torch = pytest.importorskip("torch")
    from lesion_studio.classifier.data import evaluation_set
    from lesion_studio.classifier.preprocess import PreparedCache
    from lesion_studio.classifier.scoring import OnnxScorer, export_classifier_onnx
    from lesion_studio.models.drn import load_classifier
    from lesion_studio.training.classifier_trainer import predict, train_classifier

    cfg = preset("tiny", input_size=64, epochs=1, tta="hflip")
    assert cfg.training_hash() != preset("tiny", input_size=64, epochs=1).training_hash()  # val AUC picks the epoch
    result, _ = train_classifier(demo_project, cfg, name="tta")
    test = evaluation_set(demo_project, "test", PreparedCache(cfg.preprocessing, None))
    model, _ = load_classifier(result.path)
    cpu = torch.device("cpu")
    plain = predict(model, test.arrays, device=cpu)
    mirrored = predict(model, test.arrays, device=cpu, tta="hflip")
    np.testing.assert_allclose(mirrored, 0.5 * (plain + predict(model, test.arrays[:, :, ::-1].copy(), device=cpu)),
                               atol=1e-6)
    assert not np.allclose(mirrored, plain, atol=1e-4)
    np.testing.assert_allclose(predict(model, test.arrays[:, :, ::-1].copy(), device=cpu, tta="hflip"), mirrored,
                               atol=1e-5)
    scorer = OnnxScorer(export_classifier_onnx(result.path), prefer_cuda=False)
    np.testing.assert_allclose(scorer.score_arrays(test.arrays), mirrored, atol=1e-4)
    with pytest.raises(Exception, match="tta"):
        ClassifierConfig(tta="vflip")
