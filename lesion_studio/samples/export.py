"""Export kept synthetic samples as PNG (with a JSON sidecar) or as DICOM.

A synthetic DICOM must never pass for an acquisition, nor carry its source's identity: it is a
Secondary Capture (ConversionType SYN) marked DERIVED with a derivation description, built from an
allow-list (see :mod:`lesion_studio.deid`), with new Study, Series, SOP and Frame of
Reference UIDs. The provenance travels in the sidecar and in ImageComments, and names the source
by project image id and content hash only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lesion_studio.deid import deidentified_dicom, public_provenance
from lesion_studio.errors import LesionStudioError
from lesion_studio.files import atomic_path, atomic_write, atomic_write_json
from lesion_studio.io.images import encode_png
from lesion_studio.io.reader import read_source_header
from lesion_studio.samples.storage import load_sample_pixels
from lesion_studio.store.project import Project
from lesion_studio.store.records import SyntheticSample


def _sidecar(project: Project, sample: SyntheticSample) -> dict[str, Any]:
    return public_provenance(sample)


def _source_header(project: Project, sample: SyntheticSample) -> Any | None:
    """The source's DICOM header (or None), refusing a source with burned-in annotation: its pixels,
    and so the synthetic image's, may show a name, a date or a record number."""
    source = project.image(sample.source_image_id)
    source_ds = read_source_header(source.abs_path)
    if source_ds is not None and str(getattr(source_ds, "BurnedInAnnotation", "")).strip().upper() == "YES":
        raise LesionStudioError(
            f"Sample {sample.id}: its source image (project image {source.id}) has burned-in annotation, "
            "which may show identifying text in the pixels. Synthesize from another image to export it."
        )
    return source_ds


def export_sample_png(project: Project, sample: SyntheticSample, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    _source_header(project, sample)
    pixels = load_sample_pixels(project, sample)
    meta = _sidecar(project, sample)
    path = out_dir / f"synthetic_{sample.id:06d}.png"
    atomic_write(path, encode_png(pixels, {"lesion_studio_provenance": json.dumps(meta)}))
    atomic_write_json(path.with_suffix(".json"), meta, indent=1)
    return path


def export_sample_dicom(project: Project, sample: SyntheticSample, out_dir: str | Path) -> Path:
    """Write a de-identified DERIVED DICOM of the sample (MONOCHROME2, bone bright, native depth)."""
    out_dir = Path(out_dir)
    pixels = load_sample_pixels(project, sample)
    source = project.image(sample.source_image_id)
    meta = _sidecar(project, sample)
    source_ds = _source_header(project, sample)
    ds = deidentified_dicom(
        pixels, source_ds, bits_stored=int(source.bits_stored or 8), patient_id=f"SYN-{sample.id:06d}",
        synthetic=True, comments=json.dumps(meta),
        derivation=(f"Synthetic lesion (UNIT translation, cosine blend n={sample.n:g}, seed {sample.seed}) "
                    f"in a normal radiograph; model {sample.model_id}"))
    path = out_dir / f"synthetic_{sample.id:06d}.dcm"
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    atomic_write_json(path.with_suffix(".json"), meta, indent=1)
    return path


