"""Assisted-reading commands: propose (the detector's box proposals), proposals (list), proposal
accept/reject (a reader's decision), and queue (the review order)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lesion_studio.errors import LesionStudioError
from lesion_studio.store.records import SPLITS

PROPOSAL_STATES = ("pending", "accepted", "rejected")


def register(sub: argparse._SubParsersAction) -> None:
    from lesion_studio.assist.queue import ORDERS

    p = sub.add_parser("propose", help="the detector proposes lesion boxes (and stores image scores) on images; "
                                       "nothing becomes an annotation until a reader accepts it")
    p.add_argument("project", type=Path)
    p.add_argument("--model", required=True, help="classifier name or id (its lesion map, else its CAM)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--split", choices=("all", *SPLITS), default="all", help="images of one split (default all)")
    which.add_argument("--images", type=_image_ref, nargs="+", metavar="ID|NAME",
                       help="these images only: ids, or file names (e.g. hand_001.png)")
    p.add_argument("--unreviewed", action="store_true", help="only images not yet reviewed (see --reader)")
    p.add_argument("--reader", help="with --unreviewed: images this reader has not read (default: the project's "
                                    "unreviewed label)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="a region is where the map is at least this share of its peak, in (0, 1] (default 0.5)")
    p.add_argument("--max-per-image", type=int, default=3, help="proposals per image at most (default 3)")
    p.add_argument("--min-score", type=float, default=0.0, help="store no proposal scoring below this (default 0)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_propose)

    p = sub.add_parser("proposals", help="list the detector's box proposals")
    p.add_argument("project", type=Path)
    p.add_argument("--image", type=int, help="one image's proposals")
    p.add_argument("--state", choices=PROPOSAL_STATES, help="pending, accepted or rejected")
    p.add_argument("--min-score", type=float, help="at least this score")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_proposals)

    p = sub.add_parser("proposal", help="a reader accepts (optionally with an edited box) or rejects a proposal")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("accept", help="make the proposal a lesion box by the reader (labels the image lesion)")
    a.add_argument("project", type=Path)
    a.add_argument("id", type=int, help="the proposal's id (see `proposals`)")
    a.add_argument("--box", help="the reader's edited box x0,y0,x1,y1 in image pixels (default: as proposed)")
    a.add_argument("--type", dest="lesion_type", default="", help="the box's lesion type")
    a.add_argument("--no-relabel", action="store_true", help="leave the image's label as it is")
    a.add_argument("--reader", help="who accepts (default $LESION_STUDIO_READER, else the login name)")
    a.set_defaults(func=cmd_proposal)
    r = actions.add_parser("reject", help="mark the proposal rejected (no box, no label)")
    r.add_argument("project", type=Path)
    r.add_argument("id", type=int)
    r.add_argument("--reader", help="who rejects (default $LESION_STUDIO_READER, else the login name)")
    r.set_defaults(func=cmd_proposal)

    p = sub.add_parser("queue", help="the unreviewed images in review order (model uncertainty, likely lesion "
                                     "first, or file order)")
    p.add_argument("project", type=Path)
    p.add_argument("--order", choices=ORDERS, default="uncertainty")
    p.add_argument("--model", help="whose scores order the queue (default: the model that scored last)")
    p.add_argument("--operating-point", type=float, help="the threshold uncertainty is measured from")
    p.add_argument("--reader", help="images this reader has not read (default: the project's unreviewed label)")
    p.add_argument("--limit", type=int, default=20, help="list at most this many (default 20; 0: all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_queue)


def _image_ref(text: str) -> int | str:
    """An image id (a whole number) or an image's file name."""
    return int(text) if text.isdigit() else text


def parse_box(text: str):  # noqa: ANN201 - Box, imported lazily
    from lesion_studio.store.records import Box

    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise LesionStudioError(f"--box must be x0,y0,x1,y1 in pixels, not {text!r}.")
    return Box(*values)


def cmd_propose(args: argparse.Namespace) -> int:
    from lesion_studio.assist.detector import ProposalSettings, choose_images, propose_boxes
    from lesion_studio.cli.progress import TerminalProgress
    from lesion_studio.store.project import Project
    from lesion_studio.store.readers import check_reader

    settings = ProposalSettings(threshold=args.threshold, max_per_image=args.max_per_image, min_score=args.min_score)
    reader = check_reader(args.reader) if args.reader else None
    with Project.open(args.project) as project:
        images = choose_images(project, split=args.split, unreviewed=args.unreviewed, image_ids=args.images,
                               reader=reader)
        if not images:
            where = "the chosen images" if args.images else (
                "this project" if args.split == "all" else f"the {args.split!r} split")
            raise LesionStudioError(f"There are no {'unreviewed ' if args.unreviewed else ''}images in {where} "
                                    "to propose boxes on.")
        bar = TerminalProgress()
        try:
            run = propose_boxes(project, args.model, images, settings=settings, progress=bar)
        finally:
            bar.close()
    print(json.dumps(run.to_dict()) if args.json else run.summary())
    return 0


def cmd_proposals(args: argparse.Namespace) -> int:
    from lesion_studio.store import proposals as store
    from lesion_studio.store.project import Project

    with Project.open(args.project) as project:
        if args.image is not None:
            project.image(args.image)  # a clear error for an unknown id
        rows = store.proposals(project, args.image, state=args.state, min_score=args.min_score)
    if args.json:
        print(json.dumps([{"id": p.id, "image_id": p.image_id, "model": p.model_name, "model_id": p.model_id,
                           "box": list(p.box.as_tuple()), "score": p.score, "image_score": p.image_score,
                           "state": p.state, "created_at": p.created_at, "decided_by": p.decided_by,
                           "decided_at": p.decided_at, "box_id": p.box_id} for p in rows], indent=1))
        return 0
    for p in rows:
        b = p.box
        decided = f" by {p.decided_by}" if p.decided_by else ""
        print(f"{p.id:>6}  image {p.image_id:<6} {p.score:.3f}  ({b.x0:.0f},{b.y0:.0f})-({b.x1:.0f},{b.y1:.0f})  "
              f"{p.state}{decided}  {p.model_name}")
    print(f"{len(rows)} proposal(s).")
    return 0


def cmd_proposal(args: argparse.Namespace) -> int:
    from lesion_studio.store import proposals as store
    from lesion_studio.store.project import Project
    from lesion_studio.store.readers import default_reader

    reader = default_reader(args.reader)
    with Project.open(args.project) as project:
        if args.action == "accept":
            box = parse_box(args.box) if args.box else None
            box_id = store.accept_proposal(project, args.id, reader, box=box, lesion_type=args.lesion_type,
                                           relabel=not args.no_relabel)
            print(f"Proposal {args.id} accepted by {reader} as lesion box {box_id}"
                  + (" (edited)." if project.box(box_id).provenance.get("edited") else "."))
        else:
            store.reject_proposal(project, args.id, reader)
            print(f"Proposal {args.id} rejected by {reader}.")
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    from lesion_studio.assist.queue import find_operating_point, resolve_model, review_counter, review_order
    from lesion_studio.store import proposals as store
    from lesion_studio.store.project import Project
    from lesion_studio.store.readers import check_reader

    if args.limit < 0:
        raise LesionStudioError(f"--limit must be 0 (all) or more, not {args.limit}.")
    reader = check_reader(args.reader) if args.reader else None
    with Project.open(args.project) as project:
        model_id = resolve_model(project, args.model)
        point = find_operating_point(project, model_id, args.operating_point)
        order = review_order(project, args.order, model=model_id, operating_point=point.value, reader=reader)
        counter = review_counter(project, None, args.order, model=model_id, operating_point=point.value,
                                 reader=reader)
        scores = store.image_scores(project, model_id) if model_id is not None else {}
        names = {r.id: r.name for r in project.images()}
        model_name = project.model(model_id).name if model_id is not None else None
    shown = order[:args.limit] if args.limit else order
    if args.json:
        print(json.dumps({"order": args.order, "model": model_name, "operating_point": point.value,
                          "operating_point_source": point.source, "unreviewed": counter.unreviewed,
                          "images": counter.images,
                          "queue": [{"image_id": i, "name": names[i],
                                     "score": scores[i].score if i in scores else None} for i in shown]}, indent=1))
        return 0
    for i in shown:
        score = f"{scores[i].score:.3f}" if i in scores else "  –  "
        print(f"{i:>6}  {score}  {names[i]}")
    by = ""
    if model_name and args.order != "file":
        by = f" by {model_name}" + (f", operating point {point.describe()}" if args.order == "uncertainty" else "")
    print(f"{counter.text()} ({args.order} order{by}).")
    return 0
