"""Seeded fuzzing of the DICOM reader: a few hundred mutated files, each either opens as a
radiograph or raises RadiographError with the file's name. Nothing else may escape (a stray
exception type means an exit 70 and a traceback for the user), and an import of a folder of
them finishes with every file imported or listed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless, generate_uid

from lesion_studio.dataset.importer import import_source
from lesion_studio.errors import RadiographError
from lesion_studio.io import open_radiograph
from lesion_studio.store import Project

MUTANTS = 400


def _seed_files(folder: Path) -> list[bytes]:
    """Small valid files in the three encodings the mutations start from."""
    rng = np.random.default_rng(0)
    out = []
    for k, (syntax, photometric) in enumerate([(ExplicitVRLittleEndian, "MONOCHROME2"),
                                               (ImplicitVRLittleEndian, "MONOCHROME1"),
                                               (RLELossless, "MONOCHROME2")]):
        ds = Dataset()
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
        ds.SOPInstanceUID = generate_uid()
        ds.PatientName = "FUZZ^SEED"
        ds.Modality = "CR"
        ds.Rows, ds.Columns = 24, 20
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.WindowCenter, ds.WindowWidth = 2048, 4096
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelSpacing = [0.2, 0.2]
        ds.PixelData = rng.integers(0, 4096, (24, 20), dtype=np.uint16).tobytes()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian if syntax == RLELossless else syntax
        ds.file_meta = meta
        if syntax == RLELossless:
            ds.compress(RLELossless)
        path = folder / f"seed{k}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out.append(path.read_bytes())
    return out


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    kind = rng.integers(0, 6)
    if kind == 0:  # flip a few bytes anywhere
        for pos in rng.integers(0, len(buf), rng.integers(1, 8)):
            buf[pos] = int(rng.integers(0, 256))
    elif kind == 1:  # corrupt the header region (tags, VRs, lengths)
        for pos in rng.integers(128, min(len(buf), 700), rng.integers(1, 6)):
            buf[pos] = int(rng.integers(0, 256))
    elif kind == 2:  # truncate
        buf = buf[: int(rng.integers(0, len(buf)))]
    elif kind == 3:  # insert random bytes
        pos = int(rng.integers(132, len(buf)))
        buf[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8).tobytes()
    elif kind == 4:  # delete a slice
        pos = int(rng.integers(132, len(buf)))
        del buf[pos: pos + int(rng.integers(1, 40))]
    else:  # a length field set to something huge
        pos = int(rng.integers(132, min(len(buf) - 4, 700)))
        buf[pos: pos + 4] = (0xFFFFFFF0).to_bytes(4, "little")
    return bytes(buf)


def test_mutated_dicoms_open_or_raise_radiograph_error(tmp_path: Path) -> None:
    seeds = _seed_files(tmp_path)
    rng = np.random.default_rng(12)
    folder = tmp_path / "mutants"
    folder.mkdir()
    opened = refused = 0
    for k in range(MUTANTS):
        path = folder / f"m{k:03d}.dcm"
        path.write_bytes(_mutate(seeds[k % len(seeds)], rng))
        try:
            rg = open_radiograph(path)
        except RadiographError as exc:
            assert path.name in str(exc) and "\n" not in str(exc)
            refused += 1
        else:
            assert rg.pixels.ndim == 2 and rg.pixels.size > 0
            opened += 1
    assert opened > 20 and refused > 20  # the mutations exercise both outcomes
    with Project.create(tmp_path / "p") as project:
        report = import_source(project, folder)
        assert report.added + len(report.skipped) == MUTANTS
        assert report.added == project.image_count() == opened
