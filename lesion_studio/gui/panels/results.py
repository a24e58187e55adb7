"""The results view: experiment runs, their Table-2-style AUC table and ROC curves per body part.

Runs are the project's experiment runs (``project.runs("experiment")``, whose output folder holds
the runner's ``results.json``) plus any results folder the user adds (remembered in QSettings).
Everything shown comes from ``results.json`` as written by :mod:`lesion_studio.experiment.report`:
each evaluation carries its AUC with the bootstrap CI, ΔAUC vs the baseline and the test ROC
points (``roc.fpr`` / ``roc.tpr``), so nothing is recomputed here. An evaluation without ROC
points (a run whose augmented model was skipped) is listed without a curve.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyqtgraph as pg
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QUrl
from PySide6.QtGui import QColor, QDesktopServices, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from lesion_studio.evaluate.pointing import pointing_rule
from lesion_studio.experiment.report import fmt_rate
from lesion_studio.gui import settings as prefs
from lesion_studio.gui.panels.pointing_view import PointingView

if TYPE_CHECKING:
    from lesion_studio.gui.host import PanelHost
    from lesion_studio.gui.session import ProjectSession

log = logging.getLogger(__name__)

TYPE_COLOURS = {"Baseline": (160, 160, 160), "Augmented": (230, 90, 60), "TL": (70, 140, 230)}
COLUMNS = ("Body part", "Type", "Status", "t", "Augmented samples", "ROC AUC, pooled (95% CI)",
           "AUC mean ± sd (seeds)", "ΔAUC vs baseline, pooled (95% CI)", "ΔAUC mean ± sd", "Val AUC",
           "ΔAUC vs oversample", "ΔAUC vs copy_paste", "Pointing game, detected lesions (95% CI)")
#: The controls an augmentation arm is compared with (experiment/arms.py CONTROLS), one column each.
CONTROL_COLUMNS = {10: "oversample", 11: "copy_paste"}
POINTING_COLUMN = 12
#: Statuses of an augmented row whose model is *not* the study's result (the baseline stands).
NOT_USED = ("rejected on validation", "filter refused", "no samples kept")
FOLDERS_KEY = "results/folders"


def load_results(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / "results.json").read_text(encoding="utf-8"))


def fmt_auc(auc: dict[str, Any] | None) -> str:
    if not auc:
        return "n/a (no model)"
    return f"{auc['auc']:.3f} ({auc['ci_low']:.3f}–{auc['ci_high']:.3f})"


def fmt_delta(delta: dict[str, Any] | None) -> str:
    if not delta:
        return "–"
    return f"{delta['delta']:+.3f} ({delta['ci_low']:+.3f}–{delta['ci_high']:+.3f})"


def fmt_spread(spread: dict[str, Any] | None, signed: bool = False) -> str:
    if not spread:
        return "–"
    return f"{spread['mean']:{'+' if signed else ''}.3f} ± {spread['sd']:.3f} (n={spread['n']})"


def fmt_pointing(pointing: dict[str, Any] | None) -> str:
    """The pointing game on the detected test lesions, with its chance rate (evaluate/pointing.py)."""
    rate = (pointing or {}).get("detected")
    if not rate or rate.get("rate") is None:
        return "–"
    chance = (pointing.get("chance") or {}).get("tolerance") if pointing else None
    return fmt_rate(rate) + ("" if chance is None else f"; chance {chance:.0%}")


def pointing_tooltip(pointing: dict[str, Any]) -> str:
    """How the pointing figure was counted, and the strict rate beside it."""
    tol = pointing.get("tolerance_px")
    strict = ((pointing.get("strict") or {}).get("detected") or {}).get("rate")
    every = (pointing.get("all") or {}).get("rate")
    lines = [f"The seed-mean {pointing.get('map', 'map')}'s peak {pointing_rule(tol)} a radiologist's box, "
             "over the test lesions the detector finds (p > 0.5)."]
    if every is not None:
        lines.append(f"Over all boxed test lesions: {every:.0%}.")
    if strict is not None and tol:
        lines.append(f"Strictly inside a box: {strict:.0%}.")
    return "\n".join(lines)


def type_label(e: dict[str, Any]) -> str:
    return f"TL (from {e.get('transfer_from')})" if e.get("type") == "TL" else str(e.get("type", ""))


class AucTableModel(QAbstractTableModel):
    """One row per evaluation (target × model type) of one evaluation line, like the paper's Table 2."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def cell(self, row: int, column: int) -> str:
        e = self.rows[row]
        if column == 0:
            return str(e.get("target", ""))
        if column == 1:
            return type_label(e)
        if column == 2:
            status = str(e.get("status") or "")
            return f"{status}: baseline stands" if status in NOT_USED else status
        if column == 3:
            return "–" if e.get("t") is None else f"{e['t']:g}"
        if column == 4:
            return str(e.get("augmented_samples") or 0)
        if column == 5:
            return fmt_auc(e.get("auc"))
        if column == 6:
            return fmt_spread(e.get("auc_spread"))
        if column == 7:
            return fmt_delta(e.get("delta_vs_baseline"))
        if column == 8:
            return fmt_spread(e.get("delta_spread"), signed=True)
        if column in CONTROL_COLUMNS:
            return fmt_delta((e.get("delta_vs_controls") or {}).get(CONTROL_COLUMNS[column]))
        if column == POINTING_COLUMN:
            return fmt_pointing(e.get("pointing"))
        v = e.get("val_auc")
        return "–" if v is None else f"{v:.3f}"

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.cell(index.row(), index.column())
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 1:
            return QColor(*TYPE_COLOURS.get(self.rows[index.row()].get("type", ""), (200, 200, 200)))
        if role == Qt.ItemDataRole.ForegroundRole and self.rows[index.row()].get("status") in NOT_USED:
            return QColor(140, 140, 140)  # shown for reference only: not the study's result
        if role == Qt.ItemDataRole.ToolTipRole:
            e = self.rows[index.row()]
            if index.column() == POINTING_COLUMN and e.get("pointing"):
                return pointing_tooltip(e["pointing"])
            test = e.get("test") or {}
            why = f"\n{e['selection_reason']}" if e.get("selection_reason") else ""
            return (f"model {e.get('model_name')}\ntest images {test.get('images')} ({test.get('lesion')} lesion, "
                    f"{test.get('normal')} normal){why}")
        return None


class ResultsPanel(QWidget):
    """Runs on the left; the chosen run's AUC table and ROC curves (per body part) on the right."""

    def __init__(self, host: PanelHost, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("results_panel")
        self.host = host
        self.project = session.project
        self.results: dict[str, Any] | None = None
        self.folder: Path | None = None

        self.runs_model = QStandardItemModel(self)
        self.runs_view = QListView()
        self.runs_view.setObjectName("results_runs")
        self.runs_view.setModel(self.runs_model)
        self.runs_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.runs_view.selectionModel().currentChanged.connect(lambda cur, _prev: self._run_chosen(cur))
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.reload_runs)
        self.add_button = QPushButton("Add folder…")
        self.add_button.setToolTip("Show an experiment results folder from elsewhere (with results.json)")
        self.add_button.clicked.connect(lambda: self.add_folder())
        self.open_button = QPushButton("Open folder")
        self.open_button.setToolTip("Open the run's results folder (tables, ROC PNGs, configs, models)")
        self.open_button.clicked.connect(self.open_folder)
        self.target_combo = QComboBox()
        self.target_combo.setObjectName("results_target")
        self.target_combo.currentIndexChanged.connect(lambda _i: self._draw_roc())
        self.line_combo = QComboBox()
        self.line_combo.currentIndexChanged.connect(lambda _i: self._show_line())
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.info.setObjectName("results_info")

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_runs_column())
        splitter.addWidget(self._build_results())
        splitter.setSizes([180, 520])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        host.listen(host.job_queue.job_finished, self._job_finished)
        self.reload_runs()

    def _build_runs_column(self) -> QWidget:
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(QLabel("Experiment runs"))
        lv.addWidget(self.runs_view, 1)
        row = QHBoxLayout()
        row.addWidget(self.refresh_button)
        row.addWidget(self.add_button)
        lv.addLayout(row)
        lv.addWidget(self.open_button)
        return left

    def _build_results(self) -> QWidget:
        """The AUC table over the ROC plot, under the test-set and body-part choices."""
        self.table_model = AucTableModel(self)
        self.table = QTableView()
        self.table.setObjectName("results_table")
        self.table.setModel(self.table_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        self.table.selectionModel().currentRowChanged.connect(lambda cur, _prev: self._show_pointing(cur.row()))
        self.pointing_view = PointingView()
        self.pointing_view.lesion_opened.connect(self._open_lesion)
        self.plot = pg.PlotWidget()
        self.plot.setObjectName("results_roc")
        # ROC space is the unit square, whatever the widget's shape: a locked aspect widened the
        # x-axis to −2.5…3.5 in a wide dock. Fixed ranges, no panning or zooming away from it.
        self.plot.setXRange(0, 1, padding=0.02)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setLimits(xMin=-0.02, xMax=1.02, yMin=-0.02, yMax=1.02)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "False positive rate")
        self.plot.setLabel("left", "True positive rate")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.plot.addLegend(offset=(-10, -10))
        self.curves: list[pg.PlotDataItem] = []
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(QLabel("Test images"))
        top.addWidget(self.line_combo, 1)
        top.addWidget(QLabel("ROC of"))
        top.addWidget(self.target_combo, 1)
        rv.addLayout(top)
        rv.addWidget(self.info)
        self.views = QTabWidget()
        self.views.setObjectName("results_views")
        self.views.addTab(self.plot, "ROC curves")
        self.views.addTab(self.pointing_view, "Where it looks")
        self.views.setTabToolTip(1, "Each boxed test lesion with the radiologist's box and where the chosen row's "
                                    "localisation map peaked (the pointing game, lesion by lesion)")
        inner = QSplitter(Qt.Orientation.Vertical)
        inner.addWidget(self.table)
        inner.addWidget(self.views)
        inner.setSizes([160, 320])
        rv.addWidget(inner, 1)
        return right

    # ------------------------------------------------------------------ runs
    def run_folders(self) -> list[tuple[str, Path]]:
        """(label, folder) of every run with a results.json: the project's, then added folders."""
        out: list[tuple[str, Path]] = []
        seen: set[Path] = set()
        for run in reversed(self.project.runs("experiment")):
            if not run.output_dir:
                continue
            folder = self.project.resolve_path(run.output_dir).resolve()
            if (folder / "results.json").exists() and folder not in seen:
                seen.add(folder)
                out.append((f"{run.name or folder.name} — {run.status}, {run.started_at[:16].replace('T', ' ')}",
                            folder))
        for text in self._added_folders():
            folder = Path(text).resolve()
            if (folder / "results.json").exists() and folder not in seen:
                seen.add(folder)
                out.append((f"{folder.name} (added)", folder))
        return out

    def _added_folders(self) -> list[str]:
        value = prefs.app_settings().value(FOLDERS_KEY, [])
        return [value] if isinstance(value, str) else list(value or [])

    def reload_runs(self) -> None:
        keep = self.folder
        self.runs_model.clear()
        for label, folder in self.run_folders():
            item = QStandardItem(label)
            item.setData(str(folder), Qt.ItemDataRole.UserRole)
            item.setToolTip(str(folder))
            self.runs_model.appendRow(item)
        if self.runs_model.rowCount() == 0:
            self.info.setText("No experiment results yet. Run an experiment (Experiments panel or "
                              "`lesion-studio experiment CONFIG`), or add a results folder.")
            self._clear()
            return
        rows = [self.runs_model.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.runs_model.rowCount())]
        row = rows.index(str(keep)) if keep is not None and str(keep) in rows else 0
        self.runs_view.setCurrentIndex(self.runs_model.index(row, 0))

    def add_folder(self, folder: Path | None = None) -> bool:
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(self, "Experiment results folder (with results.json)")
            if not chosen:
                return False
            folder = Path(chosen)
        folder = Path(folder).resolve()
        if not (folder / "results.json").exists():
            self.host.show_message(f"{folder} has no results.json: it is not an experiment results folder.",
                                      "warning")
            return False
        folders = [str(folder)] + [f for f in self._added_folders() if f != str(folder)]
        prefs.set_value(FOLDERS_KEY, folders[:20])
        self.folder = folder
        self.reload_runs()
        return True

    def _job_finished(self, job: Any) -> None:
        """An experiment ended: list it (it ran on this project), and show it when it finished."""
        if getattr(job, "kind", "") != "experiment":
            return
        output = getattr(job.result, "output", None)
        if output is not None and (Path(output) / "results.json").exists():
            self.folder = Path(output).resolve()
        self.reload_runs()

    def showEvent(self, event: Any) -> None:  # noqa: N802
        if self.results is None:
            self.reload_runs()
        super().showEvent(event)

    # ------------------------------------------------------------------ one run
    def _run_chosen(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        self.show_folder(Path(index.data(Qt.ItemDataRole.UserRole)))

    def show_folder(self, folder: Path) -> None:
        try:
            results = load_results(folder)
            evaluations = results["evaluations"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.host.show_message(f"Cannot read the results in {folder}: {exc}", "error")
            self._clear()
            return
        self.folder, self.results = Path(folder), results
        lines = list(dict.fromkeys(e.get("line", "headline") for e in evaluations))
        self.line_combo.blockSignals(True)
        self.line_combo.clear()
        for line in lines:
            self.line_combo.addItem("Headline (excluded images left out)" if line == "headline" else line, line)
        self.line_combo.blockSignals(False)
        self.target_combo.blockSignals(True)
        self.target_combo.clear()
        for target in dict.fromkeys(e["target"] for e in evaluations):
            self.target_combo.addItem(target, target)
        self.target_combo.blockSignals(False)
        test = results.get("test_set", "")
        seconds = results.get("seconds")
        self.info.setText(f"{results.get('name', folder.name)}: test set {test}"
                          + (f", {seconds:.0f} s" if isinstance(seconds, int | float) else "")
                          + f". {len(results.get('seeds') or [0])} training seed(s): AUC is the seeds' mean with a "
                          "pooled bootstrap 95% CI. An augmented model replaces the baseline only when it beats it "
                          "on validation.")
        self._show_line()

    def _line(self) -> str:
        return self.line_combo.currentData() or "headline"

    def _show_line(self) -> None:
        if self.results is None:
            return
        rows = [e for e in self.results["evaluations"] if e.get("line", "headline") == self._line()]
        extra = []
        for e in rows:  # per-body-part AUCs of a multi-part target, below the table's own rows
            for part, auc in (e.get("per_body_part") or {}).items():
                extra.append({**e, "target": f"{e['target']} › {part}", "auc": auc, "delta_vs_baseline": None,
                              "roc": None})
        self.table_model.set_rows(rows + extra)
        self._draw_roc()
        first = next((i for i, e in enumerate(rows) if (e.get("pointing") or {}).get("lesions")), None)
        if first is None:
            self._show_pointing(-1)
        else:
            self.table.selectRow(first)  # the model was reset, so the current row changes: its lesions show

    def _show_pointing(self, row: int) -> None:
        """The chosen table row's lesions in *Where it looks*."""
        rows = self.table_model.rows
        if not 0 <= row < len(rows):
            self.pointing_view.show_row("", None)
            return
        e = rows[row]
        self.pointing_view.show_row(f"{e.get('target')} {type_label(e)}", e.get("pointing"))

    def _open_lesion(self, lesion: dict[str, Any]) -> None:
        """Show a lesion of *Where it looks* in the viewer, when its radiograph is in the open
        project (matched by content hash: the run may come from a copy of the project)."""
        sha = lesion.get("sha256")
        match = next((r for r in self.project.images() if r.sha256 == sha), None)
        if match is None:
            self.host.show_status(f"{Path(str(lesion.get('path'))).name} is not in the open project.", 5000)
            return
        self.host.select_image(match.id)

    def shutdown(self) -> None:
        self.pointing_view.shutdown()

    def _draw_roc(self) -> None:
        for curve in self.curves:
            self.plot.removeItem(curve)
        self.curves = []
        self.legend.clear()
        if self.results is None:
            return
        target = self.target_combo.currentData()
        diagonal = self.plot.plot([0, 1], [0, 1], pen=pg.mkPen((110, 110, 110), style=Qt.PenStyle.DashLine))
        self.curves.append(diagonal)
        for e in self.results["evaluations"]:
            if e.get("target") != target or e.get("line", "headline") != self._line() or not e.get("roc"):
                continue
            kind = e.get("type", "")
            t = "" if e.get("t") is None else f" t={e['t']:g}"
            sd = f"±{e['auc_spread']['sd']:.3f}" if e.get("auc_spread") else ""
            name = f"{type_label(e)}{t}  AUC {e['auc']['auc']:.3f}{sd}" if e.get("auc") else type_label(e)
            pen = pg.mkPen(TYPE_COLOURS.get(kind, (80, 200, 120)), width=2)
            curve = self.plot.plot(e["roc"]["fpr"], e["roc"]["tpr"], pen=pen, name=name)
            self.curves.append(curve)

    def roc_curve_names(self) -> list[str]:
        return [c.name() for c in self.curves if c.name()]

    def _clear(self) -> None:
        self.results = None
        self.table_model.set_rows([])
        self.pointing_view.show_row("", None)
        self.target_combo.clear()
        self.line_combo.clear()
        self._draw_roc()

    def open_folder(self) -> bool:
        if self.folder is None:
            self.host.show_message("Choose a run first.", "info")
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder)))
