"""Box proposals in the real viewer: shown dashed with their score, accepted with Enter, rejected
with Del, edited (and so accepted) by dragging; each decision undone back to exactly the store
before it; and nothing in the store changes without one of those reader actions.

The proposals are stored through the core (``store.proposals.store_detections``) for a registered
model, as the detector stores them: these tests are about the GUI, the detector has its own."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from lesion_studio.gui.commands import LESION, PROPOSAL
from lesion_studio.gui.viewer.overlays import COLORS, ProposalItem
from lesion_studio.store import proposals as store
from lesion_studio.store.project import Project
from lesion_studio.store.records import Box
from tests.gui.conftest import show
from tests.gui.helpers import click, drag
from tests.gui.test_gui_annotation import first_image


def snapshot(project: Project) -> dict[str, list[tuple]]:
    """Everything a proposal decision may touch: boxes, labels, readers' labels, proposals."""
    queries = {
        "boxes": "SELECT * FROM lesion_boxes ORDER BY id",
        "labels": "SELECT id, label FROM images ORDER BY id",
        "reader_labels": "SELECT * FROM reader_labels ORDER BY image_id, reader",
        "proposals": "SELECT id, state, decided_by, box_id, x0, y0, x1, y1 FROM proposals ORDER BY id",
        "patches": "SELECT * FROM normal_patches ORDER BY id",
    }
    return {k: [tuple(r) for r in project._query(q)] for k, q in queries.items()}


@pytest.fixture
def proposed(qtbot, window, demo_project):  # noqa: ANN001, ANN201
    """A normal image without regions, shown, with two pending proposals (0.82 and 0.30) of a model."""
    image_id = first_image(demo_project, "normal")
    model = demo_project.register_model("det", "drn", demo_project.folder / "det.safetensors", sha256="0" * 64)
    ids = store.store_detections(demo_project, image_id, model, 0.82,
                                 [(Box(100, 120, 160, 180), 0.82), (Box(20, 20, 60, 60), 0.30)])
    show(qtbot, window, image_id)
    window.proposal_slider.setValue(50)
    window._proposals_stored()
    return image_id, ids


def _shown(window) -> dict[int, ProposalItem]:  # noqa: ANN001
    return {r.region_id: r for r in window.canvas.regions if isinstance(r, ProposalItem)}


def test_proposals_are_drawn_dashed_with_their_score_above_the_slider(qtbot, window, proposed) -> None:  # noqa: ANN001
    _, (strong, weak) = proposed
    shown = _shown(window)
    assert list(shown) == [strong]  # 0.30 is below the slider's 0.50
    item = shown[strong]
    assert item.pen().style() == Qt.PenStyle.DashLine
    assert item.label.text() == "0.82"
    assert item.pen().color() == COLORS["proposal"] != COLORS[LESION]  # not a lesion box's look
    assert "1 proposal" in window.status_fields["assist"].text()
    window.proposal_slider.setValue(20)
    assert set(_shown(window)) == {strong, weak}
    assert "2 proposals" in window.status_fields["assist"].text()


def test_showing_sliding_and_switching_images_change_nothing(qtbot, window, demo_project, proposed) -> None:  # noqa: ANN001
    image_id, _ = proposed
    before = snapshot(demo_project)
    for value in (0, 100, 35, 50):
        window.proposal_slider.setValue(value)
    other = next(r.id for r in demo_project.images() if r.id != image_id and not r.excluded)
    show(qtbot, window, other)
    show(qtbot, window, image_id)
    window.controller.select((PROPOSAL, _shown(window).popitem()[0]))  # selecting is not deciding
    window.controller.select(None)
    assert snapshot(demo_project) == before


def _select(qtbot, window, proposal_id: int) -> None:  # noqa: ANN001
    """Click the proposal's edge-free inside, as a reader does (a click selects, never moves)."""
    item = _shown(window)[proposal_id]
    at = window.canvas.to_screen((item.box.x0 + item.box.x1) / 2, (item.box.y0 + item.box.y1) / 2)
    click(qtbot, window.canvas, at)
    assert window.controller.selected == (PROPOSAL, proposal_id)


def test_enter_accepts_with_provenance_and_undo_restores_the_store(qtbot, window, demo_project, proposed) -> None:  # noqa: ANN001
    image_id, (strong, _) = proposed
    before = snapshot(demo_project)
    _select(qtbot, window, strong)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    boxes = demo_project.boxes(image_id)
    assert len(boxes) == 1
    box = boxes[0]
    assert box.box.as_tuple() == (100, 120, 160, 180)
    assert box.proposed and box.provenance["proposal_id"] == strong
    assert box.provenance["model_name"] == "det" and box.provenance["edited"] is False
    assert box.provenance["accepted_by"] == window.session.author == box.reader
    assert demo_project.image(image_id).label == "lesion"  # like drawing a box on a normal image
    assert store.proposal(demo_project, strong).state == "accepted"
    assert strong not in _shown(window) and window.canvas.region(LESION, box.id) is not None
    window.undo()
    assert snapshot(demo_project) == before
    assert strong in _shown(window)
    window.redo()
    assert [b.id for b in demo_project.boxes(image_id)] == [box.id]  # the same box back


def test_del_rejects_and_undo_restores_the_store(qtbot, window, demo_project, proposed) -> None:  # noqa: ANN001
    image_id, (strong, _) = proposed
    before = snapshot(demo_project)
    _select(qtbot, window, strong)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete)
    rejected = store.proposal(demo_project, strong)
    assert rejected.state == "rejected" and rejected.decided_by == window.session.author
    assert demo_project.boxes(image_id) == [] and demo_project.image(image_id).label == "normal"
    assert strong not in _shown(window)
    window.undo()
    assert snapshot(demo_project) == before
    assert strong in _shown(window)


def test_dragging_a_proposal_edits_and_accepts_it_and_undo_restores(qtbot, window, demo_project, proposed) -> None:  # noqa: ANN001
    image_id, (strong, _) = proposed
    before = snapshot(demo_project)
    window.canvas.set_zoom(2.0, (130.0, 150.0))
    drag(qtbot, window.canvas, window.canvas.to_screen(130, 150), window.canvas.to_screen(140, 160))
    boxes = demo_project.boxes(image_id)
    assert len(boxes) == 1
    assert boxes[0].box.as_tuple() == pytest.approx((110, 130, 170, 190), abs=1.0)
    assert boxes[0].provenance["edited"] is True
    assert boxes[0].provenance["proposed_box"] == [100, 120, 160, 180]
    assert store.proposal(demo_project, strong).state == "accepted"
    window.undo()
    assert snapshot(demo_project) == before
    assert _shown(window)[strong].box.as_tuple() == (100, 120, 160, 180)


def test_propose_runs_the_chosen_detector_as_a_job_and_stores_proposals_only(qtbot, window, demo_project,
                                                                            monkeypatch) -> None:  # noqa: ANN001
    """The detector itself is tested in tests/test_assist_detector.py (a real ONNX run); here the
    core's ``propose_boxes`` is replaced by a fast real stand-in that stores what a detector
    stores (a score and a proposal per image, through the store), to test the action's wiring:
    the job queue, the chosen detector, the images it is given, and the viewer's refresh."""
    from lesion_studio.assist import detector

    image_id = window.record.id
    demo_project.update_image(image_id, label="unreviewed")
    model = demo_project.register_model("det", "drn", demo_project.folder / "det.safetensors", sha256="0" * 64)
    calls = []

    def stand_in(project, model_ref, images, *, progress=None, cancel=None, **_kw):  # noqa: ANN001, ANN202
        calls.append((model_ref, [r.id for r in images]))
        run = detector.DetectorRun(model_ref, "det", "lesion map", len(images))
        for r in images:
            run.proposals += len(store.store_detections(project, r.id, model_ref, 0.9, [(Box(10, 10, 50, 50), 0.9)]))
            run.images += 1
        return run

    monkeypatch.setattr(detector, "propose_boxes", stand_in)
    boxes_before = snapshot(demo_project)["boxes"]
    job = window.propose_boxes("unreviewed")
    qtbot.waitUntil(lambda: job.state.name in ("DONE", "FAILED", "CANCELLED"))
    assert job.state.name == "DONE", job.error
    assert calls and calls[0][0] == model
    assert set(calls[0][1]) == {r.id for r in demo_project.images() if r.label == "unreviewed" and not r.excluded}
    qtbot.waitUntil(lambda: len(_shown(window)) == 1)
    assert snapshot(demo_project)["boxes"] == boxes_before  # proposals, never boxes


def test_deleting_an_accepted_box_and_undoing_keeps_its_provenance(qtbot, window, demo_project, proposed) -> None:  # noqa: ANN001
    """Delete then undo puts the accepted box back as it was: still the model's proposal, accepted
    by its reader (undo once restored the box without its provenance)."""
    image_id, (strong, _) = proposed
    _select(qtbot, window, strong)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    accepted = demo_project.boxes(image_id)[0]
    assert accepted.proposed
    window.controller.select((LESION, accepted.id))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete)
    assert demo_project.boxes(image_id) == []
    window.undo()
    restored = demo_project.boxes(image_id)
    assert [b.id for b in restored] == [accepted.id]
    assert restored[0].provenance == accepted.provenance and restored[0].proposed


def test_propose_runs_on_the_images_selected_in_the_browser(qtbot, window, demo_project) -> None:  # noqa: ANN001
    """Click one image and Ctrl+click another in the browser: the viewer shows the one clicked
    last, and Tools → Propose boxes runs the project's detector (a real ONNX stub, through the
    core) on those two images only, although neither is unreviewed."""
    pytest.importorskip("onnx")
    from tests.stub_models import register_stub_detector

    model = register_stub_detector(demo_project)
    demo_project.set_setting("assist.model", "stub-detector")
    table = window.browser.table
    ids = window.browser.visible_image_ids()
    first, second = ids[1], ids[3]

    def click_row(row: int, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        rect = table.visualRect(table.model().index(row, 1))
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())

    click_row(1)
    click_row(3, Qt.KeyboardModifier.ControlModifier)
    assert window.browser.selected_image_ids() == [first, second]
    qtbot.waitUntil(lambda: window.record is not None and window.record.id == second)  # the current one shows
    action = window.actions_by_key["propose"]
    assert action.text() == "&Propose boxes on the 2 selected images"
    boxes_before = snapshot(demo_project)["boxes"]
    action.trigger()
    job = window.job_queue.jobs()[-1]
    qtbot.waitUntil(lambda: not job.active)
    assert job.state.name == "DONE", job.error
    proposed = store.proposals(demo_project)
    assert proposed and {p.image_id for p in proposed} == {first, second}
    assert set(store.image_scores(demo_project, model)) == {first, second}
    assert snapshot(demo_project)["boxes"] == boxes_before  # proposals, never boxes
    click_row(0)  # one image selected again: the action is back to the unreviewed ones
    assert window.browser.selected_image_ids() == [ids[0]]
    assert action.text() == "&Propose boxes on unreviewed images"
    click_row(2, Qt.KeyboardModifier.ShiftModifier)
    assert window.browser.selected_image_ids() == ids[:3] and "the 3 selected" in action.text()
    window.browser.select_image(ids[5], emit=False)  # as G or a reload selects: one image, said so
    assert window.browser.selected_image_ids() == [ids[5]]
    assert action.text() == "&Propose boxes on unreviewed images"
