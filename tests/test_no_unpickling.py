"""Weights are never unpickled: every path that loads weights (or cached arrays) is handed a
pickle-bearing file whose payload would create a marker file, and must refuse it unrun.

The planted file is a ``torch.save`` archive, the usual form of a malicious ``.pt``; its sidecar
is rewritten with the planted file's hash, so the hash check passes and the parser itself has
to refuse. The test first shows the file is live: unpickling a copy runs the payload.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from lesion_studio.errors import LesionStudioError

torch = pytest.importorskip("torch")


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the marker's existence means code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.marker), "w"))


def _plant(path: Path, marker: Path) -> None:
    """Replace ``path`` by a pickle archive, and re-hash its sidecar so only the parser stands guard."""
    torch.save({"weights": torch.zeros(3), "payload": Payload(marker)}, path)
    side = path.with_suffix(".json")
    if side.exists():
        meta = json.loads(side.read_text())
        meta["weights_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        side.write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def trained(demo_project_master: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A demo project with a 2-iteration UNIT and a 1-epoch classifier: real files to replace."""
    from lesion_studio.classifier.config import preset
    from lesion_studio.store import Project
    from lesion_studio.training.classifier_trainer import train_classifier
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    folder = tmp_path_factory.mktemp("pickles") / "demo"
    shutil.copytree(demo_project_master, folder)
    project = Project.open(folder)
    train_unit(project, preset_config("tiny", iterations=2, cpu_threads=1, device="cpu", export_onnx=False,
                                      body_parts=["humerus"], checkpoint_every=1),
               name="gan")
    result, _ = train_classifier(project, preset("tiny", input_size=32, epochs=1, device="cpu"), name="drn")
    yield project, result.path
    project.close()


def test_the_planted_file_is_live(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    _plant(tmp_path / "x.pt", marker)
    torch.load(tmp_path / "x.pt", weights_only=False)  # what a careless loader would do
    assert marker.exists()
    marker.unlink()
    with pytest.raises(Exception):  # noqa: B017, PT011 - torch's own guard, whatever it raises
        torch.load(tmp_path / "x.pt", weights_only=True)
    assert not marker.exists()


def test_every_weight_loader_refuses_a_pickle(trained, tmp_path: Path) -> None:  # noqa: ANN001
    from lesion_studio.classifier.scoring import scorer_for_weights
    from lesion_studio.models.checkpoint import load_checkpoint
    from lesion_studio.models.drn import load_classifier
    from lesion_studio.models.unit import load_unit_model
    from lesion_studio.synthesis.translator import open_translator
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    project, drn_path = trained
    marker = tmp_path / "ran"
    gan = project.folder / "models" / "gan"
    for name in ("model.safetensors", "checkpoint.safetensors"):
        _plant(gan / name, marker)
    _plant(drn_path, marker)
    drn_path.with_suffix(".onnx").unlink(missing_ok=True)  # the scorer must load the weights to export

    loaders = {
        "load_checkpoint": lambda: load_checkpoint(gan / "model.safetensors"),
        "load_unit_model": lambda: load_unit_model(gan / "model.safetensors"),
        "torch translator": lambda: open_translator(project, "gan", backend="torch", device="cpu"),
        "load_classifier": lambda: load_classifier(drn_path),
        "ONNX scorer export": lambda: scorer_for_weights(drn_path, prefer_cuda=False),
    }
    for what, load in loaders.items():
        # The translator checks the registered hash first (the planted file fails it); every
        # other loader gets as far as the safetensors parser, which refuses the pickle.
        refusal = "registered hash" if what == "torch translator" else "not a valid safetensors file"
        with pytest.raises(LesionStudioError, match=refusal):
            load()
        assert not marker.exists(), what
    # Resume refuses the planted checkpoint too, and falls back to the previous one kept beside it.
    resumed = train_unit(project, preset_config("tiny", iterations=4, device="cpu", export_onnx=False),
                         name="gan", resume=True)
    assert resumed.iteration == 4 and not marker.exists()


def test_classifier_resume_ignores_a_pickled_checkpoint(trained, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    from lesion_studio.classifier.config import preset
    from lesion_studio.training.classifier_trainer import train_classifier

    project, _ = trained
    marker = tmp_path / "ran"
    out = tmp_path / "resume"
    cfg = preset("tiny", input_size=32, epochs=1, device="cpu")
    train_classifier(project, cfg, name="resume", out_dir=out, register=False)
    _plant(out / "last.safetensors", marker)
    with caplog.at_level(logging.WARNING):
        result, _ = train_classifier(project, cfg, name="resume", out_dir=out, register=False)
    assert result.resumed_from == 0  # trained again from scratch instead
    assert "not resuming" in caplog.text and not marker.exists()


def test_array_caches_refuse_pickled_arrays(trained, tmp_path: Path) -> None:  # noqa: ANN001
    """The patch cache (.npz) and the prepared-image cache (.npy) are re-made, not unpickled."""
    from lesion_studio.classifier.preprocess import PreparedCache, Preprocessing
    from lesion_studio.patches.dataset import PatchParams, build_patch_set

    project, _ = trained
    marker = tmp_path / "ran"
    evil = np.array([Payload(marker)], dtype=object)
    params = PatchParams(resolution=32, variants=1)
    build_patch_set(project, body_parts=["humerus"], params=params, cache="disk")
    cached = sorted((project.folder / "cache").rglob("*.npz"))
    assert cached
    for path in cached:
        np.savez(path, patches=evil, windows=evil)
    again = build_patch_set(project, body_parts=["humerus"], params=params, cache="disk")
    assert again.lesion.dtype != object and len(again.lesion) > 0

    cache = PreparedCache(Preprocessing(32), tmp_path / "prepared")
    rec = project.images()[0]
    first = cache.get(rec.sha256, rec.abs_path)
    for path in (tmp_path / "prepared").glob("*.npy"):
        np.save(path, evil, allow_pickle=True)
    fresh = PreparedCache(Preprocessing(32), tmp_path / "prepared")
    np.testing.assert_array_equal(fresh.get(rec.sha256, rec.abs_path), first)
    assert not marker.exists()
