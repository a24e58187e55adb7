"""End to end on the demo project: a tiny UNIT learns, exports to ONNX with parity, synthesizes.

One short training run (module fixture) feeds every test here, to keep the suite fast.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lesion_studio.errors import LesionStudioError
from lesion_studio.store.records import Box

pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # every test here uses the trained model
ITERATIONS = 80


@pytest.fixture(scope="module")
def trained(demo_project_master: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from lesion_studio.store import Project
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    folder = tmp_path_factory.mktemp("unit") / "demo"
    shutil.copytree(demo_project_master, folder)
    project = Project.open(folder)
    events = []
    cfg = preset_config("tiny", iterations=ITERATIONS, cpu_threads=1, device="cpu", sample_every=40, checkpoint_every=50)
    result = train_unit(project, cfg, name="tiny", progress=events.append)
    yield project, result, events
    project.close()


def _mean(history: list[dict], key: str, sl: slice) -> float:
    return float(np.mean([h[key] for h in history[sl]]))


def test_tiny_unit_learns_and_is_registered(trained) -> None:  # noqa: ANN001
    project, result, events = trained
    first, last = _mean(result.history, "recon", slice(0, 10)), _mean(result.history, "recon", slice(-10, None))
    assert last < 0.7 * first, (first, last)
    assert _mean(result.history, "cycle", slice(-10, None)) < 0.8 * _mean(result.history, "cycle", slice(0, 10))
    record = project.model("tiny")
    assert record.kind == "unit" and record.id == result.model_id
    assert set(record.body_parts) == {"femur", "tibia", "humerus"}
    meta = record.metadata
    assert meta["iteration"] == ITERATIONS and meta["data"]["lesion"]["patches"] > 0
    assert meta["data"]["normal"]["patches"] > 0 and meta["onnx_sha256"]
    folder = result.model_dir
    for name in ("model.safetensors", "model.json", "checkpoint.safetensors", "checkpoint.json", "config.yaml",
                 "model.onnx", "model-l2h.onnx", "model-h2l-residual.onnx", "samples/iter_0000040.png"):
        assert (folder / name).exists(), name
    train_events = [e for e in events if e.stage == "train-gan"]
    assert [e.done for e in train_events] == list(range(1, ITERATIONS + 1))
    assert {"recon", "gan", "dis", "cycle"} <= set(train_events[-1].data["losses"])
    sample = train_events[39].data["samples"]
    assert sample["h2l"].shape == sample["normal"].shape == (4, 32, 32)
    assert train_events[-1].eta_s == pytest.approx(0.0, abs=1e-6)
    assert project.runs("unit")[-1].status == "finished"


def test_translations_differ_from_inputs_and_noise_is_seeded(trained) -> None:  # noqa: ANN001
    from lesion_studio.patches.dataset import PatchParams, build_patch_set
    from lesion_studio.synthesis.translator import open_translator

    project, _result, _ = trained
    tr = open_translator(project, "tiny")
    assert tr.backend == "onnx" and tr.resolution == 32
    ps = build_patch_set(project, params=PatchParams(resolution=32, variants=2), cache="memory")
    x = ps.sample(6, "normal")
    y = tr.translate(x)
    assert y.shape == x.shape and np.all(np.abs(y) <= 1.0)
    assert np.abs(y - x).mean() > 0.02
    s1 = tr.translate(x, stochastic=True, seed=1)
    assert np.array_equal(s1, tr.translate(x, stochastic=True, seed=1))
    assert not np.array_equal(s1, tr.translate(x, stochastic=True, seed=2))
    assert np.array_equal(y, tr.translate(x))  # deterministic mode is the latent mean


def _untrained_like(tr, folder: Path):  # noqa: ANN001, ANN202
    """A torch translator with the trained model's architecture and the weights it started from
    (the trainer seeds with config.seed before building the generators)."""
    import torch

    from lesion_studio.models.specs import UnitArch
    from lesion_studio.models.unit import unit_generators
    from lesion_studio.synthesis.translator import TorchTranslator
    from lesion_studio.training.unit_files import save_unit_model

    torch.manual_seed(tr._info.metadata["config"]["seed"])
    save_unit_model(folder / "untrained.safetensors", unit_generators(UnitArch(**tr._info.metadata["arch"])), {})
    return TorchTranslator(folder / "untrained.safetensors", tr._info, device="cpu")


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_training_is_what_makes_translations_keep_the_anatomy(trained, tmp_path: Path) -> None:  # noqa: ANN001
    """Any network changes its input, so 'differs from the input' says nothing. What 80 iterations
    of recon + cycle loss buy is a translation that keeps the patch's anatomy: far closer to the
    input, and far better correlated with it, than the same network's untrained output."""
    from lesion_studio.patches.dataset import PatchParams, build_patch_set
    from lesion_studio.synthesis.translator import open_translator

    project = trained[0]
    tr = open_translator(project, "tiny", backend="torch", device="cpu")
    untrained = _untrained_like(tr, tmp_path)
    ps = build_patch_set(project, params=PatchParams(resolution=32, variants=2), cache="memory")
    measured = {}
    for direction, x in (("h2l", ps.sample(8, "normal")), ("l2h", ps.sample(8, "lesion"))):
        y, y0 = tr.translate(x, direction=direction), untrained.translate(x, direction=direction)
        measured[direction] = (float(np.abs(y - x).mean()), float(np.abs(y0 - x).mean()), _corr(y, x), _corr(y0, x))
    # Measured on CPU: h2l error 0.32 vs 0.55 untrained, correlation 0.54 vs 0.10; l2h error 0.35
    # vs 0.86, correlation 0.43 vs −0.17.
    for direction, (err, err0, corr, corr0) in measured.items():
        assert err < 0.75 * err0, (direction, measured)
        assert corr > 0.35 and corr > corr0 + 0.25, (direction, measured)


NO_TORCH_INFERENCE = r"""
import numpy as np
from lesion_studio.cli.main import main
from lesion_studio.classifier.scoring import registered_scorer, score_synthetic
from lesion_studio.samples.batch import generate_candidates
from lesion_studio.store import Box, Project
from lesion_studio.synthesis.pipeline import synthesize_lesion
from lesion_studio.synthesis.translator import open_translator

folder, out = sys.argv[1], sys.argv[2]
result = {}
with Project.open(folder) as project:
    # preview: the synthesis panel's path (translate a window, then re-blend for the n slider)
    tr = open_translator(project, "tiny")
    rec = project.images(label="normal", include_excluded=False)[0]
    rg = project.open_radiograph(rec.id)
    res = synthesize_lesion(rg, Box(100, 120, 164, 184), tr, n=2.0)
    result["backend"] = tr.backend
    result["preview_changed"] = bool(np.any(res.image != rg.pixels))
    result["reblend_changed"] = bool(np.any(res.reblend(6.0).image != res.image))
    # batch synthesis with scoring, then scoring again on its own
    batch = generate_candidates(project, tr, count=3, seed=1, classifier="stub-drn", batch_name="no-torch")
    result["candidates"] = batch.count
    result["scores"] = sorted(batch.scores.values())
    scorer, _ = registered_scorer(project, "stub-drn")
    result["rescored"] = sorted(score_synthetic(project, project.synthetic_samples(batch="no-torch"), scorer))
# the same through the command line
result["cli"] = [
    main(["translate", folder, "--model", "tiny", "--image", str(rec.abs_path), "--box", "100,120,164,184",
          "--out", out]),
    main(["synthesize", folder, "--model", "tiny", "--classifier", "stub-drn", "--count", "2", "--batch", "cli"]),
    main(["score", folder, "--model", "stub-drn", "--synthetic-batch", "cli"]),
]
"""


def test_inference_runs_where_torch_cannot_be_imported(trained, tmp_path: Path) -> None:  # noqa: ANN001
    """Preview, batch synthesis and scoring (API and CLI) in an interpreter where importing torch
    raises: the README's 'inference needs no torch'."""
    from tests.no_torch import run_without_torch
    from tests.stub_models import register_stub_classifier

    folder = tmp_path / "demo"
    shutil.copytree(trained[0].folder, folder)
    from lesion_studio.store import Project

    with Project.open(folder) as project:
        register_stub_classifier(project)
    result = run_without_torch(NO_TORCH_INFERENCE, str(folder), str(tmp_path / "one.png"))
    assert result["backend"] == "onnx"
    assert result["preview_changed"] and result["reblend_changed"]
    assert result["candidates"] == 3 and len(result["scores"]) == 3
    assert result["rescored"] == pytest.approx(result["scores"], abs=1e-6)
    assert result["cli"] == [0, 0, 0] and (tmp_path / "one.png").exists()
    assert result["torch_loaded"] is False
    with Project.open(folder) as project:
        assert all(s.score is not None for s in project.synthetic_samples(batch="cli"))


def test_onnx_matches_torch_on_real_patches(trained) -> None:  # noqa: ANN001
    from lesion_studio.patches.dataset import PatchParams, build_patch_set
    from lesion_studio.synthesis.translator import open_translator

    project, _result, _ = trained
    onnx_tr = open_translator(project, "tiny", backend="onnx")
    torch_tr = open_translator(project, "tiny", backend="torch", device="cpu")
    ps = build_patch_set(project, params=PatchParams(resolution=48, variants=1, seed=3), cache="memory")
    for patches in (ps.sample(5, "normal"), ps.sample(1, "lesion"), ps.sample(3, "lesion")[:, :, :32, :40]):
        for direction in ("h2l", "l2h", "h2l_residual"):
            for stochastic in (False, True):
                a = onnx_tr.translate(patches, direction=direction, stochastic=stochastic, seed=4)
                b = torch_tr.translate(patches, direction=direction, stochastic=stochastic, seed=4)
                assert a.shape == patches.shape
                assert float(np.abs(a - b).max()) <= 1e-4


def test_a_cpu_batch_runs_as_per_core_chunks_with_the_same_result(trained, monkeypatch) -> None:  # noqa: ANN001
    from lesion_studio.synthesis import translator as translator_module

    project = trained[0]
    monkeypatch.setattr(translator_module, "physical_cores", lambda: 2)
    tr = translator_module.open_translator(project, "tiny", backend="onnx")
    x = np.random.default_rng(0).uniform(-1, 1, (7, 1, 32, 32)).astype(np.float32)
    whole = tr.session.run(["h2l"], {"patches": x, "noise": np.zeros((7, *tr._info.arch.latent_shape(1, 32, 32)[1:]),
                                                                     np.float32)})[0]
    chunked = tr.translate(x)
    assert len(tr._sessions["h2l/per-core"]) == 2  # the batch went through the per-core sessions
    assert chunked.shape == x.shape and float(np.abs(chunked - whole).max()) <= 1e-5
    assert np.array_equal(tr.translate(x[:3]), tr.session.run(["h2l"], {"patches": x[:3], "noise": np.zeros(
        (3, *tr._info.arch.latent_shape(1, 32, 32)[1:]), np.float32)})[0])  # small batches: one session


def test_each_direction_has_its_own_graph_and_old_two_output_files_still_load(trained, tmp_path) -> None:  # noqa: ANN001
    """onnxruntime runs every node of a graph, so each direction lives in its own file; a model.onnx
    from before the split (both outputs in one graph) must keep serving both directions."""
    from dataclasses import replace

    import onnx
    from onnx import TensorProto, helper

    from lesion_studio.onnx_runtime import make_session
    from lesion_studio.synthesis.translator import OnnxTranslator, open_translator

    project, result, _ = trained
    for name, direction in (("model.onnx", "h2l"), ("model-l2h.onnx", "l2h"),
                            ("model-h2l-residual.onnx", "h2l_residual")):
        session = make_session(result.model_dir / name, prefer_cuda=False)
        assert [o.name for o in session.get_outputs()] == [direction]
    assert project.model("tiny").metadata["onnx_l2h_sha256"] and project.model("tiny").metadata[
        "onnx_h2l_residual_sha256"]

    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", c, "h", "w"])
          for n, c in (("patches", 1), ("noise", 64))]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", 1, "h", "w"]) for n in ("h2l", "l2h")]
    graph = helper.make_graph([helper.make_node("Neg", ["patches"], ["h2l"]),
                               helper.make_node("Identity", ["patches"], ["l2h"])], "old", io, outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, tmp_path / "model.onnx")
    import hashlib

    digest = hashlib.sha256((tmp_path / "model.onnx").read_bytes()).hexdigest()  # an old model: one hash
    info = replace(open_translator(project, "tiny")._info, metadata={"onnx_sha256": digest})
    old = OnnxTranslator(tmp_path / "model.onnx", info, prefer_cuda=False)
    x = np.linspace(-1, 1, 2 * 32 * 32, dtype=np.float32).reshape(2, 1, 32, 32)
    assert np.array_equal(old.translate(x), -x) and np.array_equal(old.translate(x, direction="l2h"), x)
    assert old.directions == ("h2l", "l2h") and open_translator(project, "tiny").directions == (
        "h2l", "l2h", "h2l_residual")
    with pytest.raises(LesionStudioError, match="exported before residual translation"):
        old.translate(x, direction="h2l_residual")  # an old export has no residual graph: say so, plainly


def test_synthesis_changes_only_the_window_and_reblend_is_cheap(trained) -> None:  # noqa: ANN001
    from lesion_studio.synthesis.pipeline import sample_normal_windows, synthesize_lesion
    from lesion_studio.synthesis.translator import open_translator

    project, _result, _ = trained
    tr = open_translator(project, "tiny")
    rec = project.images(label="normal", body_parts=["femur"], include_excluded=False)[0]
    rg = project.open_radiograph(rec.id)
    windows = sample_normal_windows(project, rec, 3, np.random.default_rng(0), radiograph=rg)
    assert windows and all(w.width == w.height for w in windows)
    assert synthesize_lesion(rg, windows[0], tr, n=2.0, seed=0).provenance["blend"] == "matched"  # the default
    res = synthesize_lesion(rg, windows[0], tr, n=2.0, seed=0, blend_mode="paper")  # α → 1: the translation itself
    x0, y0, x1, y1 = res.window.as_ints()
    assert res.image.dtype == rg.pixels.dtype and res.image.shape == rg.pixels.shape
    outside = np.ones(rg.pixels.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(res.image[outside], rg.pixels[outside])
    assert not np.array_equal(res.image[y0:y1, x0:x1], rg.pixels[y0:y1, x0:x1])
    assert res.image.max() <= rg.value_range[1]
    assert res.provenance["model"]["sha256"] == project.model("tiny").sha256
    assert res.provenance["source"]["sha256"] == rec.sha256

    calls = []
    original = tr.translate
    tr.translate = lambda *a, **k: calls.append(1) or original(*a, **k)  # type: ignore[method-assign]
    for n in np.linspace(0.5, 8, 20):
        again = res.reblend(float(n))
    assert calls == []  # re-blending never translates again (its latency: benchmarks/synthesis_bench.py)
    assert again.n == 8.0 and np.array_equal(again.translated_patch, res.translated_patch)
    hard = res.reblend(500.0).blended_patch.astype(float)
    inner = slice(3, -3)
    assert np.abs(hard[inner, inner] - res.translated_patch.astype(float)[inner, inner]).max() <= 2
    with pytest.raises(LesionStudioError, match="outside"):
        synthesize_lesion(rg, Box(5000, 5000, 5100, 5100), tr)


def test_identity_translator_leaves_image_unchanged(trained) -> None:  # noqa: ANN001
    from lesion_studio.synthesis.pipeline import synthesize_lesion

    class Identity:
        resolution, model_id, model_name, sha256 = 32, None, "identity", ""

        def translate(self, patches, *, stochastic=False, seed=None, direction="h2l"):  # noqa: ANN001, ANN201
            return patches

    project = trained[0]
    rg = project.open_radiograph(project.images(label="normal")[0].id)
    res = synthesize_lesion(rg, Box(40, 60, 72, 92), Identity(), n=1.5)  # window == resolution: no resize
    assert np.array_equal(res.image, rg.pixels)


def test_residual_translation_keeps_the_source_texture_and_adds_only_the_residual(trained) -> None:  # noqa: ANN001
    """``translation: residual``: window = source + resized [G_l(z) − G_h(z)]. A zero residual gives the
    source back exactly even where the window is resized (direct translation of the same window
    by an identity generator cannot: it goes through the model's resolution and back), and a
    constant residual shifts the window by that much of half the value range."""
    from lesion_studio.synthesis.pipeline import synthesize_lesion, translate_window
    from lesion_studio.synthesis.translator import open_translator

    class Constant:
        resolution, model_id, model_name, sha256 = 32, None, "constant", ""

        def __init__(self, residual: float) -> None:
            self.residual, self.calls = residual, []

        def translate(self, patches, *, stochastic=False, seed=None, direction="h2l"):  # noqa: ANN001, ANN201
            self.calls.append(direction)
            return patches if direction == "h2l" else np.full_like(patches, self.residual)

    project = trained[0]
    rg = project.open_radiograph(project.images(label="normal")[0].id)
    window = Box(30, 40, 110, 120)  # 80 px: resized to 32 and back
    zero = Constant(0.0)
    direct = translate_window(rg, window, zero)
    residual = translate_window(rg, window, zero, translation="residual")
    assert zero.calls == ["h2l", "h2l_residual"] and residual.translation == "residual"
    assert np.array_equal(residual.translated_float, residual.source_float)
    assert not np.array_equal(direct.translated_float, direct.source_float)  # the resize blurs it
    lo, hi = rg.value_range
    shifted = translate_window(rg, window, Constant(0.1), translation="residual")
    want = np.clip(shifted.source_float + 0.1 * (hi - lo) / 2, lo, hi)
    assert np.allclose(shifted.translated_float, want, atol=1e-3 * (hi - lo))
    res = synthesize_lesion(rg, window, Constant(0.0), n=2.0, translation="residual")
    assert np.array_equal(res.image, rg.pixels) and res.provenance["translation"] == "residual"
    # the real model: the residual path runs through its ONNX residual graph and changes the window
    real = synthesize_lesion(rg, window, open_translator(project, "tiny"), translation="residual")
    assert not np.array_equal(real.image, rg.pixels)
    with pytest.raises(LesionStudioError, match="Unknown translation"):
        translate_window(rg, window, zero, translation="sideways")
    zero.directions = ("h2l", "l2h")  # an export from before the residual graph: translated directly
    old = translate_window(rg, window, zero, translation="residual")
    assert old.translation == "direct" and zero.calls[-1] == "h2l"


def test_cli_translate_single_and_batch(trained, tmp_path: Path) -> None:  # noqa: ANN001
    from lesion_studio.cli.main import main

    project = trained[0]
    rec = project.images(label="normal", include_excluded=False)[0]
    out = tmp_path / "one.png"
    assert main(["translate", str(project.folder), "--model", "tiny", "--image", str(rec.abs_path),
                 "--box", "100,120,164,184", "--n", "2", "--out", str(out)]) == 0
    assert out.exists() and out.with_name("one_full.png").exists()
    from PIL import Image

    assert Image.open(out).size[0] > 3 * 64
    n_sources = sum(len(project.normal_patches(r.id)) for r in project.images(label="normal",
                                                                             include_excluded=False))
    assert main(["translate", str(project.folder), "--model", "tiny", "--all-normal-patches", "--limit", "3",
                 "--out-dir", str(tmp_path / "batch"), "--record"]) == 0
    assert len(list((tmp_path / "batch").glob("*_sbs.png"))) == min(3, n_sources)
    assert len(project.synthetic_samples()) == min(3, n_sources)
    # Recorded samples keep native depth: reading one back gives the source's dtype and shape.
    from lesion_studio.samples import load_sample_pixels

    sample = project.synthetic_samples()[0]
    source = project.open_radiograph(sample.source_image_id)
    native = load_sample_pixels(project, sample)
    assert native.dtype == source.pixels.dtype and native.shape == source.pixels.shape
    single = np.asarray(Image.open(out.with_name("one_full_native.png")))
    assert single.shape == (rec.height, rec.width) and single.dtype == np.uint16
    assert main(["translate", str(project.folder), "--model", "nope", "--image", str(rec.abs_path),
                 "--box", "1,1,20,20", "--out", str(out)]) == 2


def test_synthesis_windows_are_drawn_like_the_generators_normal_training_windows(trained) -> None:  # noqa: ANN001
    """A model trained with normal_match "air" saved its lesion windows (size, air share); the
    experiment's synthesizer draws source windows from them, as its normal training windows were."""
    from lesion_studio.experiment.generators import UnitSynthesizer
    from lesion_studio.patches.sampling import window_air_fractions

    project, result, _events = trained
    stats = project.model("tiny").metadata["data"]["lesion_windows"]
    assert project.model("tiny").config["normal_match"] == "air"
    assert len(stats["side_fractions"]) == len(stats["air_fractions"]) == result.data_summary["lesion"]["patches"]
    synth = UnitSynthesizer(project, "tiny", backend="onnx")
    assert synth.rule.stats == stats
    targets = np.asarray(stats["air_fractions"])
    rec = next(r for r in project.images(label="normal") if r.body_part == "femur")
    rg = project.open_radiograph(rec.id)
    windows = synth.windows(project, rec, 6, np.random.default_rng(0))
    assert windows
    shares = window_air_fractions(rg.pixels, windows)
    # each window's air share is within the tolerance of some lesion window's (they are drawn jointly)
    assert all(np.min(np.abs(targets - a)) <= 0.03 + 1e-9 for a in shares)
    # batch generation (the Gallery, `generate`) draws its windows by the same rule
    from lesion_studio.samples.batch import plan_sources

    planned = list(plan_sources(project, "sampled", 4, np.random.default_rng(1), body_parts=["femur"], rule=synth.rule))
    assert sum(len(w) for _rec, w in planned) == 4
    for rec_b, wins in planned:
        pixels = project.open_radiograph(rec_b.id).pixels
        assert all(np.min(np.abs(targets - a)) <= 0.03 + 1e-9 for a in window_air_fractions(pixels, wins))
