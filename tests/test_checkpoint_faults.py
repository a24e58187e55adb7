"""Checkpoints and atomic writes under faults injected at each step of the save sequence.

No test here waits for a kill to land by chance: ``tests/faults.py`` stops the write at a chosen
step (raising, or with ``os._exit`` in a child process, which is what ``kill -9`` leaves), and
the test checks that the last complete state loads and that a resumed run is bitwise the run
that was never interrupted.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from faults import STEPS, TESTS_DIR, FaultPlan, InjectedFault

from lesion_studio import files
from lesion_studio.errors import DiskFullError, LesionStudioError
from lesion_studio.store.database_file import DB_NAME

ROOT = Path(__file__).resolve().parents[1]
torch = pytest.importorskip("torch")

from lesion_studio.models import checkpoint  # noqa: E402


def _save(path: Path, it: int) -> None:
    checkpoint.save_checkpoint(path, {"model": {"w": torch.full((64, 64), float(it))}}, {"iteration": it},
                               keep_previous=True)


def _iteration(path: Path) -> int:
    states, meta = checkpoint.load_checkpoint(path)
    assert torch.equal(states["model"]["w"], torch.full((64, 64), float(meta["iteration"])))  # complete
    return int(meta["iteration"])


def _temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if files.is_temp_file(p.name))


# ---------------------------------------------------------------------------- atomic writes
def test_the_file_and_its_folder_are_fsynced_before_and_after_the_rename(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """What makes a write survive a power loss: the temp file's bytes are synced before its rename,
    and the folder after it. A write that skips either leaves a file that a crash can empty."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name the synced descriptors")
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "labels.csv"
    files.atomic_write(target, b"a,b\n")
    tmp = str(files.temp_path(target))
    assert events == [("fsync", tmp), ("replace", str(target)), ("fsync", str(tmp_path))]
    events.clear()
    files.atomic_write(target, b"c,d\n", previous=tmp_path / "labels.prev.csv")
    assert events == [("fsync", tmp), ("replace", str(tmp_path / "labels.prev.csv")), ("replace", str(target)),
                      ("fsync", str(tmp_path))]


@pytest.mark.parametrize("step", STEPS)
def test_an_atomic_write_failing_at_any_step_leaves_old_or_new_content(tmp_path: Path, step: str) -> None:
    target, previous = tmp_path / "data.bin", tmp_path / "data.prev.bin"
    files.atomic_write(target, b"old" * 1000)
    with FaultPlan("data.bin", step) as plan, pytest.raises(OSError):
        files.atomic_write(target, b"new" * 1000, previous=previous)
    assert plan.fired
    if step == "publish":  # retired, not yet replaced: the old content is complete under `previous`
        assert not target.exists() and previous.read_bytes() == b"old" * 1000
    else:
        assert target.read_bytes() == (b"new" * 1000 if step in ("dirsync", "done") else b"old" * 1000)
    assert _temp_files(tmp_path) == []  # an exception removes its temp file


def test_a_full_disk_says_how_much_was_needed_and_writes_nothing(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "boxes.csv"
    files.atomic_write(target, b"old")
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(DiskFullError, match=r"boxes\.csv needs about 2\.0 MB more.*Nothing was written"):
        files.atomic_write(target, b"x" * (2 << 20))
    monkeypatch.setattr(os, "write", real_write)
    assert target.read_bytes() == b"old" and _temp_files(tmp_path) == []


def test_temp_names_fit_the_name_limit(tmp_path: Path) -> None:
    """A 250-byte image name used to fail half-way through a YOLO export: its temp name was 25
    bytes longer than the 255 a file system allows."""
    long = "é" * 120 + "x" * 6 + ".txt"  # 250 bytes in UTF-8
    assert len(long.encode()) == 250
    assert len(files.temp_path(tmp_path / long).name.encode()) <= files.NAME_MAX
    files.atomic_write(tmp_path / long, b"0 0.5 0.5 0.1 0.1\n")
    assert (tmp_path / long).read_bytes().startswith(b"0 ") and _temp_files(tmp_path) == []
    assert files.temp_path(tmp_path / long) != files.temp_path(tmp_path / ("é" * 120 + "y" * 6 + ".txt"))


def test_special_files_are_never_read(tmp_path: Path) -> None:
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(LesionStudioError, match="not a regular file .a FIFO"):
        files.open_regular(fifo, "checkpoint")
    link = tmp_path / "zero.safetensors"
    link.symlink_to("/dev/zero")
    with pytest.raises(LesionStudioError, match="character device"):
        files.file_sha256(link)
    with pytest.raises(LesionStudioError, match="not a regular file"):
        checkpoint.load_checkpoint(fifo)  # returns at once instead of waiting for a writer


# ---------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("step", STEPS)
def test_a_checkpoint_save_failing_at_any_step_keeps_a_complete_checkpoint(tmp_path: Path, step: str) -> None:
    path = tmp_path / "checkpoint.safetensors"
    _save(path, 1)
    _save(path, 2)
    with FaultPlan(path.name, step) as plan, pytest.raises(LesionStudioError):
        _save(path, 3)
    assert plan.fired
    assert _iteration(path) == (3 if step in ("dirsync", "done") else 2)  # "publish": through the previous
    assert _temp_files(tmp_path) == []
    _save(path, 4)
    assert _iteration(path) == 4 and _iteration(checkpoint.previous_path(path)) in (2, 3)


_SAVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[3])
    import torch
    from faults import FaultPlan
    from lesion_studio.models import checkpoint
    path, step = sys.argv[1], sys.argv[2]
    FaultPlan("checkpoint.safetensors", step, nth=3, exit_code=9).install()
    for it in (1, 2, 3):
        checkpoint.save_checkpoint(path, {"model": {"w": torch.full((64, 64), float(it))}}, {"iteration": it},
                                   keep_previous=True)
""")


@pytest.mark.parametrize("step", STEPS)
def test_a_process_killed_at_any_step_of_a_save_leaves_the_last_complete_checkpoint(tmp_path: Path,
                                                                                     step: str) -> None:
    """``kill -9`` at each step (os._exit: no clean-up runs), instead of a sleep that almost never
    lands inside the write."""
    path = tmp_path / "checkpoint.safetensors"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.run([sys.executable, "-c", _SAVER, str(path), step, TESTS_DIR], env=env, timeout=600)
    assert child.returncode == 9  # it died at the step
    expected = {"write": 2, "fsync": 2, "retire": 2, "publish": 2, "dirsync": 3, "done": 3}[step]
    if step == "publish":  # between the retire and the publish: no current file, the previous loads
        assert not path.exists()
    assert _iteration(path) == expected
    left = _temp_files(tmp_path)
    assert bool(left) == (step in ("write", "fsync", "retire", "publish"))  # the killed writer's temp file
    assert sorted(p.name for p in files.remove_stale_temp_files(tmp_path)) == left
    assert _temp_files(tmp_path) == []
    _save(path, 4)
    assert _iteration(path) == 4 and _iteration(checkpoint.previous_path(path)) == expected


def test_a_checkpoint_is_never_written_in_place(tmp_path: Path) -> None:
    """A reader of the current checkpoint (an open file, a memory map) keeps its bytes while a new
    one is saved: the new one is a new file, the old one is renamed or removed, never rewritten."""
    path = tmp_path / "checkpoint.safetensors"
    _save(path, 1)
    before = path.read_bytes()
    with open(path, "rb") as held:
        _save(path, 2)
        _save(path, 3)
        assert held.read() == before
    assert _iteration(path) == 3 and _iteration(checkpoint.previous_path(path)) == 2
    assert os.stat(path).st_nlink == 1 and os.stat(checkpoint.previous_path(path)).st_nlink == 1  # no hard links


def test_save_errors_of_any_type_are_clean_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.torch
    from safetensors import SafetensorError

    path = tmp_path / "checkpoint.safetensors"
    _save(path, 1)

    def broken(*args: object, **kwargs: object) -> bytes:
        raise SafetensorError("Error while serializing: IoError")

    monkeypatch.setattr(safetensors.torch, "save", broken)
    with pytest.raises(LesionStudioError, match="Could not write the checkpoint.*SafetensorError"):
        _save(path, 2)
    monkeypatch.undo()

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(DiskFullError, match=r"checkpoint\.safetensors needs about .* more"):
        _save(path, 2)
    monkeypatch.undo()
    assert _iteration(path) == 1 and _temp_files(tmp_path) == []


def test_non_finite_weights_are_never_saved_nor_resumed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "checkpoint.safetensors"
    _save(path, 1)
    with pytest.raises(LesionStudioError, match="not finite.*training diverged"):
        checkpoint.save_checkpoint(path, {"model": {"w": torch.tensor([1.0, float("nan")])}}, {"iteration": 2},
                                   keep_previous=True)
    assert _iteration(path) == 1
    _save(path, 2)
    # A checkpoint whose NaN weights carry a matching hash (written by an older version) is refused
    # and the previous one is used.
    from safetensors.torch import save_file

    from lesion_studio.models.checkpoint import EMBEDDED_METADATA_KEY, tensors_digest

    nan = {"model.w": torch.full((64, 64), float("nan"))}
    embedded = {"iteration": 3, "state_structure": {"model": {"w": {"__tensor__": "model.w"}}},
                "tensors_sha256": tensors_digest(nan)}
    save_file(nan, str(path), metadata={EMBEDDED_METADATA_KEY: json.dumps(embedded)})
    with caplog.at_level("WARNING"):
        assert _iteration(path) == 1  # the previous checkpoint
    assert "not finite" in caplog.text


def test_the_finiteness_check_names_exactly_the_tensors_with_nan_or_infinity() -> None:
    """The check sums each tensor in float64 instead of masking it: the cases a sum could get wrong."""
    big = torch.finfo(torch.float64).max
    tensors = {
        "fine": torch.randn(32, 32),
        "fine_bf16": torch.randn(8, 8).to(torch.bfloat16),
        "fp32_extremes": torch.full((1000,), torch.finfo(torch.float32).max),  # float32 sum overflows
        "fp64_overflowing_sum": torch.tensor([big, big], dtype=torch.float64),  # finite, sum is inf
        "inf_and_minus_inf": torch.tensor([1.0, float("inf"), float("-inf")]),  # sum is NaN
        "nan_fp16": torch.tensor([0.5, float("nan")], dtype=torch.float16),
        "inf_fp64": torch.tensor([big, float("inf")], dtype=torch.float64),
        "ints": torch.arange(4),
        "empty": torch.zeros(0),
    }
    assert checkpoint.non_finite_tensors(tensors) == ["inf_and_minus_inf", "inf_fp64", "nan_fp16"]


def test_a_checkpoint_missing_an_expected_key_falls_back_or_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.safetensors"
    checkpoint.save_checkpoint(path, {"model": {"w": torch.ones(2)}}, {"iteration": 1}, keep_previous=True)
    checkpoint.save_checkpoint(path, {"other": {"w": torch.ones(2)}}, {"iteration": 2}, keep_previous=True)

    def needs_model(states: dict, meta: dict) -> None:
        if "model" not in states:
            raise LesionStudioError("the checkpoint has no model")

    assert checkpoint.load_checkpoint(path, check=needs_model)[1]["iteration"] == 1
    checkpoint.save_checkpoint(path, {"other": {"w": torch.ones(2)}}, {"iteration": 3}, keep_previous=True)
    with pytest.raises(LesionStudioError, match="Neither checkpoint can be used"):
        checkpoint.load_checkpoint(path, check=needs_model)


def test_run_metrics_never_hold_nan(tmp_path: Path) -> None:
    """SQLite's JSON functions reject the NaN that Python's json writes by default."""
    from lesion_studio.store import Project

    with Project.create(tmp_path / "p") as project:
        run = project.start_run("unit", name="m")
        project.update_run(run, status="failed", metrics={"losses": {"recon": float("nan"), "gan": 1.5},
                                                          "seq": [float("inf"), 2.0]}, finished=True)
        assert project.run(run).metrics == {"losses": {"recon": None, "gan": 1.5}, "seq": [None, 2.0]}
    conn = sqlite3.connect(tmp_path / "p" / "project.sqlite")
    assert conn.execute("SELECT json_valid(metrics), json_extract(metrics, '$.losses.gan') FROM runs").fetchone() \
        == (1, 1.5)
    conn.close()


# ---------------------------------------------------------------------------- the GAN trainer
FAST = {"device": "cpu", "cpu_threads": 1, "export_onnx": False, "sample_every": 1000, "checkpoint_every": 2,
        "body_parts": ["femur"], "assess": False}

_TRAINER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[4])
    from faults import FaultPlan
    from lesion_studio.store import Project
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit
    folder, name, step = sys.argv[1], sys.argv[2], sys.argv[3]
    FaultPlan("checkpoint.safetensors", step, nth=2, exit_code=9).install()  # the save at iteration 4
    fast = {"device": "cpu", "cpu_threads": 1, "export_onnx": False, "sample_every": 1000, "checkpoint_every": 2,
            "body_parts": ["femur"], "assess": False}
    train_unit(Project.open(folder), preset_config("tiny", iterations=6, **fast), name=name)
""")


def _weights(path: Path) -> dict:
    return checkpoint.load_checkpoint(path)[0]["gen"]


@pytest.mark.slow
@pytest.mark.timeout(3600)  # a hang guard: six child runs, each a few seconds on an idle machine
def test_a_gan_killed_at_any_step_of_a_checkpoint_save_resumes_bitwise(demo_project) -> None:  # noqa: ANN001
    """The issue's probe: a kill the moment ``checkpoint.prev.safetensors`` appeared resumed to other
    weights (recon 0.557 where the uninterrupted run ends at 0.456), because the previous checkpoint
    was a hard link of the live one that a later save rewrote in place. Now every step of the save
    is tried, and each resumed run ends with the uninterrupted run's losses and weights."""
    from lesion_studio.models import layout
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    straight = train_unit(demo_project, preset_config("tiny", iterations=6, **FAST), name="straight")
    reference = _weights(layout.unit_dir(demo_project.folder, "straight") / layout.WEIGHTS)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for step in STEPS:
        name = f"killed-{step}"
        child = subprocess.run([sys.executable, "-c", _TRAINER, str(demo_project.folder), name, step, TESTS_DIR],
                               env=env, timeout=900, capture_output=True, text=True)
        assert child.returncode == 9, child.stderr[-2000:]
        folder = layout.unit_dir(demo_project.folder, name)
        rest = train_unit(demo_project, preset_config("tiny", iterations=6, **FAST), name=name, resume=True)
        assert rest.history == straight.history, step
        got = _weights(folder / layout.WEIGHTS)
        assert got.keys() == reference.keys() and all(torch.equal(got[k], reference[k]) for k in got), step
        assert not [p for p in folder.iterdir() if files.is_temp_file(p.name)], step  # killed run's temp files
        run = [r for r in demo_project.runs("unit") if r.name == name][-1]
        assert run.status == "finished"


def test_a_diverged_gan_is_not_registered(demo_project, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Before, a run whose weights had gone NaN finished with exit 0 and registered the model."""
    from lesion_studio.models import unit as unit_module
    from lesion_studio.training import unit_trainer
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    real = unit_module.loss_terms

    def diverging(gen, out, x_l, x_h):  # noqa: ANN001, ANN202
        terms = real(gen, out, x_l, x_h)
        terms["recon"] = terms["recon"] * float("nan")
        return terms

    monkeypatch.setattr(unit_trainer, "loss_terms", diverging)
    with pytest.raises(LesionStudioError, match="not finite"):
        train_unit(demo_project, preset_config("tiny", iterations=2, **FAST), name="nan")
    assert demo_project.find_model("nan") is None
    run = [r for r in demo_project.runs("unit") if r.name == "nan"][-1]
    assert run.status == "failed"
    conn = sqlite3.connect(demo_project.folder / DB_NAME)
    assert conn.execute("SELECT MIN(json_valid(metrics)) FROM runs").fetchone()[0] == 1
    conn.close()


def test_a_disk_full_checkpoint_fails_cleanly_and_resumes_bitwise(demo_project, capsys) -> None:  # noqa: ANN001
    """Disk full during a checkpoint save exited 70; after space was freed, --resume finished with
    exit 0 and every weight NaN. Now: exit 2 with the size, and the resumed run is the straight one."""
    from lesion_studio.cli.main import main
    from lesion_studio.models import layout

    config = demo_project.folder / "tiny.yaml"
    config.write_text("preset: tiny\ncheckpoint_every: 2\nsample_every: 1000\n")
    args = ["train-gan", str(demo_project.folder), "--config", str(config), "--iterations", "6", "--cpu-threads", "1",
            "--body-part", "femur", "--no-onnx", "--no-assess", "--device", "cpu", "--json"]
    assert main([*args, "--name", "straight"]) == 0
    capsys.readouterr()
    with FaultPlan("checkpoint.safetensors", "write", nth=2, error=OSError(errno.ENOSPC, "No space left")) as plan:
        assert main([*args, "--name", "full"]) == 2
    assert plan.fired
    err = capsys.readouterr().err
    assert "is full" in err and "checkpoint.safetensors needs about" in err and "Nothing was written" in err
    assert main([*args, "--name", "full", "--resume"]) == 0
    a = _weights(layout.unit_dir(demo_project.folder, "straight") / layout.WEIGHTS)
    b = _weights(layout.unit_dir(demo_project.folder, "full") / layout.WEIGHTS)
    assert all(torch.isfinite(v).all() and torch.equal(v, a[k]) for k, v in b.items())


def test_injected_faults_are_os_errors() -> None:
    assert issubclass(InjectedFault, OSError)
