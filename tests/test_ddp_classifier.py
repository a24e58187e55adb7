"""The DRN trainer runs unchanged under ``torchrun --nproc_per_node=2`` (DDP, 2 CPU processes, Gloo)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.torchrun import run_under_torchrun

pytest.importorskip("torch")

WORKER = r"""
import json, os, sys
from lesion_studio.store import Project
from lesion_studio.training.classifier_trainer import preset, train_classifier
project = Project.open(sys.argv[1])
# 65 training images over 2 ranks and batches of 16: the shards differ by one image, which the
# trainer must even out or the ranks would wait for each other forever.
cfg = preset("tiny", input_size=32, epochs=2, batch_size=16, device="cpu")
result, model_id = train_classifier(project, cfg, name="ddp-drn")
print("RESULT " + json.dumps({"rank": int(os.environ["RANK"]), "history": result.history,
                              "model_id": model_id}), flush=True)
"""


def test_classifier_trains_in_lockstep_under_torchrun(demo_project_master: Path, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    shutil.copytree(demo_project_master, folder)
    results = run_under_torchrun(WORKER, [str(folder)], tmp_path)
    assert len(results[0]["history"]) == 2
    # Losses are averaged over ranks and both ranks evaluate the same weights on validation.
    assert results[0]["history"] == results[1]["history"]
    assert results[0]["model_id"] is not None and results[1]["model_id"] is None  # rank 0 registers
    from lesion_studio.store import Project

    with Project.open(folder) as project:
        assert [m.name for m in project.models(kind="drn")] == ["ddp-drn"]
