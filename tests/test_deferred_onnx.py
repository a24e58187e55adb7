"""Pausing a GAN run exports no ONNX; the paused model's translator exports on first use (issue 24).

The export took 40-59 s of every pause. Now the pause only saves the checkpoint and weights, and
the first load exports the direction it needs from the hash-checked weights and registers its
hash, so the file is checked from then on exactly as a finished run's files are.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from lesion_studio.errors import JobCancelled, LesionStudioError
from lesion_studio.files import file_sha256

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

FAST = {"device": "cpu", "cpu_threads": 1, "sample_every": 1000, "checkpoint_every": 1000, "assess": False,
        "body_parts": ["femur"]}  # export_onnx stays at its default (True)


def _paused_run(project, name: str, at: int, iterations: int = 40, resume: bool = False):  # noqa: ANN001, ANN202
    from lesion_studio.jobs import CancelToken
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    token = CancelToken()

    def progress(event) -> None:  # noqa: ANN001
        if event.stage == "train-gan" and event.done == at:
            token.cancel()

    with pytest.raises(JobCancelled) as stopped:
        train_unit(project, preset_config("tiny", iterations=iterations, **FAST), name=name, progress=progress,
                   cancel=token, resume=resume)
    return stopped.value.partial


@pytest.fixture
def exports(monkeypatch):  # noqa: ANN001, ANN201
    """Every ONNX export of a translator direction, in order."""
    from lesion_studio.models import unit_onnx

    done: list[str] = []
    real = unit_onnx.export_unit_onnx

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        out = real(*args, **kwargs)
        done.extend(out)
        return out

    monkeypatch.setattr(unit_onnx, "export_unit_onnx", counted)
    return done


def test_pause_exports_nothing_and_the_first_use_exports_and_registers(demo_project, exports) -> None:  # noqa: ANN001
    from lesion_studio.synthesis.translator import open_translator

    result = _paused_run(demo_project, "paused", at=3)
    assert result.cancelled and result.iteration == 3 and result.onnx_path is None
    assert exports == []  # the pause did not export
    folder = result.model_dir
    assert not list(folder.glob("*.onnx"))
    record = demo_project.model("paused")
    assert record.metadata["onnx_sha256"] is None and record.metadata["complete"] is False

    # the Synthesis panel's first preview: its worker loads from the record and the folder, with no
    # database of its own, and the export is registered through a connection opened on that thread
    from lesion_studio.synthesis.preview import TranslatorCache

    tr = TranslatorCache().get(record, demo_project.folder)  # auto: exports model.onnx (h2l) now, only that
    assert tr.backend == "onnx" and exports == ["h2l"]
    assert sorted(p.name for p in folder.glob("*.onnx")) == ["model.onnx"]
    registered = demo_project.model("paused").metadata
    assert registered["onnx_sha256"] == file_sha256(folder / "model.onnx")  # hash-checked from now on
    assert registered["onnx_weights_sha256"] == record.sha256

    torch_tr = open_translator(demo_project, "paused", backend="torch", device="cpu")
    x = np.random.default_rng(0).uniform(-1, 1, (3, 1, 32, 32)).astype(np.float32)
    assert float(np.abs(tr.translate(x) - torch_tr.translate(x)).max()) <= 1e-4
    assert tr.directions == ("h2l", "l2h", "h2l_residual")
    l2h = tr.translate(x, direction="l2h")  # the second direction is exported when first asked for
    assert exports == ["h2l", "l2h"]
    assert float(np.abs(l2h - torch_tr.translate(x, direction="l2h")).max()) <= 1e-4
    assert demo_project.model("paused").metadata["onnx_l2h_sha256"] == file_sha256(folder / "model-l2h.onnx")

    again = open_translator(demo_project, "paused")  # current files: nothing exported again
    again.translate(x, direction="l2h")
    assert exports == ["h2l", "l2h"] and again.backend == "onnx"


def test_a_second_pause_makes_the_export_stale_and_exports_stay_checked(demo_project, exports) -> None:  # noqa: ANN001
    from lesion_studio.synthesis.translator import open_translator

    _paused_run(demo_project, "twice", at=2)
    open_translator(demo_project, "twice")
    first = demo_project.model("twice").metadata["onnx_sha256"]
    result = _paused_run(demo_project, "twice", at=4, resume=True)  # new weights; the old model.onnx stays
    onnx = result.model_dir / "model.onnx"
    assert onnx.exists() and demo_project.model("twice").metadata["onnx_sha256"] is None
    os.utime(onnx)  # even a newer file is stale: its hash is not registered for these weights
    open_translator(demo_project, "twice")
    now = demo_project.model("twice").metadata
    assert exports == ["h2l", "h2l"] and now["onnx_sha256"] == file_sha256(onnx) != first
    assert now["onnx_weights_sha256"] == demo_project.model("twice").sha256

    onnx.write_bytes(onnx.read_bytes() + b"\0")  # changed after it was registered
    with pytest.raises(LesionStudioError, match="does not match the model's registered hash"):
        open_translator(demo_project, "twice")
    assert exports == ["h2l", "h2l"]  # a changed file is refused, never silently replaced


def test_models_trained_without_onnx_and_builtins_are_never_exported(demo_project, exports) -> None:  # noqa: ANN001
    from lesion_studio.builtin_models import find_builtin, register_builtin
    from lesion_studio.synthesis.translator import open_translator
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    train_unit(demo_project, preset_config("tiny", iterations=2, **{**FAST, "export_onnx": False}), name="plain")
    assert open_translator(demo_project, "plain").backend == "torch"
    builtin = register_builtin(demo_project, find_builtin("phantom-unit"))
    folder = demo_project.folder / "models" / builtin.name
    os.utime(folder / "model.safetensors")  # weights newer than the copy's ONNX: still never rewritten
    assert open_translator(demo_project, builtin.name).backend == "onnx"
    assert exports == []
