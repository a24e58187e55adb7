"""Built-in models: the shipped phantom generator is complete and documented, `demo` makes it
available, listings show it beside a project's own models, and using it never writes into the
package."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lesion_studio.builtin_models import (
    MAX_BYTES,
    builtin_models,
    check_builtin,
    find_builtin,
    is_builtin_record,
    resolve_model,
)
from lesion_studio.cli.main import main
from lesion_studio.errors import ProjectError
from lesion_studio.paths import builtin_models_dir
from lesion_studio.store.project import Project


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_phantom_generator_ships_complete_with_a_card() -> None:
    model = find_builtin("phantom-unit")
    assert model is not None and model.kind == "unit"
    assert find_builtin("builtin-phantom-unit") == model == find_builtin("builtin:phantom-unit")
    assert set(model.body_parts) == {"femur", "tibia", "humerus"}
    check_builtin(model)  # files present, hashes match, size limit
    assert model.size_bytes() <= MAX_BYTES
    assert (model.folder / "model.onnx").is_file()
    card = model.card.read_text()
    for needed in ("lesion-studio train-gan", "Iterations", "Wall time", "Data and licence", "Metrics"):
        assert needed in card, needed
    assert f"**Iterations**: {model.metadata['iteration']}" in card
    assert model.metadata["iteration"] > 0 and model.metadata["complete"]
    assert "realism AUC (95% CI)" in card and card.count("| femur, humerus, tibia |") == 2  # its quality report


def test_a_tampered_builtin_fails_its_check(tmp_path, monkeypatch) -> None:
    import shutil

    copy = tmp_path / "models"
    shutil.copytree(builtin_models_dir(), copy)
    monkeypatch.setattr("lesion_studio.builtin_models.builtin_models_dir", lambda: copy)
    model = find_builtin("phantom-unit")
    assert model is not None and model.folder.parent == copy
    with open(model.folder / "model.onnx", "r+b") as fh:
        fh.seek(200)
        byte = fh.read(1)
        fh.seek(200)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(Exception, match="does not match its recorded hash"):
        check_builtin(model)


def test_listed_beside_project_models_and_registered_on_first_use(tmp_path, capsys) -> None:
    before = _tree(builtin_models_dir())
    project = Project.create(tmp_path / "p")
    project.close()
    assert main(["models", str(tmp_path / "p"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["source"]) for r in rows] == [("builtin-fracatlas-hand-unit", "built-in"),
                                                         ("builtin-fracatlas-leg-unit", "built-in"),
                                                         ("builtin-phantom-unit", "built-in")]

    project = Project.open(tmp_path / "p")
    try:
        with pytest.raises(ProjectError, match="Built-in: builtin-fracatlas-hand-unit, builtin-fracatlas-leg-unit, "
                                               "builtin-phantom-unit"):
            resolve_model(project, "no-such-model")
        record = resolve_model(project, "builtin-phantom-unit")
        assert is_builtin_record(record) and record.sha256 == find_builtin("phantom-unit").sha256
        copy = project.resolve_path(record.path)
        assert copy.is_relative_to(project.folder)  # a copy: the project stays self-contained
        assert resolve_model(project, "builtin-phantom-unit").id == record.id  # registered once
        assert len(project.models()) == 1
    finally:
        project.close()
    assert main(["models", str(tmp_path / "p")]) == 0
    assert "built-in (in project)" in capsys.readouterr().out
    assert main(["models", "--card", "phantom-unit"]) == 0
    assert "Data and licence" in capsys.readouterr().out
    assert _tree(builtin_models_dir()) == before


def test_demo_makes_the_builtin_generator_translate_at_once(demo_project_master, tmp_path, capsys) -> None:
    import shutil

    folder = tmp_path / "demo"
    shutil.copytree(demo_project_master, folder)
    before = _tree(builtin_models_dir())
    assert main(["demo", str(folder), "--no-gui"]) == 0
    assert "builtin-phantom-unit" in capsys.readouterr().out
    project = Project.open(folder)
    try:
        [record] = project.models(kind="unit")
        assert record.name == "builtin-phantom-unit" and is_builtin_record(record)
        patch = next(p for p in project.normal_patches() if project.image(p.image_id).label == "normal")
        image = project.resolve_path(project.image(patch.image_id).path)
    finally:
        project.close()
    box = ",".join(str(v) for v in (patch.box.x0, patch.box.y0, patch.box.x1, patch.box.y1))
    out = tmp_path / "sbs.png"
    assert main(["translate", str(folder), "--model", "builtin-phantom-unit", "--image", str(image),
                 "--box", box, "--out", str(out), "--backend", "onnx"]) == 0
    assert out.is_file()
    from PIL import Image

    sbs = np.asarray(Image.open(out).convert("L"), dtype=np.float32)
    third = (sbs.shape[1] - 8) // 3  # original | translated | blended, 4 px gaps
    original, translated = sbs[:, :third], sbs[:, third + 4:2 * third + 4]
    assert np.abs(original - translated).mean() > 1.0  # the generator changed the window
    assert _tree(builtin_models_dir()) == before  # nothing written into the package


def test_experiment_generator_stage_uses_a_builtin_without_training(demo_project_master, tmp_path) -> None:
    from lesion_studio.experiment.config import load_experiment_config
    from lesion_studio.experiment.runner import ExperimentRunner, RunContext

    cfg_file = tmp_path / "exp.yaml"
    cfg_file.write_text(f"name: b\nproject: {demo_project_master}\noutput: out\n"
                        "generator: {kind: unit, model: builtin-phantom-unit}\n"
                        "classifier: {preset: tiny}\nstudies: [{body_parts: [femur]}]\n")
    import shutil

    shutil.copytree(demo_project_master, tmp_path / "demo")
    cfg_file.write_text(cfg_file.read_text().replace(str(demo_project_master), str(tmp_path / "demo")))
    runner = ExperimentRunner(load_experiment_config(cfg_file))
    with Project.open(tmp_path / "demo") as project:
        ctx = RunContext(project)
        out = runner.generator(ctx, ["femur"])
        assert out.model_name == "builtin-phantom-unit" and out.trained is False
        assert is_builtin_record(project.model(out.model_id))
        assert ctx.synthesizers["femur"].model_id == out.model_id  # kept for the synthesis stage


@pytest.mark.parametrize("part", ["hand", "leg"])
def test_fracatlas_generators_ship_with_their_measured_quality_and_limits(part: str) -> None:
    """The FracAtlas hand and leg generators: complete, under the size limit, trained with
    air-matched windows (their lesion windows saved for synthesis), with the residual graph, and a
    card that gives the quality report and says plainly what each is not good for."""
    model = find_builtin(f"fracatlas-{part}-unit")
    assert model is not None and model.kind == "unit" and set(model.body_parts) == {part}
    assert (model.folder / "model-h2l-residual.onnx").is_file() and model.metadata["onnx_h2l_residual_sha256"]
    check_builtin(model)
    assert model.size_bytes() <= MAX_BYTES
    assert model.config["normal_match"] == "air"
    windows = model.metadata["data"]["lesion_windows"]
    assert len(windows["air_fractions"]) == len(windows["side_fractions"]) == model.metadata["data"]["lesion"]["patches"]
    card = model.card.read_text()
    for needed in ("CC BY 4.0", "Abedeen", "realism AUC", "normal_match: air", "## Limits", "**not**"):
        assert needed in card, needed
    assert card.count(f"| {part} |") >= 2  # the quality report, two report seeds


def test_every_builtin_is_listed_once() -> None:
    names = [m.name for m in builtin_models()]
    assert names == sorted(set(names)) and "phantom-unit" in names
    assert all(m.kind in ("unit", "drn") for m in builtin_models())
