"""Write the two tiny compressed DICOMs that `lesion-studio --selftest` decodes.

    pip install pyjpegls            # JPEG-LS encoder (pydicom's); JPEG 2000 uses pylibjpeg-openjpeg
    python tools/make_selftest_dicoms.py

Both hold the same 96 × 80 12-bit phantom, losslessly compressed (JPEG 2000 lossless and JPEG-LS
lossless), so the self-test checks the decoded pixels against the SHA-256 of the original array
(``lesion_studio/resources/selftest/expected.json``). The files are generated here, never copied from
elsewhere; they are a few kilobytes each.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    import numpy as np
    from pydicom.uid import JPEG2000Lossless, JPEGLSLossless

    from lesion_studio.demo.phantom import generate_phantom
    from lesion_studio.demo.project import write_demo_dicom
    from lesion_studio.io import open_radiograph

    out = ROOT / "lesion_studio" / "resources" / "selftest"
    out.mkdir(parents=True, exist_ok=True)
    case = generate_phantom(7, body_part="femur", lesion=True, size=(96, 80))
    pixels = np.ascontiguousarray(case.pixels.astype(np.uint16))
    tmp = out / "plain.dcm"
    write_demo_dicom(case, tmp, 0, monochrome1=False)
    import pydicom

    for name, syntax, plugin in (("jpeg2000.dcm", JPEG2000Lossless, "pylibjpeg"),
                                 ("jpegls.dcm", JPEGLSLossless, "pyjpegls")):
        ds = pydicom.dcmread(tmp)
        ds.compress(syntax, encoding_plugin=plugin)
        ds.save_as(out / name, enforce_file_format=True)
        decoded = open_radiograph(out / name).pixels
        assert np.array_equal(decoded, pixels), name
    tmp.unlink()
    expected = {"shape": list(pixels.shape), "sha256": hashlib.sha256(pixels.tobytes()).hexdigest()}
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {out}: {expected}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
