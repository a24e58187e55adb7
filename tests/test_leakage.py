"""The GAN never sees validation or test images: every DICOM file the UNIT trainer decodes is a
training (or unassigned) image, whatever the other splits hold. (That experiment candidates come
only from normal training images is checked in test_experiment.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")


def test_unit_training_reads_no_validation_or_test_image(demo_project, monkeypatch: pytest.MonkeyPatch) -> None:
    import pydicom

    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    project = demo_project
    read: set[Path] = set()
    dcmread = pydicom.dcmread

    def recording_dcmread(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        read.add(Path(path).resolve())
        return dcmread(path, *args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", recording_dcmread)
    # Every split holds lesion images with boxes and normal images with picked patches, so a
    # trainer that ignored the split filter would have something to read there.
    by_split = {s: {r.abs_path.resolve() for r in project.images(split=s)} for s in ("train", "val", "test")}
    for split in ("val", "test"):
        labels = {r.label for r in project.images(split=split) if not r.excluded}
        assert labels == {"lesion", "normal"}, split
    # The quality report after training reads validation images by design (it measures the
    # generator on what it never trained on); training itself must read neither split.
    cfg = preset_config("tiny", iterations=2, cpu_threads=1, device="cpu", export_onnx=False, assess=False)
    result = train_unit(project, cfg, name="isolated", patch_cache="none")
    assert read, "the trainer decoded nothing: the check would be empty"
    assert not read & (by_split["val"] | by_split["test"])
    assert read <= by_split["train"] | {r.abs_path.resolve() for r in project.images(split="unassigned")}
    # With the report on, it reads validation images, and still never a test image.
    read.clear()
    train_unit(project, preset_config("tiny", iterations=2, cpu_threads=1, device="cpu", export_onnx=False),
               name="assessed", patch_cache="none")
    assert read & by_split["val"] and not read & by_split["test"]
    lesion_train = {r.id for r in project.images(split="train", label="lesion") if not r.excluded}
    assert result.data_summary["lesion"]["images"] == len(lesion_train)
