"""Lossy JPEG (baseline 8-bit and extended 12-bit DCT) whose scan header is malformed.

The NEMA WG-04 lossy 12-bit samples (``RG2_JPLY``, ``RG3_JPLY``) and files written by the same
old encoders declare their one sequential-DCT scan with spectral selection ``Ss=0, Se=0``.
A sequential (non-progressive) scan always covers the whole 8x8 block, ``Ss=0, Se=63, Ah=Al=0``
(ITU-T T.81, B.2.3), and strict decoders (libjpeg, GDCM through pydicom) refuse the stream;
Slicer and OHIF read it because they ignore those fields for sequential frames. We do the same,
openly: the scan header's three bytes are set to the only values a sequential scan can have, and
nothing else in the stream changes. The decoder is pylibjpeg-libjpeg (already a dependency).

Why not GDCM (``python-gdcm``)? Measured on both WG-04 files (docs/gui.md): GDCM reads the
malformed header as it is, but its output is masked to BitsStored, so a lossy overshoot above the
10-bit range wraps round to 0 (8 pixels of RG3_JPLY decode to 1024 and come out 0: the darkest
value of the MONOCHROME1 image turned into the brightest); libjpeg returns the 12-bit samples,
which we clip to the stored range. Both took under 0.1 s per image; GDCM would add a 43 MB
package for a worse result.

Lossy DCT can overshoot the stored range by a few values (RG3_JPLY decodes to 1024 where 10 bits
end at 1023), so samples are clipped to the range BitsStored allows, never masked.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

#: Transfer syntaxes of sequential DCT JPEG (process 1 and processes 2 & 4).
LOSSY_JPEG_SYNTAXES = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"}
_SEQUENTIAL_SOF = {0xC0, 0xC1}  # baseline, extended sequential (Huffman)
_STANDALONE = {0x01, 0xD8, 0xD9, *range(0xD0, 0xD8)}  # TEM, SOI, EOI, RSTn: no length field


class NotRepairable(ValueError):
    """The stream is not a sequential JPEG with only the known scan-header defect."""


def _next_marker(stream: bytes, pos: int) -> int:
    """Position of the next marker at or after ``pos`` (entropy-coded data skipped)."""
    n = len(stream)
    while pos < n - 1:
        if stream[pos] == 0xFF and stream[pos + 1] not in (0x00, 0xFF) and stream[pos + 1] not in range(0xD0, 0xD8):
            return pos
        pos += 1
    return n


def repair_sequential_scan(stream: bytes) -> tuple[bytes, int]:
    """A copy of a sequential JPEG codestream with every scan header's ``Ss, Se, Ah/Al`` set to
    ``0, 63, 0``; returns (stream, number of scans changed). Raises :class:`NotRepairable` for a
    stream that is not sequential DCT JPEG or whose structure is broken elsewhere."""
    data = bytearray(stream)
    if data[:2] != b"\xff\xd8":
        raise NotRepairable("no JPEG start-of-image marker")
    pos, sof, changed = 2, None, 0
    while pos < len(data) - 1:
        if data[pos] != 0xFF:
            raise NotRepairable(f"no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            break
        if marker in _STANDALONE:
            pos += 2
            continue
        if pos + 4 > len(data):
            raise NotRepairable("the stream ends inside a marker segment")
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise NotRepairable(f"marker 0x{marker:02X} claims {length} bytes beyond the stream")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            sof = marker
        if marker == 0xDA:
            if sof not in _SEQUENTIAL_SOF:
                raise NotRepairable("not a sequential DCT JPEG (progressive, lossless or no frame header)")
            components = data[pos + 4]
            at = pos + 5 + 2 * components  # Ss, Se, Ah/Al follow the component selectors
            if at + 3 != end:
                raise NotRepairable("the scan header's length does not match its components")
            if bytes(data[at:at + 3]) != b"\x00\x3f\x00":
                data[at:at + 3] = b"\x00\x3f\x00"
                changed += 1
            pos = _next_marker(data, end)
            continue
        pos = end
    if sof is None:
        raise NotRepairable("no frame header")
    return bytes(data), changed


def decode_repaired(ds) -> np.ndarray:  # noqa: ANN001 - pydicom Dataset
    """The first frame of a sequential-JPEG DICOM whose scan header needs the repair above,
    clipped to the stored range. Raises :class:`NotRepairable` when the repair does not apply."""
    from pydicom.encaps import generate_frames

    tsuid = str(ds.file_meta.TransferSyntaxUID)
    if tsuid not in LOSSY_JPEG_SYNTAXES:
        raise NotRepairable(f"transfer syntax {tsuid} is not sequential DCT JPEG")
    if int(getattr(ds, "SamplesPerPixel", 1)) != 1:
        raise NotRepairable("only greyscale images are repaired")
    if int(getattr(ds, "PixelRepresentation", 0)) != 0:
        raise NotRepairable("signed lossy JPEG is not supported")
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    stream = next(generate_frames(ds.PixelData, number_of_frames=frames))
    fixed, changed = repair_sequential_scan(stream)
    if not changed:
        raise NotRepairable("the scan header is already valid")
    from libjpeg import decode

    pixels = decode(fixed)
    rows, columns = int(ds.Rows), int(ds.Columns)
    if pixels.shape[:2] != (rows, columns) or pixels.ndim != 2:
        raise NotRepairable(f"the codestream holds a {pixels.shape} image, the header says {rows}x{columns}")
    bits = int(getattr(ds, "BitsStored", 8 * pixels.dtype.itemsize))
    top = (1 << bits) - 1
    over = int(np.count_nonzero(pixels > top))
    if over:
        log.info("%d lossy JPEG sample(s) above the %d-bit range clipped to %d", over, bits, top)
    dtype = np.uint8 if int(getattr(ds, "BitsAllocated", 16)) <= 8 else np.uint16
    return np.minimum(pixels, top).astype(dtype, copy=False)
