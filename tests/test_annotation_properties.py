"""Property-based tests (hypothesis) of the CSV and COCO annotation readers.

Whatever the file holds, a reader either accounts for every row (a box, an image row, or a
reported problem) or rejects the whole file with a LesionStudioError; nothing else escapes. Valid
boxes come back exactly, and flipped or empty ones are never stored.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lesion_studio.dataset.annotations import Annotations, read_boxes_csv, read_coco_json, read_labels_csv
from lesion_studio.errors import LesionStudioError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["", "nan", "-inf", "1e400", "12", " 3 ", "0x10", "1,5"]), text)
coco_value = st.recursive(
    st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=20)


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _stored_boxes(ann: Annotations) -> int:
    return sum(len(a.lesion_boxes) + len(a.normal_patches) for a in ann.by_key.values())


@SETTINGS
@given(rows=st.lists(st.lists(number_text, min_size=4, max_size=7), max_size=12),
       names=st.lists(st.sampled_from(["a.png", "b.dcm", "", "c d.jpg"]), min_size=12, max_size=12))
def test_boxes_csv_accounts_for_every_row(tmp_path_factory, rows, names) -> None:  # noqa: ANN001
    path = tmp_path_factory.mktemp("boxes") / "boxes.csv"
    _write_csv(path, ["image", "x0", "y0", "x1", "y1", "kind"],
               [[names[i], *r] for i, r in enumerate(rows)])
    ann = Annotations()
    read_boxes_csv(path, ann)
    assert _stored_boxes(ann) + len(ann.problems) == len(rows)
    for a in ann.by_key.values():
        for b in a.lesion_boxes + a.normal_patches:
            assert all(math.isfinite(v) for v in b.as_tuple()) and b.x0 < b.x1 and b.y0 < b.y1


@SETTINGS
@given(boxes=st.lists(st.tuples(st.floats(0, 1000), st.floats(0, 1000), st.floats(0.01, 500),
                                st.floats(0.01, 500)), max_size=10, unique=True))
def test_valid_boxes_round_trip_exactly(tmp_path_factory, boxes) -> None:  # noqa: ANN001
    folder = tmp_path_factory.mktemp("valid")
    rows = [[repr(x), repr(y), repr(x + w), repr(y + h)] for x, y, w, h in boxes]
    rows = [r for r in rows if float(r[0]) < float(r[2]) and float(r[1]) < float(r[3])]
    _write_csv(folder / "boxes.csv", ["image", "x0", "y0", "x1", "y1"], [["img.png", *r] for r in rows])
    ann = Annotations()
    read_boxes_csv(folder / "boxes.csv", ann)
    expected = list(dict.fromkeys(tuple(float(v) for v in r) for r in rows))
    got = [b.as_tuple() for b in ann.by_key["img.png"].lesion_boxes] if rows else []
    assert got == expected
    assert len(ann.problems) == len(rows) - len(expected)  # exact duplicates are reported


@SETTINGS
@given(rows=st.lists(st.lists(text, min_size=1, max_size=6), max_size=10))
def test_labels_csv_never_crashes(tmp_path_factory, rows) -> None:  # noqa: ANN001
    path = tmp_path_factory.mktemp("labels") / "labels.csv"
    _write_csv(path, ["image", "label", "split", "exclusions"], rows)
    ann = Annotations()
    try:
        read_labels_csv(path, ann)
    except LesionStudioError as exc:
        assert "labels.csv" in str(exc)  # refused as a whole (not CSV at all), with its name
        return
    accepted = sum(len(a.row_sources) for a in ann.by_key.values())
    assert accepted + len(ann.problems) == len(rows)
    for a in ann.by_key.values():
        assert a.fields.get("label", "lesion") in ("lesion", "normal", "unreviewed")


@SETTINGS
@given(doc=coco_value)
def test_coco_reader_accepts_or_refuses_any_json(tmp_path_factory, doc) -> None:  # noqa: ANN001
    path = tmp_path_factory.mktemp("coco") / "c.json"
    path.write_text(json.dumps(doc))
    ann = Annotations()
    try:
        read_coco_json(path, ann)
    except LesionStudioError as exc:
        assert "c.json" in str(exc)


@SETTINGS
@given(images=st.lists(st.fixed_dictionaries({"id": st.integers(0, 5), "file_name": text,
                                              "extra": coco_value}), max_size=5),
       annotations=st.lists(st.fixed_dictionaries({
           "image_id": st.integers(0, 5), "category_id": st.sampled_from([1, 2, 3, "1", None]),
           "bbox": st.one_of(st.lists(st.one_of(st.floats(), st.integers(), text), min_size=0, max_size=5),
                             coco_value)}), max_size=12))
def test_coco_annotations_are_each_a_box_or_a_problem(tmp_path_factory, images, annotations) -> None:  # noqa: ANN001
    path = tmp_path_factory.mktemp("coco") / "c.json"
    categories = [{"id": 1, "name": "lesion"}, {"id": 2, "name": "normal_patch"}, {"id": 3, "name": "dog"}]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    ann = Annotations()
    read_coco_json(path, ann)
    box_problems = [p for p in ann.problems if p.where.startswith("annotation")]
    assert _stored_boxes(ann) + len(box_problems) == len(annotations)
    for a in ann.by_key.values():
        for b in a.lesion_boxes + a.normal_patches:
            assert all(math.isfinite(v) for v in b.as_tuple()) and b.x0 < b.x1 and b.y0 < b.y1
