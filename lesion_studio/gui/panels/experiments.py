"""The Experiments panel: run an experiment config (the paper's protocol) with per-stage progress.

The same function as ``lesion-studio experiment CONFIG.yaml``
(:func:`~lesion_studio.experiment.runner.run_experiment`) runs as a job on the window's
:class:`~lesion_studio.gui.job_queue.JobQueue`, **on the open project**: the config supplies the
protocol (studies, classifier, generator, thresholds), the panel supplies the project and the
output folder, ``<project>/experiments/<config name>``. An installed app never writes into its
install folder, and the finished run is in the project's run registry, so the Results panel
lists it at once. The runner reports an ``"experiment"`` event when
a stage ends (its message names the stage, e.g. ``"baseline femur"``, ``"score femur<-femur"``)
and, in between, the events of the work inside the stage (classifier epochs, GAN iterations,
synthesis, scoring). The panel lists the stages it expects from the config (mirroring the
runner's own :class:`~lesion_studio.experiment.plan.ExperimentPlan`), marks each as it ends, and shows the inner events on a
progress bar for the stage in hand. Finished stages are cached by the runner, so running the same
config again after a stop or a crash skips straight to where it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lesion_studio.errors import LesionStudioError
from lesion_studio.experiment.on_project import (
    load_plan,
    missing_body_parts,
    output_folder,
    plan_stages,
    run_experiment_file,
)
from lesion_studio.gui import settings as prefs
from lesion_studio.gui.actions import ActionSpec
from lesion_studio.gui.job_queue import Job, JobQueue, JobState
from lesion_studio.gui.panels import report
from lesion_studio.jobs import ProgressEvent
from lesion_studio.paths import experiments_dir

if TYPE_CHECKING:
    from lesion_studio.gui.host import PanelHost
    from lesion_studio.gui.session import ProjectSession
    from lesion_studio.store.project import Project

log = logging.getLogger(__name__)

#: (config path, project folder, output folder, progress, cancel) → result with ``.output``
StageRunner = Callable[[Path, Path, Path, Any, Any], Any]
PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"
MARKS = {PENDING: "○", RUNNING: "▶", DONE: "✓", FAILED: "✗", CANCELLED: "■"}
StateRole = Qt.ItemDataRole.UserRole + 1


def default_config(project: Project | None) -> Path | None:
    """demo-tiny for the demo project, else the config used last."""
    demo = experiments_dir() / "demo-tiny.yaml"
    if project is not None and project.get_setting("demo_version") and demo.exists():
        return demo
    last = prefs.app_settings().value("experiments/last_config", "")
    return Path(str(last)) if last else None


class ExperimentsPanel(QWidget):
    def __init__(self, host: PanelHost, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.session = session
        self.queue: JobQueue = host.job_queue
        self.runner: StageRunner = run_experiment_file  # tests put a stub here
        self.job: Job | None = None
        self.output: Path | None = None
        self._output_for_run: Path | None = None
        self._pending: tuple[Path, str] | None = None
        self._stage_started = 0.0
        self._build()
        start = default_config(session.project if session is not None else None)
        if start is not None:
            self.config_edit.setText(str(start))
            self.preview()
        host.listen(self.queue.gpu_probe.ready, self._gpu_known)

    def _build(self) -> None:
        self.config_edit = QLineEdit()
        self.config_edit.setPlaceholderText("experiment config (YAML/TOML)")
        self.config_edit.setToolTip("An experiment config, as for `lesion-studio experiment CONFIG.yaml`. It "
                                    "runs on the open project and writes to <project>/experiments/<name>.")
        self.config_edit.editingFinished.connect(self.preview)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse)
        row = QHBoxLayout()
        row.addWidget(self.config_edit, 1)
        row.addWidget(browse)
        self.run_button = QPushButton("Run experiment")
        self.run_button.setToolTip("Queue the experiment; finished stages of an earlier run are reused")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.setToolTip("Stop at the next check; finished stages stay cached, and a new run "
                                      "continues from the stage in hand (its trainer resumes its checkpoint)")
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button = QPushButton("Open results folder")
        self.open_button.clicked.connect(self.open_results)
        buttons = QGridLayout()  # Open results folder on a row of its own: in one row the three were
        for i, b in enumerate((self.run_button, self.cancel_button)):  # wider than a 1280 px window's dock
            buttons.addWidget(b, 0, i)
        buttons.addWidget(self.open_button, 1, 0, 1, 2)

        self.stages = QStandardItemModel(self)
        self.stage_view = QListView()
        self.stage_view.setModel(self.stages)
        self.stage_view.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.stage_label = QLabel("")
        self.stage_label.setWordWrap(True)
        self.stage_progress = QProgressBar()
        self.stage_progress.setRange(0, 1)
        self.stage_progress.setValue(0)
        self.overall = QProgressBar()
        self.overall.setFormat("stage %v of %m")
        self.overall.setRange(0, 1)
        self.overall.setValue(0)
        self.status_label = QLabel("Pick a config and run it.")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Config"))
        layout.addLayout(row)
        layout.addLayout(buttons)
        layout.addWidget(self.overall)
        layout.addWidget(self.stage_view, 1)
        layout.addWidget(self.stage_label)
        layout.addWidget(self.stage_progress)
        layout.addWidget(self.status_label)
        self._update_buttons()

    # ------------------------------------------------------------------ stages
    def stage_states(self) -> list[tuple[str, str]]:
        return [(self.stages.item(r).data(Qt.ItemDataRole.UserRole), self.stages.item(r).data(StateRole))
                for r in range(self.stages.rowCount())]

    def _set_plan(self, names: list[str]) -> None:
        self.stages.clear()
        for name in names:
            self._append_stage(name)
        self.overall.setRange(0, max(1, len(names)))
        self.overall.setValue(0)

    def _append_stage(self, name: str) -> QStandardItem:
        item = QStandardItem()
        item.setData(name, Qt.ItemDataRole.UserRole)
        self.stages.appendRow(item)
        self._set_state(item, PENDING)
        return item

    def _set_state(self, item: QStandardItem, state: str, note: str = "") -> None:
        item.setData(state, StateRole)
        name = item.data(Qt.ItemDataRole.UserRole)
        item.setText(f"{MARKS[state]}  {name}" + (f" — {note}" if note else ""))

    def _find(self, state: str) -> QStandardItem | None:
        for r in range(self.stages.rowCount()):
            if self.stages.item(r).data(StateRole) == state:
                return self.stages.item(r)
        return None

    def _start_next_stage(self) -> None:
        item = self._find(PENDING)
        if item is None:
            return
        self._set_state(item, RUNNING)
        self.stage_view.scrollTo(item.index())
        self._stage_started = time.perf_counter()
        self.stage_label.setText(item.data(Qt.ItemDataRole.UserRole))
        self.stage_progress.setRange(0, 0)  # busy until the stage's own events give a total

    # ------------------------------------------------------------------ actions
    def preview(self) -> None:
        """List the stages a config will run, before it runs (unless a run is on screen)."""
        if self.job is not None and self.job.active:
            return
        text = self.config_edit.text().strip()
        if not text:
            return
        try:
            self._set_plan(plan_stages(Path(text).expanduser()))
        except (LesionStudioError, OSError, KeyError, TypeError) as exc:
            self.stages.clear()
            self.status_label.setText(f"Cannot read {Path(text).name}: {exc}")
            return
        self.status_label.setText(f"{self.stages.rowCount()} stages on this project; finished ones of an earlier "
                                  "run are reused.")

    def browse(self) -> None:
        start = self.config_edit.text() or str(experiments_dir())
        path, _ = QFileDialog.getOpenFileName(self, "Experiment config", start, "Configs (*.yaml *.yml *.toml)")
        if path:
            self.config_edit.setText(path)
            self.preview()

    def run(self) -> Job | None:
        from lesion_studio.extras import TRAINING_HINT, training_available

        if not training_available():  # every experiment trains classifiers
            self._message(TRAINING_HINT, "warning")
            return None
        text = self.config_edit.text().strip()
        if not text:
            self._message("Choose an experiment config first.", "warning")
            return None
        path = Path(text).expanduser()
        try:
            cfg, plan = load_plan(path)
        except (LesionStudioError, OSError, KeyError, TypeError) as exc:
            self._message(f"Cannot read {path.name}: {exc}", "error")
            return None
        missing = missing_body_parts(cfg, self.session.project)
        if missing:
            self._message(f"{path.name} studies {', '.join(missing)}, but this project has no image with that "
                          "body part. Choose another config or set the body parts in the Inspector.", "error")
            return None
        prefs.set_value("experiments/last_config", str(path))
        self._output_for_run = output_folder(self.session.folder, cfg.name or path.stem)
        device = str(cfg.classifier.get("device", "auto"))
        if self.queue.gpu_probe.available is None and device == "auto":
            self._pending = (path, device)
            self._set_plan(plan)
            self.status_label.setText("Checking for a CUDA GPU…")
            self.queue.gpu_probe.start()
            return None
        self._set_plan(plan)
        return self._submit(path, device)

    def _gpu_known(self, _available: bool, _name: str) -> None:
        if self._pending is not None:
            (path, device), self._pending = self._pending, None
            self._submit(path, device)

    def _submit(self, path: Path, device: str) -> Job:
        runner, project, output = self.runner, self.session.folder, self._output_for_run

        def job_fn(progress, cancel):  # noqa: ANN001, ANN202
            return runner(path, project, output, progress, cancel)

        key = self.queue.lane(device)
        job = self.queue.submit(job_fn, f"Experiment {path.stem}", key, kind="experiment", resumable=True)
        self.job = job
        self.output = None
        job.progressed.connect(self._progressed)
        job.finished.connect(self._finished)
        job.started.connect(self._started)
        if job.state == JobState.RUNNING:
            self._started()
        else:
            self.status_label.setText(f"Queued: waiting for the {key} device.")
        self._update_buttons()
        return job

    def cancel(self) -> None:
        if self.job is not None and self.job.active:
            self.queue.cancel(self.job)
            self.status_label.setText("Stopping at the next check… (a GAN stage saves its checkpoint first)")
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Stopping…")

    def open_results(self) -> None:
        if self.output is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.output)))

    def raise_panel(self) -> None:
        dock = self.parentWidget()
        if dock is not None:
            dock.show()
            dock.raise_()

    # ------------------------------------------------------------------ job events
    def _started(self) -> None:
        if self._find(RUNNING) is None:
            self.status_label.setText("Running…")
            self._start_next_stage()

    def _progressed(self, event: ProgressEvent) -> None:
        if self.sender() is not self.job:
            return
        if event.stage == "experiment":
            item = self._find(RUNNING)
            if item is None or item.data(Qt.ItemDataRole.UserRole) != event.message:
                # not the stage we expected (a config the plan does not mirror): follow the runner
                stray = next((self.stages.item(r) for r in range(self.stages.rowCount())
                              if self.stages.item(r).data(Qt.ItemDataRole.UserRole) == event.message), None)
                if item is not None:
                    self._set_state(item, PENDING)
                item = stray or self._append_stage(event.message)
            self._set_state(item, DONE, f"{time.perf_counter() - self._stage_started:.1f} s")
            # counted from the list, not event.total (the runner's total leaves out the baselines)
            states = [s for _n, s in self.stage_states()]
            self.overall.setRange(0, len(states))
            self.overall.setValue(states.count(DONE))
            self._start_next_stage()
            return
        if event.total:
            self.stage_progress.setRange(0, event.total)
            self.stage_progress.setValue(min(event.done, event.total))
        running = self._find(RUNNING)
        name = running.data(Qt.ItemDataRole.UserRole) if running is not None else ""
        detail = event.message or f"{event.done}" + (f"/{event.total}" if event.total else "")
        self.stage_label.setText(f"{name}: {event.stage} — {detail}")

    def _finished(self, _state: str) -> None:
        job = self.sender()
        if job is not self.job or not isinstance(job, Job):
            return
        running = self._find(RUNNING)
        if job.state == JobState.DONE:
            self.output = Path(job.result.output) if getattr(job.result, "output", None) else None
            self.overall.setValue(self.overall.maximum())
            self.stage_progress.setRange(0, 1)
            self.stage_progress.setValue(1)
            where = f" Results: {self.output}" if self.output else ""
            self._message(f"Experiment {job.title.removeprefix('Experiment ')} finished.{where}", "info")
            self.status_label.setText(f"Finished.{where}")
        else:
            if running is not None:
                self._set_state(running, FAILED if job.state == JobState.FAILED else CANCELLED)
            self.stage_progress.setRange(0, 1)
            self.stage_progress.setValue(0)
            if job.state == JobState.FAILED:
                self._message(f"{job.title} failed: {job.error}", "error")
                self.status_label.setText(f"Failed: {job.error}")
            else:
                self.status_label.setText("Stopped. Finished stages are cached: Run continues from here.")
        self._update_buttons()

    def _message(self, text: str, level: str) -> None:
        report(self.host, self.status_label, text, level)

    def _update_buttons(self) -> None:
        active = self.job is not None and self.job.active
        if not active:
            self.cancel_button.setText("Stop")
        self.run_button.setEnabled(not active)
        self.cancel_button.setEnabled(active)
        self.open_button.setEnabled(self.output is not None and not active)


#: The panel's actions (built by the main window from the panel's spec).
ACTIONS = (
    ActionSpec("show_experiments", "Run e&xperiment…", "Tools", "experiments.raise_panel", (),
               "Run an experiment config (the paper's protocol) with per-stage progress", needs_project=True),
)
