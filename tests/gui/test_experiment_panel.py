"""The Experiments panel: per-stage progress from the runner's events, through the job queue.

The real demo-tiny protocol takes minutes on two cores, so the runner here is a stub that
reports the events ``ExperimentRunner.run`` reports (stage ticks with inner work in between),
walking the same :class:`ExperimentPlan` the runner walks (``tests/test_experiment.py`` checks
that a real run's ticks are exactly that plan), and leaves what a run leaves: a run in the
project's registry and a results folder written by the report writer. Experiments run on the
open project and write under it, and the Results panel lists them.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

from lesion_studio.experiment.on_project import plan_stages
from lesion_studio.gui.job_queue import JobState
from lesion_studio.gui.panels.experiments import CANCELLED, DONE, PENDING, RUNNING
from lesion_studio.jobs import ProgressEvent
from lesion_studio.paths import resources_dir

DEMO_TINY = resources_dir() / "experiments" / "demo-tiny.yaml"


def _stub_runner(gates: dict[str, threading.Event], reached: list[str], calls: list | None = None):  # noqa: ANN202
    def runner(config: Path, project: Path, out: Path, progress, cancel):  # noqa: ANN001, ANN202
        from lesion_studio.store.project import Project
        from tests.gui.test_results_view import write_results

        if calls is not None:
            calls.append((config, project, out))
        plan = plan_stages(config)
        for i, name in enumerate(plan, 1):
            for k in range(3):  # the work inside a stage (epochs, iterations, candidates)
                cancel.raise_if_cancelled("The experiment")
                progress(ProgressEvent("training classifier", k + 1, 3, f"{name} step {k + 1}"))
            reached.append(name)
            gate = gates.get(name)
            while gate is not None and not gate.wait(0.01):
                cancel.raise_if_cancelled("The experiment")
            progress(ProgressEvent("experiment", i, len(plan), name))
        with Project.open(project) as p:  # what the runner leaves: a registered run and its results
            run_id = p.start_run("experiment", name=config.stem, output_dir=out)
            write_results(out, config.stem)
            p.update_run(run_id, status="done", finished=True)
        return SimpleNamespace(output=out)

    return runner


def test_panel_lists_the_runners_plan(tmp_path) -> None:
    from lesion_studio.config import from_dict
    from lesion_studio.experiment.config import ExperimentConfig, load_experiment_config
    from lesion_studio.experiment.plan import ExperimentPlan

    assert plan_stages(DEMO_TINY) == ExperimentPlan.from_config(load_experiment_config(DEMO_TINY)).names
    transfer = from_dict(ExperimentConfig, {"name": "x", "project": "demo", "thresholds": [0.5],
                                            "studies": [{"body_parts": ["tibia"], "transfer_from": ["femur"]}]})
    assert ExperimentPlan.from_config(transfer).names == [
        "baseline tibia", "baseline femur", "generator femur", "synthesize tibia<-femur", "score tibia<-femur",
        "augmented tibia<-femur t=0.5", "evaluate", "report"]
    transfer.seeds = [0, 1]
    names = ExperimentPlan.from_config(transfer).names
    assert names[:4] == ["baseline tibia seed 0", "baseline tibia seed 1", "baseline femur seed 0",
                         "baseline femur seed 1"]
    assert names[-4:] == ["augmented tibia<-femur t=0.5 seed 0", "augmented tibia<-femur t=0.5 seed 1",
                          "evaluate", "report"]


def test_experiment_runs_with_per_stage_progress_and_opens_results(qtbot, window, tmp_path,
                                                                   monkeypatch) -> None:  # noqa: ANN001
    panel = window.panels["experiments"]
    assert Path(panel.config_edit.text()) == DEMO_TINY  # the demo project defaults to demo-tiny
    assert [n for n, _s in panel.stage_states()] == plan_stages(DEMO_TINY)  # a preview
    assert all(s == PENDING for _n, s in panel.stage_states())
    gates = {"score femur+tibia+humerus<-femur+tibia+humerus": threading.Event()}
    reached: list[str] = []
    calls: list = []
    results = window.panels["results"]
    runs_before = results.runs_model.rowCount()  # folders added by hand earlier in the session may be listed
    panel.runner = _stub_runner(gates, reached, calls)
    monkeypatch.setattr(window.job_queue.gpu_probe, "available", False)
    job = panel.run()
    assert job is not None
    qtbot.waitUntil(lambda: reached[-1:] == ["score femur+tibia+humerus<-femur+tibia+humerus"], timeout=5000)
    gated = plan_stages(DEMO_TINY).index("score femur+tibia+humerus<-femur+tibia+humerus")  # after 3 seeds' baselines
    qtbot.waitUntil(lambda: [s for _n, s in panel.stage_states()][:gated + 1] == [DONE] * gated + [RUNNING],
                    timeout=5000)
    states = panel.stage_states()
    assert [s for _n, s in states][gated + 1:] == [PENDING] * (len(states) - gated - 1)
    assert panel.overall.value() == gated and panel.overall.maximum() == len(states)
    assert panel.stage_progress.value() == 3 and "score" in panel.stage_label.text()
    assert not panel.run_button.isEnabled() and not panel.open_button.isEnabled()

    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(opened.append))
    with qtbot.waitSignal(job.finished, timeout=10_000):
        gates["score femur+tibia+humerus<-femur+tibia+humerus"].set()
    assert job.state == JobState.DONE
    assert all(s == DONE for _n, s in panel.stage_states())
    # on the open project, under its folder (never the install folder)
    ((config, project, out),) = calls
    assert config == DEMO_TINY and project == window.session.folder
    assert out == window.session.folder / "experiments" / "demo-tiny"
    assert panel.output == out
    # ... and in Results without Refresh or Add folder
    assert results.runs_model.rowCount() == runs_before + 1 and results.folder == out.resolve()
    assert results.table_model.rowCount() > 0
    assert panel.open_button.isEnabled()
    panel.open_button.click()
    assert opened and Path(opened[0].toLocalFile()) == out


def test_stopping_an_experiment_marks_the_stage(qtbot, window, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    panel = window.panels["experiments"]
    gates = {"generator femur+tibia+humerus": threading.Event()}
    reached: list[str] = []
    panel.runner = _stub_runner(gates, reached)
    monkeypatch.setattr(window.job_queue.gpu_probe, "available", False)
    job = panel.run()
    qtbot.waitUntil(lambda: "generator femur+tibia+humerus" in reached, timeout=5000)
    with qtbot.waitSignal(job.finished, timeout=5000):
        panel.cancel_button.click()
        assert panel.cancel_button.text() == "Stopping…" and not panel.cancel_button.isEnabled()
    assert job.state == JobState.PAUSED  # finished stages stay cached: a pause, not a loss
    assert window.job_queue.data(window.job_queue.index(0)).endswith("— paused")
    states = dict(panel.stage_states())
    assert states["generator femur+tibia+humerus"] == CANCELLED and states["evaluate"] == PENDING
    assert "cached" in panel.status_label.text() and panel.run_button.isEnabled()


def test_a_bad_config_is_a_message(qtbot, window, tmp_path) -> None:  # noqa: ANN001
    panel = window.panels["experiments"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstudies:\n  - transfer_from: [femur]\n")
    panel.config_edit.setText(str(bad))
    assert panel.run() is None
    assert "Cannot read bad.yaml" in panel.status_label.text()
    assert not window.job_queue.busy()


def test_a_config_for_other_body_parts_is_refused(qtbot, window, tmp_path) -> None:  # noqa: ANN001
    panel = window.panels["experiments"]
    other = tmp_path / "hands.yaml"
    other.write_text("name: hands\nproject: demo\nstudies:\n  - body_parts: [hand]\n")
    panel.config_edit.setText(str(other))
    assert panel.run() is None
    assert "hand" in panel.status_label.text() and "no image" in panel.status_label.text()
    assert not window.job_queue.busy()


def test_config_for_project_replaces_the_data_source_and_output(tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("torch")  # validating the classifier settings reads the trainer's presets
    from lesion_studio.experiment.config import load_experiment_config
    from lesion_studio.experiment.on_project import config_for_project

    quick = resources_dir() / "experiments" / "fracatlas-quick.yaml"
    assert load_experiment_config(quick).import_spec is not None
    cfg = config_for_project(quick, tmp_path / "project", tmp_path / "project" / "experiments" / "q")
    assert cfg.import_spec is None and cfg.path(cfg.project) == tmp_path / "project"
    assert cfg.path(cfg.output) == tmp_path / "project" / "experiments" / "q"
    assert cfg.studies == load_experiment_config(quick).studies



@pytest.mark.slow
def test_a_real_minimal_experiment_runs_from_the_panel(qtbot, window, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """The real runner (stub generator, 1-epoch 32-px classifiers): its stage ticks match the plan."""
    pytest.importorskip("torch")
    config = tmp_path / "mini.yaml"
    config.write_text(
        "name: gui-mini\nproject: demo\noutput: ../elsewhere\n"
        "classifier: {preset: tiny, epochs: 1, input_size: 32, batch_size: 8, device: cpu}\n"
        "generator: {kind: stub}\nsynthesis: {candidates_per_image: 1, max_candidates: 6}\n"
        "thresholds: [0.5]\nstudies:\n  - body_parts: [femur]\n")
    panel = window.panels["experiments"]
    panel.config_edit.setText(str(config))
    panel.preview()
    plan = [n for n, _s in panel.stage_states()]
    assert plan[0] == "baseline femur" and len(plan) == 7
    monkeypatch.setattr(window.job_queue.gpu_probe, "available", False)
    job = panel.run()
    with qtbot.waitSignal(job.finished, timeout=180_000):
        pass
    assert job.state == JobState.DONE, job.error
    assert panel.stage_states() == [(n, DONE) for n in plan]  # no stray stage: the plan mirrors the runner
    out = window.session.folder / "experiments" / "gui-mini"
    assert (out / "results.json").exists() and panel.open_button.isEnabled()
    assert not (tmp_path.parent / "elsewhere").exists()
    results = window.panels["results"]
    assert results.runs_model.rowCount() == 1 and results.folder == out.resolve()
