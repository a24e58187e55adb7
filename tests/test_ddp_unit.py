"""The UNIT trainer runs unchanged under ``torchrun --nproc_per_node=2``: DDP, 2 CPU processes, Gloo.

The logged losses are averaged over ranks, so equal histories prove nothing about the gradient
sync. The test compares the weights each rank ends with instead, and runs the same training a
second time with the DDP wrapper replaced by the bare module (no gradient sync): there the ranks
must drift apart, which shows the data and noise differ per rank, so equal weights in the synced
run can only come from the all-reduce.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.torchrun import run_under_torchrun

pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # two processes under the real torchrun

WORKER = r"""
import hashlib, json, os, sys
import torch
from lesion_studio.store import Project
from lesion_studio.training import common, unit_config, unit_trainer
from lesion_studio.models.unit import load_unit_model

created = []  # every generator the trainer builds, so each rank can report its final weights
_build = unit_trainer.unit_generators
unit_trainer.unit_generators = lambda arch: created.append(_build(arch)) or created[-1]

def digest(module):
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()

def train(name):
    cfg = unit_config.preset_config("tiny", iterations=3, cpu_threads=1, device="cpu", export_onnx=False,
                                     body_parts=["humerus"], sample_every=1000, checkpoint_every=1000)
    return unit_trainer.train_unit(project, cfg, name=name)

project = Project.open(sys.argv[1])
# The process group stays open between the two runs: a second init after destroy_process_group
# races on the rendezvous store's old keys and can hang. The second run closes it.
close = common.Distributed.close
common.Distributed.close = lambda self: None
result = train("ddp")
out = {"rank": int(os.environ["RANK"]), "history": result.history, "weights": digest(created[-1])}
if out["rank"] == 0:
    gen, meta = load_unit_model(project.folder / "models" / "ddp" / "model.safetensors")
    out["saved"] = digest(gen)
common.Distributed.close = close
common.Distributed.wrap = lambda self, module, device: module  # the same run without gradient sync
train("nosync")
out["nosync_weights"] = digest(created[-1])
out["initialised"] = torch.distributed.is_initialized()  # the trainer closed the group it used
print("RESULT " + json.dumps(out), flush=True)
"""


def test_two_cpu_processes_train_in_lockstep(demo_project_master: Path, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    shutil.copytree(demo_project_master, folder)
    outputs = run_under_torchrun(WORKER, [str(folder)], tmp_path)
    rank0, rank1 = outputs
    # The gradient sync: both ranks end with the same weights, and rank 0 saved exactly those.
    assert rank0["weights"] == rank1["weights"]
    assert rank0["saved"] == rank0["weights"]
    # Without the sync the ranks drift apart (each trains on its own slice and noise), and the
    # synced weights are neither rank's unsynced ones.
    assert rank0["nosync_weights"] != rank1["nosync_weights"]
    assert rank0["weights"] not in (rank0["nosync_weights"], rank1["nosync_weights"])
    assert len(rank0["history"]) == 3
    assert rank0["history"] == rank1["history"]  # losses are averaged over ranks
    assert not rank0["initialised"] and not rank1["initialised"]
    from lesion_studio.store import Project

    with Project.open(folder) as project:
        record = project.model("ddp")
        assert record.metadata["iteration"] == 3
        assert record.metadata["data"]["lesion"]["body_parts"] == {"humerus": record.metadata["data"]["lesion"]
                                                                   ["patches"]}
