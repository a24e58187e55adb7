"""Reader commands: agreement (κ, box F1, mean IoU per reader pair) and the project's lesion types."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lesion_studio.store.project import Project


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agreement", help="inter-reader agreement: Cohen's κ on image labels, box F1 at IoU >= 0.5 "
                                         "and mean IoU of matched boxes, per reader pair, with bootstrap CIs")
    p.add_argument("project", type=Path)
    p.add_argument("--readers", help="comma-separated readers (default: every reader of the project)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iou", type=float, default=0.5, help="IoU a box pair needs to match (default 0.5)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_agreement)

    p = sub.add_parser("lesion-types", help="list the project's lesion types, or set them (--set)")
    p.add_argument("project", type=Path)
    p.add_argument("--set", dest="types", help="comma-separated types, in the order keys and YOLO classes use")
    p.set_defaults(func=cmd_lesion_types)


def cmd_agreement(args: argparse.Namespace) -> int:
    from lesion_studio.dataset.agreement import agreement_report
    from lesion_studio.errors import LesionStudioError

    if not 0 < args.iou <= 1:
        raise LesionStudioError(f"--iou must be in (0, 1], not {args.iou}.")
    chosen = [r.strip() for r in args.readers.split(",") if r.strip()] if args.readers else None
    with Project.open(args.project) as project:
        report = agreement_report(project, chosen, resamples=args.resamples, confidence=args.confidence,
                                  seed=args.seed, iou_threshold=args.iou)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    rows = report.rows()
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"{report.confidence:.0%} percentile bootstrap intervals over images ({report.resamples} resamples, "
          f"seed {report.seed}); boxes match at IoU >= {report.iou_threshold:g}.")
    return 0


def cmd_lesion_types(args: argparse.Namespace) -> int:
    from lesion_studio.store.lesion_types import lesion_types, set_lesion_types, types_in_use

    with Project.open(args.project) as project:
        if args.types is not None:
            set_lesion_types(project, args.types.split(","))
        used = types_in_use(project)
        for name in lesion_types(project):
            print(f"{name:<24} {used.get(name, 0):>6} box(es)")
        if used.get(""):
            print(f"{'(no type)':<24} {used['']:>6} box(es)")
    return 0
