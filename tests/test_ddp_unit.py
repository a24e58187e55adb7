"""The UNIT trainer runs unchanged under ``torchrun --nproc_per_node=2``: DDP, 2 CPU processes, Gloo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.torchrun import run_under_torchrun

pytest.importorskip("torch")

WORKER = r"""
import json, sys
from lesion_studio.store import Project
from lesion_studio.training.unit_trainer import preset_config, train_unit
from lesion_studio.training.unit_files import load_unit_model
project = Project.open(sys.argv[1])
cfg = preset_config("tiny", iterations=3, cpu_threads=1, device="cpu", export_onnx=False, body_parts=["humerus"],
                    sample_every=1000, checkpoint_every=1000)
result = train_unit(project, cfg, name="ddp")
import torch.distributed  # the process group is closed again after the run
out = {"history": result.history, "initialised": torch.distributed.is_initialized()}
if __import__("os").environ["RANK"] == "0":
    gen, meta = load_unit_model(project.folder / "models" / "ddp" / "model.safetensors")
    out["weights_sum"] = float(sum(p.double().sum() for p in gen.parameters()))
out["rank"] = int(__import__("os").environ["RANK"])
print("RESULT " + json.dumps(out), flush=True)
"""


def test_two_cpu_processes_train_in_lockstep(demo_project_master: Path, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    shutil.copytree(demo_project_master, folder)
    outputs = run_under_torchrun(WORKER, [str(folder)], tmp_path)
    assert len(outputs[0]["history"]) == 3
    assert outputs[0]["history"] == outputs[1]["history"]  # losses are averaged over ranks
    assert not outputs[0]["initialised"] and not outputs[1]["initialised"]
    from lesion_studio.store import Project

    with Project.open(folder) as project:
        record = project.model("ddp")
        assert record.metadata["iteration"] == 3
        assert record.metadata["data"]["lesion"]["body_parts"] == {"humerus": record.metadata["data"]["lesion"]
                                                                   ["patches"]}
