"""The UNIT trainer runs unchanged under DistributedDataParallel: 2 CPU processes with Gloo."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

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
print("RESULT " + json.dumps(out))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_cpu_processes_train_in_lockstep(demo_project_master: Path, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    shutil.copytree(demo_project_master, folder)
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2",
               "RANK": str(rank), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "1",
               "CUDA_VISIBLE_DEVICES": ""}
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, str(folder)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
        outputs.append(json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:]))
    assert len(outputs[0]["history"]) == 3
    assert outputs[0]["history"] == outputs[1]["history"]  # losses are averaged over ranks
    assert not outputs[0]["initialised"] and not outputs[1]["initialised"]
    from lesion_studio.store import Project

    with Project.open(folder) as project:
        record = project.model("ddp")
        assert record.metadata["iteration"] == 3
        assert record.metadata["data"]["lesion"]["body_parts"] == {"humerus": record.metadata["data"]["lesion"]
                                                                   ["patches"]}
