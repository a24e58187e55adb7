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
from PySide6.QtWidgets import QComboBox, QLabel, QSlider

from lesion_studio.assist.queue import chosen_detector, next_unreviewed, review_counter
from lesion_studio.gui import settings as prefs

MIN_SCORE_KEY = "assist/min_score"
ORDER_KEY = "assist/order"
#: The review queue's orders, as the toolbar's combo names them (each item says what it is).
ORDER_ITEMS = (("Next: most uncertain", "uncertainty"), ("Next: most likely", "likely"), ("Next: file order", "file"))


class AssistActions:
    """Proposals in the viewer (the threshold slider, Enter, Tools → Propose boxes) and the review
    queue (U, its order combo, Tools → Retrain detector, the status bar's counter)."""

    def _build_assist_toolbar(self) -> None:
        """"The Reading toolbar: " Proposals ≥ [slider] 0.50" and the queue's order ("Next: most uncertain")."""
        score = float(prefs.app_settings().value(MIN_SCORE_KEY, self.controller.proposal_min_score))
        self.proposal_slider = QSlider(Qt.Orientation.Horizontal)
        self.proposal_slider.setObjectName("proposal_slider")
        self.proposal_slider.setRange(0, 100)
        self.proposal_slider.setFixedWidth(110)
        self.proposal_slider.setToolTip("Show the detector's box proposals scoring at least this")
        self.proposal_score_label = QLabel()
        self.proposal_score_label.setMinimumWidth(32)
        # the reading controls have their own toolbar: they stay in sight when the main one folds
        self.addToolBarBreak()
        self.reading_toolbar = self.addToolBar("Reading")
        self.reading_toolbar.setObjectName("toolbar_reading")
        self.reading_toolbar.setMovable(False)
        self.reading_toolbar.addWidget(QLabel(" Proposals ≥ "))
        self.reading_toolbar.addWidget(self.proposal_slider)
        self.reading_toolbar.addWidget(self.proposal_score_label)
        self.proposal_slider.setValue(round(min(max(score, 0.0), 1.0) * 100))
        self._proposal_threshold_moved(self.proposal_slider.value())
        self.proposal_slider.valueChanged.connect(self._proposal_threshold_moved)
        self.queue_order = QComboBox()
        self.queue_order.setObjectName("queue_order")
        self.queue_order.setToolTip("The order G (go to the next unreviewed image) follows: the detector's most uncertain "
                                    "image first, its most likely lesion first, or file order")
        for text, value in ORDER_ITEMS:
            self.queue_order.addItem(text, value)
        saved = str(prefs.app_settings().value(ORDER_KEY, "uncertainty"))
        self.queue_order.setCurrentIndex(max(0, self.queue_order.findData(saved)))
        self.queue_order.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.queue_order.currentIndexChanged.connect(self._queue_order_chosen)
        self.reading_toolbar.addWidget(self.queue_order)
        self.image_shown.connect(lambda *_: self._show_assist_status())
        self.image_failed.connect(lambda *_: self._show_assist_status())

    def _proposal_threshold_moved(self, value: int) -> None:
        score = value / 100.0
        self.proposal_score_label.setText(f"{score:.2f}")
        self.controller.set_proposal_min_score(score)
        prefs.set_value(MIN_SCORE_KEY, score)
        self._show_assist_status()

    def _queue_order_chosen(self, _index: int) -> None:
        prefs.set_value(ORDER_KEY, self.queue_order.currentData())
        self._show_assist_status()

    def next_unreviewed_image(self) -> None:
        """G: the next unreviewed image in the chosen order (the review queue)."""
        if self.session is None:
            return
        project = self.session.project
        current = self.record.id if self.record is not None else None
        nxt = next_unreviewed(project, current, self.queue_order.currentData(), model=chosen_detector(project))
        if nxt is None:
            self.show_status("No other unreviewed image: every image has been reviewed.", 5000)
            return
        self.browser.select_image(nxt)

    def retrain_detector(self) -> Any:
        """Tools → Retrain detector: train a new detector on the current labels in the background
        (the CPU's training lane); when it is done the scores, the queue and the counter follow it."""
        if self.session is None:
            return None
        from lesion_studio.assist import retrain

        project = self.session.project

        def job(progress, cancel):  # noqa: ANN001, ANN202
            return retrain.retrain_detector(project, progress=progress, cancel=cancel)

        def done(result) -> None:  # noqa: ANN001
            self._proposals_stored()
            self.show_status(result.summary(), 10000)

        return self.run_job(job, "Retrain detector", done, modal=False, device="cpu")

    def accept_proposal(self) -> None:
        """Enter (in the viewer): the selected box proposal becomes a lesion box."""
        self.controller.accept_selected()

    def propose_boxes(self, scope: str = "auto") -> Any:
        """Tools → Propose boxes: the project's detector, as a background job, over the images the
        browser has selected when there are several, else the unreviewed ones (``scope`` "auto");
        or over exactly the "selected", the "unreviewed" or the current ("image") ones.
        Proposals only, never labels."""
        if self.session is None:
            return None
        from lesion_studio.assist.detector import choose_images, propose_boxes

        project = self.session.project
        model = chosen_detector(project)
        if model is None:
            self.show_message("No detector yet: train a classifier (Training panel) or retrain "
                              "(Tools → Retrain detector) first.", "warning")
            return None
        selected = self.browser.selected_image_ids()
        if scope == "auto":
            scope = "selected" if len(selected) > 1 else "unreviewed"
        if scope == "image":
            if self.record is None:
                return None
            images = choose_images(project, image_ids=[self.record.id])
        elif scope == "selected":
            images = choose_images(project, image_ids=selected) if selected else []
        else:
            images = choose_images(project, unreviewed=True)
        if not images:
            hint = " Select several images in the browser to propose boxes on those." if scope == "unreviewed" else ""
            self.show_message(f"No {scope} images to propose boxes on.{hint}", "info")
            return None

        def job(progress, cancel):  # noqa: ANN001, ANN202
            return propose_boxes(project, model, images, progress=progress, cancel=cancel)

        def done(run) -> None:  # noqa: ANN001
            self._proposals_stored()
            self.show_status(run.summary(), 8000)

        return self.run_job(job, "Propose boxes", done, modal=False)

    def _browser_selection_changed(self, count: int) -> None:
        """Tools → Propose boxes says which images it will run on."""
        action = self.actions_by_key.get("propose")
        if action is not None:
            action.setText(f"&Propose boxes on the {count} selected images" if count > 1
                           else "&Propose boxes on unreviewed images")

    def _proposals_stored(self) -> None:
        """New proposals or scores arrived: redraw the current image's proposals and the counts."""
        if self.session is None:
            return
        self.controller.reload_regions()
        self.browser.model.refresh_scores()
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

        project = self.session.project
        count = store_proposals.pending_count(project, self.record.id, min_score=self.controller.proposal_min_score)
        counter = review_counter(project, self.record.id, self.queue_order.currentData(),
                                 model=chosen_detector(project))
        parts = [counter.text(), f"{count} proposal{'s' if count != 1 else ''}", self._label_source()]
        field.setText(" · ".join(p for p in parts if p))

    def _label_source(self) -> str:
        """Whether the current image's labels came from a reader, a model (an accepted proposal), or both."""
        assert self.session is not None and self.record is not None
        boxes = self.session.project.boxes(self.record.id)
        proposed = sum(b.proposed for b in boxes)
        if proposed and proposed == len(boxes):
            return "labels: model (accepted)"
        if proposed:
            return "labels: reader + model (accepted)"
        return "labels: reader" if self.record.label in ("lesion", "normal") else "not labelled"
