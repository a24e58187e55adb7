"""Batch synthesis command: ``synthesize`` makes scored candidate samples for vetting."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lesion_studio.errors import LesionStudioError
from lesion_studio.synthesis.blend import DEFAULT_N
from lesion_studio.synthesis.pipeline import DEFAULT_TRANSLATION, TRANSLATIONS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synthesize", help="make candidate synthetic samples (optionally scored) for vetting")
    p.add_argument("project", type=Path)
    p.add_argument("--model", required=True, help="UNIT model name or id")
    p.add_argument("--classifier", help="DRN classifier (name or id) that scores the candidates")
    p.add_argument("--count", type=int, required=True, help="how many candidates")
    p.add_argument("--n-range", default=f"{DEFAULT_N:g},{DEFAULT_N:g}",
                   help=f"blending exponent range lo,hi (log-uniform; default {DEFAULT_N:g},{DEFAULT_N:g}: the "
                        "product's n, which measured most realistic; widen it for more varied candidates)")
    p.add_argument("--sources", choices=("patches", "sampled"), default="patches",
                   help="picked normal patches (default) or windows sampled on normal images")
    p.add_argument("--body-part", action="append", default=[], metavar="PART",
                   help="only normal images of this body part (repeat or comma-separate)")
    p.add_argument("--split", default=None, help="only normal images of this split (e.g. train)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deterministic", action="store_true", help="use the latent mean instead of sampling it")
    p.add_argument("--translation", choices=TRANSLATIONS, default=DEFAULT_TRANSLATION,
                   help="direct (default, the paper) or residual (the source plus the translation's residual)")
    p.add_argument("--batch", help="batch name (default: time stamp and model)")
    p.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_synthesize)


def parse_n_range(text: str) -> tuple[float, float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as exc:
        raise LesionStudioError(f"--n-range must be two numbers lo,hi (e.g. 1,4), not {text!r}.") from exc
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise LesionStudioError(f"--n-range must be two numbers lo,hi (e.g. 1,4), not {text!r}.")
    return values[0], values[1]


def cmd_synthesize(args: argparse.Namespace) -> int:
    from lesion_studio.cli.progress import TerminalProgress
    from lesion_studio.samples.batch import generate_candidates
    from lesion_studio.store.project import Project

    parts = [p.strip() for v in args.body_part for p in v.split(",") if p.strip()] or None
    n_range = parse_n_range(args.n_range)
    project = Project.open(args.project)
    bar = TerminalProgress()
    try:
        result = generate_candidates(
            project, args.model, count=args.count, sources=args.sources, body_parts=parts, split=args.split,
            n_range=n_range, seed=args.seed, stochastic=not args.deterministic, translation=args.translation,
            classifier=args.classifier,
            batch_name=args.batch, backend=args.backend, progress=bar)
    finally:
        bar.close()
        project.close()
    scores = sorted(result.scores.values(), reverse=True)
    summary = {"batch": result.batch, "candidates": result.count, "sample_ids": result.sample_ids,
               "model": result.model, "classifier": result.classifier,
               "seconds": round(result.seconds, 2),
               "scores": {str(k): v for k, v in result.scores.items()}}
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    text = f"Made {result.count} candidate(s) in batch {result.batch!r} with {result.model} in {result.seconds:.1f} s"
    if scores:
        text += (f"; scored by {result.classifier}: highest {scores[0]:.3f}, median "
                 f"{scores[len(scores) // 2]:.3f}, lowest {scores[-1]:.3f}")
    print(text + ". Vet them in the gallery (accept A / reject R).")
    return 0
