"""Accepted synthetic samples feed ordinary classifier training (CLI and the Training panel's job)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from lesion_studio.classifier.data import accepted_training_samples  # noqa: E402
from lesion_studio.io import open_radiograph  # noqa: E402
from lesion_studio.samples import save_synthetic_sample  # noqa: E402
from lesion_studio.store import Box, Project  # noqa: E402


def _accept_fake_lesion(project: Project, split: str) -> int:
    rec = next(r for r in project.images(label="normal", split=split) if not r.excluded)
    pixels = open_radiograph(rec.abs_path).pixels.copy()
    pixels[150:190, 120:160] = (pixels[150:190, 120:160] * 0.4).astype(pixels.dtype)
    return save_synthetic_sample(project, pixels, source_image_id=rec.id, window=Box(110, 140, 170, 200), n=2.0,
                                 seed=0, model_id=None, provenance={"model_name": "hand-made"}, status="accepted")


def test_only_samples_from_training_images_are_used(demo_project: Project) -> None:
    from_train = _accept_fake_lesion(demo_project, "train")
    _accept_fake_lesion(demo_project, "test")
    demo_project.add_synthetic_sample(demo_project.images(split="train")[0].id, Box(1, 1, 9, 9), n=2, seed=0,
                                      model_id=None, status="rejected")
    usable, passed_over = accepted_training_samples(demo_project)
    assert [s.id for s in usable] == [from_train] and passed_over == 1


def test_cli_and_panel_job_train_with_accepted_samples(demo_project: Project) -> None:
    from lesion_studio.cli.main import main
    from lesion_studio.training.runs import TrainingRequest, run_training

    _accept_fake_lesion(demo_project, "train")
    folder = demo_project.folder
    assert main(["train-classifier", str(folder), "--name", "aug", "--preset", "tiny", "--epochs", "1",
                 "--config", str(_tiny_config(folder)), "--with-accepted-synthetic"]) == 0
    summary = demo_project.model("aug").metadata["train"]
    assert summary["synthetic"] == 1
    request = TrainingRequest(kind="drn", name="aug-panel", preset="tiny", length=1, input_size=32,
                              with_accepted_synthetic=True)
    result, model_id = run_training(request, folder, progress=lambda e: None, cancel=None)
    assert demo_project.model(model_id).metadata["train"]["synthetic"] == 1
    assert np.isfinite(result.history[-1]["loss"])


def _tiny_config(folder) -> object:  # noqa: ANN001
    path = folder / "tiny.yaml"
    path.write_text("input_size: 32\nbatch_size: 16\n")
    return path
