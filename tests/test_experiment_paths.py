"""The experiment's less travelled paths: the real UNIT generator with transfer learning, an external
test set, the hardware second line, and the classifier CLI (train-classifier, score).

One stub-painter experiment is run per module and copied for each test; the copies re-use its cached
stages (baseline, synthesis, scores, augmented models), so each test re-runs only what it changes.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytestmark = pytest.mark.slow  # every test here runs the protocol

from lesion_studio.config import from_dict  # noqa: E402
from lesion_studio.errors import LesionStudioError  # noqa: E402
from lesion_studio.experiment.config import ExperimentConfig  # noqa: E402
from lesion_studio.experiment.runner import run_experiment  # noqa: E402
from lesion_studio.files import file_sha256  # noqa: E402
from lesion_studio.store import Project  # noqa: E402

ALL = ["femur", "tibia", "humerus"]
KEY = "femur+tibia+humerus"


def _config(project_folder: Path, out: Path, **changes) -> ExperimentConfig:
    data = {
        "name": "p", "project": str(project_folder), "output": str(out), "seed": 0,
        "classifier": {"preset": "tiny", "input_size": 64, "epochs": 3},
        "generator": {"kind": "stub"},
        "synthesis": {"candidates_per_image": 1, "max_candidates": 16},
        # Raw probabilities and no floor: these tests follow the paths, not the filter's judgement.
        "thresholds": [0.3], "filter": {"kind": "probability", "min_baseline_val_auc": 0.0},
        "bootstrap": {"resamples": 1000, "seed": 1},
        "scoring_backend": "torch",
        "studies": [{"body_parts": ALL}],
        **changes,
    }
    return from_dict(ExperimentConfig, data)


@pytest.fixture(scope="module")
def stub_run(demo_project_master: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(project folder, results folder) of one finished stub experiment. Do not modify: use ``stub_copy``."""
    root = tmp_path_factory.mktemp("stub-run")
    shutil.copytree(demo_project_master, root / "demo")
    run_experiment(_config(root / "demo", root / "results"))
    return root / "demo", root / "results"


@pytest.fixture
def stub_copy(stub_run: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    project, results = stub_run
    shutil.copytree(project, tmp_path / "demo")
    shutil.copytree(results, tmp_path / "results")
    return tmp_path / "demo", tmp_path / "results"


def _ran(result) -> set[str]:
    return {ev["stage"] for ev in result.stage_events if ev["status"] == "ran"}


# ---------------------------------------------------------------------------- (a) real UNIT + TL
def test_real_unit_generator_and_transfer_learning(demo_project, tmp_path) -> None:
    """The protocol with the real (tiny) UNIT generator; femur's generator and classifier synthesize
    and filter lesions on tibia images (TL), and the TL line reaches results.json and table.md."""
    folder = demo_project.folder
    demo_project.close()
    out = tmp_path / "results"
    cfg = _config(folder, out, classifier={"preset": "tiny", "input_size": 64, "epochs": 1},
                  generator={"kind": "unit", "model": "t-unit-{parts}", "train_preset": "tiny",
                             "train_overrides": {"iterations": 4, "sample_every": 2, "checkpoint_every": 4}},
                  synthesis={"candidates_per_image": 1, "max_candidates": 6},
                  thresholds=[0.0], scoring_backend="onnx",
                  studies=[{"body_parts": ["femur"]}, {"body_parts": ["tibia"], "transfer_from": ["femur"]}])
    result = run_experiment(cfg)

    results = json.loads((out / "results.json").read_text())
    gens = {s["key"]: s["generator"] for s in results["studies"]}
    assert set(gens) == {"femur<-femur", "tibia<-femur"}
    assert all(g["kind"] == "unit" and g["model_name"] == "t-unit-femur" for g in gens.values())
    trained = [ev for ev in result.stage_events if ev["stage"].startswith("generator/") and ev["status"] == "ran"]
    assert len(trained) == 1  # one GAN (femur's), shared by both studies
    tl = next(s for s in results["studies"] if s["type"] == "TL")
    assert tl["filter_model"] == "p-baseline-femur" and tl["candidates"] == 6
    trial = tl["threshold_trials"][0]
    assert trial["kept"] == sum(v > 0.0 for v in tl["scores"].values())

    types = {(e["target"], e["type"], e.get("transfer_from")) for e in results["evaluations"]}
    assert types == {("femur", "Baseline", None), ("femur", "Augmented", None),
                     ("tibia", "Baseline", None), ("tibia", "TL", "femur")}
    for e in results["evaluations"]:
        if e["auc"] is not None:
            assert 0.0 <= e["auc"]["ci_low"] <= e["auc"]["auc"] <= e["auc"]["ci_high"] <= 1.0
    table = (out / "table.md").read_text()
    assert any(line.startswith("| tibia | TL") for line in table.splitlines()), table
    # The generator was measured on validation patches, once, and the report says how it did.
    quality = tl["generator_quality"]
    assert 0.0 <= quality["realism"]["auc"] <= 1.0 and quality["localisation"] is not None
    assert [ev["stage"] for ev in result.stage_events].count("quality/femur") == 1
    assert "## Generator quality" in table and "Realism (two-sample AUC" in table
    # The synthetic images were made by the UNIT model: provenance names it and its hash.
    with Project.open(folder) as project:
        samples = project.synthetic_samples(batch=tl["batch"])
        model = project.model("t-unit-femur")
        assert {s.source_image_id for s in samples} <= {r.id for r in project.images(body_parts=["tibia"])}
        assert all(s.model_id == model.id and s.provenance["model_sha256"] == model.sha256 for s in samples)
    assert (out / "roc-tibia.png").is_file() and (out / "samples-tibia_from_femur.png").is_file()


# ---------------------------------------------------------------------------- (b) external test set
def _export(records, folder: Path, project: Project) -> Path:
    """Copy images with a labels.csv/boxes.csv in the import format (as an external hold-out arrives)."""
    folder.mkdir(parents=True)
    with open(folder / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["image", "label", "body_part", "view", "exclusions"])
        w.writeheader()
        for r in records:
            shutil.copy2(r.abs_path, folder / r.name)
            w.writerow({"image": r.name, "label": r.label, "body_part": r.body_part, "view": r.view,
                        "exclusions": ",".join(r.exclusions)})
    with open(folder / "boxes.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["image", "kind", "x0", "y0", "x1", "y1"])
        w.writeheader()
        for r in records:
            for b in project.boxes(r.id):
                w.writerow({"image": r.name, "kind": "lesion", "x0": b.box.x0, "y0": b.box.y0,
                            "x1": b.box.x1, "y1": b.box.y1})
    return folder


def test_external_test_set_replaces_the_test_split(stub_copy, tmp_path) -> None:
    folder, out = stub_copy
    with Project.open(folder) as project:
        test = [r for r in project.images(split="test") if not r.excluded]
        lesions = [r for r in test if r.label == "lesion"][:3]
        normals = [r for r in test if r.label == "normal"][:4]
        external = _export(lesions + normals, tmp_path / "external", project)
        train_img = next(r for r in project.images(split="train") if not r.excluded)
        leaky = _export([*lesions[:1], *normals[:1], train_img], tmp_path / "leaky", project)
    assert len(test) > 7  # the project's split is bigger than the hold-out, so the counts tell them apart

    result = run_experiment(_config(folder, out), test_set_dir=external)
    assert _ran(result) == {"evaluate"}  # training and the choice of t never see the hold-out
    results = result.results
    assert results["test_set"].startswith("external:") and str(external) in results["test_set"]
    for e in results["evaluations"]:
        assert e["test"] == {"images": 7, "lesion": 3, "normal": 4, "synthetic": 0}
    assert "external:" in (out / "table.md").read_text()

    # The same through the config's test_set entry.
    again = run_experiment(_config(folder, out, test_set={"folder": str(external)}))
    assert again.results["evaluations"] == results["evaluations"]

    with pytest.raises(LesionStudioError, match="independent"):
        run_experiment(_config(folder, out), test_set_dir=leaky)


def test_cli_evaluate_on_an_external_test_set(stub_copy, tmp_path, capsys) -> None:
    from lesion_studio.cli.main import main

    folder, _ = stub_copy
    with Project.open(folder) as project:
        test = [r for r in project.images(split="test") if not r.excluded]
        hold_out = [r for r in test if r.label == "lesion"][:2] + [r for r in test if r.label == "normal"][:3]
        external = _export(hold_out, tmp_path / "external", project)
        train_img = next(r for r in project.images(split="train") if not r.excluded)
        leaky = _export([*hold_out[:2], train_img], tmp_path / "leaky", project)
    model = "p-baseline-femur+tibia+humerus"
    assert main(["evaluate", str(folder), "--model", model, "--test-set", str(external), "--resamples", "1000"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["test"] == {"images": 5, "lesion": 2, "normal": 3, "synthetic": 0}
    assert main(["evaluate", str(folder), "--model", model, "--test-set", str(leaky)]) == 2
    assert "independent" in capsys.readouterr().err


# ---------------------------------------------------------------------------- (c) hardware second line
def test_also_evaluate_including_hardware_adds_a_second_line(stub_copy) -> None:
    folder, out = stub_copy
    with Project.open(folder) as project:
        test = [r for r in project.images(split="test") if r.label in ("lesion", "normal")]
        clean = [r for r in test if not r.excluded]
        flagged = [next(r for r in clean if r.label == "lesion"), *[r for r in clean if r.label == "normal"][:2]]
        for r in flagged:
            project.update_image(r.id, exclusions=["hardware"])
        both = next(r for r in test if r.excluded)  # already excluded (pediatric): stays out of both lines
        project.update_image(both.id, exclusions=[*both.exclusions, "hardware"])
        n_head = len(clean) - len(flagged)
        n_les = sum(r.label == "lesion" for r in clean) - 1

    result = run_experiment(_config(folder, out, also_evaluate_including=["hardware"]))
    assert _ran(result) == {"evaluate"}  # test-image flags change no training
    lines: dict[str, list[dict]] = {}
    for e in result.results["evaluations"]:
        lines.setdefault(e["line"], []).append(e)
    assert set(lines) == {"headline", "including hardware"}
    for e in lines["headline"]:
        assert e["test"]["images"] == n_head and e["test"]["lesion"] == n_les
    for e in lines["including hardware"]:
        assert e["test"]["images"] == n_head + 3 and e["test"]["lesion"] == n_les + 1
    assert {e["type"] for e in lines["including hardware"]} == {"Baseline", "Augmented"}
    table = (out / "table.md").read_text()
    assert "including hardware" in table


# ---------------------------------------------------------------------------- (d) CLI
def test_cli_train_classifier_and_score(stub_copy, tmp_path, capsys) -> None:
    from lesion_studio.cli.main import main

    folder, out = stub_copy
    batch = json.loads((out / "results.json").read_text())["studies"][0]["batch"]
    cfg = tmp_path / "cls.yaml"
    cfg.write_text("input_size: 64\nbatch_size: 32\n")
    assert main(["train-classifier", str(folder), "--name", "cli", "--preset", "tiny", "--config", str(cfg),
                 "--epochs", "1", "--device", "cpu", "--body-parts", "femur,tibia,humerus", "--onnx"]) == 0
    assert "Model cli" in capsys.readouterr().out
    with Project.open(folder) as project:
        record = project.model("cli")
        assert record.kind == "drn"
        onnx = project.resolve_path(record.path).parent / "model.onnx"
        assert record.metadata["onnx_sha256"] == file_sha256(onnx)  # the export is registered: scoring trusts it
        n_test = len(project.images(split="test"))
        before = {s.id: s.score for s in project.synthetic_samples(batch=batch)}

    assert main(["score", str(folder), "--model", "cli", "--split", "test", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == n_test and all(0.0 <= r["score"] <= 1.0 and r["synthetic_id"] is None for r in rows)

    assert main(["score", str(folder), "--model", "cli", "--synthetic-batch", batch, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["synthetic_id"] for r in rows} == set(before)
    with Project.open(folder) as project:
        stored = {s.id: s.score for s in project.synthetic_samples(batch=batch)}
    assert stored == pytest.approx({r["synthetic_id"]: r["score"] for r in rows})
    assert stored != before  # the experiment's baseline scores were replaced by this model's

    # A non-classifier or unknown model is a clear error (exit code 2), not a traceback.
    assert main(["score", str(folder), "--model", "no-such-model"]) == 2
