"""Wrap the desktop bundle (dist/lesion-studio, from `make bundle`) in a Debian package.

    python packaging/build_deb.py [--bundle dist/lesion-studio] [--out dist]

Layout: the bundle in /opt/lesion-studio, /usr/bin/lesion-studio a link to it, the desktop entry,
AppStream metainfo, the DICOM MIME type (application/dicom, *.dcm) and the icon as SVG plus PNGs
at the standard hicolor sizes (rendered here from the SVG with Qt). Desktop, MIME and icon caches
are refreshed by dpkg's triggers (desktop-file-utils, shared-mime-info, hicolor-icon-theme), so
the package needs no maintainer scripts. Prints the .deb's path.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINUX = ROOT / "packaging" / "linux"
APP_ID = "org.lesionstudio.LesionStudio"
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
# Libraries the bundled Qt (xcb platform plugin) and onnxruntime load from the system.
DEPENDS = ("libc6 (>= 2.31), libstdc++6, libgl1, libegl1, libfontconfig1, libfreetype6, libglib2.0-0, "
           "libdbus-1-3, libxkbcommon0, libxkbcommon-x11-0, libx11-xcb1, libxcb-cursor0, libxcb-icccm4, "
           "libxcb-image0, libxcb-keysyms1, libxcb-randr0, libxcb-render-util0, libxcb-shape0, "
           "libxcb-xinerama0, libxcb-xkb1")


def version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def render_icons(svg: Path, dest_root: Path) -> list[Path]:
    """PNG icons at the standard sizes, drawn from the SVG with Qt (no display needed)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not a valid SVG")
    written = []
    for size in ICON_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        out = dest_root / f"{size}x{size}" / "apps" / "lesion-studio.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(out)):
            raise SystemExit(f"could not write {out}")
        written.append(out)
    return written


def installed_size_kb(tree: Path) -> int:
    return sum(p.stat().st_size for p in tree.rglob("*") if p.is_file() and not p.is_symlink()) // 1024


def build(bundle: Path, out_dir: Path) -> Path:
    if not (bundle / "lesion-studio").is_file():
        raise SystemExit(f"{bundle} holds no lesion-studio bundle; run `make bundle` first.")
    ver = version()
    with tempfile.TemporaryDirectory(prefix="lesion-studio-deb-") as tmp:
        tree = Path(tmp) / f"lesion-studio_{ver}_amd64"
        shutil.copytree(bundle, tree / "opt" / "lesion-studio", symlinks=True)
        (tree / "usr" / "bin").mkdir(parents=True)
        (tree / "usr" / "bin" / "lesion-studio").symlink_to("/opt/lesion-studio/lesion-studio")
        share = tree / "usr" / "share"
        for src, dest in ((LINUX / f"{APP_ID}.desktop", share / "applications" / f"{APP_ID}.desktop"),
                          (LINUX / f"{APP_ID}.metainfo.xml", share / "metainfo" / f"{APP_ID}.metainfo.xml"),
                          (LINUX / "lesion-studio-mime.xml", share / "mime" / "packages" / "lesion-studio.xml")):
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
        svg = ROOT / "lesion_studio" / "resources" / "icons" / "lesion-studio.svg"
        icons = share / "icons" / "hicolor"
        (icons / "scalable" / "apps").mkdir(parents=True)
        shutil.copy2(svg, icons / "scalable" / "apps" / "lesion-studio.svg")
        render_icons(svg, icons)
        debian = tree / "DEBIAN"
        debian.mkdir()
        (debian / "control").write_text(
            f"Package: lesion-studio\nVersion: {ver}\nSection: science\nPriority: optional\n"
            f"Architecture: amd64\nInstalled-Size: {installed_size_kb(tree)}\n"
            f"Depends: {DEPENDS}\n"
            "Maintainer: Lesion Studio developers <dev@lesionstudio.org>\n"
            "Homepage: https://lesionstudio.org/\n"
            "Description: bone-lesion annotation and lesion synthesis for radiographs (reading build)\n"
            " View and annotate DICOM, PNG and JPEG radiographs, preview synthetic lesions and\n"
            " synthesize them in batches with ONNX models. CPU only; no training (install the\n"
            " Python package with the train extra for that).\n")
        for p in tree.rglob("*"):  # dpkg wants sane permissions whatever the umask was
            if not p.is_symlink():
                p.chmod(0o755 if p.is_dir() or os.access(p, os.X_OK) else 0o644)
        out_dir.mkdir(parents=True, exist_ok=True)
        deb = out_dir / f"lesion-studio_{ver}_amd64.deb"
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "-z6", "--build", str(tree), str(deb)],
                       check=True, stdout=subprocess.DEVNULL)
    return deb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=ROOT / "dist" / "lesion-studio")
    ap.add_argument("--out", type=Path, default=ROOT / "dist")
    args = ap.parse_args(argv)
    print(build(args.bundle, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
