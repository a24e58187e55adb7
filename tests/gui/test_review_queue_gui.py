"""The review queue in the real window: G goes to the next unreviewed image in the chosen order,
the browser's Score column sorts by the detector's score, and Retrain refreshes the scores, the
column and the counter when its background job ends."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from lesion_studio.gui.panels.browser import COL_SCORE
from lesion_studio.store import proposals as store
from lesion_studio.store.project import Project
from tests.gui.conftest import show


@pytest.fixture
def queue(qtbot, window, demo_project):  # noqa: ANN001, ANN201
    """Four unreviewed images (every other image labelled normal), scored by a model whose stored
    operating point is 0.5; returns {image id: score} and the id of a reviewed image to start from."""
    images = [r for r in demo_project.images() if not r.excluded]
    unreviewed, reviewed = images[:4], images[4:]
    for r in unreviewed:
        demo_project.update_image(r.id, label="unreviewed")
    for r in reviewed:
        if r.label == "unreviewed":
            demo_project.update_image(r.id, label="normal")
    scores = dict(zip([r.id for r in unreviewed], (0.55, 0.95, 0.10, 0.70), strict=True))
    model = demo_project.register_model("det", "drn", demo_project.folder / "det.safetensors", sha256="0" * 64,
                                        metadata={"operating_point": 0.5})
    store.store_image_scores(demo_project, model, scores)
    window.browser.reload()
    return scores, reviewed[0].id


def _walk(qtbot, window, steps: int) -> list[int]:  # noqa: ANN001
    seen = []
    for _ in range(steps):
        before = window.record.id
        qtbot.keyClick(window.canvas, Qt.Key.Key_G)
        qtbot.waitUntil(lambda b=before: window.record.id != b)  # noqa: B023
        show(qtbot, window, window.record.id)  # and wait for it on the canvas
        seen.append(window.record.id)
    return seen


@pytest.mark.parametrize(("order", "key"), [
    ("likely", lambda s: -s[1]),
    ("uncertainty", lambda s: abs(s[1] - 0.5)),
    ("file", lambda s: s[0]),
])
def test_g_walks_the_unreviewed_images_in_the_chosen_order(qtbot, window, queue, order, key) -> None:  # noqa: ANN001
    scores, start = queue
    expected = [i for i, _ in sorted(scores.items(), key=key)]
    window.queue_order.setCurrentIndex(window.queue_order.findData(order))
    assert window.queue_order.currentText().startswith("Next: ")  # the combo says what it is
    show(qtbot, window, start)
    assert "4 of " in window.status_fields["assist"].text()  # "4 of N images unreviewed"
    assert _walk(qtbot, window, 4) == expected
    assert window.status_fields["assist"].text().startswith("4 of 4 unreviewed")


def test_the_score_column_sorts_by_the_detectors_score(qtbot, window, queue) -> None:  # noqa: ANN001
    scores, _ = queue
    table = window.browser.table
    table.sortByColumn(COL_SCORE, Qt.SortOrder.DescendingOrder)
    ids = window.browser.visible_image_ids()
    assert ids[:4] == sorted(scores, key=lambda i: -scores[i])  # unscored images after every score
    row = window.browser.model.row_of(ids[0])
    assert window.browser.model.index(row, COL_SCORE).data() == "0.95"
    table.sortByColumn(COL_SCORE, Qt.SortOrder.AscendingOrder)
    assert window.browser.visible_image_ids()[-4:] == sorted(scores, key=lambda i: scores[i])


def test_retrain_refreshes_the_scores_the_column_and_the_counter(qtbot, window, demo_project, queue,
                                                                 monkeypatch) -> None:  # noqa: ANN001
    """Retraining itself is tested in tests/test_assist_retrain.py; here the core's retrain is
    replaced by a fast real stand-in that does what it does to the store: it registers a new model
    and stores its scores of the unreviewed images (so the new model scores last and is chosen)."""
    from lesion_studio.assist import retrain
    from lesion_studio.assist.queue import unreviewed_ids

    scores, start = queue
    flipped = {i: round(1.0 - s, 2) for i, s in scores.items()}

    def stand_in(project: Project, *, progress=None, cancel=None, **_kw):  # noqa: ANN001, ANN202
        model = project.register_model("assist-1", "drn", project.folder / "a.safetensors", sha256="1" * 64,
                                       metadata={"operating_point": 0.5})
        assert set(flipped) == unreviewed_ids(project)
        store.store_image_scores(project, model, flipped)
        return retrain.RetrainResult(model, "assist-1", None, retrain.OperatingPoint(0.5, "model"), len(flipped))

    monkeypatch.setattr(retrain, "retrain_detector", stand_in)
    show(qtbot, window, start)
    window.queue_order.setCurrentIndex(window.queue_order.findData("likely"))
    job = window.retrain_detector()
    qtbot.waitUntil(lambda: job.state.name in ("DONE", "FAILED", "CANCELLED"))
    assert job.state.name == "DONE", job.error
    qtbot.waitUntil(lambda: window.browser.model.scores == flipped)
    best = max(flipped, key=flipped.get)
    row = window.browser.model.row_of(best)
    assert window.browser.model.index(row, COL_SCORE).data() == f"{flipped[best]:.2f}"
    assert _walk(qtbot, window, 1) == [best]  # the queue follows the new model
    assert window.status_fields["assist"].text().startswith("1 of 4 unreviewed")
