"""Box proposals in the store: kept apart from the annotations, replaced only while pending, turned
into a box only by a reader's accept (with provenance), and every decision exactly undoable."""

from __future__ import annotations

from pathlib import Path

import pytest

from lesion_studio.errors import ProjectError
from lesion_studio.store import Box, Project, readers
from lesion_studio.store import proposals as store
from lesion_studio.store.schema import SCHEMA_VERSION


def _project(folder: Path) -> tuple[Project, int, int]:
    project = Project.create(folder)
    image = project.add_image(folder / "a.png", sha256="0" * 64, width=200, height=100)
    model = project.register_model("det", "drn", folder / "m.safetensors", sha256="1" * 64)
    return project, image, model


def _annotations(project: Project) -> tuple:
    """Everything a proposal must not change without a reader: boxes, labels, reader labels."""
    return (project.boxes(), [(r.id, r.label) for r in project.images()], readers.reader_labels(project))


def _proposal_rows(project: Project) -> list[tuple]:
    return [tuple(r) for r in project._query("SELECT * FROM proposals ORDER BY id")]


def test_schema_2_project_opens_with_the_proposal_tables(tmp_path: Path) -> None:
    """A project as schema 2 wrote it (with a box and a reader label) upgrades in place: its rows
    are untouched, its boxes have no provenance, and the new tables take rows at once."""
    from tests.old_projects import project_at_schema

    folder = tmp_path / "old"
    conn = project_at_schema(folder, 2)
    conn.execute("INSERT INTO lesion_boxes (image_id, x0, y0, x1, y1, author, created_at, modified_at, lesion_type) "
                 "VALUES (1, 10, 20, 30, 40, 'rad', 't1', 't2', 'lytic')")
    conn.execute("INSERT INTO reader_labels VALUES (1, 'rad', 'lesion', 't1')")
    conn.execute("INSERT INTO models (id, name, kind, path, sha256, created_at) VALUES (1, 'm', 'drn', 'm', 'x', 't')")
    conn.close()
    with Project.open(folder) as project:
        assert project.schema_version == SCHEMA_VERSION >= 3
        (box,) = project.boxes()
        assert (box.box, box.author, box.lesion_type, box.created_at, box.modified_at) == (
            Box(10, 20, 30, 40), "rad", "lytic", "t1", "t2")
        assert box.provenance == {} and not box.proposed
        assert readers.reader_labels(project)[0].label == "lesion"
        assert store.proposals(project) == [] and store.image_scores(project, 1) == {}
        (pid,) = store.store_detections(project, 1, 1, 0.8, [(Box(50, 10, 70, 30), 0.8)])
        assert store.proposal(project, pid).state == "pending"
    assert list(folder.glob(f"**/*before-schema-{SCHEMA_VERSION}.sqlite"))  # the backup before the upgrade


def test_storing_proposals_changes_no_annotation(tmp_path: Path) -> None:
    project, image, model = _project(tmp_path / "p")
    with project:
        project.update_image(image, label="normal")
        drawn = project.add_box(image, Box(1, 1, 20, 20), author="alice")
        before = _annotations(project)
        ids = store.store_detections(project, image, model, 0.9, [(Box(100, 10, 150, 60), 0.9),
                                                                 (Box(10, 50, 40, 90), 0.3)])
        assert _annotations(project) == before  # no box, no label, no reader label
        got = store.proposals(project, image)
        assert [p.id for p in got] == ids and [p.score for p in got] == [0.9, 0.3]  # best first
        assert all(p.state == "pending" and p.model_name == "det" and p.image_score == 0.9 for p in got)
        assert store.image_scores(project, model)[image].score == 0.9
        assert store.pending_count(project, image) == 2 and store.pending_count(project, image, min_score=0.5) == 1
        assert project.box(drawn).provenance == {}
        # a box outside the image is clipped to it; one with no area inside is refused whole
        (clipped,) = store.store_detections(project, image, model, 0.5, [(Box(190, 90, 260, 130), 0.5)])
        assert store.proposal(project, clipped).box == Box(190, 90, 200, 100)
        with pytest.raises(ProjectError, match="no area inside"):
            store.store_detections(project, image, model, 0.5, [(Box(300, 300, 310, 310), 0.5)])
        assert [p.id for p in store.proposals(project, image)] == [clipped]  # the refused call changed nothing
        with pytest.raises(ProjectError, match=r"\[0, 1\]"):
            store.store_detections(project, image, model, 1.5, [])


def test_reproposing_replaces_only_this_models_pending_proposals(tmp_path: Path) -> None:
    project, image, model = _project(tmp_path / "p")
    with project:
        other = project.register_model("other", "drn", tmp_path / "o.safetensors", sha256="2" * 64)
        a, b, c = store.store_detections(project, image, model, 0.9, [
            (Box(0, 0, 20, 20), 0.9), (Box(100, 0, 120, 20), 0.8), (Box(0, 60, 20, 80), 0.7)])
        (theirs,) = store.store_detections(project, image, other, 0.4, [(Box(150, 50, 190, 90), 0.4)])
        box_a = store.accept_proposal(project, a, "alice")
        store.reject_proposal(project, b, "alice")
        decided = [r for r in _proposal_rows(project) if r[0] in (a, b)]
        boxes = project.boxes()
        new = store.store_detections(project, image, model, 0.7, [
            (Box(1, 1, 21, 21), 0.7),  # the accepted region again: not asked twice
            (Box(101, 0, 121, 20), 0.6),  # the rejected region again: not asked twice
            (Box(40, 40, 80, 80), 0.5)])  # a new region
        assert len(new) == 1 and store.proposal(project, new[0]).box == Box(40, 40, 80, 80)
        assert [r for r in _proposal_rows(project) if r[0] in (a, b)] == decided  # history untouched
        assert project.boxes() == boxes and project.box(box_a).provenance["proposal_id"] == a
        states = {p.id: p.state for p in store.proposals(project, image)}
        assert c not in states  # the model's old pending proposal was replaced
        assert states[theirs] == "pending"  # another model's pending proposal stays
        assert store.image_scores(project, model)[image].score == 0.7  # the image score is the latest


def test_accept_makes_a_box_with_provenance_and_unaccept_restores_everything(tmp_path: Path) -> None:
    project, image, model = _project(tmp_path / "p")
    with project:
        readers.put_reader_label(project, image, "alice", "normal", "t-earlier")
        project.update_image(image, label="normal")
        (pid,) = store.store_detections(project, image, model, 0.8, [(Box(20, 10, 60, 50), 0.6)])
        before, rows_before = _annotations(project), _proposal_rows(project)
        box_id = store.accept_proposal(project, pid, "alice", lesion_type="lytic")
        box = project.box(box_id)
        assert (box.box, box.author, box.lesion_type, box.image_id) == (Box(20, 10, 60, 50), "alice", "lytic", image)
        assert box.proposed and box.provenance == {
            "source": "proposal", "proposal_id": pid, "model_id": model, "model_name": "det",
            "model_sha256": "1" * 64, "score": 0.6,
            "image_score": 0.8, "proposed_box": [20, 10, 60, 50], "edited": False, "accepted_by": "alice",
            "accepted_at": box.provenance["accepted_at"]}
        p = store.proposal(project, pid)
        assert (p.state, p.decided_by, p.box_id) == ("accepted", "alice", box_id) and p.decided_at
        # like drawing a box: the image and the reader's own label become lesion
        assert project.image(image).label == "lesion"
        assert readers.reader_label(project, image, "alice").label == "lesion"
        with pytest.raises(ProjectError, match="is accepted by alice, not pending"):
            store.accept_proposal(project, pid, "alice")
        with pytest.raises(ProjectError, match="not pending"):
            store.reject_proposal(project, pid, "alice")

        store.unaccept_proposal(project, pid)
        assert _annotations(project) == before  # the earlier reader label, with its time, is back
        assert readers.reader_label(project, image, "alice").labelled_at == "t-earlier"
        assert _proposal_rows(project) == rows_before
        # redo: the box comes back under the same id (as box undo/redo does)
        assert store.accept_proposal(project, pid, "alice", lesion_type="lytic", box_id=box_id) == box_id
        assert project.box(box_id).provenance["proposal_id"] == pid


def test_accept_on_an_unlabelled_image_and_without_relabel(tmp_path: Path) -> None:
    project, image, model = _project(tmp_path / "p")
    with project:
        a, b = store.store_detections(project, image, model, 0.8, [(Box(0, 0, 20, 20), 0.8),
                                                                   (Box(100, 0, 140, 40), 0.5)])
        store.accept_proposal(project, a, "bob")
        assert project.image(image).label == "lesion" and readers.reader_label(project, image, "bob").label == "lesion"
        store.unaccept_proposal(project, a)
        assert project.image(image).label == "unreviewed" and readers.reader_label(project, image, "bob") is None
        # a reader who declines the relabel keeps the labels as they are
        project.update_image(image, label="normal")
        store.accept_proposal(project, b, "bob", relabel=False)
        assert project.image(image).label == "normal" and readers.reader_label(project, image, "bob") is None
        # an image already labelled lesion keeps its label; unaccept leaves it
        project.update_image(image, label="lesion")
        store.unaccept_proposal(project, b)
        store.accept_proposal(project, b, "bob")
        store.unaccept_proposal(project, b)
        assert project.image(image).label == "lesion" and readers.reader_label(project, image, "bob") is None


def test_edit_is_an_accept_with_the_readers_box(tmp_path: Path) -> None:
    project, image, model = _project(tmp_path / "p")
    with project:
        (pid,) = store.store_detections(project, image, model, 0.7, [(Box(20, 10, 60, 50), 0.7)])
        box_id = store.accept_proposal(project, pid, "alice", box=Box(70, 55, 25, 12))  # dragged corners
        box = project.box(box_id)
        assert box.box == Box(25, 12, 70, 55)
        assert box.provenance["edited"] is True and box.provenance["proposed_box"] == [20, 10, 60, 50]
        assert store.proposal(project, pid).box == Box(20, 10, 60, 50)  # the proposal keeps what was proposed
        store.unaccept_proposal(project, pid)
        assert project.boxes() == []
        with pytest.raises(ProjectError, match="no area inside"):
            store.accept_proposal(project, pid, "alice", box=Box(10, 10, 10, 30))
        assert project.boxes() == [] and store.proposal(project, pid).state == "pending"


def test_reject_and_unreject(tmp_path: Path) -> None:
    project, image, model = _project(tmp_path / "p")
    with project:
        (pid,) = store.store_detections(project, image, model, 0.7, [(Box(20, 10, 60, 50), 0.7)])
        before, rows = _annotations(project), _proposal_rows(project)
        store.reject_proposal(project, pid, "carol")
        p = store.proposal(project, pid)
        assert (p.state, p.decided_by, p.box_id) == ("rejected", "carol", None)
        assert _annotations(project) == before
        with pytest.raises(ProjectError, match="rejected by carol, not accepted"):
            store.unaccept_proposal(project, pid)
        store.unreject_proposal(project, pid)
        assert _proposal_rows(project) == rows
        with pytest.raises(ProjectError, match="not rejected"):
            store.unreject_proposal(project, pid)
        with pytest.raises(ProjectError, match="no box proposal 999"):
            store.reject_proposal(project, 999, "carol")
        with pytest.raises(ProjectError, match="reader name"):
            store.reject_proposal(project, pid, "  ")


def test_unaccept_never_deletes_another_box(tmp_path: Path) -> None:
    """The accepted box was deleted by hand and its id reused by a drawn box: undoing the accept
    leaves the drawn box alone."""
    project, image, model = _project(tmp_path / "p")
    with project:
        (pid,) = store.store_detections(project, image, model, 0.7, [(Box(20, 10, 60, 50), 0.7)])
        box_id = store.accept_proposal(project, pid, "alice")
        project.delete_box(box_id)
        drawn = project.add_box(image, Box(1, 1, 9, 9), author="alice", box_id=box_id)
        store.unaccept_proposal(project, pid)
        assert [b.id for b in project.boxes()] == [drawn]
        assert store.proposal(project, pid).state == "pending"


def test_a_deleted_model_takes_its_pending_proposals_and_scores_but_not_the_history(tmp_path: Path) -> None:
    project, image, model = _project(tmp_path / "p")
    with project:
        a, b = store.store_detections(project, image, model, 0.7, [(Box(0, 0, 20, 20), 0.7),
                                                                   (Box(100, 0, 140, 40), 0.5)])
        box_id = store.accept_proposal(project, a, "alice")
        project.delete_model(model)
        (left,) = store.proposals(project)
        assert (left.id, left.state, left.model_id, left.model_name) == (a, "accepted", None, "det")
        assert project.box(box_id).provenance["model_name"] == "det"
        assert project._query("SELECT COUNT(*) FROM image_scores")[0][0] == 0
        # a model registered again under an old name replaces that model's pending proposals too
        m2 = project.register_model("det", "drn", tmp_path / "m.safetensors", sha256="3" * 64)
        store.store_detections(project, image, m2, 0.6, [(Box(100, 50, 140, 90), 0.6)])
        project.register_model("det", "drn", tmp_path / "m.safetensors", sha256="4" * 64, replace_existing=True)
        assert [p.id for p in store.proposals(project)] == [a]


def test_image_scores_and_the_latest_scoring_model(tmp_path: Path) -> None:
    project, image, model = _project(tmp_path / "p")
    with project:
        second = project.add_image(tmp_path / "p" / "b.png", sha256="5" * 64, width=10, height=10)
        assert store.latest_scoring_model(project) is None
        store.store_image_scores(project, model, {image: 0.2, second: 0.9})
        scores = store.image_scores(project, model)
        assert {i: s.score for i, s in scores.items()} == {image: 0.2, second: 0.9}
        assert scores[image].model_name == "det" and scores[image].scored_at
        newer = project.register_model("det-2", "drn", tmp_path / "n.safetensors", sha256="6" * 64)
        store.store_image_scores(project, newer, {image: 0.5})
        assert store.latest_scoring_model(project) == newer
        with pytest.raises(ProjectError, match="no model with id 999"):
            store.store_image_scores(project, 999, {image: 0.5})
        project.remove_image(image)  # an image's proposals and scores go with it
        assert set(store.image_scores(project, model)) == {second}
