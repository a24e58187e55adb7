"""The agreement report on a two-reader fixture whose values are worked out by hand below, the
bootstrap intervals checked against an independent recomputation, and adjudication."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lesion_studio.cli.main import main
from lesion_studio.dataset.agreement import (
    agreement_report,
    bootstrap_indices,
    cohen_kappa,
    consensus_box,
    disagreements,
    iou,
    match_boxes,
    merged_box,
)
from lesion_studio.errors import LesionStudioError
from lesion_studio.store import Box, Project
from lesion_studio.store import readers as store_readers

#: Ten images. Labels: A says lesion on 1-5, B on 1-3 and 10.
LABELS_A = ["lesion"] * 5 + ["normal"] * 5
LABELS_B = ["lesion"] * 3 + ["normal"] * 6 + ["lesion"]
#: Boxes (image index -> boxes): image 1 identical, image 2 overlapping by a third, image 3 by 0.8,
#: image 4 only A, image 10 only B.
BOXES_A = {0: [Box(0, 0, 10, 10)], 1: [Box(0, 0, 10, 10)], 2: [Box(0, 0, 10, 10)], 3: [Box(30, 30, 40, 40)]}
BOXES_B = {0: [Box(0, 0, 10, 10)], 1: [Box(5, 0, 15, 10)], 2: [Box(0, 0, 10, 8)], 9: [Box(20, 20, 30, 30)]}

# By hand:
# κ: agreement on 1-3 (lesion) and 6-9 (normal): p_o = 7/10. A says lesion 5/10, B 4/10:
#    p_e = 0.5 * 0.4 + 0.5 * 0.6 = 0.5, so κ = (0.7 - 0.5) / (1 - 0.5) = 0.4.
# Boxes: image 1 IoU 1 (match), image 2 IoU 50 / 150 = 1/3 (< 0.5: no match), image 3 IoU 80 / 100
#    = 0.8 (match), image 4 and image 10 unmatched. A has 4 boxes, B 4, 2 matched:
#    F1 = 2 * 2 / (4 + 4) = 0.5, and the mean IoU of the matched boxes is (1 + 0.8) / 2 = 0.9.
KAPPA, F1, MEAN_IOU = 0.4, 0.5, 0.9


@pytest.fixture
def two_readers(tmp_path: Path) -> Project:
    project = Project.create(tmp_path / "p")
    ids = [project.add_image(project.folder / f"{k}.png", sha256=f"{k:064d}", width=100, height=100)
           for k in range(10)]
    for k, image_id in enumerate(ids):
        store_readers.put_reader_label(project, image_id, "alice", LABELS_A[k])
        store_readers.put_reader_label(project, image_id, "bob", LABELS_B[k])
        for reader, boxes in (("alice", BOXES_A), ("bob", BOXES_B)):
            for box in boxes.get(k, []):
                project.add_box(image_id, box, author=reader, lesion_type="lytic")
    yield project
    project.close()


def test_hand_values() -> None:
    assert cohen_kappa(LABELS_A, LABELS_B) == pytest.approx(KAPPA)
    assert iou(Box(0, 0, 10, 10), Box(5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert iou(Box(0, 0, 10, 10), Box(0, 0, 10, 8)) == pytest.approx(0.8)
    assert iou(Box(0, 0, 1, 1), Box(2, 2, 3, 3)) == 0.0
    # one-to-one and greedy by IoU: B's second box goes to A's second, not A's first
    a = [Box(0, 0, 10, 10), Box(2, 0, 12, 10)]
    b = [Box(1, 0, 11, 10), Box(2, 0, 12, 10)]
    assert [(i, j) for i, j, _ in match_boxes(a, b)] == [(1, 1), (0, 0)]
    assert cohen_kappa(["lesion"] * 3, ["lesion"] * 3) is None  # chance agreement is 1: undefined


def test_kappa_equals_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn (the train extra) is the oracle")
    rng = np.random.default_rng(5)
    for _ in range(20):
        a = list(rng.choice(["lesion", "normal", "unreviewed"], size=30))
        b = list(rng.choice(["lesion", "normal"], size=30))
        assert cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b))


def test_report_gives_the_hand_values_with_intervals(two_readers: Project) -> None:
    report = agreement_report(two_readers, resamples=1000, seed=3)
    (pair,) = report.pairs
    assert (pair.reader_a, pair.reader_b) == ("alice", "bob")
    assert (pair.labelled_images, pair.read_images, pair.boxes_a, pair.boxes_b, pair.matched) == (10, 10, 4, 4, 2)
    assert pair.kappa.value == pytest.approx(KAPPA)
    assert pair.box_f1.value == pytest.approx(F1)
    assert pair.mean_iou.value == pytest.approx(MEAN_IOU)
    for est in (pair.kappa, pair.box_f1, pair.mean_iou):
        assert est.low <= est.value <= est.high and est.low < est.high
    # the interval is the percentile interval of the statistic over the seeded image resamples:
    # recompute it independently, resample by resample
    idx = bootstrap_indices(10, 1000, 3)
    kappas = [cohen_kappa([LABELS_A[i] for i in row], [LABELS_B[i] for i in row]) for row in idx]
    kappas = np.array([k for k in kappas if k is not None])
    assert pair.kappa.resamples_used == len(kappas)
    assert (pair.kappa.low, pair.kappa.high) == pytest.approx(tuple(np.percentile(kappas, [2.5, 97.5])))
    per_image = {0: (1, 1, 1, 1.0), 1: (0, 1, 1, 0.0), 2: (1, 1, 1, 0.8), 3: (0, 1, 0, 0.0), 9: (0, 0, 1, 0.0)}
    f1s = []
    for row in bootstrap_indices(10, 1000, 4):
        m, na, nb, _ = np.sum([per_image.get(i, (0, 0, 0, 0.0)) for i in row], axis=0)
        f1s.append(2 * m / (na + nb) if na + nb else np.nan)
    f1s = np.array(f1s)
    f1s = f1s[np.isfinite(f1s)]
    assert (pair.box_f1.low, pair.box_f1.high) == pytest.approx(tuple(np.percentile(f1s, [2.5, 97.5])))
    # the same seed gives the same report
    again = agreement_report(two_readers, resamples=1000, seed=3).pairs[0]
    assert again == pair


def test_cli_agreement(two_readers: Project, capsys: pytest.CaptureFixture[str]) -> None:
    folder = str(two_readers.folder)
    assert main(["agreement", folder, "--resamples", "500", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    pair = data["pairs"][0]
    assert pair["kappa"]["value"] == pytest.approx(KAPPA) and pair["box_f1"]["value"] == pytest.approx(F1)
    assert main(["agreement", folder, "--resamples", "500"]) == 0
    text = capsys.readouterr().out
    assert "alice – bob" in text and "0.40 [" in text and "0.50 [" in text and "0.90" in text
    assert main(["agreement", folder, "--readers", "alice,nobody"]) == 2
    assert "nobody" in capsys.readouterr().err


def test_agreement_needs_two_readers(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p") as project, pytest.raises(LesionStudioError, match="two readers"):
        agreement_report(project)


def test_disagreements_and_consensus(two_readers: Project) -> None:
    ids = [r.id for r in two_readers.images()]
    # image 1: identical boxes, no disagreement; image 3: a matched pair of different boxes
    assert disagreements(two_readers, ids[0], "alice", "bob") == []
    (d,) = disagreements(two_readers, ids[2], "alice", "bob")
    assert d.kind == "matched" and d.iou == pytest.approx(0.8)
    assert consensus_box(d, "merge") == (Box(0, 0, 10, 9), "lytic") == (merged_box(d.box_a.box, d.box_b.box), "lytic")
    assert consensus_box(d, "b")[0] == Box(0, 0, 10, 8)
    # image 2: IoU 1/3 does not match: two one-sided boxes
    kinds = sorted(x.kind for x in disagreements(two_readers, ids[1], "alice", "bob"))
    assert kinds == ["only A", "only B"]
    only_a = next(x for x in disagreements(two_readers, ids[1], "alice", "bob") if x.kind == "only A")
    with pytest.raises(LesionStudioError):
        consensus_box(only_a, "merge")
