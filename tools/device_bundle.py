"""Pack a project's images of some body parts, with their labels, splits and boxes, into a folder
that travels to the lent GPU machine (``benchmarks/gpu_detector.py`` reads it there).

Why: the GPU machine sees only this repository's working tree (64 MiB at most) and nothing else:
not ``../shared``, not ``results/``, and no package index. The FracAtlas hand images are 16 MB,
so they travel; the splits must be the project's own (the CPU numbers in docs/experiments.md were
measured on them), so they travel as the ``split`` column of the product's own CSV export rather
than being drawn again on a project that holds one body part.

    python tools/device_bundle.py results/fracatlas-project .device/hand --body-parts hand

The output folder holds ``images/`` (copies, their names relative as the export wrote them),
``labels.csv``, ``boxes.csv`` and ``bundle.json`` (counts per split and label, the source). Keep it
out of git: ``.device/`` is in .gitignore, and the device tool's ``carry`` takes ignored paths.

No wheels need to travel: the GPU machine's Python has numpy, Pillow, PyYAML, safetensors, onnx,
onnxruntime, scikit-learn and torch, and the import, training and evaluation of JPEG images touch
nothing else (checked here with PySide6, pyqtgraph, pydicom, highdicom and pylibjpeg made
unimportable).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

log = logging.getLogger("device_bundle")


def bundle(project_path: Path, out: Path, body_parts: list[str]) -> dict:
    """Write ``out`` (which must not exist yet) and return its summary (also ``out/bundle.json``)."""
    from lesion_studio.dataset.exporter import export_project
    from lesion_studio.errors import LesionStudioError
    from lesion_studio.store.project import Project

    if out.exists():
        raise LesionStudioError(f"{out} already exists; choose a new folder.")
    with tempfile.TemporaryDirectory() as tmp, Project.open(project_path) as project:
        result = export_project(project, tmp, "csv")
        root = Path(result["image_root"])
        labels = _read(Path(tmp) / "labels.csv")
        boxes = _read(Path(tmp) / "boxes.csv")
    kept = [row for row in labels[1] if row["body_part"] in body_parts]
    if not kept:
        raise LesionStudioError(f"The project has no image of {', '.join(body_parts)}.")
    names = {row["image"] for row in kept}
    stage = out.with_name(out.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "images").mkdir(parents=True)
    for name in sorted(names):
        target = stage / "images" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    _write(stage / "labels.csv", labels[0], kept)
    kept_boxes = [row for row in boxes[1] if row["image"] in names]
    _write(stage / "boxes.csv", boxes[0], kept_boxes)
    summary = {
        "source_project": str(Path(project_path).resolve()),
        "body_parts": body_parts,
        "images": len(kept),
        "boxes": len(kept_boxes),
        "by_split_and_label": {f"{s}/{lab}": n for (s, lab), n in
                               sorted(Counter((r["split"], r["label"]) for r in kept).items())},
        "excluded": sum(1 for r in kept if r["exclusions"]),
        "bytes": sum(p.stat().st_size for p in (stage / "images").rglob("*") if p.is_file()),
    }
    (stage / "bundle.json").write_text(json.dumps(summary, indent=1) + "\n")
    stage.rename(out)  # a half-written bundle never carries the final name
    return summary


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("project", type=Path)
    p.add_argument("out", type=Path, help="a new folder (for the device tool: under .device/)")
    p.add_argument("--body-parts", default="hand", help="comma-separated (default: hand)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from lesion_studio.errors import LesionStudioError

    try:
        summary = bundle(args.project, args.out, [x.strip() for x in args.body_parts.split(",") if x.strip()])
    except LesionStudioError as exc:
        log.error("%s", exc)
        return 2
    log.info("%s", json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
