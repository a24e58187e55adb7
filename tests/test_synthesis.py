"""End to end on the demo project: a tiny UNIT learns, exports to ONNX with parity, synthesizes.

One short training run (module fixture) feeds every test here, to keep the suite fast.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from lesion_studio.errors import LesionStudioError
from lesion_studio.store.records import Box

pytest.importorskip("torch")
ITERATIONS = 80


@pytest.fixture(scope="module")
def trained(demo_project_master: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from lesion_studio.store import Project
    from lesion_studio.training.unit_trainer import preset_config, train_unit

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
                 "model.onnx", "samples/iter_0000040.png"):
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
    from lesion_studio.synthesis.translator import load_translator

    project, _result, _ = trained
    tr = load_translator(project, "tiny")
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


def test_onnx_matches_torch_on_real_patches(trained) -> None:  # noqa: ANN001
    from lesion_studio.patches.dataset import PatchParams, build_patch_set
    from lesion_studio.synthesis.translator import load_translator

    project, _result, _ = trained
    onnx_tr = load_translator(project, "tiny", backend="onnx")
    torch_tr = load_translator(project, "tiny", backend="torch", device="cpu")
    ps = build_patch_set(project, params=PatchParams(resolution=48, variants=1, seed=3), cache="memory")
    for patches in (ps.sample(5, "normal"), ps.sample(1, "lesion"), ps.sample(3, "lesion")[:, :, :32, :40]):
        for direction in ("h2l", "l2h"):
            for stochastic in (False, True):
                a = onnx_tr.translate(patches, direction=direction, stochastic=stochastic, seed=4)
                b = torch_tr.translate(patches, direction=direction, stochastic=stochastic, seed=4)
                assert a.shape == patches.shape
                assert float(np.abs(a - b).max()) <= 1e-4


def test_synthesis_changes_only_the_window_and_reblend_is_cheap(trained) -> None:  # noqa: ANN001
    from lesion_studio.synthesis.pipeline import sample_normal_windows, synthesize_lesion
    from lesion_studio.synthesis.translator import load_translator

    project, _result, _ = trained
    tr = load_translator(project, "tiny")
    rec = project.images(label="normal", body_parts=["femur"], include_excluded=False)[0]
    rg = project.open_radiograph(rec.id)
    windows = sample_normal_windows(project, rec, 3, np.random.default_rng(0), radiograph=rg)
    assert windows and all(w.width == w.height for w in windows)
    res = synthesize_lesion(rg, windows[0], tr, n=2.0, seed=0)
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
    t0 = time.perf_counter()
    for n in np.linspace(0.5, 8, 20):
        again = res.reblend(float(n))
    assert calls == [] and (time.perf_counter() - t0) / 20 < 0.02
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
