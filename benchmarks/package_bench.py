"""Package check and benchmark: the desktop bundle and the .deb. Prints JSON.

    python -m benchmarks.package_bench [--bundle dist/lesion-studio] [--deb dist/lesion-studio_*.deb]

Build them first with `make bundle` and `make deb`; what is missing is reported as skipped.
Exits 1 when the bundle misses a target (``meets_targets`` false), so `make package-check` fails.

* ``bundle_mb``: size of the onedir bundle in MiB (target ≤ 280); ``torch_in_bundle`` must be false
  and ``gpu_provider_libs`` empty (the CPU bundle strips onnxruntime's CUDA/TensorRT providers).
  ``largest_parts`` lists what the size is made of (top-level folders, Qt by sub-folder), so a
  grown bundle says what grew.
* ``start_to_first_window_s``: wall time of ``lesion-studio gui --exit-when-shown`` from the bundle,
  offscreen, best of 5 after one warm-up run (target ≤ 1.2 s). Teardown is included, so this is
  an upper bound on the time to the first window.
* ``selftest``: ``lesion-studio --selftest`` from the bundle (JPEG 2000 + JPEG-LS decode, built-in
  ONNX generator, main window drawn offscreen); passes when it exits 0.
* ``validators``: ``desktop-file-validate`` on the desktop entry and ``appstreamcli validate`` on the
  metainfo, taken from inside the .deb when there is one (else from packaging/linux/), plus the
  icon sizes and the MIME type the .deb installs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP_ID = "org.lesionstudio.LesionStudio"
TARGET_MB = 280.0
TARGET_START_S = 1.2


def tree_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def largest_parts(folder: Path, count: int = 12) -> dict[str, float]:
    """MiB per part of the bundle: each top-level entry of ``_internal`` (PySide6 by sub-folder),
    the loose shared libraries together; the ``count`` largest."""
    inner = folder / "_internal" if (folder / "_internal").is_dir() else folder
    sizes: dict[str, int] = {}
    for p in inner.rglob("*"):
        if not p.is_file() or p.is_symlink():
            continue
        parts = p.relative_to(inner).parts
        key = "/".join(parts[:3]) if parts[0] == "PySide6" and len(parts) > 3 else \
            parts[0] if len(parts) > 1 else "(shared libraries)"
        sizes[key] = sizes.get(key, 0) + p.stat().st_size
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:count]
    return {k: round(v / 2**20, 1) for k, v in top}


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(QT_QPA_PLATFORM="offscreen", LESION_STUDIO_HOME=str(home), XDG_CONFIG_HOME=str(home / "config"))
    return env


def bundle_checks(bundle: Path) -> dict:
    exe = bundle / "lesion-studio"
    if not exe.is_file():
        return {"skipped": f"{bundle} has no bundle; run `make bundle`"}
    names = [p.name for p in bundle.rglob("*")]
    out: dict = {"bundle_mb": round(tree_mb(bundle), 1), "target_mb": TARGET_MB,
                 "torch_in_bundle": any(n in ("torch", "libtorch_cpu.so") for n in names),
                 "gpu_provider_libs": sorted(n for n in names if "providers_cuda" in n or "providers_tensorrt" in n),
                 "largest_parts": largest_parts(bundle)}
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(Path(tmp))
        runs = []
        for i in range(6):
            t0 = time.perf_counter()
            done = subprocess.run([str(exe), "gui", "--exit-when-shown"], env=env, capture_output=True, text=True,
                                  timeout=120)
            wall = time.perf_counter() - t0
            if done.returncode != 0:
                out["start_error"] = done.stderr.strip().splitlines()[-3:]
                break
            if i:  # the first run warms the page cache, as any second launch of the app would
                runs.append(wall)
        if runs:
            out["start_to_first_window_s"] = round(min(runs), 3)
            out["start_to_first_window_median_s"] = round(statistics.median(runs), 3)
            out["target_start_s"] = TARGET_START_S
        t0 = time.perf_counter()
        done = subprocess.run([str(exe), "--selftest"], env=env, capture_output=True, text=True, timeout=300)
        passed = done.returncode == 0 and done.stdout.rstrip().endswith("self-test passed")
        out["selftest"] = {"passed": passed, "seconds": round(time.perf_counter() - t0, 2),
                           "output": done.stdout.strip().splitlines()}
    out["meets_targets"] = bool(out["bundle_mb"] <= TARGET_MB and runs and min(runs) <= TARGET_START_S
                                and out["selftest"]["passed"] and not out["torch_in_bundle"]
                                and not out["gpu_provider_libs"])
    return out


def _validate(cmd: list[str]) -> dict:
    if shutil.which(cmd[0]) is None:
        return {"passed": False, "error": f"{cmd[0]} is not installed (apt-get install desktop-file-utils appstream)"}
    done = subprocess.run(cmd, capture_output=True, text=True)
    return {"passed": done.returncode == 0, "output": (done.stdout + done.stderr).strip().splitlines()}


def deb_checks(deb: Path | None) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        if deb is not None and deb.is_file():
            subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
            share = Path(tmp) / "usr" / "share"
            desktop = share / "applications" / f"{APP_ID}.desktop"
            metainfo = share / "metainfo" / f"{APP_ID}.metainfo.xml"
            icons = share / "icons" / "hicolor"
            out["deb"] = str(deb.relative_to(ROOT) if deb.is_relative_to(ROOT) else deb)
            out["deb_mb"] = round(deb.stat().st_size / 2**20, 1)
            out["icon_sizes"] = sorted(int(p.parent.parent.name.split("x")[0]) for p in icons.glob("*x*/apps/*.png"))
            out["scalable_icon"] = (icons / "scalable" / "apps" / "lesion-studio.svg").is_file()
            mime = share / "mime" / "packages" / "lesion-studio.xml"
            out["mime_dicom"] = mime.is_file() and "application/dicom" in mime.read_text()
            out["binary_link"] = os.readlink(Path(tmp) / "usr" / "bin" / "lesion-studio")
        else:
            out["deb"] = "skipped: no .deb; run `make deb` (validating the source files instead)"
            desktop = ROOT / "packaging" / "linux" / f"{APP_ID}.desktop"
            metainfo = ROOT / "packaging" / "linux" / f"{APP_ID}.metainfo.xml"
        out["desktop_file_validate"] = _validate(["desktop-file-validate", str(desktop)])
        out["appstreamcli_validate"] = _validate(["appstreamcli", "validate", "--no-net", str(metainfo)])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=ROOT / "dist" / "lesion-studio")
    ap.add_argument("--deb", type=Path)
    args = ap.parse_args(argv)
    deb = args.deb or next(iter(sorted((ROOT / "dist").glob("lesion-studio_*.deb"))), None)
    result = {"bundle": bundle_checks(args.bundle), "linux": deb_checks(deb)}
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    bundle = result["bundle"]
    if "skipped" not in bundle and not bundle["meets_targets"]:
        print(f"package check FAILED: {bundle['bundle_mb']} MiB (target ≤ {TARGET_MB:.0f}), first window "
              f"{bundle.get('start_to_first_window_s')} s (target ≤ {TARGET_START_S}), self-test "
              f"{'passed' if bundle['selftest']['passed'] else 'failed'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
