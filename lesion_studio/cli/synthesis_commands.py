"""Synthesis commands: train-gan (UNIT on a project's boxes) and translate (paint lesions)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lesion_studio.errors import DiskFullError, LesionStudioError
from lesion_studio.store.project import Project
from lesion_studio.synthesis.blend import BLEND_MODES, DEFAULT_BLEND, DEFAULT_N
from lesion_studio.synthesis.pipeline import DEFAULT_TRANSLATION, TRANSLATIONS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-gan", help="train a UNIT lesion translator on the project's boxes")
    p.add_argument("project", type=Path)
    p.add_argument("--body-part", action="append", default=[], metavar="PART",
                   help="train on this body part (repeat or comma-separate; default: all)")
    p.add_argument("--preset", default=None, help="paper, fast (default) or tiny")
    p.add_argument("--config", type=Path, help="a YAML/TOML config (a preset key there sets the defaults)")
    p.add_argument("--iterations", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    p.add_argument("--cpu-threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--name", help="model name (default unit-<parts>-<preset>)")
    p.add_argument("--resume", action="store_true", help="continue the model's last checkpoint")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX export at the end")
    p.add_argument("--no-assess", action="store_true",
                   help="skip the generator quality report at every checkpoint (see assess-generator)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_train_gan)

    p = sub.add_parser("assess-generator", help="the generator quality report (realism, lesion signal, drift, KID)")
    p.add_argument("project", type=Path)
    p.add_argument("--model", required=True, help="UNIT model name or id")
    p.add_argument("--body-part", action="append", default=[], metavar="PART",
                   help="measure on this body part (repeat or comma-separate; default: the model's)")
    p.add_argument("--classifier", help="a trained classifier (name or id): adds the localisation metric")
    p.add_argument("--split", default="val", help="the held-out split to measure on (default val)")
    p.add_argument("--blend", choices=BLEND_MODES, default=DEFAULT_BLEND,
                   help=f"how translations are blended in (default {DEFAULT_BLEND}, as the product synthesizes)")
    p.add_argument("--n", type=float, default=DEFAULT_N,
                   help=f"the blending exponent (default {DEFAULT_N:g}, as the product synthesizes)")
    p.add_argument("--translation", choices=TRANSLATIONS, default=DEFAULT_TRANSLATION,
                   help="direct (default, the paper): the window becomes the translation; residual: the source "
                        "plus the translation's residual over the normal reconstruction")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto")
    p.add_argument("--no-store", action="store_true", help="do not write the report into the model's sidecar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_assess_generator)

    p = sub.add_parser("translate", help="synthesize a lesion in a window (or in every normal patch)")
    p.add_argument("project", type=Path)
    p.add_argument("--model", required=True, help="UNIT model name or id, or a built-in one (builtin-..., see `lesion-studio models`)")
    p.add_argument("--image", type=Path, help="the radiograph to paint into")
    p.add_argument("--box", help="the window x0,y0,x1,y1 in pixels (square is best)")
    p.add_argument("--out", type=Path, help="side-by-side PNG (original | translated | blended)")
    p.add_argument("--all-normal-patches", action="store_true", help="every picked normal patch of the project")
    p.add_argument("--body-part", action="append", default=[], metavar="PART")
    p.add_argument("--limit", type=int, help="at most this many sources (batch form)")
    p.add_argument("--out-dir", type=Path, help="folder for the batch form's PNGs")
    p.add_argument("--record", action="store_true", help="add batch results to the project as candidates")
    p.add_argument("--n", type=float, default=DEFAULT_N, help=f"blending exponent (default {DEFAULT_N:g})")
    p.add_argument("--blend", choices=BLEND_MODES, default=DEFAULT_BLEND,
                   help=f"default {DEFAULT_BLEND}. matched: drop the translation's brightness offset outside the "
                        "lesion core first; moments: give it the source's mean and spread there first; paper: the "
                        "paper's alpha blend as published")
    p.add_argument("--translation", choices=TRANSLATIONS, default=DEFAULT_TRANSLATION,
                   help="direct (default, the paper): the window becomes the resized translation; residual: the "
                        "source keeps its own texture and gets G_l(E_h(x)) - G_h(E_h(x)) added")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stochastic", action="store_true", help="sample the latent code instead of its mean")
    p.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto")
    p.set_defaults(func=cmd_translate)


def _parts(values: list[str]) -> list[str]:
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def cmd_train_gan(args: argparse.Namespace) -> int:
    from lesion_studio.cli.progress import TerminalProgress
    from lesion_studio.training.unit_config import load_config, preset_config
    from lesion_studio.training.unit_trainer import train_unit

    overrides = {k: v for k, v in {"iterations": args.iterations, "batch_size": args.batch_size,
                                   "seed": args.seed, "device": args.device,
                                   "cpu_threads": args.cpu_threads}.items() if v is not None}
    if args.no_onnx:
        overrides["export_onnx"] = False
    if args.no_assess:
        overrides["assess"] = False
    if _parts(args.body_part):
        overrides["body_parts"] = _parts(args.body_part)
    if args.preset:
        overrides["preset"] = args.preset
    if args.config:
        config = load_config(args.config, **overrides)
    else:
        config = preset_config(overrides.pop("preset", "fast"), **overrides)
    project = Project.open(args.project)
    if args.resume:
        from lesion_studio.models import layout
        from lesion_studio.models.checkpoint import has_checkpoint
        from lesion_studio.training.unit_config import default_model_name

        name = args.name or default_model_name(config)
        if not has_checkpoint(layout.unit_dir(project.folder, name) / layout.CHECKPOINT):
            project.close()
            raise LesionStudioError(f"There is no checkpoint to resume for model {name!r}. "
                                    "Start without --resume (or give the right --name).")
    bar = TerminalProgress()
    try:
        result = train_unit(project, config, name=args.name, resume=args.resume, progress=bar)
    finally:
        bar.close()
        project.close()
    summary = {"model": result.name, "model_id": result.model_id, "iteration": result.iteration,
               "iterations": result.iterations,
               "seconds": round(result.seconds, 1), "iterations_per_s": round(result.iterations_per_s, 3),
               "first_losses": result.first_losses, "final_losses": result.losses,
               "lesion_patches": result.data_summary["lesion"]["patches"],
               "normal_patches": result.data_summary["normal"]["patches"],
               "folder": str(result.model_dir), "onnx": str(result.onnx_path) if result.onnx_path else None,
               "quality": result.quality}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"Trained {result.name} (id {result.model_id}) to iteration {result.iteration}/{result.iterations} "
          f"in {result.seconds:.0f} s ({result.iterations_per_s:.2f} it/s) on "
          f"{summary['lesion_patches']} lesion and {summary['normal_patches']} normal patches.")
    if result.first_losses:
        print("  losses first → last: " + ", ".join(
            f"{k} {result.first_losses[k]:.3f} → {result.losses[k]:.3f}" for k in ("recon", "cycle", "gan", "dis")))
    if result.quality:
        from lesion_studio.evaluate.generator_quality import short_summary

        print(f"  quality: {short_summary(result.quality)}")
    print(f"  files: {result.model_dir}" + ("" if result.onnx_path else " (no ONNX export: torch backend)"))
    return 0


def cmd_assess_generator(args: argparse.Namespace) -> int:
    from lesion_studio.cli.progress import TerminalProgress
    from lesion_studio.evaluate.generator_quality import QualitySettings, assess_generator, report_lines

    project = Project.open(args.project)
    bar = TerminalProgress()
    try:
        report = assess_generator(project, args.model, body_parts=_parts(args.body_part) or None,
                                  classifier=args.classifier, seed=args.seed,
                                  settings=QualitySettings(split=args.split, blend_mode=args.blend,
                                                           translation=args.translation, n=args.n),
                                  backend=args.backend,
                                  store=not args.no_store, progress=bar)
    finally:
        bar.close()
        project.close()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"Generator quality of {report['model']} (iteration {report['iteration']}) on the {report['split']} "
          f"split: {report['n_real']} real lesion and {report['n_synthetic']} synthetic windows, seed "
          f"{report['seed']}, {report['seconds']:.0f} s")
    for line in report_lines(report):
        print(f"  {line}")
    return 0


def _side_by_side(result, window: tuple[float, float]):  # noqa: ANN001, ANN202
    from lesion_studio.io.images import grid, window_uint8

    return grid([[window_uint8(p, window) for p in (result.source_patch, result.translated_patch,
                                                     result.blended_patch)]], gap=4)


def _write(result, window: tuple[float, float], sbs: Path) -> Path:  # noqa: ANN001
    """The side-by-side, the full image and its native-depth copy: all three, or on a full disk none."""
    from lesion_studio.files import OutputFiles, atomic_write
    from lesion_studio.io.images import encode_png, save_png, window_uint8

    full = sbs.with_name(sbs.stem.removesuffix("_sbs") + "_full.png")
    native = full.with_name(full.stem + "_native.png")
    with OutputFiles(f"writing the images of {sbs.stem.removesuffix('_sbs')}", sbs.parent, expected=3) as output:
        for path in (sbs, full, native):
            output.add(path)
        save_png(sbs, _side_by_side(result, window))
        save_png(full, window_uint8(result.image, window))
        # The same image at the source's native bit depth (lossless), for analysis rather than viewing.
        atomic_write(native, encode_png(result.image))
    return full


def cmd_translate(args: argparse.Namespace) -> int:
    from lesion_studio.io import open_radiograph
    from lesion_studio.store.records import Box
    from lesion_studio.synthesis.pipeline import normal_patch_sources, synthesize_lesion, synthesize_many
    from lesion_studio.synthesis.translator import open_translator

    project = Project.open(args.project)
    try:
        translator = open_translator(project, args.model, backend=args.backend)
        if not args.all_normal_patches:
            if not (args.image and args.box and args.out):
                raise LesionStudioError("translate needs --image, --box and --out (or --all-normal-patches "
                                        "with --out-dir).")
            try:
                coords = [float(v) for v in args.box.split(",")]
                box = Box(*coords).normalized()
            except (TypeError, ValueError) as exc:
                raise LesionStudioError(f"--box must be x0,y0,x1,y1 in pixels, not {args.box!r}.") from exc
            rg = open_radiograph(args.image)
            result = synthesize_lesion(rg, box, translator, n=args.n, seed=args.seed, stochastic=args.stochastic,
                                       blend_mode=args.blend, translation=args.translation)
            full = _write(result, rg.window, args.out)
            print(f"Wrote {args.out} (original | translated | blended) and {full}; window "
                  f"{tuple(int(v) for v in result.window.as_tuple())}, n={args.n}, model {translator.model_name}.")
            return 0
        if not args.out_dir:
            raise LesionStudioError("The batch form (--all-normal-patches) needs --out-dir.")
        sources = normal_patch_sources(project, _parts(args.body_part) or None)
        if args.limit is not None:
            sources = sources[:args.limit]
        if not sources:
            raise LesionStudioError("No picked normal patches to synthesize into (on non-excluded normal images).")
        from lesion_studio.cli.progress import TerminalProgress

        bar = TerminalProgress()
        count = 0
        try:
            for k, (rec, result) in enumerate(synthesize_many(project, translator, sources, n=args.n,
                                                               seed=args.seed, stochastic=args.stochastic,
                                                               blend_mode=args.blend, translation=args.translation,
                                                               progress=bar)):
                # Named by project image id: a source's file name can hold a patient's name.
                full = _write(result, _display_window(result), args.out_dir / f"image{rec.id:06d}_{k:04d}_sbs.png")
                if args.record:
                    from lesion_studio.samples import save_synthetic_sample

                    save_synthetic_sample(project, result.image, source_image_id=rec.id, window=result.window,
                                          n=result.n, seed=result.seed, model_id=translator.model_id,
                                          provenance=result.provenance, batch="cli")
                count += 1
        except DiskFullError as exc:
            raise _batch_disk_full(exc, len(sources), count, args.out_dir, args.record) from exc
        finally:
            bar.close()
        print(f"Wrote {count} synthetic sample(s) to {args.out_dir}" + (" and recorded them." if args.record else "."))
        return 0
    finally:
        project.close()


def _batch_disk_full(exc: DiskFullError, total: int, kept: int, out_dir: Path, record: bool) -> DiskFullError:
    """A full disk part-way through ``translate --out-dir``: what the rest of the batch needs (the
    failed sample's size times the samples left: an estimate) and what it kept: the samples
    finished before it stay (written, and recorded with --record); the one it was writing left
    nothing (``_write``)."""
    needed = (exc.needed or 0) * (total - kept) or None
    return DiskFullError(f"translating {total} normal patch(es)", out_dir, needed, estimated=True,
                         written=f"The {kept} sample(s) finished before it were written"
                                 f"{' and recorded' if record else ''}; nothing of the one it was writing was.")


def _display_window(result) -> tuple[float, float]:  # noqa: ANN001
    """The source radiograph's display window, as recorded in the provenance."""
    center, width = result.provenance["source"]["display_window"]
    return float(center), float(width)
