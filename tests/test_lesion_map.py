"""The box-supervised lesion-map head: its target, its loss, its training, its ONNX export, and the
localisation it replaces the class-activation map with."""

from __future__ import annotations

import numpy as np
import pytest

from lesion_studio.classifier.preprocess import Preprocessing, box_mask, prepare_with_frame

torch = pytest.importorskip("torch")


def test_box_mask_follows_the_crop_and_the_fit_to_square() -> None:
    img = np.zeros((300, 200), np.float32)
    img[100:300, 50:200] = 1.0  # the body: crop_to_body keeps about this region
    _, frame = prepare_with_frame(img, Preprocessing(64, crop_to_body=True))
    mask = box_mask(frame, [(120.0, 200.0, 160.0, 240.0)])
    ys, xs = np.nonzero(mask)
    # Map the mask's extent back to source pixels: it must cover the box, give or take a pixel of the input.
    x0, y0 = frame.to_source(xs.min(), ys.min())
    x1, y1 = frame.to_source(xs.max() + 1, ys.max() + 1)
    px = 1 / frame.scale_x
    assert abs(x0 - 120) <= 1.5 * px and abs(x1 - 160) <= 1.5 * px
    assert abs(y0 - 200) <= 1.5 * px and abs(y1 - 240) <= 1.5 * px
    # A box thinner than an input pixel still marks one pixel.
    assert box_mask(frame, [(130.0, 210.0, 130.5, 210.5)]).sum() == 1


def test_shuffling_the_boxes_changes_the_map_loss() -> None:
    """The map loss must read the boxes: the same maps scored against the boxes of other images give
    another loss, and a map that points at its own box scores lower than at a shuffled one."""
    from lesion_studio.training.classifier_trainer import lesion_map_loss

    n, size = 6, 64
    masks = torch.zeros(n, 1, size, size)
    for k in range(n):
        y, x = 8 * k, 40 - 6 * k
        masks[k, 0, y:y + 16, x:x + 16] = 1.0
    mapped = torch.ones(n, dtype=torch.bool)
    target = torch.nn.functional.adaptive_avg_pool2d(masks, (8, 8))[:, 0]
    logits = 6 * (2 * target - 1)  # a map that says exactly where each box is
    own = lesion_map_loss(logits, masks, mapped)
    shuffled = lesion_map_loss(logits, masks[torch.tensor([1, 2, 3, 4, 5, 0])], mapped)
    assert float(own) < float(shuffled) - 0.5
    # Examples whose map is unknown (a lesion image without boxes) take no part.
    none = lesion_map_loss(logits, masks, torch.zeros(n, dtype=torch.bool))
    assert float(none) == 0.0
    partial = lesion_map_loss(logits, masks[torch.tensor([1, 0, 2, 3, 4, 5])], torch.tensor([0, 0, 1, 1, 1, 1]).bool())
    assert float(partial) == pytest.approx(float(lesion_map_loss(logits[2:], masks[2:], mapped[2:])), rel=1e-6)


def test_combined_score_is_the_mean_of_the_image_logit_and_the_map_peak() -> None:
    from lesion_studio.models.drn import build_drn

    torch.manual_seed(0)
    net = build_drn("drn_d_tiny", lesion_map=True).eval()
    x = torch.randn(3, 1, 64, 64)
    with torch.no_grad():
        image, lesion_map = net(x, heads=True)
        combined = net(x)
        score, loc = net.score_and_localisation(x)
    want = 0.5 * (image[:, 0] + lesion_map.flatten(1).amax(1))
    torch.testing.assert_close(combined[:, 0], want)
    torch.testing.assert_close(score, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loc, lesion_map)


@pytest.mark.slow
def test_a_map_head_classifier_trains_exports_and_localises(demo_project, tmp_path) -> None:
    """Train a tiny map-head classifier on the phantom project (boxes known), export it, and check
    ONNX against torch: the same scores and the same lesion maps, for a batch of one and several."""
    from lesion_studio.classifier.cam import map_peak
    from lesion_studio.classifier.config import preset
    from lesion_studio.classifier.data import evaluation_set
    from lesion_studio.classifier.preprocess import PreparedCache
    from lesion_studio.classifier.scoring import OnnxScorer, export_classifier_onnx
    from lesion_studio.models.drn import load_classifier
    from lesion_studio.training.classifier_trainer import predict_localisation, train_classifier

    cfg = preset("tiny", input_size=64, epochs=2, head="image+map")
    result, mid = train_classifier(demo_project, cfg, name="map-test")
    assert mid is not None
    assert all("map_loss" in h for h in result.history)
    model, meta = load_classifier(result.path)
    assert model.lesion_map is not None and meta["config"]["head"] == "image+map"
    cache = PreparedCache(cfg.preprocessing, None)
    val = evaluation_set(demo_project, "val", cache, masks=True)
    scores, maps = predict_localisation(model, val.arrays, device=torch.device("cpu"))
    assert maps.shape == (len(val), 8, 8) and maps.min() >= 0 and maps.max() <= 1
    scorer = OnnxScorer(export_classifier_onnx(result.path), prefer_cuda=False)
    assert scorer.map_kind == "lesion_map"
    for batch in (val.arrays[:1], val.arrays[:5]):
        p, m = scorer.maps(batch)
        s_t, m_t = predict_localisation(model, batch, device=torch.device("cpu"))
        np.testing.assert_allclose(p, s_t, atol=1e-4)
        np.testing.assert_allclose(m, m_t, atol=1e-4)
    np.testing.assert_allclose(scorer.score_arrays(val.arrays), scores, atol=1e-4)
    # The map's peak maps back into the image through the input frame.
    _, frames = cache.stack_with_frames([(e.key, e.path) for e in val.examples[:1]])
    x, y = map_peak(maps[0], frames[0])
    assert 0 <= x <= frames[0].source_width and 0 <= y <= frames[0].source_height


def test_train_crop_needs_the_map_head() -> None:
    from lesion_studio.classifier.config import ClassifierConfig
    from lesion_studio.errors import ConfigError

    with pytest.raises(ConfigError, match="train_crop needs head"):
        ClassifierConfig(input_size=128, train_crop=64)
    assert ClassifierConfig(input_size=128, train_crop=64, head="image+map").train_crop == 64


def test_crops_over_boxes_hold_the_lesion_and_their_labels_follow() -> None:
    from lesion_studio.classifier.augment import crop_batch, crop_labels, crop_origins

    gen = torch.Generator().manual_seed(0)
    masks = torch.zeros(4, 1, 64, 64)
    masks[0, 0, 50:54, 4:8] = 1.0
    masks[1, 0, 2:6, 55:60] = 1.0
    has = torch.tensor([True, True, True, False])
    origins = crop_origins(masks, has, 64, 32, lesion_prob=1.0, generator=gen)
    crops = crop_batch(masks, origins, 32)
    assert crops.shape == (4, 1, 32, 32)
    assert crops[0].sum() > 0 and crops[1].sum() > 0  # placed over the box
    labels = crop_labels(crops, has, torch.tensor([1.0, 1.0, 0.0, 1.0]))
    assert labels.tolist() == [1.0, 1.0, 0.0, 1.0]  # no mask: the image label stays
