"""The main window's assisted-reading actions (a mixin of :class:`~lesion_studio.gui.app.MainWindow`):
the box proposals' threshold slider, accepting the selected proposal (Enter), and running the
project's detector over images as a background job.

The rules are the core's (``lesion_studio/assist``, ``lesion_studio/store/proposals.py``) and the
annotation controller's: showing proposals, moving the slider or changing images never writes to
the store; a proposal becomes a lesion box only when a reader accepts it (Enter, or dragging it),
and each decision is one step on the project's undo stack.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSlider

from lesion_studio.errors import LesionStudioError
from lesion_studio.gui import settings as prefs
from lesion_studio.store.project import Project

MIN_SCORE_KEY = "assist/min_score"
#: The project setting naming the detector that proposes boxes (a model's name or id).
DETECTOR_SETTING = "assist.model"


def chosen_detector(project: Project) -> int | None:
    """The project's chosen detector: the model its setting names, else the model that scored
    images last (retraining registers and scores), else the newest registered classifier."""
    from lesion_studio.store import proposals as store_proposals

    named = project.get_setting(DETECTOR_SETTING)
    if named:
        try:
            return project.model(named).id
        except LesionStudioError:
            pass  # the named model was deleted: fall back
    latest = store_proposals.latest_scoring_model(project)
    if latest is not None:
        return latest
    models = project.models(kind="drn")
    return max(m.id for m in models) if models else None


class AssistActions:
    """Proposals in the viewer: the threshold slider, Enter, and Tools → Propose boxes."""

    def _build_assist_toolbar(self) -> None:
        """" Proposals ≥ [slider] 0.50" in the main toolbar (Qt folds it into the overflow when narrow)."""
        score = float(prefs.app_settings().value(MIN_SCORE_KEY, self.controller.proposal_min_score))
        self.proposal_slider = QSlider(Qt.Orientation.Horizontal)
        self.proposal_slider.setObjectName("proposal_slider")
        self.proposal_slider.setRange(0, 100)
        self.proposal_slider.setFixedWidth(110)
        self.proposal_slider.setToolTip("Show the detector's box proposals scoring at least this")
        self.proposal_score_label = QLabel()
        self.proposal_score_label.setMinimumWidth(32)
        self.toolbar.addSeparator()
        self.toolbar.addWidget(QLabel(" Proposals ≥ "))
        self.toolbar.addWidget(self.proposal_slider)
        self.toolbar.addWidget(self.proposal_score_label)
        self.proposal_slider.setValue(round(min(max(score, 0.0), 1.0) * 100))
        self._proposal_threshold_moved(self.proposal_slider.value())
        self.proposal_slider.valueChanged.connect(self._proposal_threshold_moved)
        self.image_shown.connect(lambda *_: self._show_assist_status())
        self.image_failed.connect(lambda *_: self._show_assist_status())

    def _proposal_threshold_moved(self, value: int) -> None:
        score = value / 100.0
        self.proposal_score_label.setText(f"{score:.2f}")
        self.controller.set_proposal_min_score(score)
        prefs.set_value(MIN_SCORE_KEY, score)
        self._show_assist_status()

    def accept_proposal(self) -> None:
        """Enter (in the viewer): the selected box proposal becomes a lesion box."""
        self.controller.accept_selected()

    def propose_boxes(self, scope: str = "unreviewed") -> Any:
        """Tools → Propose boxes: the project's detector over the unreviewed images (``scope``
        "unreviewed") or the current image ("image"), as a background job; proposals only, never labels."""
        if self.session is None:
            return None
        from lesion_studio.assist.detector import choose_images, propose_boxes

        project = self.session.project
        model = chosen_detector(project)
        if model is None:
            self.show_message("No detector yet: train a classifier (Training panel) or retrain "
                              "(Tools → Retrain detector) first.", "warning")
            return None
        if scope == "image":
            if self.record is None:
                return None
            images = choose_images(project, image_ids=[self.record.id])
        else:
            images = choose_images(project, unreviewed=True)
        if not images:
            self.show_message("No unreviewed images to propose boxes on.", "info")
            return None

        def job(progress, cancel):  # noqa: ANN001, ANN202
            return propose_boxes(project, model, images, progress=progress, cancel=cancel)

        def done(run) -> None:  # noqa: ANN001
            self._proposals_stored()
            self.show_status(run.summary(), 8000)

        return self.run_job(job, "Propose boxes", done, modal=False)

    def _proposals_stored(self) -> None:
        """New proposals or scores arrived: redraw the current image's proposals and the counts."""
        if self.session is None:
            return
        self.controller.reload_regions()
        self._show_assist_status()

    def _show_assist_status(self) -> None:
        """The status bar's assist field: the current image's shown proposals."""
        field = self.status_fields.labels.get("assist") if hasattr(self, "status_fields") else None
        if field is None:
            return
        if self.session is None or self.record is None:
            field.setText("")
            return
        from lesion_studio.store import proposals as store_proposals

        count = store_proposals.pending_count(self.session.project, self.record.id,
                                              min_score=self.controller.proposal_min_score)
        field.setText(f"{count} proposal{'s' if count != 1 else ''}")
