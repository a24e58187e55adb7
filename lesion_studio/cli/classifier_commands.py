"""Classifier and experiment commands: train-classifier, score, evaluate, experiment."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lesion_studio.errors import LesionStudioError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-classifier", help="train a DRN lesion classifier on a project's training split")
    p.add_argument("project", type=Path)
    p.add_argument("--name", required=True, help="model name in the project registry")
    p.add_argument("--preset", default="cpu",
                   help="tiny, cpu (the paper's image-level DRN; the default), cpu-map (the box-supervised "
                        "detector measured best on a CPU), cpu-quick or gpu")
    p.add_argument("--config", type=Path, help="YAML/TOML with classifier settings (overrides the preset)")
    p.add_argument("--body-parts", default="", help="comma-separated (default: all)")
    p.add_argument("--include-excluded", action="store_true", help="also train on excluded images")
    p.add_argument("--device", default=None, help="auto, cpu or cuda")
    p.add_argument("--epochs", type=int)
    p.add_argument("--warm-start", metavar="PARTS", default=None,
                   help="first pretrain on the training images of these body parts (comma-separated, or 'all'), "
                        "then train on --body-parts (docs/experiments.md, warm start)")
    p.add_argument("--warm-start-epochs", type=int, default=None, help="epochs of the warm start (default 6)")
    p.add_argument("--train-fraction", type=float, default=None, metavar="SHARE",
                   help="train on this share (0-1] of the training images, the same share of lesion and normal "
                        "images, drawn by the seed: a learning curve's point (raise --epochs by 1/SHARE for as "
                        "many steps)")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--onnx", action="store_true", help="also export model.onnx for torch-free scoring")
    p.add_argument("--with-accepted-synthetic", action="store_true",
                   help="add the accepted synthetic samples made from training images (augmented training)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("score", help="lesion probability of images with a trained classifier (ONNX Runtime)")
    p.add_argument("project", type=Path)
    p.add_argument("--model", required=True, help="classifier name or id")
    p.add_argument("--split", default=None, choices=("train", "val", "test", "unassigned"),
                   help="train/val/test/unassigned (default: every image)")
    p.add_argument("--synthetic-batch", default=None, help="score (and store scores of) a synthetic batch")
    p.add_argument("--register-onnx", action="store_true",
                   help="trust the classifier's model.onnx as it is and record its hash (for a file that has none)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("evaluate", help="test ROC AUC with a bootstrapped 95%% CI (optionally vs a baseline)")
    p.add_argument("project", type=Path)
    p.add_argument("--model", required=True)
    p.add_argument("--baseline", help="a second model: paired bootstrap of ΔAUC (model − baseline)")
    p.add_argument("--body-parts", default="")
    p.add_argument("--include-excluded", action="store_true")
    p.add_argument("--test-set", type=Path, help="external folder with labels.csv (+ boxes.csv) instead of the test split")
    p.add_argument("--resamples", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pointing-tolerance", type=float, default=None, metavar="PX",
                   help="the pointing game's tolerance in image pixels (default 15; 0: strictly inside a box)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("experiment", help="run the paper's augmentation protocol from a config (cached, resumable)")
    p.add_argument("config", nargs="?", help="a config file, or a built-in config's name (see --list)")
    p.add_argument("--list", action="store_true", help="list the built-in configs and exit")
    p.add_argument("--output", "--out", dest="output", help="results folder (overrides the config)")
    p.add_argument("--test-set", type=Path, help="external test folder with labels.csv (+ boxes.csv)")
    p.set_defaults(func=cmd_experiment)


def _parts(text: str) -> list[str] | None:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return parts or None


def cmd_train(args: argparse.Namespace) -> int:
    from lesion_studio.classifier.config import preset
    from lesion_studio.cli.progress import TerminalProgress
    from lesion_studio.config import read_config_file
    from lesion_studio.store.project import Project
    from lesion_studio.training.classifier_trainer import train_classifier

    overrides = read_config_file(args.config) if args.config else {}
    if args.device:
        overrides["device"] = args.device
    if args.epochs:
        overrides["epochs"] = args.epochs
    if args.warm_start:
        overrides["warm_start_parts"] = _parts(args.warm_start) or []
    if args.warm_start_epochs is not None:
        overrides["warm_start_epochs"] = args.warm_start_epochs
    if args.train_fraction is not None:
        overrides["train_fraction"] = args.train_fraction
    cfg = preset(args.preset, **overrides)
    project = Project.open(args.project)
    synthetic: list = []
    if args.with_accepted_synthetic:
        from lesion_studio.classifier.data import accepted_training_samples

        synthetic, passed_over = accepted_training_samples(project, _parts(args.body_parts),
                                                           include_excluded=args.include_excluded)
        print(f"Adding {len(synthetic)} accepted synthetic sample(s)"
              + (f"; {passed_over} made from non-training images are left out." if passed_over else "."))
    bar = TerminalProgress()
    try:
        result, model_id = train_classifier(project, cfg, name=args.name, body_parts=_parts(args.body_parts),
                                            include_excluded=args.include_excluded, resume=not args.no_resume,
                                            synthetic=synthetic, progress=bar)
        if args.onnx:
            from lesion_studio.classifier.scoring import export_classifier_onnx, export_registered_onnx

            if model_id is not None:  # the export is ours: its hash is what scoring checks from now on
                export_registered_onnx(project, model_id, result.path)
            else:
                export_classifier_onnx(result.path)
    finally:
        bar.close()
        project.close()
    val = "n/a" if result.val_auc is None else f"{result.val_auc:.3f}"
    print(f"Model {args.name} (id {model_id}): epoch {result.epoch} selected, validation AUC {val}, {result.path}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from lesion_studio.classifier.data import image_examples
    from lesion_studio.classifier.preprocess import PreparedCache
    from lesion_studio.classifier.scoring import registered_scorer, score_synthetic
    from lesion_studio.store.project import Project

    project = Project.open(args.project)
    try:
        scorer, _ = registered_scorer(project, args.model, register_onnx=args.register_onnx)
        if args.synthetic_batch:
            samples = project.synthetic_samples(batch=args.synthetic_batch)
            if not samples:
                batches = sorted({s.batch for s in project.synthetic_samples()}) or ["none yet"]
                raise LesionStudioError(f"There is no synthetic batch {args.synthetic_batch!r} "
                                        f"(batches: {', '.join(batches)}).")
            scores = score_synthetic(project, samples, scorer)
            rows = [{"image": project.resolve_path(s.path).name, "image_id": s.source_image_id,
                     "synthetic_id": s.id, "score": score} for s, score in zip(samples, scores, strict=True)]
        else:
            cache = PreparedCache(scorer.prep, project.subfolder("cache") / "classifier")
            images = project.images(split=args.split) if args.split else project.images()
            if not images:
                where = f"in the {args.split!r} split" if args.split else "in this project"
                raise LesionStudioError(f"There are no images {where} to score"
                                        + (" (assign splits with `lesion-studio split`)." if args.split else "."))
            examples = image_examples(images)
            scores = scorer.score_files([(e.key, e.path) for e in examples], cache=cache)
            rows = [{"image": e.path.name, "image_id": e.image_id, "synthetic_id": None, "score": float(s)}
                    for e, s in zip(examples, scores, strict=True)]
    finally:
        project.close()
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(f"{r['score']:.4f}  {r['image']}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from lesion_studio.classifier.data import evaluation_set
    from lesion_studio.classifier.preprocess import PreparedCache
    from lesion_studio.classifier.scoring import registered_scorer
    from lesion_studio.evaluate.metrics import bootstrap_auc, paired_bootstrap_delta_auc
    from lesion_studio.store.project import Project

    if args.pointing_tolerance is not None and not 0 <= args.pointing_tolerance <= 1000:
        raise LesionStudioError(f"--pointing-tolerance must be 0–1000 pixels, not {args.pointing_tolerance:g}.")
    project = Project.open(args.project)
    test_project = None
    try:
        scorer, record = registered_scorer(project, args.model)
        base = registered_scorer(project, args.baseline) if args.baseline else None
        source = project
        if args.test_set:
            import hashlib

            from lesion_studio.dataset.importer import import_source

            tag = hashlib.sha256(str(args.test_set.resolve()).encode()).hexdigest()[:8]
            test_project = Project.open_or_create(project.subfolder("cache") / f"external-{args.test_set.name}-{tag}")
            if test_project.image_count() == 0:
                boxes = args.test_set / "boxes.csv"
                import_source(test_project, args.test_set, labels_csv=args.test_set / "labels.csv",
                              boxes_csv=boxes if boxes.exists() else None)
            test_project.set_splits({r.id: "test" for r in test_project.images()})
            used = {r.sha256 for r in project.images() if r.split in ("train", "val")}
            overlap = [r.name for r in test_project.images() if r.sha256 in used]
            if overlap:
                raise LesionStudioError(
                    f"{len(overlap)} image(s) of the external test set are also training/validation images of "
                    f"the project (e.g. {overlap[0]}); an external hold-out must be independent.")
            source = test_project
        cache = PreparedCache(scorer.prep, project.subfolder("cache") / "classifier")
        data = evaluation_set(source, "test", cache, _parts(args.body_parts), include_excluded=args.include_excluded)
        s = scorer.score_arrays(data.arrays)
        res = bootstrap_auc(data.labels, s, n_resamples=args.resamples, seed=args.seed)
        out = {"model": record.name, "test": data.summary(), "auc": res.to_dict()}
        pointing = _pointing(scorer, data, cache, args)
        if pointing is not None:
            out["pointing"] = pointing
        if base is not None:
            sb = base[0].score_arrays(data.arrays) if base[0].prep == scorer.prep else base[0].score_arrays(
                PreparedCache(base[0].prep, project.subfolder("cache") / "classifier").stack(
                    [(e.key, e.path) for e in data.examples]))
            out["baseline"] = {"model": base[1].name,
                               "auc": bootstrap_auc(data.labels, sb, n_resamples=args.resamples,
                                                    seed=args.seed).to_dict()}
            out["delta"] = paired_bootstrap_delta_auc(data.labels, np.asarray(sb), s, n_resamples=args.resamples,
                                                      seed=args.seed).to_dict()
    finally:
        project.close()
        if test_project is not None:
            test_project.close()
    print(json.dumps(out, indent=1))
    return 0


def _pointing(scorer: Any, data: Any, cache: Any, args: argparse.Namespace) -> dict[str, Any] | None:
    """The pointing game of the model's own localisation map on the boxed test lesions
    (``evaluate/pointing.py``); None when the export has no map or no test lesion has a box."""
    from lesion_studio.classifier.cam import POINTING_TOLERANCE_PX
    from lesion_studio.evaluate.pointing import pointing_summary

    tolerance = POINTING_TOLERANCE_PX if args.pointing_tolerance is None else args.pointing_tolerance
    boxed = [i for i, e in enumerate(data.examples) if e.label == 1 and e.boxes]
    if scorer.map_output is None or not boxed:
        return None
    probs, maps = scorer.maps(data.arrays[boxed])
    examples = [data.examples[i] for i in boxed]
    return pointing_summary(probs, maps, examples, lambda i: cache.frame(examples[i].key, examples[i].path),
                            tolerance=tolerance, map_kind=scorer.map_kind, n_resamples=args.resamples,
                            seed=args.seed)


def cmd_experiment(args: argparse.Namespace) -> int:
    from lesion_studio.cli.progress import TerminalProgress
    from lesion_studio.experiment.config import load_experiment_config
    from lesion_studio.experiment.runner import run_experiment
    from lesion_studio.paths import experiment_configs, find_experiment_config

    if args.list:
        for path in experiment_configs():
            print(f"{path.stem:<18} {_first_comment(path)}")
        return 0
    if not args.config:
        raise LesionStudioError("experiment needs a config file or a built-in config's name (see --list).")
    cfg = load_experiment_config(find_experiment_config(args.config), output=args.output)
    if args.output:
        cfg.output = str(Path(args.output).resolve())
    bar = TerminalProgress()
    try:
        result = run_experiment(cfg, test_set_dir=args.test_set, progress=bar)
    finally:
        bar.close()
    print((result.output / "table.md").read_text())
    cached = sum(e["status"] == "cached" for e in result.stage_events)
    print(f"Results in {result.output} ({cached} of {len(result.stage_events)} stages read from the cache).")
    return 0


def _first_comment(path: Path) -> str:
    """A config's first comment line: what it is for."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""
