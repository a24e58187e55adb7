"""Validation and test images never leak into training: every DICOM file the UNIT trainer decodes
is a training (or unassigned) image, whatever the other splits hold; the experiment's candidates
come only from normal training images; a synthetic sample made from a validation image never
trains a classifier."""

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


def test_experiment_candidates_come_only_from_normal_training_images(demo_project, tmp_path: Path) -> None:
    """The runner's synthesis stage, asked for a candidate from every image it may use, uses
    exactly the normal, non-excluded training images: never a validation or test image (which
    would leak into the augmented classifier and so into selection and test AUC), never a lesion
    image, never an excluded one."""
    from lesion_studio.config import from_dict
    from lesion_studio.experiment.config import ExperimentConfig
    from lesion_studio.experiment.runner import ExperimentRunner, RunContext

    project, parts = demo_project, ["femur"]
    normals = {s: project.images(split=s, label="normal", body_parts=parts) for s in ("train", "val", "test")}
    assert normals["val"] and normals["test"]  # there is something to leak
    excluded = normals["train"][0]
    project.update_image(excluded.id, exclusions=("hardware",))
    allowed = {r.id for r in normals["train"][1:] if not r.excluded}
    cfg = from_dict(ExperimentConfig, {
        "name": "leak", "project": str(project.folder), "output": str(tmp_path / "out"), "seeds": [0],
        "classifier": {"preset": "tiny"}, "generator": {"kind": "stub"},
        "synthesis": {"candidates_per_image": 1, "max_candidates": 1000}, "studies": [{"body_parts": parts}]})
    runner = ExperimentRunner(cfg)
    ctx = RunContext(project)
    batch = runner.synthesize(ctx, parts, parts, runner.generator(ctx, parts))
    sources = [project.synthetic_sample(i).source_image_id for i in batch.sample_ids]
    assert sorted(sources) == sorted(allowed)  # one each: all of them, and nothing else


def test_a_synthetic_sample_from_a_validation_image_never_trains(demo_project) -> None:
    """The classifier's side of the guard: a sample made from a validation image is refused by the
    training set and passed over by the accepted samples a training run picks up."""
    from lesion_studio.classifier.data import accepted_training_samples, training_set
    from lesion_studio.classifier.preprocess import PreparedCache, Preprocessing
    from lesion_studio.errors import LesionStudioError
    from lesion_studio.store.records import Box

    project = demo_project
    val = next(r for r in project.images(split="val", label="normal") if not r.excluded)
    train = next(r for r in project.images(split="train", label="normal") if not r.excluded)
    for rec in (val, train):
        project.add_synthetic_sample(rec.id, Box(10, 10, 40, 40), n=1.0, seed=0, model_id=None, path=rec.abs_path,
                                     status="accepted", batch=f"from-{rec.split}")
    usable, passed_over = accepted_training_samples(project)
    assert [s.source_image_id for s in usable] == [train.id] and passed_over == 1
    with pytest.raises(LesionStudioError, match="'val' split"):
        training_set(project, PreparedCache(Preprocessing(32), None), synthetic=project.synthetic_samples(
            batch="from-val"))
