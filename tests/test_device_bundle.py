"""tools/device_bundle.py: the folder that carries one body part to the GPU machine must rebuild,
on import there, the same images, labels, splits, exclusions and boxes as the source project
(the GPU numbers are compared with CPU numbers measured on those splits), and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from lesion_studio.dataset.importer import import_source
from lesion_studio.errors import LesionStudioError
from lesion_studio.store import Project


def _state(project: Project, body_part: str) -> dict[str, tuple]:
    boxes: dict[int, list] = {}
    for b in project.boxes():
        boxes.setdefault(b.image_id, []).append(tuple(round(v, 2) for v in (b.box.x0, b.box.y0, b.box.x1, b.box.y1)))
    return {r.sha256: (r.label, r.split, tuple(r.exclusions), r.view, sorted(boxes.get(r.id, [])))
            for r in project.images() if r.body_part == body_part}


def test_a_bundle_rebuilds_one_body_parts_splits_labels_and_boxes(demo_project: Project, tmp_path: Path) -> None:
    from tools.device_bundle import bundle

    images = demo_project.images()
    femur = [r for r in images if r.body_part == "femur"]
    assert femur and len(femur) < len(images)
    # Make the splits and an exclusion something a fresh split on femur alone would not redraw.
    demo_project.set_splits({r.id: ("val" if i % 3 == 0 else "test" if i % 3 == 1 else "train")
                             for i, r in enumerate(femur)})
    demo_project.update_image(femur[0].id, exclusions=["hardware"])
    expected = _state(demo_project, "femur")
    excluded = sum(1 for label, split, exclusions, *_ in expected.values() if exclusions)
    assert any(boxes for *_, boxes in expected.values())
    source = Path(demo_project.folder)
    demo_project.close()

    out = tmp_path / "bundle"
    summary = bundle(source, out, ["femur"])
    assert summary["images"] == len(femur) == len(list((out / "images").rglob("*.dcm")))
    assert summary["excluded"] == excluded >= 1
    assert not (tmp_path / "bundle.partial").exists()

    with Project.open_or_create(tmp_path / "rebuilt") as rebuilt:
        import_source(rebuilt, out / "images", labels_csv=out / "labels.csv", boxes_csv=out / "boxes.csv",
                      strict=True)
        assert {r.body_part for r in rebuilt.images()} == {"femur"}
        assert _state(rebuilt, "femur") == expected


def test_a_bundle_never_replaces_a_folder_or_packs_nothing(demo_project: Project, tmp_path: Path) -> None:
    from tools.device_bundle import bundle

    source = Path(demo_project.folder)
    demo_project.close()
    (tmp_path / "taken").mkdir()
    with pytest.raises(LesionStudioError, match="already exists"):
        bundle(source, tmp_path / "taken", ["femur"])
    with pytest.raises(LesionStudioError, match="no image of skull"):
        bundle(source, tmp_path / "new", ["skull"])
    assert not (tmp_path / "new").exists()


def test_the_gpu_run_goes_end_to_end_on_the_cpu(demo_project: Project, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/gpu_detector.py is the script a lent GPU machine runs, once, inside a 15-minute
    budget with no second chance to fix a crash: its whole path (bundle → import → train per seed →
    evaluate → the seeds' ensemble → JSON) runs here on the CPU at toy size."""
    import json

    from benchmarks.gpu_detector import main
    from tools.device_bundle import bundle

    source = Path(demo_project.folder)
    demo_project.close()
    bundle(source, tmp_path / "bundle", ["femur"])
    out = tmp_path / "out"
    assert main(["--data", str(tmp_path / "bundle"), "--out", str(out), "--project", str(tmp_path / "p"),
                 "--device", "cpu", "--preset", "tiny", "--epochs", "1", "--seeds", "0,1",
                 "--body-parts", "femur"]) == 0
    record = json.loads((out / "gpu_detector.json").read_text())
    assert [r["seed"] for r in record["seeds"]] == [0, 1] and record["device"] == "cpu"
    for row in record["seeds"]:
        assert row["config"]["seed"] == row["seed"] and row["config"]["epochs"] == 1
        assert 0.0 <= row["test"]["auc"]["auc"] <= 1.0 and row["train_s"] > 0
    assert 0.0 <= record["ensemble_val"]["auc"] <= 1.0 and 0.0 <= record["ensemble_test"]["auc"] <= 1.0
    printed = json.loads(capsys.readouterr().out)  # the short summary the device tool brings back
    assert [r["seed"] for r in printed["seeds"]] == [0, 1] and len(printed["ensemble_test_auc_ci"]) == 3


def test_the_gpu_summary_reads_a_seed_that_detected_no_fracture() -> None:
    """A seed whose model detects no test fracture has no pointing rate (None): the summary the
    device tool brings back must still print (it once crashed on round(None) after the run)."""
    from benchmarks.gpu_detector import summary

    auc = {"auc": 0.5, "ci_low": 0.3, "ci_high": 0.7}
    row = {"seed": 0, "train_s": 1.0, "epoch_selected": 1, "val_auc": None,
           "test": {"auc": auc, "pointing": {"detected": {"rate": None, "ci_low": None, "ci_high": None, "n": 0}}}}
    out = summary({"device": "cpu", "seeds": [row], "ensemble_test": auc})
    assert out["seeds"][0]["pointing_detected"] == [None, None, None, 0] and out["seeds"][0]["val_auc"] is None
    assert out["ensemble_test_auc_ci"] == [0.5, 0.3, 0.7]
