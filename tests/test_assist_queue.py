"""The review queue: what is unreviewed (for the project, for a reader), the three orders, the
operating point they measure uncertainty from, the next image and the counter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lesion_studio.assist.queue import (
    find_operating_point,
    next_unreviewed,
    order_ids,
    review_counter,
    review_order,
    unreviewed_ids,
    youden_threshold,
)
from lesion_studio.errors import LesionStudioError
from lesion_studio.store import Box, Project, readers
from lesion_studio.store import proposals as store


@pytest.fixture
def project(tmp_path: Path):
    """Eight images (ids 1–8) in import order, all unreviewed; a model scored them."""
    p = Project.create(tmp_path / "p")
    p.add_images([{"path": tmp_path / f"{i}.png", "sha256": f"{i:064d}", "width": 100, "height": 100}
                  for i in range(1, 9)])
    yield p
    p.close()


SCORES = {1: 0.10, 2: 0.95, 3: 0.45, 4: 0.70, 5: 0.52, 6: 0.30}  # 7 and 8 not scored


def _model(project: Project, name: str = "det", scores: dict[int, float] = SCORES, **metadata) -> int:
    model = project.register_model(name, "drn", project.folder / f"{name}.safetensors", sha256="0" * 64,
                                   metadata=metadata)
    store.store_image_scores(project, model, scores)
    return model


def test_unreviewed_for_the_project_and_for_a_reader(project: Project) -> None:
    assert unreviewed_ids(project) == set(range(1, 9))
    project.update_image(1, label="normal")
    project.update_image(2, exclusions=["hardware"])  # excluded: out of the queue
    readers.put_reader_label(project, 3, "alice", "lesion")
    project.add_box(4, Box(1, 1, 9, 9), author="alice")
    readers.put_reader_label(project, 5, "alice", "unreviewed")  # a label taken back is no review
    assert unreviewed_ids(project) == {3, 4, 5, 6, 7, 8}  # the working label decides for the project
    assert unreviewed_ids(project, "alice") == {1, 5, 6, 7, 8}  # alice's own reads decide for alice
    assert unreviewed_ids(project, "bob") == {1, 3, 4, 5, 6, 7, 8}


def test_the_three_orders() -> None:
    ids = list(range(1, 9))
    assert order_ids(reversed(ids), SCORES, "file", 0.5) == ids
    assert order_ids(ids, SCORES, "likely", 0.5) == [2, 4, 5, 3, 6, 1, 7, 8]
    assert order_ids(ids, SCORES, "uncertainty", 0.5) == [5, 3, 4, 6, 1, 2, 7, 8]  # |s − 0.5|, unscored last
    assert order_ids(ids, SCORES, "uncertainty", 0.3) == [6, 3, 1, 5, 4, 2, 7, 8]
    with pytest.raises(LesionStudioError, match="review order is one of"):
        order_ids(ids, SCORES, "random", 0.5)


def test_review_order_reads_the_stored_scores(project: Project) -> None:
    assert review_order(project, "uncertainty") == list(range(1, 9))  # no scores yet: import order
    _model(project, operating_point={"value": 0.7, "source": "youden_val"})
    assert review_order(project, "uncertainty") == [4, 5, 3, 2, 6, 1, 7, 8]  # around the model's 0.7
    assert review_order(project, "uncertainty", operating_point=0.5)[:2] == [5, 3]
    assert review_order(project, "likely")[:3] == [2, 4, 5]
    project.update_image(2, label="lesion")
    assert 2 not in review_order(project, "likely")
    # a newer model's scores take over unless a model is named
    _model(project, "newer", {8: 0.9})
    assert review_order(project, "likely")[0] == 8
    assert review_order(project, "likely", model="det")[0] == 4
    with pytest.raises(LesionStudioError, match="no model 'nope'"):
        review_order(project, "likely", model="nope")


def test_the_operating_point_comes_from_the_model_then_validation_then_0_5(project: Project) -> None:
    plain = _model(project)
    assert (find_operating_point(project, plain).value, find_operating_point(project, plain).source) == (0.5, "default")
    assert find_operating_point(project, None).source == "default"
    assert find_operating_point(project, plain, 0.3).value == 0.3
    with pytest.raises(LesionStudioError, match="probability"):
        find_operating_point(project, plain, 1.3)
    # labelled validation images with stored scores: Youden's J
    project.set_splits({i: "val" for i in range(1, 7)})
    for i, label in {1: "normal", 2: "lesion", 3: "normal", 4: "lesion", 5: "lesion", 6: "normal"}.items():
        project.update_image(i, label=label)
    point = find_operating_point(project, plain)
    assert point.source == "youden_val" and point.value == 0.52  # lesions 0.52, 0.70, 0.95; normals up to 0.45
    stored = _model(project, "stored", operating_point=0.61)
    assert (find_operating_point(project, stored).value, find_operating_point(project, stored).source) == (0.61, "model")


def test_youden_threshold_against_a_brute_force() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    s = np.clip(0.3 * y + rng.normal(0.35, 0.2, 60), 0, 1)
    t = youden_threshold(y, s)
    j = lambda c: (s[y == 1] >= c).mean() - (s[y == 0] >= c).mean()  # noqa: E731
    assert j(t) == pytest.approx(max(j(c) for c in s))
    with pytest.raises(LesionStudioError, match="lesion and normal"):
        youden_threshold([1, 1], [0.2, 0.3])


def test_next_unreviewed_walks_the_queue(project: Project) -> None:
    _model(project)  # uncertainty at 0.5: 5, 3, 4, 6, 1, 2, 7, 8
    assert next_unreviewed(project, None) == 5
    assert next_unreviewed(project, 5) == 3  # 5 skipped (still unreviewed): the next in the queue
    assert next_unreviewed(project, 8) == 5  # wraps
    project.update_image(5, label="normal")  # 5 reviewed: it left the queue, the head comes next
    assert next_unreviewed(project, 5) == 3
    assert next_unreviewed(project, 4, "file") == 6 and next_unreviewed(project, 5, "file") == 6
    project.update_image(8, label="normal")
    assert next_unreviewed(project, 8, "file") == 1  # wraps in file order too
    for i in range(1, 8):
        project.update_image(i, label="normal")
    assert next_unreviewed(project, 3) is None
    project.update_image(7, label="unreviewed")
    assert next_unreviewed(project, 7) is None  # no other image left


def test_the_counter(project: Project) -> None:
    _model(project)
    counter = review_counter(project, 3)
    assert (counter.position, counter.unreviewed, counter.images) == (2, 8, 8)
    assert counter.text() == "2 of 8 unreviewed"
    project.update_image(3, label="lesion")
    project.update_image(1, exclusions=["other"])
    counter = review_counter(project, 3)
    assert counter.text() == "6 of 7 images unreviewed" and counter.position is None
