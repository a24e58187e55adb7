"""Scoring at scale: the classifier's ONNX export against torch on the same model, images/s in one run.

    python -m benchmarks.scoring_bench [--images 2274] [--size 128] [--batch 32] [--rounds 3] [--quick]

A DRN-D-22 with the lesion-map head (random weights, seeded: speed does not depend on training) is
saved as the trainer saves one and exported with the app's exporter; prepared inputs (the FracAtlas
radiographs through the app's preprocessing when ../shared is there, else random arrays) are scored
in batches by :class:`lesion_studio.classifier.scoring.OnnxScorer` (all physical cores) and by torch
(``no_grad``, the same thread count), alternating round by round. Decoding is outside the timing:
both read the same prepared arrays. Prints JSON with images/s and the ratio ONNX ÷ torch (target ≥ 1.2).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import emit


def prepared_inputs(count: int, size: int) -> tuple[np.ndarray, str]:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "xray" / "images"
    files = sorted(shared.glob("*.jpg"))[:count] if shared.is_dir() else []
    if len(files) == count:
        from lesion_studio.classifier.preprocess import PreparedCache, Preprocessing

        cache = PreparedCache(Preprocessing(size, crop_to_body=True), None)
        return cache.stack([(f.name, f) for f in files]).astype(np.float32), "FracAtlas radiographs"
    return np.random.default_rng(0).standard_normal((count, size, size)).astype(np.float32), "random arrays"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=2274)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="256 images, 2 rounds")
    args = p.parse_args(argv)
    if args.quick:
        args.images, args.rounds = 256, 2
    import torch

    from lesion_studio.classifier.preprocess import Preprocessing
    from lesion_studio.classifier.scoring import OnnxScorer, export_classifier_onnx
    from lesion_studio.models.checkpoint import save_checkpoint
    from lesion_studio.models.drn import build_drn
    from lesion_studio.models.layout import DRN_FORMAT
    from lesion_studio.onnx_runtime import physical_cores
    from lesion_studio.training.classifier_trainer import predict

    threads = physical_cores()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tmp = Path(tempfile.mkdtemp(prefix="scoring-bench-"))
    model = build_drn("drn_d_22", lesion_map=True).eval()
    path = tmp / "model.safetensors"
    save_checkpoint(path, {"model": model.state_dict()},
                    {"format": DRN_FORMAT, "kind": "drn", "arch": "drn_d_22", "config": {"head": "image+map"},
                     "preprocessing": Preprocessing(args.size, crop_to_body=True).to_dict()})
    scorer = OnnxScorer(export_classifier_onnx(path), prefer_cuda=False, batch_size=args.batch)
    arrays, source = prepared_inputs(args.images, args.size)
    times: dict[str, list[float]] = {"onnx": [], "torch": []}
    scorer.score_arrays(arrays[:args.batch])  # warm-up both
    predict(model, arrays[:args.batch], device=torch.device("cpu"), batch_size=args.batch)
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        onnx_scores = scorer.score_arrays(arrays)
        times["onnx"].append(time.perf_counter() - t0)
        time.sleep(0.05)  # let onnxruntime's spinning threads settle before torch runs
        t0 = time.perf_counter()
        torch_scores = predict(model, arrays, device=torch.device("cpu"), batch_size=args.batch)
        times["torch"].append(time.perf_counter() - t0)
    rate = {k: args.images / statistics.median(v) for k, v in times.items()}
    emit({"images": args.images, "size": args.size, "batch": args.batch, "threads": threads, "inputs": source,
          "images_per_s": {k: round(v, 1) for k, v in rate.items()},
          "onnx_vs_torch": round(rate["onnx"] / rate["torch"], 3),
          "max_abs_difference": float(np.abs(onnx_scores - torch_scores).max()),
          "seconds": {k: [round(x, 2) for x in v] for k, v in times.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
