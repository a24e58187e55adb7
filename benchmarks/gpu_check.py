"""GPU check: the trainers and the experiment on CUDA, as a GPU user runs them. Prints JSON.

Run on a machine with a CUDA GPU (it refuses to run without one):

    python -m benchmarks.gpu_check [--out DIR]

It builds the demo project, trains UNIT (fast and paper presets, mixed precision) and the DRN
classifier (gpu preset) for a short while, runs DDP over NCCL under torchrun, compares onnxruntime
on CUDA with torch on CUDA (translator and classifier), and runs the demo experiments
(demo-gpu.yaml, demo-tiny.yaml) with ``device: auto`` (so on the GPU). Results are written to
OUT/gpu_check.json after every check; each check carries ``ok`` (true/false) and the numbers it
judged by, so a run can be read at a glance. These paths cannot run in the CPU test suite.

Checks (``--skip`` names):
- ``unit_fast`` / ``unit_paper``: CUDA training with mixed precision (bf16 autocast, or fp16 with a
  grad scaler): ok when the autocast dtype is reduced precision, losses stay finite and recon falls.
- ``ddp_nccl_torchrun``: the UNIT trainer under torchrun on NCCL, one process per GPU (2 when there
  are 2): ok when every rank ends with the same weights.
- ``onnx_cuda_parity``: the exported translator and classifier on onnxruntime's CUDA provider
  against torch on CUDA: ok when the CUDA provider really ran and the outputs agree (TF32 and
  kernel choice allow ~1e-3).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DDP_WORKER = r"""
import hashlib, json, os, sys
from lesion_studio.store import Project
from lesion_studio.training import unit_trainer
created = []  # the generator each rank trains, to compare the ranks' final weights
_build = unit_trainer.unit_generators
unit_trainer.unit_generators = lambda arch: created.append(_build(arch)) or created[-1]
project = Project.open(sys.argv[1])
cfg = unit_trainer.preset_config("tiny", iterations=20, device="cuda", export_onnx=False, sample_every=1000,
                                 checkpoint_every=1000)
result = unit_trainer.train_unit(project, cfg, name="ddp-nccl")
h = hashlib.sha256()
for name, tensor in sorted(created[-1].state_dict().items()):
    h.update(tensor.detach().float().cpu().numpy().tobytes())
print("RESULT " + json.dumps({"rank": int(os.environ.get("RANK", "0")), "iterations": result.iteration,
                              "recon": result.losses["recon"], "weights": h.hexdigest()}), flush=True)
"""


def _unit(project, preset: str, iterations: int) -> dict:  # noqa: ANN001
    import math

    import torch

    from lesion_studio.training import common
    from lesion_studio.training.unit_trainer import preset_config, train_unit

    torch.cuda.reset_peak_memory_stats()
    cfg = preset_config(preset, iterations=iterations, device="auto", sample_every=max(1, iterations // 2),
                        checkpoint_every=iterations)
    assert cfg.mixed_precision, "the GPU presets train with mixed precision"
    with common.autocast(torch.device("cuda"), True):  # the dtype the trainer's autocast picks
        amp_dtype = str(torch.ones(2, 2, device="cuda").matmul(torch.ones(2, 2, device="cuda")).dtype)
    t0 = time.perf_counter()
    result = train_unit(project, cfg, name=f"gpu-{preset}")
    finite = all(math.isfinite(v) for h in result.history for v in h.values())
    first, last = result.first_losses["recon"], result.losses["recon"]
    return {
        "ok": bool(finite and last < first and amp_dtype in ("torch.bfloat16", "torch.float16")),
        "amp_dtype": amp_dtype, "losses_finite": finite,
        "iterations": result.iteration, "seconds": round(time.perf_counter() - t0, 1),
        "it_per_s": round(result.iterations_per_s, 2),
        "recon_first_last": [round(first, 3), round(last, 3)],
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20),
        "onnx": bool(result.onnx_path),
    }


def _onnx_cuda_parity(project) -> dict:  # noqa: ANN001
    """onnxruntime (CUDA provider) against torch on CUDA, for the translator and the classifier."""
    import numpy as np
    import torch

    from lesion_studio.classifier.scoring import scorer_for_weights
    from lesion_studio.patches.dataset import PatchParams, build_patch_set
    from lesion_studio.synthesis.translator import load_translator
    from lesion_studio.training.classifier_trainer import load_classifier, predict

    out: dict = {}
    onnx_tr = load_translator(project, "gpu-fast", backend="onnx")
    torch_tr = load_translator(project, "gpu-fast", backend="torch", device="cuda")
    patches = build_patch_set(project, params=PatchParams(resolution=128, variants=1), cache="memory")
    x = patches.sample(8, "normal")
    diffs = [float(np.abs(onnx_tr.translate(x, direction=d, stochastic=True, seed=3)
                          - torch_tr.translate(x, direction=d, stochastic=True, seed=3)).max())
             for d in ("h2l", "l2h")]
    out["translator"] = {"providers": onnx_tr.providers, "max_abs_diff": max(diffs)}
    weights = project.resolve_path(project.model("gpu-drn").path)
    scorer = scorer_for_weights(weights)
    model, _ = load_classifier(weights, device="cuda")
    arrays = np.random.default_rng(0).uniform(0, 1, (16, scorer.prep.size, scorer.prep.size)).astype(np.float32)
    p_onnx = scorer.score_arrays(arrays)
    p_torch = predict(model, arrays, device=torch.device("cuda"))
    out["classifier"] = {"providers": scorer.providers, "max_abs_diff": float(np.abs(p_onnx - p_torch).max())}
    out["ok"] = all(part["providers"][0] == "CUDAExecutionProvider" and part["max_abs_diff"] <= 1e-2
                    for part in (out["translator"], out["classifier"]))
    return out


def _classifier(project) -> dict:  # noqa: ANN001
    from lesion_studio.training.classifier_trainer import preset, train_classifier

    cfg = preset("gpu", epochs=3)
    t0 = time.perf_counter()
    result, _ = train_classifier(project, cfg, name="gpu-drn")
    return {"arch": cfg.arch, "input_size": cfg.input_size, "epochs": 3,
            "seconds": round(time.perf_counter() - t0, 1),
            "val_auc_per_epoch": [h.get("val_auc") for h in getattr(result, "history", [])]}


def _experiment(config: str, out_dir: Path, timeout: int, keep: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lesion_studio.cli.main", "experiment",
                           str(REPO / "resources" / "experiments" / config), "--output", str(out_dir)],
                          capture_output=True, text=True, timeout=timeout)
    out = {"returncode": proc.returncode, "seconds": round(time.perf_counter() - t0, 1),
           "stderr_tail": proc.stderr[-800:] if proc.returncode else ""}
    table = out_dir / "table.md"
    if table.exists():
        out["table"] = table.read_text()[:2500]
    # Only a few files come back from a lent machine: keep the table and the picture of the samples.
    import shutil

    stem = Path(config).stem
    for pattern in ("table.md", "samples-*.png"):
        for found in sorted(out_dir.glob(pattern))[:1]:
            shutil.copy(found, keep / f"{stem}-{found.name}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", REPO / "benchmarks" / "out")))
    parser.add_argument("--skip", default="", help="comma-separated checks to skip")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA GPU"}))
        return 0
    import onnxruntime

    from lesion_studio.demo import build_demo_project

    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0),
                    "onnxruntime_providers": onnxruntime.get_available_providers()}

    def save() -> None:  # after every check, so a run cut short still reports what it did
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2))

    work = Path(tempfile.mkdtemp())
    project = build_demo_project(work / "demo")
    folder = project.folder
    skip = set(args.skip.split(","))
    checks = [("demo_gpu_experiment", lambda: _experiment("demo-gpu.yaml", work / "demo-gpu", 900, args.out)),
              ("ddp_nccl_torchrun", lambda: _ddp(folder, work)),
              ("unit_fast", lambda: _unit(project, "fast", 300)),
              ("drn_gpu_preset", lambda: _classifier(project)),
              ("onnx_cuda_parity", lambda: _onnx_cuda_parity(project)),
              ("unit_paper", lambda: _unit(project, "paper", 100)),
              ("demo_tiny_experiment", lambda: _experiment("demo-tiny.yaml", work / "demo-tiny", 900, args.out))]
    for name, fn in checks:
        if name in skip:
            continue
        try:
            report[name] = fn()
        except Exception as exc:  # report and go on: one failure must not hide the rest
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
        save()
        print(name, json.dumps(report[name])[:600], flush=True)
    project.close()
    return 0


def _ddp(folder: Path, work: Path) -> dict:
    """NCCL needs one GPU per process: 2 processes when there are 2 GPUs, else 1 (then the run
    shows the NCCL set-up and the trainer under torchrun, not an all-reduce between processes)."""
    import torch

    nproc = min(2, torch.cuda.device_count())
    script = work / "ddp.py"
    script.write_text(DDP_WORKER)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={nproc}", str(script), str(folder)],
                          capture_output=True, text=True, timeout=300)
    ranks = [json.loads(ln.split("RESULT ", 1)[1]) for ln in proc.stdout.splitlines() if "RESULT " in ln]
    if len(ranks) != nproc:
        return {"ok": False, "processes": nproc, "error": proc.stderr[-1500:]}
    return {"ok": len({r["weights"] for r in ranks}) == 1, "processes": nproc,
            "iterations": ranks[0]["iterations"], "recon": ranks[0]["recon"],
            "ranks_same_weights": len({r["weights"] for r in ranks}) == 1}


if __name__ == "__main__":
    sys.exit(main())
