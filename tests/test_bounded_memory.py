"""Decoding is bounded: one frame of a multi-frame DICOM, and a pixel limit checked before decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

from lesion_studio.errors import RadiographError
from lesion_studio.io import open_radiograph
from lesion_studio.io.reader import read_size


def _dicom(rows: int, columns: int, frames: int = 1) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "CR"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if frames > 1:
        ds.NumberOfFrames = frames
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def test_only_the_first_frame_is_decoded(tmp_path: Path) -> None:
    """Frames 2 and 3 are not valid RLE: decoding every frame (as before) fails, decoding the first
    frame only gives the image."""
    first = (np.arange(32 * 48, dtype=np.uint16).reshape(32, 48) % 4096).astype(np.uint16)
    single = _dicom(32, 48)
    single.PixelData = first.tobytes()
    single.compress(RLELossless)
    fragment = next(pydicom.encaps.generate_frames(single.PixelData, number_of_frames=1))
    junk = (99).to_bytes(4, "little") + b"\0" * 60 + b"\x00" * 16
    ds = _dicom(32, 48, frames=3)
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.PixelData = encapsulate([fragment, junk, junk])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "multi.dcm", enforce_file_format=True)
    rg = open_radiograph(tmp_path / "multi.dcm")
    assert rg.pixels.shape == (32, 48) and np.array_equal(rg.pixels, first)

    native = _dicom(16, 16, frames=40)
    stack = np.stack([np.full((16, 16), k, np.uint16) for k in range(40)])
    native.PixelData = stack.tobytes()
    native.save_as(tmp_path / "native.dcm", enforce_file_format=True)
    assert np.array_equal(open_radiograph(tmp_path / "native.dcm").pixels, stack[0])


def test_pixel_limit_is_checked_before_decoding(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    big = tmp_path / "bomb.png"
    Image.new("1", (9000, 8000)).save(big)  # a few kB on disk, 72 MP decoded
    assert big.stat().st_size < 100_000
    with pytest.raises(RadiographError, match=r"9000x8000 pixels \(72 MP\), above the limit of 64 MP"):
        open_radiograph(big)
    header_only = _dicom(60000, 60000)
    header_only.PixelData = b"\0\0" * 16  # claims 3.6 GP
    header_only.save_as(tmp_path / "huge.dcm", enforce_file_format=True)
    with pytest.raises(RadiographError, match="above the limit"):
        open_radiograph(tmp_path / "huge.dcm")

    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((50, 40), np.uint8)).save(small)
    monkeypatch.setenv("LESION_STUDIO_MAX_PIXELS", "1000")
    with pytest.raises(RadiographError, match="LESION_STUDIO_MAX_PIXELS"):
        open_radiograph(small)
    monkeypatch.setenv("LESION_STUDIO_MAX_PIXELS", "2000")
    assert open_radiograph(small).shape == (50, 40)


def test_image_above_pillows_limit_is_a_clear_error(tmp_path: Path, demo_project, capsys,  # noqa: ANN001
                                                    monkeypatch) -> None:  # noqa: ANN001
    """Above twice Pillow's limit, Image.open raised DecompressionBombError: translate exited 70."""
    import lesion_studio.synthesis.translator as translator_module
    from lesion_studio.cli.main import main
    from tests.stub_models import StubTranslator

    huge = tmp_path / "huge.png"
    Image.new("1", (20000, 20000)).save(huge)
    with pytest.raises(RadiographError, match="limit"):
        open_radiograph(huge)
    with pytest.raises(RadiographError, match="missing.png"):
        read_size(tmp_path / "missing.png")
    monkeypatch.setattr(translator_module, "open_translator", lambda *a, **k: StubTranslator())
    code = main(["translate", str(demo_project.folder), "--model", "x", "--image", str(huge),
                 "--box", "0,0,10,10", "--out", str(tmp_path / "o.png")])
    err = capsys.readouterr().err
    assert code == 2 and "huge.png" in err and "limit" in err and "Traceback" not in err
