"""The DRN trainer runs unchanged under ``torchrun --nproc_per_node=2`` (DDP, 2 CPU processes, Gloo).

Equal loss histories prove nothing (the trainer averages them over ranks), so the test compares the
weights each rank ends with, and trains once more with the DDP wrapper replaced by the bare module:
without the gradient sync the ranks must drift apart.
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
from dataclasses import replace
from lesion_studio.store import Project
from lesion_studio.training import classifier_trainer, common
from lesion_studio.training.classifier_trainer import train_classifier
from lesion_studio.models.drn import load_classifier
from lesion_studio.classifier.config import preset

created = []  # every model the trainer builds, so each rank can report its final weights
_build = classifier_trainer.ClassifierTrainer._build
def _recording_build(self):
    model, opt = _build(self)
    created.append(model)
    return model, opt
classifier_trainer.ClassifierTrainer._build = _recording_build

def digest(module):
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        if name.endswith("num_batches_tracked"):
            continue
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()

project = Project.open(sys.argv[1])
# 65 training images over 2 ranks and batches of 16: the shards differ by one image, which the
# trainer must even out or the ranks would wait for each other forever. select="last": the saved
# weights are the final ones, which both ranks hold.
cfg = preset("tiny", input_size=32, epochs=2, batch_size=16, device="cpu", select="last")
result, model_id = train_classifier(project, cfg, name="ddp-drn")
out = {"rank": int(os.environ["RANK"]), "history": result.history, "model_id": model_id,
       "weights": digest(created[-1])}
if out["rank"] == 0:
    out["saved"] = digest(load_classifier(result.path)[0])
common.Distributed.wrap = lambda self, module, device: module  # the same run without gradient sync
train_classifier(project, replace(cfg, epochs=1), name="nosync", register=False)
out["nosync_weights"] = digest(created[-1])
print("RESULT " + json.dumps(out), flush=True)
"""


def test_classifier_trains_in_lockstep_under_torchrun(demo_project_master: Path, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    shutil.copytree(demo_project_master, folder)
    rank0, rank1 = run_under_torchrun(WORKER, [str(folder)], tmp_path)
    # The gradient sync: both ranks end with the same weights, and rank 0 saved exactly those.
    assert rank0["weights"] == rank1["weights"]
    assert rank0["saved"] == rank0["weights"]
    # Without the sync the ranks drift apart within one epoch (each trains on its own shard).
    assert rank0["nosync_weights"] != rank1["nosync_weights"]
    assert len(rank0["history"]) == 2
    # Losses are averaged over ranks and both ranks evaluate the same weights on validation.
    assert rank0["history"] == rank1["history"]
    assert rank0["model_id"] is not None and rank1["model_id"] is None  # rank 0 registers
    from lesion_studio.store import Project

    with Project.open(folder) as project:
        assert [m.name for m in project.models(kind="drn")] == ["ddp-drn"]
