"""Synthesis benchmark: UNIT `fast` on FracAtlas hand lesions vs normals, translation and re-blend latency.

Prints JSON: training it/s and peak RSS for a fixed number of iterations (sample grid PNG under
benchmarks/out/), single-patch translation latency at 128² for torch and onnxruntime (target
≤ 60 ms on CPU with onnxruntime), re-blend latency for a 256² window (target ≤ 2 ms), and the
generator quality report of the trained model with its wall time (target ≤ 2 min on CPU). The
project is split (seed 0) so the report has validation windows; the GAN trains on the training split.
Skips cleanly (JSON with "skipped") when ../shared/data is absent.

    python -m benchmarks.synthesis_bench            # SYNTH_BENCH_ITERS=30 by default
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import OUT, emit, peak_rss_mb, shared_or_skip, timed

ITERS = int(os.environ.get("SYNTH_BENCH_ITERS", "30"))
BODY_PART = os.environ.get("SYNTH_BENCH_BODY_PART", "hand")


def _subset(src: Path, dest: Path, body_part: str) -> tuple[Path, Path, Path]:
    """Symlinks to one body part's images plus filtered CSVs (the shared data is never copied)."""
    images = dest / "images"
    images.mkdir(parents=True)
    with open(src / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["body_part"] == body_part]
    names = {r["image"] for r in rows}
    for name in names:
        (images / name).symlink_to(src / "images" / name)
    for csv_name, keep in (("labels.csv", names), ("boxes.csv", names)):
        with open(src / csv_name, newline="") as fh:
            reader = csv.DictReader(fh)
            kept = [r for r in reader if r["image"] in keep]
            fields = reader.fieldnames or []
        with open(dest / csv_name, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(kept)
    return images, dest / "labels.csv", dest / "boxes.csv"


def _quality(project) -> dict:  # noqa: ANN001
    """The generator quality report of the benchmark model, timed (the ≤ 2 min CPU budget)."""
    from lesion_studio.evaluate.generator_quality import assess_generator

    t0 = time.perf_counter()
    report = assess_generator(project, "bench", body_parts=[BODY_PART], seed=0, store=False)
    return {"seconds": time.perf_counter() - t0, "target_seconds": 120.0, "headline": report["headline"],
            "realism": report["realism"], "lesion_signal": report["lesion_signal"],
            "intensity_drift": report["intensity_drift"], "kid": report["kid"],
            "n_real": report["n_real"], "n_synthetic": report["n_synthetic"]}


def main() -> int:
    xray = shared_or_skip("xray")
    if xray is None:
        emit({"skipped": "../shared/data/xray is not available"})
        return 0
    logging.basicConfig(level=logging.WARNING)
    from lesion_studio.dataset.importer import import_source
    from lesion_studio.store import Project
    from lesion_studio.synthesis.pipeline import sample_normal_windows, synthesize_lesion
    from lesion_studio.synthesis.translator import open_translator
    from lesion_studio.training.unit_config import preset_config
    from lesion_studio.training.unit_trainer import train_unit

    result: dict = {"body_part": BODY_PART, "iterations": ITERS, "preset": "fast"}
    work = Path(tempfile.mkdtemp(prefix="synth-bench-"))
    try:
        images, labels, boxes = _subset(xray, work / "src", BODY_PART)
        t0 = time.perf_counter()
        project = Project.create(work / "project")
        report = import_source(project, images, labels_csv=labels, boxes_csv=boxes)
        result["import"] = {"images": report.added, "boxes": report.boxes, "seconds": time.perf_counter() - t0}
        from lesion_studio.dataset.splits import assign_splits

        assign_splits(project, seed=0)

        cfg = preset_config("fast", iterations=ITERS, body_parts=[BODY_PART], sample_every=ITERS,
                            checkpoint_every=10**9, assess=False)
        t0 = time.perf_counter()
        train = train_unit(project, cfg, name="bench")
        result["train"] = {
            "seconds_total": time.perf_counter() - t0, "seconds_training": train.seconds,
            "iterations_per_s": train.iterations_per_s, "peak_rss_mb": peak_rss_mb(),
            "lesion_patches": train.data_summary["lesion"]["patches"],
            "normal_patches": train.data_summary["normal"]["patches"],
            "first_losses": train.first_losses, "final_losses": train.losses,
            "onnx_exported": train.onnx_path is not None,
        }
        OUT.mkdir(parents=True, exist_ok=True)
        sample = train.model_dir / "samples" / f"iter_{ITERS:07d}.png"
        if sample.exists():
            shutil.copy(sample, OUT / "synthesis_samples.png")
            result["train"]["sample_grid"] = str(OUT / "synthesis_samples.png")

        x = np.random.default_rng(0).uniform(-1, 1, (1, 1, 128, 128)).astype(np.float32)
        latency = {}
        for backend in ("torch", "onnx"):
            tr = open_translator(project, "bench", backend=backend)
            latency[backend] = {k: v * 1000 for k, v in timed(lambda tr=tr: tr.translate(x), repeat=20,
                                                               warmup=3).items() if k.endswith("_s")}
            latency[backend]["providers"] = getattr(tr, "providers", ["torch-cpu"])
        result["translate_128_ms"] = {b: {"median": v["median_s"], "min": v["min_s"], "providers": v["providers"]}
                                      for b, v in latency.items()}
        result["translate_128_ms"]["target_onnx_cpu"] = 60.0

        onnx_tr = open_translator(project, "bench", backend="onnx")
        rec = project.images(label="normal", include_excluded=False)[0]
        rg = project.open_radiograph(rec.id)
        side = min(256, rg.width, rg.height)
        windows = sample_normal_windows(project, rec, 1, np.random.default_rng(0), radiograph=rg)
        cx, cy = windows[0].center if windows else (rg.width / 2, rg.height / 2)
        from lesion_studio.patches.sampling import square_window

        res = synthesize_lesion(rg, square_window(cx, cy, side, rg.width, rg.height), onnx_tr, n=2.0)
        ns = iter(np.linspace(0.5, 8.0, 1000).tolist())
        reblend = timed(lambda: res.reblend(next(ns)), repeat=200, warmup=5)
        full = timed(lambda: res.reblend(3.0).image, repeat=20, warmup=2)
        result["reblend_ms"] = {"window": [side, side], "median": reblend["median_s"] * 1000,
                                "max": reblend["max_s"] * 1000, "target": 2.0,
                                "with_full_image_paste_median": full["median_s"] * 1000,
                                "image_size": [rg.width, rg.height]}
        result["synthesize_lesion_ms"] = timed(
            lambda: synthesize_lesion(rg, res.window, onnx_tr, n=2.0), repeat=10)["median_s"] * 1000
        result["quality"] = _quality(project)
        result["peak_rss_mb"] = peak_rss_mb()
        project.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
