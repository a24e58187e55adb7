"""Foundation benchmark: DICOM open against bare pydicom, FracAtlas import, project open.

Targets (issue 2): open_radiograph ≤ 1.3× bare ``pydicom.dcmread(...).pixel_array``; a 2,000-image
project opens in ≤ 1 s. Prints JSON.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import emit, shared_or_skip, timed

IMPORT_SCRIPT = r"""
import json, resource, sys, time
from lesion_studio.store import Project
from lesion_studio.dataset.importer import import_source
src, dest = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
project = Project.create(dest)
report = import_source(project, src + "/images", labels_csv=src + "/labels.csv", boxes_csv=src + "/boxes.csv")
elapsed = time.perf_counter() - t0
project.close()
print(json.dumps({"seconds": elapsed, "images": report.added, "boxes": report.boxes,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

OPEN_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from lesion_studio.store import Project
project = Project.open(sys.argv[1])
images = project.images()
boxes = project.boxes()
summary = project.summary()
print(json.dumps({"seconds": time.perf_counter() - t0, "images": len(images)}))
"""


def dicom_open() -> dict:
    import pydicom

    from lesion_studio.io import open_radiograph

    folder = shared_or_skip("dicom")
    if folder is None:
        return {"skipped": "../shared/data/dicom is absent"}
    out = {}
    for name in ("RG3_UNC", "RG3_J2KR"):
        path = folder / f"{name}.dcm"
        # Interleaved, so a busy machine slows both sides alike.
        bare_t, ours_t = [], []
        open_radiograph(path)
        for _ in range(9):
            bare_t.append(timed(lambda p=path: pydicom.dcmread(p).pixel_array, repeat=1, warmup=0)["median_s"])
            ours_t.append(timed(lambda p=path: open_radiograph(p), repeat=1, warmup=0)["median_s"])
        bare, ours = statistics.median(bare_t), statistics.median(ours_t)
        out[name] = {
            "bare_pydicom_s": round(bare, 4),
            "open_radiograph_s": round(ours, 4),
            "ratio": round(ours / bare, 3),
            "target_ratio": 1.3,
        }
    return out


def fracatlas_import_and_open() -> dict:
    src = shared_or_skip("xray")
    if src is None:
        return {"skipped": "../shared/data/xray is absent"}
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "fracatlas"
        proc = subprocess.run([sys.executable, "-c", IMPORT_SCRIPT, str(src), str(dest)],
                              capture_output=True, text=True, check=True)
        import json

        imported = json.loads(proc.stdout.strip().splitlines()[-1])
        opens = []
        for _ in range(3):
            proc = subprocess.run([sys.executable, "-c", OPEN_SCRIPT, str(dest)], capture_output=True, text=True,
                                  check=True)
            opens.append(json.loads(proc.stdout)["seconds"])
        return {
            "import": {k: round(v, 3) if isinstance(v, float) else v for k, v in imported.items()},
            "open_project_s": round(min(opens), 4),
            "open_project_target_s": 1.0,
        }


def main() -> None:
    emit({"benchmark": "io", "dicom_open": dicom_open(), "fracatlas": fracatlas_import_and_open()})


if __name__ == "__main__":
    main()
