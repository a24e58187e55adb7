"""The Training panel's plot tabs: losses, samples, generator quality and validation AUC of the
job the panel shows.

Apart from the panel's form and job handling so each can be read on its own: the panel says which
run to show (:meth:`TrainingPlots.show_run`) and hands each routed progress event on
(:meth:`TrainingPlots.show_update`); what goes on which curve is decided without Qt in
:func:`lesion_studio.gui.panels.training_presenter.progress_update`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QTabWidget, QWidget

from lesion_studio.gui.panels import training_presenter as tp
from lesion_studio.gui.panels.loss_plot import CurvePlot
from lesion_studio.gui.panels.sample_grid import SampleGrid
from lesion_studio.training.runs import TrainingRequest


class TrainingPlots(QTabWidget):
    """Losses, Samples, Quality and Validation AUC tabs for one run at a time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = CurvePlot("Losses", "iteration", "loss")
        self.auc_plot = CurvePlot("Validation AUC", "epoch", "AUC", symbols=True, y_range=(0.0, 1.0))
        self.sample_grid = SampleGrid()
        self.quality_plot = CurvePlot("Generator quality (validation windows, every checkpoint)", "iteration",
                                      "fraction", symbols=True)
        self.quality_plot.setToolTip(tp.QUALITY_TIP)
        self.addTab(self.loss_plot, "Losses")
        self.addTab(self.sample_grid, "Samples")
        self.addTab(self.quality_plot, "Quality")
        self.addTab(self.auc_plot, "Validation AUC")

    def show_run(self, request: TrainingRequest, folder: Path) -> None:
        """Start over for ``request``'s run: empty curves (a resumed run's history drawn again,
        read from ``folder``), and the tab that matters for its kind in front."""
        for plot in (self.loss_plot, self.auc_plot, self.quality_plot):
            plot.clear_curves()
        self.sample_grid.clear()
        unit = request.kind == "unit"
        self.loss_plot.setLabel("bottom", "iteration" if unit else "step")
        self.setCurrentWidget(self.loss_plot if unit else self.auc_plot)
        if request.resume:
            (self.loss_plot if unit else self.auc_plot).extend(tp.previous_history(folder, request))
            if unit:
                self.quality_plot.extend(tp.previous_quality(folder, request))

    def show_update(self, done: int, update: tp.ProgressUpdate) -> None:
        """Draw what a progress event at step or iteration ``done`` brought."""
        if update.losses is not None:
            self.loss_plot.add(done, update.losses)
        if update.samples is not None:
            self.sample_grid.set_samples(update.samples, update.sample_iteration)
        if update.quality is not None:
            self.quality_plot.add(done, update.quality)
            self.quality_plot.flush()
        if update.auc is not None:
            self.auc_plot.add(update.auc[0], {"val AUC": update.auc[1]})
            self.auc_plot.flush()
