"""Project commands: new, import, info, export, split, demo, gui."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lesion_studio.store import lifecycle
from lesion_studio.store.project import Project
from lesion_studio.store.readers import READER_ENV


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("new", help="create an empty project folder")
    p.add_argument("project", type=Path)
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("import", help="import DICOM/PNG/JPEG images with labels, boxes, COCO, YOLO or SR annotations")
    p.add_argument("project", type=Path)
    p.add_argument("source", type=Path, help="a folder (searched recursively) or one image file")
    p.add_argument("--labels", type=Path, help="CSV: image,label,body_part,view,split,group,exclusions,...")
    p.add_argument("--boxes", type=Path,
                   help="CSV: image,x0,y0,x1,y1[,kind][,lesion_type][,reader][,created_at][,modified_at]")
    p.add_argument("--coco", type=Path, help="COCO detection JSON")
    p.add_argument("--yolo", type=Path, metavar="FOLDER",
                   help="YOLO labels: the folder `export --format yolo` wrote (classes.txt or data.yaml, and "
                        "labels/<image path>.txt with class cx cy w h); boxes and their types only")
    p.add_argument("--reader-labels", type=Path, help="CSV: image,reader,label[,labelled_at] (each reader's labels)")
    p.add_argument("--measurements", type=Path,
                   help="CSV: image,x0,y0,x1,y1[,spacing_row,spacing_col,spacing_source][,reader] (ruler lines)")
    p.add_argument("--sr", type=Path, action="append", default=[],
                   help="a DICOM SR file or a folder of them (TID 1500, e.g. from `export --format sr`); "
                        "boxes match their image by SOP Instance UID (repeatable)")
    p.add_argument("--reader", help="reader of the imported boxes, measurements and labels when the files name "
                                    f"none (default: import; or ${READER_ENV}); the labels file's labels are "
                                    "recorded as this reader's own when given")
    p.add_argument("--strict", action="store_true",
                   help="fail the whole import, writing nothing, if any annotation row cannot be used")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("info", help="counts of images, labels, boxes and patches per body part and split")
    p.add_argument("project", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("export", help="export annotations as COCO JSON, CSV or YOLO txt")
    p.add_argument("project", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--format", choices=("coco", "csv", "yolo", "sr"), required=True,
                   help="sr: one DICOM Comprehensive 3D SR (TID 1500) per DICOM image and reader")
    p.add_argument("--force", action="store_true", help="replace annotation files already in OUT")
    p.add_argument("--deidentify", action="store_true",
                   help="write de-identified copies of the images to OUT/images, named by project id and hash "
                        "(DICOM through the export allow-list), for sharing with another site")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("split", help="assign train/val/test splits (stratified, grouped, seeded)")
    p.add_argument("project", type=Path)
    p.add_argument("--fractions", default="0.7,0.15,0.15", help="train,val,test (default 0.7,0.15,0.15)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-groups", action="store_true", help="ignore group keys (patient/study)")
    p.add_argument("--only-unassigned", action="store_true")
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("demo", help="create (if needed) and open the built-in demo project")
    p.add_argument("project", type=Path, nargs="?", help="folder (default: the per-user demo folder)")
    p.add_argument("--no-gui", action="store_true", help="only build the project")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("gui", help="open the desktop app")
    p.add_argument("project", type=Path, nargs="?")
    p.add_argument("--exit-when-shown", action="store_true",
                   help="quit once the first window is on screen (start-up measurements, smoke tests)")
    p.set_defaults(func=cmd_gui)


def cmd_new(args: argparse.Namespace) -> int:
    project = Project.create(args.project)
    print(f"Created project {project.folder}")
    project.close()
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from lesion_studio.cli.progress import TerminalProgress
    from lesion_studio.dataset.importer import import_source

    folder = args.project.expanduser().resolve()
    new_folder = not folder.exists()
    import os

    from lesion_studio.store.readers import IMPORT_READER, check_reader

    given = args.reader or os.environ.get(READER_ENV) or None
    reader = check_reader(given) if given else IMPORT_READER  # before a project is created
    project = Project.open_or_create(folder, first_import=True)
    bar = TerminalProgress()
    try:
        report = import_source(project, args.source, labels_csv=args.labels, boxes_csv=args.boxes,
                               coco_json=args.coco, progress=bar, strict=args.strict,
                               reader_labels_csv=args.reader_labels, measurements_csv=args.measurements,
                               sr=args.sr, yolo=args.yolo, author=reader, label_reader=given and reader)
    except BaseException:
        bar.close()
        project.close()
        # A failed first import removes the project it made, but only while no one else has it
        # open and nothing was committed to it (store/lifecycle.py): never another import's data.
        if project.created:
            lifecycle.remove_if_abandoned(folder, remove_folder=new_folder)
        raise
    bar.close()
    lifecycle.clear_first_import_marker(folder)  # an import succeeded: the project is a real one
    project.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(report.summary())
    if report.measurements or report.reader_labels:
        print(f"With {report.measurements} measurement(s) and {report.reader_labels} reader label(s).")
    if report.new_lesion_types:
        print(f"New lesion type(s) added to the project: {', '.join(report.new_lesion_types)}")
    if report.skipped:
        print(f"Skipped {len(report.skipped)} file(s) that could not be read:")
        for s in report.skipped:
            print(f"  {s.name}: {s.reason}")
    if report.problems:
        skipped = sum(p["action"] == "skipped" for p in report.problems)
        print(f"{skipped} annotation row(s) skipped, {len(report.problems) - skipped} clipped "
              "(--strict fails the import instead):")
        for p in report.problems:
            print(f"  {p['file']} {p['where']}: {p['reason']} ({p['action']})")
    if report.unmatched_annotations:
        shown = ", ".join(report.unmatched_annotations[:10])
        more = "" if len(report.unmatched_annotations) <= 10 else f" and {len(report.unmatched_annotations) - 10} more"
        print(f"Annotations for {len(report.unmatched_annotations)} image(s) matched no file: {shown}{more}")
    return 0


def _print_counts(title: str, counts: dict) -> None:
    print(f"  {title:<28} {counts['images']:>6} {counts['lesion']:>6} {counts['normal']:>6} "
          f"{counts['unreviewed']:>10} {counts['boxes']:>6} {counts['normal_patches']:>8} {counts['excluded']:>8}")


def cmd_info(args: argparse.Namespace) -> int:
    with Project.open(args.project) as project:
        summary = project.summary()
        summary["project"] = str(project.folder)
        summary["schema_version"] = project.schema_version
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"Project {summary['project']}")
    print(f"  {'':<28} {'images':>6} {'lesion':>6} {'normal':>6} {'unreviewed':>10} {'boxes':>6} "
          f"{'patches':>8} {'excluded':>8}")
    _print_counts("all", summary)
    print(" per body part:")
    for name, counts in summary["body_parts"].items():
        _print_counts(name, counts)
    print(" per split:")
    for name, counts in summary["splits"].items():
        _print_counts(name, counts)
    print(f" models: {summary['models']}   synthetic samples: {summary['synthetic_samples']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from lesion_studio.dataset.exporter import export_project

    with Project.open(args.project) as project:
        result = export_project(project, args.out, args.format, force=args.force, deidentify=args.deidentify)
    print(f"Exported {result['images']} image(s), {result['boxes']} box(es) as {args.format} to {args.out}")
    for line in result.get("notes", []):
        print(line)
    if args.deidentify:
        print(f"Wrote {result['image_copies']} de-identified image copies to {result['image_root']}")
        for line in result["left_out"]:
            print(f"  left out {line}")
    if "image_root" in result:
        print(f"Image file names are relative to {result['image_root']}")
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    from lesion_studio.dataset.splits import assign_splits
    from lesion_studio.errors import LesionStudioError

    try:
        fractions = tuple(float(x) for x in args.fractions.split(","))
    except ValueError as exc:
        raise LesionStudioError(f"--fractions must be three numbers like 0.7,0.15,0.15 ({exc}).") from exc
    with Project.open(args.project) as project:
        counts = assign_splits(project, fractions, seed=args.seed, group_by_key=not args.no_groups,
                               only_unassigned=args.only_unassigned)  # type: ignore[arg-type]
    print("Splits: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lesion_studio.cli.progress import TerminalProgress
    from lesion_studio.demo import build_demo_project, default_demo_folder
    from lesion_studio.demo.project import add_builtin_generators

    folder = args.project or default_demo_folder()
    bar = TerminalProgress()
    try:
        project = build_demo_project(folder, progress=bar)
    finally:
        bar.close()
    try:
        builtins = add_builtin_generators(project)
    finally:
        folder = project.folder
        project.close()
    print(f"Demo project: {folder}")
    if builtins:
        print(f"Built-in generator ready for the Synthesis panel: {', '.join(builtins)}")
    if args.no_gui:
        return 0
    return launch_gui(folder)


def cmd_gui(args: argparse.Namespace) -> int:
    return launch_gui(args.project, exit_when_shown=args.exit_when_shown)


def launch_gui(project: Path | None, *, exit_when_shown: bool = False) -> int:
    try:
        from lesion_studio.gui.application import run_app
    except ImportError as exc:
        if "lesion_studio.gui" not in str(exc):
            raise
        print("The desktop GUI is not part of this build yet; use the command-line tools "
              "(`lesion-studio --help`).", file=sys.stderr)
        return 0
    return run_app(project, exit_when_shown=exit_when_shown)
