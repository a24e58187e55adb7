"""Model commands: list a project's models beside the built-in ones, and show a model card."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lesion_studio.errors import LesionStudioError

if TYPE_CHECKING:
    from lesion_studio.store.project import Project


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list a project's models and the built-in ones (marked built-in)")
    p.add_argument("project", type=Path, nargs="?", help="project folder (default: built-in models only)")
    p.add_argument("--kind", choices=("unit", "drn"), help="only generators (unit) or classifiers (drn)")
    p.add_argument("--card", metavar="NAME", help="print a built-in model's card and exit")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)


def model_rows(project: Project | None, kind: str | None = None) -> list[dict[str, Any]]:
    """One row per model: the project's own, then the built-ins it has not registered yet."""
    from lesion_studio.builtin_models import model_choices

    rows = []
    for c in model_choices(project, kind):
        row = {"name": c.name, "kind": c.kind, "body_parts": list(c.body_parts), "resolution": c.resolution,
               "builtin": c.builtin, "source": c.source}
        rows.append({**row, "summary": c.summary} if not c.registered else row)
    return rows


def cmd_models(args: argparse.Namespace) -> int:
    from lesion_studio.builtin_models import find_builtin

    if args.card:
        model = find_builtin(args.card)
        if model is None or not model.card.is_file():
            raise LesionStudioError(f"There is no built-in model {args.card!r} (see `lesion-studio models`).")
        print(model.card.read_text(encoding="utf-8"))
        return 0
    project = None
    if args.project:
        from lesion_studio.store.project import Project

        project = Project.open(args.project)
    try:
        rows = model_rows(project, args.kind)
    finally:
        if project is not None:
            project.close()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("No models yet.")
    for r in rows:
        res = f"{r['resolution']} px" if r.get("resolution") else ""
        print(f"{r['name']:<28} {r['kind']:<5} {','.join(r['body_parts']):<24} {res:<7} {r['source']}")
    return 0
