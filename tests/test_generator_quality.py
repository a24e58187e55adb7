"""The generator quality report: its metrics on constructed data, then on real tiny generators.

The pure metrics are checked where the answer is known (equal sets, shifted sets, a known offset).
On the demo phantoms, a briefly trained tiny UNIT must beat an untrained one on realism, lesion
signal, drift and KID, the report must be seeded (same seed, same numbers), and it must reach the
CLI, the model's sidecar and the training history. Localisation is checked for its plumbing only:
on the phantoms it does not separate the two at any training length a test can afford (the
untrained generator's flat square is itself taken for a lesion; see docs/synthesis.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lesion_studio.classifier.cam import config_map_kind, map_peak, map_to_image
from lesion_studio.classifier.preprocess import Preprocessing, prepare_with_frame
from lesion_studio.evaluate.generator_quality import (
    PatchClassifier,
    intensity_drift,
    kernel_inception_distance,
    report_lines,
    short_summary,
    two_sample_auc,
)

TRAINED_ITERATIONS = 300


# ---------------------------------------------------------------------------- pure metrics
def test_drift_is_zero_for_an_untouched_window_and_measures_a_dark_square() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(-0.5, 0.5, (6, 32, 32)).astype(np.float32)  # range ≈ 1.0 per window
    assert intensity_drift(src, src)["drift"] == 0.0
    darker = src - 0.1  # the whole window 0.1 darker: ~10 % of its range
    d = intensity_drift(src, darker)
    assert d["mean_shift"] == pytest.approx(0.1 / 0.98, rel=0.05)
    assert d["mean_shift_signed"] < 0
    assert d["spread_change"] == pytest.approx(0.0, abs=1e-6)
    # A change confined to the core (a lesion) is not drift.
    core = src.copy()
    core[:, 12:20, 12:20] -= 0.5
    assert intensity_drift(src, core)["drift"] == 0.0


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    same = kernel_inception_distance(a, b, subsets=20, subset_size=100)
    shifted = kernel_inception_distance(a + 1.0, b, subsets=20, subset_size=100)
    assert abs(same["kid"]) < 3 * same["std"] + 1e-3
    assert shifted["kid"] > 10 * max(same["std"], 1e-3)
    assert kernel_inception_distance(a, b, subsets=20, seed=3) == kernel_inception_distance(a, b, subsets=20, seed=3)


def test_two_sample_auc_tells_shifted_sets_apart_and_not_equal_ones() -> None:
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(20), 5)
    x, y = rng.normal(size=(100, 64)), rng.normal(size=(100, 64))
    same = two_sample_auc(x, y, groups, groups, folds=5)
    assert same["ci_low"] < 0.5 + 0.1 and same["auc"] < 0.7
    apart = two_sample_auc(x + 0.8, y, groups, groups, folds=5)
    assert apart["auc"] > 0.95 and apart["ci_low"] > 0.8
    assert apart["folds"] == 5


def test_the_realism_features_see_blur_that_a_thumbnail_hides() -> None:
    from lesion_studio.evaluate.generator_quality import downsample, realism_features

    rng = np.random.default_rng(4)
    real = rng.normal(0.0, 0.2, (80, 64, 64)).astype(np.float32)
    blurred = rng.normal(0.0, 0.2, (80, 64, 64)).astype(np.float32)
    blurred = (blurred + np.roll(blurred, 1, 1) + np.roll(blurred, 1, 2) + np.roll(blurred, (1, 1), (1, 2))) / 2
    groups = np.repeat(np.arange(16), 5)
    thumbs = two_sample_auc(downsample(real, 16), downsample(blurred, 16), groups, groups)
    full = two_sample_auc(realism_features(real, 16), realism_features(blurred, 16), groups, groups)
    assert full["auc"] > 0.95 and full["auc"] > thumbs["auc"] + 0.2


def test_patch_classifier_learns_dark_blobs_and_exposes_its_features() -> None:
    rng = np.random.default_rng(3)
    normal = rng.normal(0.3, 0.05, (60, 32, 32)).astype(np.float32)
    lesion = rng.normal(0.3, 0.05, (30, 32, 32)).astype(np.float32)
    lesion[:, 10:22, 10:22] -= 0.4
    clf = PatchClassifier.fit(lesion, normal, feature_size=16, seed=0)
    fresh = rng.normal(0.3, 0.05, (10, 32, 32)).astype(np.float32)
    blob = fresh.copy()
    blob[:, 10:22, 10:22] -= 0.4
    assert clf.probability(blob).min() > 0.5 > clf.probability(fresh).max()
    assert clf.features(blob).shape == (10, 64)


def test_map_peak_maps_back_to_image_pixels() -> None:
    # A 200×100 (h×w) image fit into a 64² square: scale 0.32, 32 px wide, x offset 16.
    _, frame = prepare_with_frame(np.ones((200, 100), np.float32), Preprocessing(64))
    cam = np.zeros((8, 8), np.float32)
    cam[6, 3] = 1.0  # cell centre in the square: (28, 52) → image (37.5, 162.5)
    x, y = map_peak(cam, frame)
    assert 20 < x < 60 and 140 < y < 185
    heat = map_to_image(cam, frame)
    assert heat.shape == (200, 100) and heat.max() == pytest.approx(1.0, abs=0.05)
    assert np.unravel_index(np.argmax(heat), heat.shape)[0] > 130


def test_map_peak_follows_the_crop_to_the_body() -> None:
    """A classifier that crops to the body sees only part of the radiograph: its map's peak must be
    read through that crop (mapping it as if the whole image had been fit would put it elsewhere)."""
    img = np.zeros((400, 400), np.float32)
    img[200:400, 200:400] = 1.0  # the body fills the bottom-right quarter
    prepared, frame = prepare_with_frame(img, Preprocessing(64, crop_to_body=True))
    assert frame.crop_y0 > 150 and frame.crop_x0 > 150
    grid = np.zeros((8, 8), np.float32)
    grid[1, 1] = 1.0  # top-left of the input, i.e. the top-left of the body region
    x, y = map_peak(grid, frame)
    assert 190 < x < 280 and 190 < y < 280
    heat = map_to_image(grid, frame)
    assert heat[:150, :150].max() == 0.0  # nothing where the classifier never looked


def test_short_summary_reads_a_stored_report() -> None:
    text = short_summary({"headline": {"realism_auc": 0.71, "lesion_rate_ratio": 0.5, "intensity_drift": 0.013,
                                       "kid": 0.2, "localisation": None}, "iteration": 300})
    assert "0.71" in text and "50%" in text and "1.3%" in text and "–" in text and "300" in text
    assert "untouched" not in text  # reports stored before the floor was measured
    text = short_summary({"headline": {"realism_auc": 0.76}, "realism": {"auc": 0.76, "untouched_auc": 0.747}})
    assert "realism AUC 0.76 (untouched windows 0.75)" in text


def test_the_report_names_the_map_it_read() -> None:
    """A map-head detector's localisation is its lesion map, not a CAM: the report says which;
    reports stored before the kind was recorded were read from CAMs, and say so."""
    loc = {"total": 8, "kept": 4, "fraction_inside": 0.5, "fraction_inside_all": 0.25, "chance": 0.02}
    base = {"headline": {"realism_auc": 0.7, "localisation": 0.5},
            "realism": {"auc": 0.7, "ci_low": 0.6, "ci_high": 0.8},
            "lesion_signal": {"synthetic_rate": 0.2, "real_rate": 0.4, "ratio": 0.5, "source_rate": 0.1,
                              "classifier_auc": 0.8},
            "intensity_drift": {"mean_shift": 0.01, "spread_change": 0.02, "mean_shift_signed": 0.01},
            "kid": {"kid": 0.1, "std": 0.01}}
    with_map = {**base, "localisation": {**loc, "map": "lesion_map"}}
    assert "lesion map in window 50%" in short_summary(with_map) and "CAM" not in short_summary(with_map)
    assert "Localisation: the lesion map peaks inside the window in 50% of 4 kept" in report_lines(with_map)[-1]
    legacy = {**base, "localisation": loc}
    assert "CAM in window 50%" in short_summary(legacy)
    assert "the CAM peaks inside the window" in report_lines(legacy)[-1]
    assert "map in window –" in short_summary({"headline": {"realism_auc": 0.7}})
    # The gallery names the map from a classifier's stored settings, before opening it.
    assert config_map_kind({"head": "image+map", "map_weight": 1.0}) == "lesion_map"
    assert config_map_kind({"head": "image"}) == config_map_kind({}) == config_map_kind(None) == "cam"


# ---------------------------------------------------------------------------- real generators on the demo
@pytest.fixture(scope="module")
def generators(demo_project_master: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The demo project with an untrained (0 iterations) and a briefly trained tiny UNIT.

    The trained one reports its quality at iteration 150 and at the end (the training hook).
    """
    from lesion_studio.store import Project
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    folder = tmp_path_factory.mktemp("quality") / "demo"
    shutil.copytree(demo_project_master, folder)
    project = Project.open(folder)
    common = {"cpu_threads": 1, "device": "cpu", "sample_every": 10**6}
    train_unit(project, preset_config("tiny", iterations=0, assess=False, **common), name="untrained")
    events: list = []
    result = train_unit(project, preset_config("tiny", iterations=TRAINED_ITERATIONS, checkpoint_every=150, **common),
                        name="trained", progress=events.append)
    yield project, result, events
    project.close()


@pytest.fixture(scope="module")
def reports(generators):  # noqa: ANN001, ANN201
    from lesion_studio.evaluate.generator_quality import QualitySettings, assess_generator

    # The paper's blend: with the matched blend (the product default) the untrained generator's
    # noisy core passes the phantom patch classifier as a dark lytic lesion about as often as the
    # trained one's (lesion rate ratio 0.44 vs 0.17 here; docs/synthesis.md's demo table shows the
    # same artefact), so on the phantoms only the paper blend separates them on every metric.
    paper = QualitySettings(blend_mode="paper")
    project, _result, _events = generators
    return {name: assess_generator(project, name, seed=0, settings=paper) for name in ("untrained", "trained")}


@pytest.mark.slow
def test_a_trained_generator_beats_an_untrained_one_on_every_metric(reports) -> None:  # noqa: ANN001
    u, t = reports["untrained"]["headline"], reports["trained"]["headline"]
    assert t["realism_auc"] < u["realism_auc"]
    assert t["lesion_rate_ratio"] > u["lesion_rate_ratio"]
    assert t["intensity_drift"] < u["intensity_drift"]
    assert t["kid"] < u["kid"]
    # The untrained generator is unmistakable: the two-sample test separates it perfectly.
    assert reports["untrained"]["realism"]["ci_low"] > 0.95
    for r in reports.values():
        assert r["split"] == "val" and r["n_real"] > 10 and r["n_synthetic"] > 10
        assert r["lesion_signal"]["classifier_auc"] > 0.8  # the patch classifier itself works
        json.dumps(r)  # JSON-able as promised


@pytest.mark.slow
def test_realism_is_read_against_the_untouched_windows(generators, reports) -> None:  # noqa: ANN001
    """Every report carries the AUC of its untouched source windows (the floor a generator starts
    from) and its own excess over it; a translator that changes nothing has an excess of exactly 0."""
    from lesion_studio.evaluate.generator_quality import (
        QualityContext,
        QualitySettings,
        _model_settings,
        report_lines,
    )

    u, t = reports["untrained"]["realism"], reports["trained"]["realism"]
    assert u["untouched_auc"] == t["untouched_auc"]  # the same windows and folds
    assert 0.5 < t["untouched_auc"] < 1.0  # phantom normal windows are told from lesions, but not perfectly
    assert t["excess_auc"] == pytest.approx(t["auc"] - t["untouched_auc"]) and u["excess_auc"] > t["excess_auc"]
    assert any("untouched source windows score" in line for line in report_lines(reports["trained"]))

    class Identity:
        def translate(self, patches, **_kw):  # noqa: ANN001, ANN202
            return patches

    project, _result, _events = generators
    resolution, parts, params, splits = _model_settings(project.model("trained"))
    context = QualityContext(project, resolution=resolution, body_parts=parts, train_params=params,
                             train_splits=splits, settings=QualitySettings(seed=0))
    same = context.assess(Identity()).realism
    assert same["excess_auc"] == 0.0 and same["auc"] == same["untouched_auc"]


@pytest.mark.slow
def test_the_report_is_seeded_and_stored_with_the_model(generators, reports) -> None:  # noqa: ANN001
    from lesion_studio.evaluate.generator_quality import QualitySettings, assess_generator

    project, _result, _events = generators
    again = assess_generator(project, "trained", seed=0, store=False, settings=QualitySettings(blend_mode="paper"))
    first = reports["trained"]
    for key in ("realism", "lesion_signal", "intensity_drift", "kid", "headline"):
        assert again[key] == first[key], key
    record = project.model("trained")
    assert record.metadata["quality"]["headline"] == first["headline"]
    sidecar = json.loads(project.resolve_path(record.path).with_suffix(".json").read_text())
    assert sidecar["quality"]["headline"] == first["headline"]
    assert sidecar["weights_sha256"] == record.sha256  # the weights' own record is untouched


@pytest.mark.slow
def test_training_reports_quality_at_checkpoints_and_keeps_the_history(generators) -> None:  # noqa: ANN001
    project, result, events = generators
    reported = [e.data["quality"] for e in events if "quality" in e.data]
    assert [q["iteration"] for q in reported] == [150, TRAINED_ITERATIONS]
    history = json.loads((result.model_dir / "quality_history.json").read_text())
    assert [h["iteration"] for h in history] == [150, TRAINED_ITERATIONS]
    assert result.quality is not None and result.quality["iteration"] == TRAINED_ITERATIONS
    assert [h["iteration"] for h in project.model("trained").metadata["quality_history"]] == [150, 300]
    # Untrained with assess off: no history, no report.
    assert not (project.folder / "models" / "untrained" / "quality_history.json").exists()


@pytest.mark.slow
def test_cli_assess_generator(generators, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from lesion_studio.cli.main import main

    project, _result, _events = generators
    assert main(["assess-generator", str(project.folder), "--model", "trained", "--no-store", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "trained" and 0.0 <= report["realism"]["auc"] <= 1.0
    assert report["settings"]["translation"] == "direct"
    assert main(["assess-generator", str(project.folder), "--model", "trained", "--no-store", "--json",
                 "--translation", "residual"]) == 0
    residual = json.loads(capsys.readouterr().out)  # the same windows, through the residual graph
    assert residual["settings"]["translation"] == "residual" and residual["n_real"] == report["n_real"]
    assert residual["intensity_drift"] != report["intensity_drift"]
    assert main(["assess-generator", str(project.folder), "--model", "trained", "--split", "nowhere"]) == 2
    assert "'nowhere' split" in capsys.readouterr().err
    assert main(["assess-generator", str(project.folder), "--model", "no-such-model"]) == 2


def test_classifier_onnx_returns_the_class_activation_map(demo_project) -> None:  # noqa: ANN001
    """The exported graph's ``cam`` is the DRN's last feature map weighted by its 1×1 classifier;
    its mean is the logit of the probability it returns beside it."""
    torch = pytest.importorskip("torch")
    from lesion_studio.classifier.config import preset
    from lesion_studio.classifier.data import evaluation_set
    from lesion_studio.classifier.preprocess import PreparedCache
    from lesion_studio.classifier.scoring import OnnxScorer, export_classifier_onnx, registered_scorer
    from lesion_studio.models.drn import load_classifier
    from lesion_studio.store.records import Box
    from lesion_studio.training.classifier_trainer import train_classifier

    cfg = preset("tiny", input_size=64, epochs=1)
    result, _ = train_classifier(demo_project, cfg, name="cam-test")
    scorer = OnnxScorer(export_classifier_onnx(result.path), prefer_cuda=False)
    arrays = evaluation_set(demo_project, "val", PreparedCache(cfg.preprocessing, None)).arrays[:5]
    probs, cams = scorer.maps(arrays)
    assert cams.shape == (5, 8, 8)
    np.testing.assert_allclose(probs, scorer.score_arrays(arrays), atol=1e-6)
    np.testing.assert_allclose(1 / (1 + np.exp(-cams.mean(axis=(1, 2)))), probs, atol=1e-5)
    model, _ = load_classifier(result.path)
    with torch.no_grad():
        want = model.fc(model.features(torch.from_numpy(arrays.astype(np.float32))[:, None]))[:, 0].numpy()
    np.testing.assert_allclose(cams, want, atol=1e-4)
    # An export from before the maps is refreshed once when a map is needed.
    side = Path(f"{scorer.path}.json")
    info = json.loads(side.read_text())
    side.write_text(json.dumps({k: v for k, v in info.items() if k != "outputs"}))
    refreshed, _ = registered_scorer(demo_project, "cam-test", need_map=True)
    assert refreshed.maps(arrays[:1])[1].shape == (1, 8, 8)
    # Localisation plumbing (a 1-epoch classifier is no detector; the numbers are checked for shape,
    # range and seeding, not for quality).
    from lesion_studio.evaluate.generator_quality import localisation
    from lesion_studio.patches.dataset import PatchInfo
    from tests.stub_models import StubTranslator

    windows = []
    for rec in demo_project.images(label="normal", split="val", include_excluded=False)[:4]:
        side = 64
        windows.append(PatchInfo(rec.id, rec.body_part, Box(100.0, 150.0, 100.0 + side, 150.0 + side)))
    loc = localisation(demo_project, StubTranslator(), "cam-test", windows, limit=3, seed=0)
    assert loc["total"] == 3 and 0 <= loc["kept"] <= 3 and 0.0 <= loc["fraction_inside_all"] <= 1.0
    assert loc["chance"] == pytest.approx(64 * 64 / (384 * 320))
    assert localisation(demo_project, StubTranslator(), "cam-test", windows, limit=3, seed=0) == loc
