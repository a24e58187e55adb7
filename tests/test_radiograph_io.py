"""Radiograph I/O on real WG-04 DICOMs and on generated rasters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lesion_studio.errors import RadiographError
from lesion_studio.io import open_radiograph

DECODABLE = ["RG1_J2KI", "RG2_J2KI", "RG2_J2KR", "RG2_JLSN", "RG2_JPLL", "RG3_J2KI", "RG3_J2KR",
             "RG3_JLSL", "RG3_JLSN", "RG3_JPLL", "RG3_RLE", "RG3_UNC"]
RG3_LOSSLESS = ["RG3_UNC", "RG3_RLE", "RG3_JPLL", "RG3_J2KR", "RG3_JLSL"]


@pytest.mark.parametrize("name", DECODABLE)
def test_every_decodable_wg04_file_opens(dicom_dir: Path, name: str) -> None:
    rg = open_radiograph(dicom_dir / f"{name}.dcm")
    assert rg.pixels.ndim == 2 and rg.pixels.dtype.kind in "iu"
    assert rg.modality == "CR"
    lo, hi = rg.value_range
    assert lo <= rg.pixels.min() and rg.pixels.max() <= hi
    assert rg.window[1] > 0
    assert rg.tags["Photometric"] in ("MONOCHROME1", "MONOCHROME2")


def test_lossless_variants_decode_to_identical_pixels(dicom_dir: Path) -> None:
    arrays = [open_radiograph(dicom_dir / f"{n}.dcm").pixels for n in RG3_LOSSLESS]
    assert arrays[0].shape == (1760, 1760) and arrays[0].dtype == np.uint16
    for other in arrays[1:]:
        np.testing.assert_array_equal(arrays[0], other)


def test_rg3_keeps_native_10_bit_depth_and_tags(dicom_dir: Path) -> None:
    rg = open_radiograph(dicom_dir / "RG3_UNC.dcm")
    assert rg.bits_stored == 10
    assert rg.value_range == (0.0, 1023.0)
    assert rg.pixels.max() <= 1023
    assert rg.tags["Body part"] == "EXTREMITY"
    assert "fibroma" in rg.tags["Study"].lower()
    assert rg.pixel_spacing_mm is None  # RG3 carries no spacing tag


def test_pixel_spacing_is_read_and_zero_spacing_ignored(dicom_dir: Path) -> None:
    assert open_radiograph(dicom_dir / "RG2_JPLL.dcm").pixel_spacing_mm == (0.2, 0.2)
    assert open_radiograph(dicom_dir / "RG1_J2KI.dcm").pixel_spacing_mm is None  # stored as 0.000


#: (bone, less dense) regions as fractions (row, col) of the image, read off the images by eye:
#: RG3 tibial shaft vs the air beside the leg; RG1 thoracic spine vs the lung field.
DENSE_VS_LUCENT = {
    "RG3": ((0.25, 0.49), (0.25, 0.30)),
    "RG1": ((0.70, 0.50), (0.40, 0.25)),
}


def _roi_mean(pixels: np.ndarray, where: tuple[float, float], half: int = 30) -> float:
    r, c = int(where[0] * pixels.shape[0]), int(where[1] * pixels.shape[1])
    return float(pixels[r - half : r + half, c - half : c + half].mean())


@pytest.mark.parametrize("name", ["RG3_UNC", "RG3_J2KR", "RG1_J2KI"])
def test_monochrome1_is_inverted_so_bone_is_bright(dicom_dir: Path, name: str) -> None:
    import pydicom

    raw = pydicom.dcmread(dicom_dir / f"{name}.dcm").pixel_array
    rg = open_radiograph(dicom_dir / f"{name}.dcm")
    assert rg.photometric == "MONOCHROME1" and rg.inverted
    lo, hi = rg.value_range
    np.testing.assert_array_equal(rg.pixels.astype(np.int64), int(lo + hi) - raw.astype(np.int64))
    dense, lucent = DENSE_VS_LUCENT[name[:3]]
    assert _roi_mean(rg.pixels, dense) > _roi_mean(rg.pixels, lucent) + 0.1 * (hi - lo)
    # The window is mapped too: the same tissue sits at the same place in the displayed ramp.
    assert rg.window[0] == pytest.approx(lo + hi - float(pydicom.dcmread(dicom_dir / f"{name}.dcm").WindowCenter))


def test_monochrome2_is_not_inverted(dicom_dir: Path) -> None:
    rg = open_radiograph(dicom_dir / "RG2_JPLL.dcm")
    assert not rg.inverted and rg.window == (511.0, 1024.0)


@pytest.mark.parametrize("name", ["RG2_JPLY", "RG3_JPLY"])
def test_malformed_jply_files_raise_the_project_error(damaged_dicom_dir: Path, name: str) -> None:
    with pytest.raises(RadiographError) as info:
        open_radiograph(damaged_dicom_dir / f"{name}.dcm")
    message = str(info.value)
    assert f"{name}.dcm" in message and "could not be decoded" in message
    assert "1.2.840.10008.1.2.4.51" in message


def test_non_image_file_raises_project_error(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not an x-ray")
    with pytest.raises(RadiographError, match="notes.txt"):
        open_radiograph(bogus)


def test_truncated_dicom_raises_project_error(tmp_path: Path) -> None:
    from lesion_studio.demo import generate_phantom
    from lesion_studio.demo.project import write_demo_dicom

    good = tmp_path / "good.dcm"
    write_demo_dicom(generate_phantom(1), good, 1, monochrome1=False)
    data = good.read_bytes()
    for cut in (200, 600, len(data) // 2):
        broken = tmp_path / f"cut{cut}.dcm"
        broken.write_bytes(data[:cut])
        with pytest.raises(RadiographError, match=broken.name):
            open_radiograph(broken)


def test_dicom_without_pixel_data_raises_project_error(tmp_path: Path) -> None:
    import pydicom

    from lesion_studio.demo import generate_phantom
    from lesion_studio.demo.project import write_demo_dicom

    path = tmp_path / "report.dcm"
    write_demo_dicom(generate_phantom(2), path, 2, monochrome1=False)
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(RadiographError, match="no pixel data"):
        open_radiograph(path)


def test_garbage_with_dicom_suffix_raises_project_error(tmp_path: Path) -> None:
    path = tmp_path / "random.dcm"
    path.write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(RadiographError, match="random.dcm"):
        open_radiograph(path)


def test_rasters_8_and_16_bit_and_rgb(tmp_path: Path) -> None:
    ramp16 = (np.arange(64 * 32, dtype=np.uint16).reshape(64, 32) * 16).astype(np.uint16)
    Image.fromarray(ramp16).save(tmp_path / "r16.png")
    rg = open_radiograph(tmp_path / "r16.png")
    assert rg.pixels.dtype == np.uint16 and rg.bits_stored == 16
    np.testing.assert_array_equal(rg.pixels, ramp16)

    gray8 = np.tile(np.arange(256, dtype=np.uint8), (10, 1))
    Image.fromarray(gray8).save(tmp_path / "g8.png")
    rg = open_radiograph(tmp_path / "g8.png")
    assert rg.pixels.dtype == np.uint8 and rg.bits_stored == 8 and rg.value_range == (0.0, 255.0)

    rgb = np.stack([gray8] * 3, axis=-1)
    Image.fromarray(rgb).save(tmp_path / "rgb.jpg", quality=100)
    rg = open_radiograph(tmp_path / "rgb.jpg")
    assert rg.pixels.ndim == 2 and np.abs(rg.pixels.astype(int) - gray8).max() <= 2

    Image.fromarray(ramp16).save(tmp_path / "r16.tif")
    np.testing.assert_array_equal(open_radiograph(tmp_path / "r16.tif").pixels, ramp16)


def test_exif_orientation_is_not_applied(tmp_path: Path) -> None:
    arr = np.zeros((20, 40), dtype=np.uint8)
    arr[:, :5] = 255
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW" - must be ignored
    im.save(tmp_path / "rot.jpg", exif=exif, quality=100)
    rg = open_radiograph(tmp_path / "rot.jpg")
    assert rg.shape == (20, 40)
    assert rg.pixels[:, :3].mean() > 200


def test_truncated_jpeg_raises_project_error(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(RadiographError, match="trunc.jpg"):
        open_radiograph(tmp_path / "trunc.jpg")


def _derived(dicom_dir: Path, name: str, out: Path, **tags: object) -> np.ndarray:
    """A WG-04 image cut to 256 × 192, saved uncompressed with ``tags`` set; returns its stored values."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(dicom_dir / f"{name}.dcm")
    raw = ds.pixel_array[800:1056, 700:892].copy()
    ds.Rows, ds.Columns = raw.shape
    ds.PixelData = raw.tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    ds.save_as(out, enforce_file_format=True)
    return raw.astype(np.int64)


def test_modality_lut_rescale_slope_and_intercept(dicom_dir: Path, tmp_path: Path) -> None:
    """Output values are stored × slope + intercept, the value range and window are in output
    units, integral results keep an integer dtype and fractional ones stay exact floats."""
    raw = _derived(dicom_dir, "RG2_JPLL", tmp_path / "ct-like.dcm", RescaleSlope=2, RescaleIntercept=-1024,
                   WindowCenter=0, WindowWidth=1500)
    rg = open_radiograph(tmp_path / "ct-like.dcm")
    assert rg.pixels.dtype.kind == "i"
    np.testing.assert_array_equal(rg.pixels, raw * 2 - 1024)
    assert rg.value_range == (-1024.0, 1023 * 2 - 1024.0) and rg.window == (0.0, 1500.0)
    assert rg.bits_stored == 10

    raw = _derived(dicom_dir, "RG2_JPLL", tmp_path / "half.dcm", RescaleSlope="0.5", RescaleIntercept="10.25")
    rg = open_radiograph(tmp_path / "half.dcm")
    assert rg.pixels.dtype.kind == "f"
    np.testing.assert_array_equal(rg.pixels, raw * 0.5 + 10.25)
    assert rg.value_range == (10.25, 1023 * 0.5 + 10.25)


def test_monochrome1_with_a_rescale_is_inverted_across_the_output_range(dicom_dir: Path, tmp_path: Path) -> None:
    raw = _derived(dicom_dir, "RG3_UNC", tmp_path / "m1.dcm", RescaleSlope=2, RescaleIntercept=-1000)
    rg = open_radiograph(tmp_path / "m1.dcm")
    lo, hi = -1000.0, 1023 * 2 - 1000.0
    assert rg.inverted and rg.value_range == (lo, hi)
    np.testing.assert_array_equal(rg.pixels, (lo + hi) - (raw * 2 - 1000))


def test_valid_jpeg_baseline_dicom_decodes(dicom_dir: Path, tmp_path: Path) -> None:
    """WG-04's JPEG baseline files are malformed; a valid one (Pillow's codestream, encapsulated
    with pydicom) decodes to the pixels Pillow reads from the same codestream."""
    import io

    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    out = tmp_path / "baseline.dcm"
    raw = _derived(dicom_dir, "RG2_JPLL", out)
    eight = (raw >> 2).astype(np.uint8)  # 10 → 8 bits: baseline JPEG holds 8-bit samples
    buffer = io.BytesIO()
    Image.fromarray(eight).save(buffer, format="JPEG", quality=92)
    ds = pydicom.dcmread(out)
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.WindowCenter, ds.WindowWidth = 128, 256
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.save_as(out, enforce_file_format=True)

    rg = open_radiograph(out)
    assert rg.tags["Transfer syntax"] == JPEGBaseline8Bit
    assert rg.pixels.dtype == np.uint8 and rg.pixels.shape == eight.shape and rg.bits_stored == 8
    reference = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.int16)
    assert np.abs(rg.pixels.astype(np.int16) - reference).max() <= 1  # two decoders, one codestream
    assert np.abs(rg.pixels.astype(np.int16) - eight.astype(np.int16)).mean() < 2.0  # and it is the image
