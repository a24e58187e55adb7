"""Vetting gallery: generate a scored batch in the background, sort by score, t line, A/R/U keys."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from lesion_studio.store import Project
from tests.gui.conftest import dispose, open_window
from tests.stub_models import register_stub_classifier


def _choose(combo, data) -> None:  # noqa: ANN001
    i = combo.findData(data)
    assert i >= 0, (data, [combo.itemData(k) for k in range(combo.count())])
    combo.setCurrentIndex(i)


@pytest.fixture
def gallery_window(qtbot, tiny_unit_project):  # noqa: ANN001, ANN201
    with Project.open(tiny_unit_project) as p:
        register_stub_classifier(p, name="stub-drn")
    w = open_window(qtbot, tiny_unit_project)
    yield w
    w.close()
    dispose(w)


def test_generate_sorts_by_score_with_threshold_line_and_keys_persist(qtbot, gallery_window) -> None:  # noqa: ANN001
    w = gallery_window
    panel = w.panels["gallery"]
    w.docks["gallery"].show()
    w.docks["gallery"].raise_()
    panel.model_combo.setCurrentIndex(panel.model_combo.find_name("tiny-unit"))
    _choose(panel.classifier_combo, "stub-drn")
    _choose(panel.source_combo, "patches")
    panel.count_spin.setValue(8)
    panel.n_low.setValue(1.0)
    panel.n_high.setValue(3.0)
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert panel.busy and not panel.generate_button.isEnabled()
    assert any(j.kind == "batch-synthesis" for j in w.job_queue.jobs())  # one heavy job per device
    qtbot.waitUntil(lambda: not panel.busy and len(panel.model.samples()) == 8, timeout=60_000)
    batch = panel.batch_combo.currentData()
    rows = w.session.project.synthetic_samples(batch=batch)
    assert len(rows) == 8 and all(r.status == "candidate" and r.score is not None and 1 <= r.n <= 3 for r in rows)

    # sorted by score, the t line between the samples above t and those at or below it
    scores = [s.score for s in panel.model.samples()]
    assert scores == sorted(scores, reverse=True)
    t = round((scores[2] + scores[3]) / 2, 2) if scores[2] - scores[3] > 0.011 else scores[3]
    panel.threshold_spin.setValue(t)
    marker = panel.model.marker_row()
    assert marker is not None
    before = [panel.model.sample_at(i) for i in range(marker)]
    after = [panel.model.sample_at(i) for i in range(marker + 1, panel.model.rowCount())]
    assert all(s.score > panel.model.threshold for s in before)
    assert all(s.score <= panel.model.threshold for s in after)
    assert not panel.model.flags(panel.model.index(marker)) & Qt.ItemFlag.ItemIsSelectable
    assert "scored above t" in panel.summary.text()
    qtbot.waitUntil(lambda: all(panel.model.has_thumbnail(s.id) for s in panel.model.samples()), timeout=20_000)

    # keyboard vetting: A, R, Space (skip), U; each stored at once, the next sample selected
    view = panel.view
    w.activateWindow()
    view.setFocus()
    qtbot.waitUntil(view.hasFocus, timeout=5_000)
    order = [s.id for s in panel.model.samples()]
    panel.select_sample(order[0])
    qtbot.keyClick(view, Qt.Key.Key_A)
    assert panel.current_sample().id == order[1]
    qtbot.keyClick(view, Qt.Key.Key_R)
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert panel.current_sample().id == order[3]
    qtbot.keyClick(view, Qt.Key.Key_A)
    panel.select_sample(order[3])
    qtbot.keyClick(view, Qt.Key.Key_U)  # changed my mind: back to undecided
    want = {order[0]: "accepted", order[1]: "rejected", order[2]: "candidate", order[3]: "candidate"}
    assert {i: w.session.project.synthetic_sample(i).status for i in want} == want
    assert "1 accepted, 1 rejected" in panel.summary.text()

    # Enter shows the synthetic image in the viewer, its window outlined
    panel.select_sample(order[0])
    qtbot.keyClick(view, Qt.Key.Key_Return)
    sample = w.session.project.synthetic_sample(order[0])
    qtbot.waitUntil(lambda: w.canvas.radiograph is not None and "Synthetic" in w.canvas.radiograph.tags,
                    timeout=10_000)
    assert w.record.id == sample.source_image_id and panel.in_viewer.outline is not None
    rect = panel.in_viewer.outline.rect()
    assert (rect.x(), rect.y(), rect.width()) == pytest.approx((sample.box.x0, sample.box.y0, sample.box.width))
    # cancel: the candidates made so far are kept (and scored), the others are not made
    first_batch = panel.batch_combo.currentData()
    panel.count_spin.setValue(400)
    panel.generate()
    qtbot.waitUntil(lambda: panel.progress.maximum() == 400 and panel.progress.value() >= 1, timeout=30_000)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy, timeout=30_000)
    cut = panel.batch_combo.currentData()
    assert cut != first_batch and "cancelled early" in w.banner.text.text()
    made = w.session.project.synthetic_samples(batch=cut)
    assert 1 <= len(made) < 400 and all(s.score is not None for s in made)
    folder = w.session.folder
    w.close()
    with Project.open(folder) as p:  # reopened: the decisions are in the project
        assert {i: p.synthetic_sample(i).status for i in want} == want
        assert [s.id for s in p.synthetic_samples(status="accepted")] == [order[0]]


def test_generate_without_a_model_is_a_message(qtbot, window, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr("lesion_studio.builtin_models.builtin_models", lambda kind=None: [])  # a broken install
    panel = window.panels["gallery"]
    panel.refresh_choices()
    assert panel.model_combo.current_choice() is None
    panel.generate()
    assert not panel.busy
    assert "no UNIT model" in window.banner.text.text() and window.banner.level == "warning"


def test_the_gallery_says_where_the_scoring_map_peaked(qtbot) -> None:  # noqa: ANN001
    """A sample scored with a map shows whether its evidence sits on the painted lesion (tooltip,
    and a count in the summary); one scored without a map says nothing about it."""
    from lesion_studio.gui.panels.gallery_view import GalleryModel
    from lesion_studio.store import Box
    from lesion_studio.store.records import SyntheticSample

    def sample(i: int, peak: tuple[float, float] | None) -> SyntheticSample:
        return SyntheticSample(id=i, source_image_id=1, model_id=None, box=Box(0, 0, 100, 100), n=1.0, seed=i,
                               path="", score=0.9 - i / 10, status="candidate", batch="b", provenance={},
                               created_at="t", map_peak=peak)

    model = GalleryModel()
    model.set_samples([sample(1, (50.0, 50.0)), sample(2, (2.0, 98.0)), sample(3, None)])
    tips = [model.data(model.index(r), Qt.ItemDataRole.ToolTipRole) for r in range(model.rowCount())]
    assert any("map peak (50, 50): on the lesion" in t for t in tips)
    assert any("map peak (2, 98): off the lesion" in t for t in tips)
    assert sum("map peak" in t for t in tips) == 2
    assert "the scoring map peaks on the lesion in 1 of 2" in model.summary()
