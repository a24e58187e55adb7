"""Every NEMA WG-04 sample decodes, and its pixels match the study's lossless reference.

Tolerances, per kind of file (against RG3_UNC for RG3 and the lossless RG2_J2KR for RG2):

- lossless (RLE, JPEG lossless, JPEG-LS lossless, JPEG 2000 lossless): identical pixels;
- JPEG-LS near-lossless: no pixel off by more than the NEAR value its scan header declares;
- lossy (JPEG 2000 irreversible, JPEG 12-bit DCT): PSNR >= 40 dB over the stored range, and no
  pixel off by a quarter of the range or more (a value wrapped round BitsStored is off by the
  whole range, so this catches masking instead of clipping).

RG1 (the chest) has only a lossy file here, so it is checked for size and stored range.
"""

from __future__ import annotations

import functools
import io
import math
from pathlib import Path

import numpy as np
import pytest

from lesion_studio.io import open_radiograph
from lesion_studio.io.jpeg_lossy import NotRepairable, repair_sequential_scan
from lesion_studio.io.radiograph import Radiograph

pytestmark = pytest.mark.shared_data

FILES = {
    "RG3_UNC": ("RG3_UNC", "lossless"), "RG3_RLE": ("RG3_UNC", "lossless"), "RG3_JPLL": ("RG3_UNC", "lossless"),
    "RG3_J2KR": ("RG3_UNC", "lossless"), "RG3_JLSL": ("RG3_UNC", "lossless"), "RG3_JLSN": ("RG3_UNC", "near"),
    "RG3_J2KI": ("RG3_UNC", "lossy"), "RG3_JPLY": ("RG3_UNC", "lossy"),
    "RG2_J2KR": ("RG2_J2KR", "lossless"), "RG2_JPLL": ("RG2_J2KR", "lossless"), "RG2_JLSN": ("RG2_J2KR", "near"),
    "RG2_J2KI": ("RG2_J2KR", "lossy"), "RG2_JPLY": ("RG2_J2KR", "lossy"),
    "RG1_J2KI": (None, "lossy"),
}


@functools.cache
def _reference(path: Path) -> Radiograph:
    return open_radiograph(path)


def _first_frame(path: Path) -> bytes:
    import pydicom
    from pydicom.encaps import generate_frames

    ds = pydicom.dcmread(path)
    return next(generate_frames(ds.PixelData, number_of_frames=1))


def _jpeg_ls_near(path: Path) -> int:
    """The NEAR parameter of a JPEG-LS stream's first scan (T.87: Ns, Ns x (Ci, Tmi), NEAR, ILV, Al/Ah)."""
    stream = _first_frame(path)
    sos = stream.index(b"\xff\xda")
    components = stream[sos + 4]
    return stream[sos + 5 + 2 * components]


def test_the_directory_holds_the_14_files(dicom_dir: Path) -> None:
    assert sorted(p.stem for p in dicom_dir.glob("*.dcm")) == sorted(FILES)


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_wg04_file_decodes_to_its_reference(dicom_dir: Path, name: str) -> None:
    reference, kind = FILES[name]
    rg = open_radiograph(dicom_dir / f"{name}.dcm")
    bits = rg.bits_stored
    top = 2**bits - 1
    assert rg.pixels.ndim == 2 and rg.pixels.min() >= 0 and rg.pixels.max() <= top
    if reference is None:  # RG1: 1955 x 1841, 15 bits stored, a real image (not flat)
        assert (rg.width, rg.height, bits) == (1841, 1955, 15) and rg.pixels.std() > 100
        return
    ref = _reference(dicom_dir / f"{reference}.dcm")
    assert ref.pixels.shape == rg.pixels.shape and ref.bits_stored == bits and ref.inverted == rg.inverted
    diff = rg.pixels.astype(np.int64) - ref.pixels.astype(np.int64)
    if kind == "lossless":
        assert not diff.any()
    elif kind == "near":
        near = _jpeg_ls_near(dicom_dir / f"{name}.dcm")
        assert 0 < near <= 10 and np.abs(diff).max() <= near
    else:
        rmse = math.sqrt(float((diff.astype(np.float64) ** 2).mean()))
        psnr = 20 * math.log10(top / rmse)
        assert psnr >= 40.0, f"{name}: PSNR {psnr:.1f} dB"
        assert np.abs(diff).max() < 2 ** (bits - 2), f"{name}: a pixel is off by {np.abs(diff).max()}"


def test_the_jply_scan_header_is_the_only_thing_repaired(dicom_dir: Path) -> None:
    """The stock decoders refuse the file (so the repair is needed), the repair changes exactly the
    three scan-header bytes, and a second repair changes nothing."""
    from libjpeg import decode

    stream = _first_frame(dicom_dir / "RG3_JPLY.dcm")
    with pytest.raises(RuntimeError, match="scan start must be zero"):
        decode(stream)
    fixed, changed = repair_sequential_scan(stream)
    assert changed == 1 and len(fixed) == len(stream)
    differing = [i for i, (a, b) in enumerate(zip(stream, fixed, strict=True)) if a != b]
    # FF DA, length (2), Ns, Cs1, Td/Ta, Ss, Se: only Se (0 -> 63) was wrong; Ss and Ah/Al were 0
    assert differing == [stream.index(b"\xff\xda") + 8] and fixed[differing[0]] == 63
    assert repair_sequential_scan(fixed) == (fixed, 0)


def test_the_lossy_overshoot_is_clipped_not_wrapped(dicom_dir: Path) -> None:
    """RG3_JPLY's DCT output reaches 1024, one above the 10-bit range: those pixels must stay at
    the top of the stored range (1023, the darkest in MONOCHROME1; 0 after the app's bone-bright
    inversion), never wrap to 0 (which the inversion would turn into the brightest value)."""
    from libjpeg import decode

    fixed, _ = repair_sequential_scan(_first_frame(dicom_dir / "RG3_JPLY.dcm"))
    raw = decode(fixed)
    over = raw > 1023
    assert over.sum() == 8
    rg = open_radiograph(dicom_dir / "RG3_JPLY.dcm")
    assert rg.inverted and (rg.pixels[over] == 0).all()  # 1023 inverted across 0..1023


def test_other_streams_are_not_repaired() -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)).save(buf, "JPEG", quality=90)
    good = buf.getvalue()
    assert repair_sequential_scan(good) == (good, 0)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(buf, "JPEG", progressive=True)
    with pytest.raises(NotRepairable, match="not a sequential"):
        repair_sequential_scan(buf.getvalue())
    with pytest.raises(NotRepairable):
        repair_sequential_scan(good[:200])
    with pytest.raises(NotRepairable, match="start-of-image"):
        repair_sequential_scan(b"not a jpeg")
