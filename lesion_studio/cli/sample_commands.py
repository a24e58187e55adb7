"""Sample commands: export-samples (kept/accepted synthetic samples as PNG or DICOM + sidecars).

The same job as the GUI's Tools → Export kept synthetic samples… (``samples.folder_export``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lesion_studio.store.project import Project


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-samples", help="export synthetic samples as PNG or DICOM with provenance sidecars")
    p.add_argument("project", type=Path)
    p.add_argument("out", type=Path, help="output folder (created if needed)")
    p.add_argument("--format", dest="fmt", choices=("png", "dicom"), default="png",
                   help="png: lossless at the source's bit depth; dicom: DERIVED, new UIDs, de-identified")
    p.add_argument("--status", choices=("accepted", "candidate", "rejected", "all"), default="accepted",
                   help="which samples (default: accepted, i.e. kept in the preview or accepted in the gallery)")
    p.add_argument("--batch", help="only this batch (e.g. kept)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_export_samples)


def cmd_export_samples(args: argparse.Namespace) -> int:
    from lesion_studio.cli.progress import TerminalProgress
    from lesion_studio.samples.folder_export import export_samples

    project = Project.open(args.project)
    bar = TerminalProgress()
    try:
        report = export_samples(project, args.out, args.fmt, status=args.status, batch=args.batch, progress=bar)
    finally:
        bar.close()
        project.close()
    if args.json:
        print(json.dumps({"out": str(report.out_dir), "format": report.fmt, "count": report.count,
                          "files": [str(p) for p in report.files],
                          "failed": [{"sample_id": i, "error": e} for i, e in report.failed]}, indent=2))
    else:
        print(f"Exported {report.count} sample(s) as {args.fmt} with JSON sidecars to {report.out_dir}.")
        for sample_id, error in report.failed:
            print(f"  sample {sample_id} skipped: {error}")
    return 1 if report.failed and not report.files else 0
