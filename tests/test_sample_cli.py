"""lesion-studio export-samples: kept (accepted) synthetic samples as PNG or DICOM with sidecars."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lesion_studio.cli.main import main
from lesion_studio.samples import save_synthetic_sample
from lesion_studio.store.records import Box


def _keep(project, status: str, batch: str = "kept") -> int:  # noqa: ANN001
    rec = project.images(label="normal")[0]
    rg = project.open_radiograph(rec.id)
    image = rg.pixels.copy()
    image[10:40, 20:50] = image[10:40, 20:50] // 2  # "a lesion"
    window = Box(20, 10, 50, 40)
    provenance = {"model": {"id": None, "name": "test", "sha256": "ab" * 32}, "window": list(window.as_tuple())}
    return save_synthetic_sample(project, image, source_image_id=rec.id, window=window, n=2.0, seed=7,
                                 model_id=None, provenance=provenance, status=status, batch=batch)


def test_export_samples_png_and_dicom(demo_project, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    kept = _keep(demo_project, "accepted")
    rejected = _keep(demo_project, "rejected", batch="b1")
    folder = str(demo_project.folder)

    assert main(["export-samples", folder, str(tmp_path / "png"), "--format", "png"]) == 0
    assert "Exported 1 sample(s) as png" in capsys.readouterr().out
    files = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert files == ["index.json", f"synthetic_{kept:06d}.json", f"synthetic_{kept:06d}.png"]
    side = json.loads((tmp_path / "png" / f"synthetic_{kept:06d}.json").read_text())
    assert side["synthetic"] is True and side["n"] == 2.0 and side["seed"] == 7
    assert side["provenance"]["model"]["sha256"] == "ab" * 32 and side["window"] == [20.0, 10.0, 50.0, 40.0]
    from PIL import Image

    from lesion_studio.samples import load_sample_pixels

    with Image.open(tmp_path / "png" / f"synthetic_{kept:06d}.png") as im:
        assert np.array_equal(np.asarray(im), load_sample_pixels(demo_project, demo_project.synthetic_sample(kept)))

    assert main(["export-samples", folder, str(tmp_path / "dcm"), "--format", "dicom", "--status", "all",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 2
    import pydicom

    names = sorted(p.name for p in (tmp_path / "dcm").glob("*.dcm"))
    assert names == [f"synthetic_{kept:06d}.dcm", f"synthetic_{rejected:06d}.dcm"]
    ds = pydicom.dcmread(tmp_path / "dcm" / names[0])
    assert "DERIVED" in ds.ImageType and ds.PatientIdentityRemoved == "YES"
    assert json.loads(ds.ImageComments)["sample_id"] == kept


def test_export_samples_json_summary_and_errors(demo_project, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    folder = str(demo_project.folder)
    assert main(["export-samples", folder, str(tmp_path / "none")]) == 2  # nothing kept yet: a message
    assert "no accepted synthetic samples" in capsys.readouterr().err
    kept = _keep(demo_project, "accepted", batch="kept")
    _keep(demo_project, "accepted", batch="gallery")
    assert main(["export-samples", folder, str(tmp_path / "out"), "--batch", "kept", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["count"] == 1 and summary["files"][0].endswith(f"synthetic_{kept:06d}.png")
    with pytest.raises(SystemExit):
        main(["export-samples", folder, str(tmp_path / "x"), "--format", "jpeg"])
