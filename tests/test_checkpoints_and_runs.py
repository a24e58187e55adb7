"""Checkpoints are one atomic unit with a fallback; runs killed mid-way are marked interrupted."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lesion_studio.errors import LesionStudioError
from lesion_studio.models.layout import sidecar_path
from lesion_studio.store import Project

ROOT = Path(__file__).resolve().parents[1]


def _checkpointing():
    torch = pytest.importorskip("torch")
    from lesion_studio.models import checkpoint

    return torch, checkpoint


def test_weights_and_metadata_are_one_file(tmp_path: Path) -> None:
    """A kill between the weights and the sidecar used to leave a hash mismatch that broke resume for
    good; now the metadata lives in the safetensors header and the sidecar is only a copy."""
    torch, checkpoint = _checkpointing()
    path = tmp_path / "checkpoint.safetensors"
    checkpoint.save_checkpoint(path, {"model": {"w": torch.ones(3)}}, {"iteration": 1}, keep_previous=True)
    old_sidecar = sidecar_path(path).read_text()
    checkpoint.save_checkpoint(path, {"model": {"w": torch.full((3,), 2.0)}}, {"iteration": 2}, keep_previous=True)
    sidecar_path(path).write_text(old_sidecar)  # the state a kill before the sidecar write left
    states, meta = checkpoint.load_checkpoint(path)
    assert meta["iteration"] == 2 and torch.equal(states["model"]["w"], torch.full((3,), 2.0))
    sidecar_path(path).unlink()
    assert checkpoint.load_checkpoint(path)[1]["iteration"] == 2


def test_a_damaged_checkpoint_falls_back_to_the_previous(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    torch, checkpoint = _checkpointing()
    path = tmp_path / "checkpoint.safetensors"
    for it in (1, 2):
        checkpoint.save_checkpoint(path, {"model": {"w": torch.full((4,), float(it))}}, {"iteration": it},
                               keep_previous=True)
    assert checkpoint.previous_path(path).exists()
    path.write_bytes(path.read_bytes()[:40])  # torn by a disk error or an outside copy
    with caplog.at_level(logging.WARNING):
        states, meta = checkpoint.load_checkpoint(path)
    assert meta["iteration"] == 1 and torch.equal(states["model"]["w"], torch.ones(4))
    assert "previous checkpoint" in caplog.text and "iteration 1" in caplog.text
    with pytest.raises(LesionStudioError, match="not a valid safetensors"):
        checkpoint.load_checkpoint(path, fallback=False)
    path.unlink()
    assert checkpoint.has_checkpoint(path) and checkpoint.load_checkpoint(path)[1]["iteration"] == 1


def test_unit_resume_survives_a_damaged_checkpoint(demo_project) -> None:  # noqa: ANN001
    _checkpointing()
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    fast = {"device": "cpu", "cpu_threads": 1, "export_onnx": False, "sample_every": 1000,
            "checkpoint_every": 1, "body_parts": ["femur"]}
    train_unit(demo_project, preset_config("tiny", iterations=3, **fast), name="torn")
    ckpt = demo_project.folder / "models" / "torn" / "checkpoint.safetensors"
    ckpt.write_bytes(b"\0" * 10)
    more = train_unit(demo_project, preset_config("tiny", iterations=4, **fast), name="torn", resume=True)
    assert more.iteration == 4 and not more.cancelled


_CHILD = textwrap.dedent("""
    import sys, time
    from lesion_studio.store import Project
    project = Project.open(sys.argv[1])
    run_id = project.start_run("unit", name="child")
    print(run_id, flush=True)
    time.sleep(3600)  # alive until the test kills it, however slowly the test gets there
""")


def test_a_killed_run_is_marked_interrupted_and_a_live_one_is_not(tmp_path: Path) -> None:
    Project.create(tmp_path / "p").close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path / "p")], stdout=subprocess.PIPE,
                             env=env, text=True)
    try:
        run_id = int(child.stdout.readline())
        with Project.open(tmp_path / "p") as project:
            assert project.run(run_id).status == "running"  # alive: left alone
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    with Project.open(tmp_path / "p") as project:
        run = project.run(run_id)
        assert run.status == "interrupted" and run.finished_at
        mine = project.start_run("classifier", name="mine")
        project.update_run(mine, status="finished", finished=True)
    with Project.open(tmp_path / "p") as project:
        assert project.run(mine).status == "finished"
        assert json.loads(json.dumps([r.status for r in project.runs()])) == ["interrupted", "finished"]


# The kill -9 test that used to sleep a random 0.05-0.4 s before killing a saver (it almost never
# landed inside the write) is replaced by fault injection at each step of the save sequence:
# tests/test_checkpoint_faults.py.


def test_damaged_tensor_bytes_are_detected(tmp_path: Path) -> None:
    """The header cannot hash its own file; a digest of the tensors inside it catches a bit flip."""
    torch, checkpoint = _checkpointing()
    path = tmp_path / "c.safetensors"
    checkpoint.save_checkpoint(path, {"model": {"w": torch.arange(64, dtype=torch.float32)}}, {"epoch": 3})
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40  # inside the last tensor's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(LesionStudioError, match="do not match the hash saved with them"):
        checkpoint.load_checkpoint(path)
