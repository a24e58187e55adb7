"""Synthetic sample storage and export (PNG, de-identified DERIVED DICOM) and blinded review maths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from lesion_studio.io import open_radiograph
from lesion_studio.review import build_review_items, rater_score, score_answers, wilson_interval
from lesion_studio.samples import (
    export_sample_dicom,
    export_sample_png,
    load_sample_pixels,
    save_synthetic_sample,
)
from lesion_studio.store import Box, Project


def _fake_synthetic(project: Project, *, status: str = "accepted") -> int:
    """A 'synthetic' image: a normal demo image with a darkened square (stands in for a lesion)."""
    rec = next(r for r in project.images(label="normal") if not r.excluded)
    rg = open_radiograph(rec.abs_path)
    image = rg.pixels.copy()
    window = Box(100, 150, 164, 214)
    image[150:214, 100:164] //= 2
    return save_synthetic_sample(
        project, image, source_image_id=rec.id, window=window, n=2.0, seed=7, model_id=None,
        provenance={"model": {"name": "test", "sha256": "abc"}}, status=status, batch="t",
    )


def test_saved_sample_reads_back_exactly(demo_project: Project) -> None:
    sample_id = _fake_synthetic(demo_project)
    sample = demo_project.synthetic_sample(sample_id)
    source = demo_project.image(sample.source_image_id)
    pixels = load_sample_pixels(demo_project, sample)
    original = open_radiograph(source.abs_path).pixels
    assert pixels.dtype == np.uint16 and pixels.shape == original.shape
    changed = pixels != original
    assert changed[150:214, 100:164].any() and not changed[:150].any()
    assert sample.provenance["source_sha256"] == source.sha256 and sample.provenance["n"] == 2.0


def test_png_export_has_provenance_sidecar(demo_project: Project, tmp_path: Path) -> None:
    sample = demo_project.synthetic_sample(_fake_synthetic(demo_project))
    path = export_sample_png(demo_project, sample, tmp_path)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["synthetic"] is True and meta["provenance"]["model"]["sha256"] == "abc"
    assert open_radiograph(path).pixels.shape == load_sample_pixels(demo_project, sample).shape


def test_dicom_export_is_derived_deidentified_with_new_uids(demo_project: Project, tmp_path: Path) -> None:
    sample = demo_project.synthetic_sample(_fake_synthetic(demo_project))
    source = demo_project.image(sample.source_image_id)
    src_ds = pydicom.dcmread(source.abs_path)
    path = export_sample_dicom(demo_project, sample, tmp_path)
    ds = pydicom.dcmread(path)
    assert "DERIVED" in ds.ImageType and ds.PatientIdentityRemoved == "YES"
    assert ds.PatientID != src_ds.PatientID and "Phantom" not in str(ds.PatientName)
    assert not ds.get("PatientBirthDate") and not ds.get("StudyDate")  # type 2: present, empty
    for uid in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert getattr(ds, uid) != getattr(src_ds, uid)
    assert json.loads(ds.ImageComments)["sample_id"] == sample.id
    # The pixels survive and read back bone-bright through our own loader.
    rg = open_radiograph(path)
    np.testing.assert_array_equal(rg.pixels, load_sample_pixels(demo_project, sample))
    assert rg.photometric == "MONOCHROME2" and rg.bits_stored == 12


def test_wilson_interval_contains_estimate_and_narrows() -> None:
    low, high = wilson_interval(10, 20)
    assert low < 0.5 < high
    low2, high2 = wilson_interval(100, 200)
    assert high2 - low2 < high - low
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_review_scores_and_per_rater_storage(demo_project: Project) -> None:
    for _ in range(3):
        _fake_synthetic(demo_project)
    items = build_review_items(demo_project, count_per_kind=3, seed=1)
    kinds = [i.kind for i in items]
    assert kinds.count("real") == kinds.count("synthetic") == 3
    assert kinds != sorted(kinds) and kinds != sorted(kinds, reverse=True)  # shuffled, not grouped
    # A perfect rater and a coin-flipping one.
    for item in items:
        demo_project.add_rating("alice", "s1", item.kind, item.ref, item.kind)
        demo_project.add_rating("bob", "s1", item.kind, item.ref, "real")
    alice = rater_score(demo_project, "alice")
    bob = rater_score(demo_project, "bob")
    assert alice.accuracy == 1.0 and alice.answered == 6
    assert bob.accuracy == pytest.approx(0.5) and bob.ci_low < 0.5 < bob.ci_high
    assert bob.sensitivity_synthetic == 0.0 and bob.specificity_real == 1.0
    assert score_answers([]).answered == 0
