"""The detector at paper scale on a GPU: the `gpu` preset (DRN-C-26 + lesion-map head, 512 px),
one model per seed, on a bundle made by ``tools/device_bundle.py``. Prints and writes JSON.

Why a script of its own: the detector targets of docs/experiments.md (validation ≥ 0.80, test
≥ 0.85) were out of reach at 128 px on two CPU cores, and the first question a lent GPU machine
can answer in its 15 minutes is whether the paper's network at the paper's size reaches them on
the same hand splits. The whole arms study (``fracatlas-arms-gpu``) does not fit that budget; this
should (an estimated 1–3 minutes a seed on an H100, from the FLOP count and the CPU-side
scoring; not measured: no machine has been lent since it exists).

On the GPU machine, through the device tool with ``carry: [".device"]`` (make ``.device/hand`` here
first: tools/device_bundle.py; nothing needs installing there, see that file):

    PYTHONPATH=$PWD PYTHONUNBUFFERED=1 python3 -m benchmarks.gpu_detector --data .device/hand --out $OUT

Here, as a smoke test of the same path on the CPU (tiny sizes; the numbers mean nothing):

    python -m benchmarks.gpu_detector --data .device/hand --device cpu --preset tiny --epochs 1 --seeds 0

For each seed: validation AUC (the selected epoch's, as training reports it), the test AUC with its
bootstrap CI and the pointing game (what ``lesion-studio evaluate`` prints), and the wall time; then
the three seeds' mean score (an ensemble) on validation and test. ``OUT/gpu_detector.json`` is
rewritten after every seed, so a run cut off by the device's time limit still reports what it did.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import OUT, emit

log = logging.getLogger("gpu_detector")


def _import(project_dir: Path, data: Path) -> Any:
    from lesion_studio.dataset.importer import import_source
    from lesion_studio.store.project import Project

    project = Project.open_or_create(project_dir)
    if project.image_count() == 0:
        import_source(project, data / "images", labels_csv=data / "labels.csv", boxes_csv=data / "boxes.csv",
                      strict=True)
    return project


def _evaluate_cli(project_dir: Path, name: str, body_parts: str) -> dict[str, Any]:
    """What ``lesion-studio evaluate`` prints for the model (test AUC, CI, pointing game)."""
    from lesion_studio.cli.main import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        rc = main(["evaluate", str(project_dir), "--model", name, "--body-parts", body_parts])
    if rc != 0:
        raise RuntimeError(f"evaluate {name} failed ({rc}): {buffer.getvalue()[-400:]}")
    return json.loads(buffer.getvalue())


def _scores(project: Any, name: str, split: str, body_parts: list[str]) -> tuple[Any, Any]:
    """(labels, scores) of a registered model on a split, as the evaluation scores them."""
    from lesion_studio.classifier.data import evaluation_set
    from lesion_studio.classifier.preprocess import PreparedCache
    from lesion_studio.classifier.scoring import registered_scorer

    scorer, _ = registered_scorer(project, name)
    cache = PreparedCache(scorer.prep, project.subfolder("cache") / "classifier")
    data = evaluation_set(project, split, cache, body_parts)
    return data.labels, scorer.score_arrays(data.arrays)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch

    from lesion_studio.classifier.config import preset
    from lesion_studio.evaluate.metrics import bootstrap_auc
    from lesion_studio.training.classifier_trainer import train_classifier

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("No CUDA GPU here: this is the GPU run (use --device cpu for a smoke test).")
    parts = [x.strip() for x in args.body_parts.split(",") if x.strip()]
    overrides: dict[str, Any] = {"device": args.device}
    if args.epochs:
        overrides["epochs"] = args.epochs
    if args.input_size:
        overrides["input_size"] = args.input_size
    project_dir = args.project or Path(tempfile.mkdtemp(prefix="gpu-detector-"))
    project = _import(project_dir, args.data)
    bundle = json.loads((args.data / "bundle.json").read_text()) if (args.data / "bundle.json").exists() else {}
    result: dict[str, Any] = {
        "preset": args.preset, "overrides": overrides, "body_parts": parts, "bundle": bundle,
        "device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
        "torch": torch.__version__, "seeds": [],
    }
    out = args.out / "gpu_detector.json"
    args.out.mkdir(parents=True, exist_ok=True)
    names = []
    try:
        for seed in args.seeds:
            cfg = preset(args.preset, seed=seed, **overrides)
            name = f"gpu-detector-{args.preset}-s{seed}"
            t0 = time.perf_counter()
            trained, _ = train_classifier(project, cfg, name=name, body_parts=parts)
            wall = time.perf_counter() - t0
            names.append(name)
            row = {"seed": seed, "train_s": round(wall, 1), "epoch_selected": trained.epoch,
                   "val_auc": trained.val_auc, "config": dataclasses.asdict(cfg),
                   "test": _evaluate_cli(project_dir, name, ",".join(parts))}
            result["seeds"].append(row)
            log.info("seed %d: validation %.3f, test %.3f, %.0f s", seed, trained.val_auc or float("nan"),
                     row["test"]["auc"]["auc"], wall)
            out.write_text(json.dumps(result, indent=1) + "\n")
        if len(names) > 1:  # the seeds' mean score: what an ensemble of them would report
            for split in ("val", "test"):
                scored = [_scores(project, n, split, parts) for n in names]
                labels = scored[0][0]
                mean = np.mean([s for _, s in scored], axis=0)
                result[f"ensemble_{split}"] = bootstrap_auc(labels, mean, seed=0).to_dict()
        vals = [r["val_auc"] for r in result["seeds"] if r["val_auc"] is not None]
        tests = [r["test"]["auc"]["auc"] for r in result["seeds"]]
        result["mean"] = {"val_auc": float(np.mean(vals)) if vals else None, "test_auc": float(np.mean(tests)),
                          "test_sd": float(np.std(tests, ddof=1)) if len(tests) > 1 else None}
        out.write_text(json.dumps(result, indent=1) + "\n")
    finally:
        project.close()
    return result


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The figures a reader compares with docs/experiments.md, without each lesion's pointing detail
    (the device tool returns only the last 12,000 characters of the output)."""
    def r3(v: float | None) -> float | None:  # a rate over no lesions (none detected) is None
        return None if v is None else round(v, 3)

    def auc(d: dict[str, Any]) -> list[float | None]:
        return [r3(d["auc"]), r3(d["ci_low"]), r3(d["ci_high"])]

    rows = []
    for r in result["seeds"]:
        pointing = r["test"].get("pointing", {}).get("detected")
        rows.append({"seed": r["seed"], "train_s": r["train_s"], "epoch": r["epoch_selected"],
                     "val_auc": None if r["val_auc"] is None else round(r["val_auc"], 3),
                     "test_auc_ci": auc(r["test"]["auc"]),
                     "pointing_detected": None if pointing is None else
                     [r3(pointing["rate"]), r3(pointing["ci_low"]), r3(pointing["ci_high"]), pointing["n"]]})
    out = {k: result[k] for k in ("device", "torch", "preset", "overrides", "mean") if k in result}
    out["seeds"] = rows
    for split in ("val", "test"):
        if f"ensemble_{split}" in result:
            out[f"ensemble_{split}_auc_ci"] = auc(result[f"ensemble_{split}"])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="a folder made by tools/device_bundle.py")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--project", type=Path, help="project folder to import into (default: a new temporary one)")
    p.add_argument("--preset", default="gpu")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    p.add_argument("--epochs", type=int)
    p.add_argument("--input-size", type=int)
    p.add_argument("--body-parts", default="hand")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    emit(summary(run(args)))
    log.info("the whole record: %s", args.out / "gpu_detector.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
