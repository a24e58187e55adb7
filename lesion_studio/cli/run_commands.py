"""Training-run commands: ``runs`` lists a project's training runs, ``resume`` continues a paused one.

The same core as the GUI's Training panel (:mod:`lesion_studio.training.runs`): a run is read from
its checkpoint, and a resumed run keeps its own settings (length, preset, body parts, device).
Ctrl+C stops a resumed run at its next checkpoint (exit 130); a second Ctrl+C interrupts at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path

from lesion_studio.jobs import CancelToken
from lesion_studio.store.project import Project


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list the project's training runs (GAN and classifier) with state and settings")
    p.add_argument("project", type=Path)
    p.add_argument("--paused", action="store_true", help="only the runs that can be resumed")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("resume", help="continue a paused training run exactly as it was set up")
    p.add_argument("project", type=Path)
    p.add_argument("run", help="the run's model name (see `lesion-studio runs PROJECT`)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_resume)


def cmd_runs(args: argparse.Namespace) -> int:
    from lesion_studio.training.runs import project_runs

    with Project.open(args.project) as project:
        runs = [r for r in project_runs(project) if r.paused or not args.paused]
    if args.json:
        print(json.dumps([r.to_dict() for r in runs], indent=1))
        return 0
    if not runs:
        print("No paused training runs." if args.paused else "No training runs yet.")
    for r in runs:
        parts = "+".join(r.body_parts) or "all"
        print(f"{r.name:<28} {'GAN' if r.kind == 'unit' else 'classifier':<10} {r.state:<8} "
              f"{r.unit} {r.done:,}/{r.total:,}  preset {r.preset}, body parts {parts}, device {r.device}")
    return 0


@contextlib.contextmanager
def _stop_on_interrupt(token: CancelToken) -> Iterator[None]:
    """The first Ctrl+C asks the job to stop at its next checkpoint; the second interrupts."""
    def first(_signum: int, _frame: object) -> None:
        token.cancel()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_resume(args: argparse.Namespace) -> int:
    from lesion_studio.cli.progress import TerminalProgress
    from lesion_studio.training.runs import paused_run, run_training

    with Project.open(args.project) as project:
        run = paused_run(project, args.run)
        folder = project.folder
    print(f"Resuming {run.label()}")
    bar, token = TerminalProgress(), CancelToken()
    try:
        with _stop_on_interrupt(token):
            result = run_training(run.request(), folder, progress=bar, cancel=token)
    finally:
        bar.close()
    if run.kind == "unit":
        summary = {"model": run.name, "kind": run.kind, "iteration": result.iteration, "of": result.iterations,
                   "model_id": result.model_id}
        text = f"Finished {run.name} at iteration {result.iteration:,} of {result.iterations:,}."
    else:
        res, model_id = result
        summary = {"model": run.name, "kind": run.kind, "epoch": res.epochs_done, "of": run.total,
                   "val_auc": res.val_auc, "model_id": model_id}
        auc = f", best validation AUC {res.val_auc:.3f} (epoch {res.epoch})" if res.val_auc is not None else ""
        text = f"Finished {run.name} after epoch {res.epochs_done} of {run.total}{auc}."
    print(json.dumps(summary, indent=2) if args.json else text)
    return 0
