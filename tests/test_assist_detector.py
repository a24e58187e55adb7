"""The detector run over project images (ONNX, torch-free): boxes where the map's evidence is, image
scores stored, nothing annotated, a cancelled run keeps what it stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from lesion_studio.assist.detector import ProposalSettings, choose_images, propose_boxes, score_images
from lesion_studio.errors import JobCancelled, LesionStudioError, ProjectError
from lesion_studio.jobs import CancelToken
from lesion_studio.store import Box, readers
from lesion_studio.store import proposals as store
from tests.stub_models import SPOTS, register_stub_classifier, register_stub_detector, spot_project

pytest.importorskip("onnx")


@pytest.mark.parametrize("crop", [False, True])
def test_proposals_land_on_the_evidence_in_image_pixels(tmp_path: Path, crop: bool) -> None:
    project = spot_project(tmp_path)
    with project:
        model = register_stub_detector(project, crop_to_body=crop)
        images = project.images()
        run = propose_boxes(project, "stub-detector", images, settings=ProposalSettings(threshold=0.5))
        assert (run.model_id, run.images, run.requested, run.map_kind) == (model, 4, 4, "lesion_map")
        scores = store.image_scores(project, model)
        assert set(scores) == {r.id for r in images}
        for rec, spot in zip(images, SPOTS, strict=True):
            found = store.proposals(project, rec.id)
            assert 1 <= len(found) <= 3 and all(p.state == "pending" and p.model_id == model for p in found)
            top = found[0]
            # score = image score × relative peak: the strongest region scores the image's score
            assert top.score == pytest.approx(top.image_score) == pytest.approx(scores[rec.id].score)
            assert all(p.score <= top.score for p in found)
            if spot is None:
                continue
            want = Box(*spot)
            cx, cy = want.center
            assert top.box.x0 <= cx <= top.box.x1 and top.box.y0 <= cy <= top.box.y1
            assert top.box.iou(want) > 0.4, (top.box, want)
        # nothing became an annotation
        assert project.boxes() == [] and readers.reader_labels(project) == []
        assert {r.label for r in project.images()} == {"unreviewed"}


def test_proposing_needs_no_torch(tmp_path: Path) -> None:
    from tests.no_torch import run_without_torch

    with spot_project(tmp_path) as project:
        register_stub_detector(project)
        folder = str(project.folder)
    out = run_without_torch(
        "from lesion_studio.assist.detector import propose_boxes\n"
        "from lesion_studio.store import Project\n"
        "with Project.open(sys.argv[1]) as p:\n"
        "    result = {'proposals': propose_boxes(p, 'stub-detector', p.images()).proposals}\n", folder)
    assert out["proposals"] >= 4 and out["torch_attempts"] == [] and not out["torch_loaded"]


def test_a_cancelled_run_keeps_what_it_stored_and_a_rerun_replaces_pending(tmp_path: Path) -> None:
    project = spot_project(tmp_path)
    with project:
        register_stub_detector(project)
        images = project.images()
        cancel = CancelToken()

        def stop_after_first_batch(event) -> None:  # noqa: ANN001
            if event.done >= 2:
                cancel.cancel()

        with pytest.raises(JobCancelled) as info:
            propose_boxes(project, "stub-detector", images, settings=ProposalSettings(batch_size=2),
                          progress=stop_after_first_batch, cancel=cancel)
        assert info.value.partial.images == 2
        done = {p.image_id for p in store.proposals(project)}
        assert done == {images[0].id, images[1].id}
        first = {p.id for p in store.proposals(project)}
        run = propose_boxes(project, "stub-detector", images)
        assert run.images == 4
        now = store.proposals(project)
        assert len(now) == run.proposals and not first & {p.id for p in now}  # the pending ones were replaced


def test_score_images_stores_scores_only(tmp_path: Path) -> None:
    project = spot_project(tmp_path)
    with project:
        model = register_stub_detector(project)
        run = score_images(project, model, project.images()[:2])
        assert run.proposals == 0 and store.proposals(project) == []
        assert set(store.image_scores(project, model)) == {r.id for r in project.images()[:2]}


def test_a_classifier_without_a_map_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    project = spot_project(tmp_path)
    with project:
        register_stub_classifier(project, "no-map", size=64)
        with pytest.raises(LesionStudioError, match="without localisation maps"):
            propose_boxes(project, "no-map", project.images())
        assert store.proposals(project) == [] and project._query("SELECT COUNT(*) FROM image_scores")[0][0] == 0
        with pytest.raises(ProjectError, match="no model 'nope'"):
            propose_boxes(project, "nope", project.images())
        with pytest.raises(LesionStudioError, match=r"threshold must lie in \(0, 1\]"):
            ProposalSettings(threshold=1.5)


def test_choosing_images(tmp_path: Path) -> None:
    project = spot_project(tmp_path)
    with project:
        ids = [r.id for r in project.images()]
        assert [r.id for r in choose_images(project)] == ids
        assert [r.id for r in choose_images(project, split="train")] == ids[:2]
        assert [r.id for r in choose_images(project, image_ids=[ids[2], ids[0], ids[2]])] == [ids[2], ids[0]]
        project.update_image(ids[0], label="normal")
        readers.put_reader_label(project, ids[1], "alice", "lesion")
        assert [r.id for r in choose_images(project, split="train", unreviewed=True)] == ids[1:2]
        assert [r.id for r in choose_images(project, unreviewed=True, reader="alice")] == [ids[0], *ids[2:]]
        with pytest.raises(LesionStudioError, match="split is one of"):
            choose_images(project, split="bogus")
        with pytest.raises(ProjectError, match="no image with id 99"):
            choose_images(project, image_ids=[99])
