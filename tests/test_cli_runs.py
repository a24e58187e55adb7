"""`lesion-studio runs` lists a project's training runs with state and settings; `resume` continues a
paused one exactly as it was set up (the same core as the GUI's Training panel)."""

from __future__ import annotations

import json

import pytest

from lesion_studio.cli.main import main

pytest.importorskip("torch")

# tiny and quick; the reporting fields differ from the preset's, so resuming must take them from the run
RUN = {"device": "cpu", "cpu_threads": 1, "export_onnx": False, "assess": False, "sample_every": 1000,
       "checkpoint_every": 1000, "body_parts": ["femur"]}


def _paused_gan(project, name: str, stop_at: int, iterations: int) -> None:  # noqa: ANN001
    from lesion_studio.errors import JobCancelled
    from lesion_studio.jobs import CancelToken
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    token = CancelToken()

    def progress(event) -> None:  # noqa: ANN001
        if event.stage == "train-gan" and event.done == stop_at:
            token.cancel()

    with pytest.raises(JobCancelled):
        train_unit(project, preset_config("tiny", iterations=iterations, **RUN), name=name, progress=progress,
                   cancel=token)


def test_runs_lists_and_resume_finishes_a_paused_gan(demo_project, capsys) -> None:  # noqa: ANN001
    _paused_gan(demo_project, "paused-gan", stop_at=2, iterations=5)
    folder = str(demo_project.folder)

    assert main(["runs", folder, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row == {"kind": "unit", "name": "paused-gan", "state": "paused", "done": 2, "total": 5,
                   "unit": "iteration", "preset": "tiny", "body_parts": ["femur"],
                   "splits": ["train", "unassigned"], "device": "cpu", "input_size": None}
    assert main(["runs", folder]) == 0
    line = capsys.readouterr().out
    assert "paused-gan" in line and "paused" in line and "iteration 2/5" in line and "femur" in line

    assert main(["resume", folder, "paused-gan", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert summary["iteration"] == 5 and summary["of"] == 5
    record = demo_project.model("paused-gan")
    assert record.metadata["complete"] is True
    assert demo_project.runs("unit")[-1].status == "finished"
    # resumed as it was set up: its own reporting fields, not the tiny preset's (sample_every 50 ...)
    from lesion_studio.models.layout import CONFIG, unit_dir
    from lesion_studio.training.unit_config import load_config

    saved = load_config(unit_dir(demo_project.folder, "paused-gan") / CONFIG)
    assert (saved.sample_every, saved.cpu_threads, saved.assess) == (1000, 1, False)

    assert main(["runs", folder, "--paused"]) == 0
    assert capsys.readouterr().out.strip() == "No paused training runs."
    assert main(["runs", folder, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["state"] == "finished"


def test_resume_refuses_what_is_not_paused_in_one_line(demo_project, capsys) -> None:  # noqa: ANN001
    folder = str(demo_project.folder)
    assert main(["runs", folder]) == 0
    assert capsys.readouterr().out.strip() == "No training runs yet."
    assert main(["resume", folder, "nothing"]) == 2
    err = capsys.readouterr().err
    assert "no training run 'nothing'" in err and "paused runs: none" in err and "Traceback" not in err
